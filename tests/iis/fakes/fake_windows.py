# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake Windows host for the iis_ssl contract tests: certificate stores, key storage, IIS bindings
and the http.sys SSL table kept in one JSON file (FAKE_WINDOWS_STATE, set per host by the test's
interpreter wrapper), and the host's file system under FAKE_WINDOWS_ROOT.

Test-only: copied into a collection overlay as plugins/module_utils/fake_windows.py. It models what
the PowerShell modules document (machine vs user key storage, HasPrivateKey, certutil -repairstore,
Windows Server 2016 refusing AES-256 PFX files with "The specified network password is not correct",
http.sys entries per IP:port / host:port), not Windows itself.
"""
from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import re
import subprocess
from contextlib import contextmanager

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

STORES = ("My", "CA", "Root")


def state_path() -> str:
    path = os.environ.get("FAKE_WINDOWS_STATE")
    if not path:
        raise RuntimeError("FAKE_WINDOWS_STATE is not set: this module only runs on the test's fake Windows host")
    return path


@contextmanager
def host_state(write: bool = True):
    """The host's state, locked; written back when the block ends without an exception and write is true."""
    path = state_path()
    with open(path + ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
        yield state
        if write:
            temporary = path + ".tmp"
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(state, handle, indent=1, sort_keys=True)
            os.replace(temporary, path)


def host_path(windows_path: str) -> str:
    """C:\\Windows\\Temp\\x.pfx -> <FAKE_WINDOWS_ROOT>/C/Windows/Temp/x.pfx."""
    root = os.environ["FAKE_WINDOWS_ROOT"]
    match = re.match(r"^([A-Za-z]):[\\/](.*)$", windows_path or "")
    if not match:
        raise ValueError(f"not an absolute Windows path: {windows_path!r}")
    parts = [part for part in re.split(r"[\\/]+", match.group(2)) if part]
    if any(part in (".", "..") for part in parts):
        raise ValueError(f"path leaves its drive: {windows_path!r}")
    return os.path.join(root, match.group(1).upper(), *parts)


def thumbprint_of(certificate: x509.Certificate) -> str:
    return hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).hexdigest().upper()  # nosec - Windows' thumbprint


def windows_name(name: x509.Name) -> str:
    # Windows shows the most specific RDN first, as RFC 4514 does.
    return name.rfc4514_string().replace(",", ", ")


def cert_entry(certificate: x509.Certificate, **extra) -> dict:
    entry = {
        "thumbprint": thumbprint_of(certificate),
        "subject": windows_name(certificate.subject),
        "issuer": windows_name(certificate.issuer),
        "not_after": certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "friendly_name": "",
        "pem": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        "has_key": False,
    }
    entry.update(extra)
    return entry


def find(state: dict, store: str, thumbprint: str) -> dict | None:
    wanted = normalise(thumbprint)
    return next((entry for entry in state["stores"][store] if entry["thumbprint"] == wanted), None)


def normalise(thumbprint: str | None) -> str | None:
    return re.sub(r"[^0-9A-Fa-f]", "", thumbprint).upper() if thumbprint else None


def has_private_key(state: dict, entry: dict) -> bool:
    """HasPrivateKey: the certificate is associated with a key that exists in the key store."""
    return bool(entry.get("has_key")) and entry["thumbprint"] in state.get("keys", {})


def pfx_algorithms(path: str, passphrase: str) -> str:
    """openssl pkcs12 -info's description of the PFX's encryption and MAC (the real openssl)."""
    done = subprocess.run(["openssl", "pkcs12", "-info", "-in", path, "-noout", "-passin", "env:FAKE_PFX_PASS"],
                          env=dict(os.environ, FAKE_PFX_PASS=passphrase or ""), capture_output=True, text=True,
                          timeout=30, check=False)
    return done.stdout + done.stderr


def load_pfx(path: str, passphrase: str, build: int):
    """(key, leaf, others) of a PFX as Windows would read it on this build; raises ValueError with Windows' words."""
    data = open(path, "rb").read()
    info = pfx_algorithms(path, passphrase)
    # Windows Server 2016 (build 14393) and older cannot read PBES2/AES-256 nor a SHA-256 MAC and say the
    # password is wrong (Microsoft: PFX files exported from Server 2019 with AES256-SHA256 fail on 2016).
    if build < 17763 and ("AES" in info or "MAC: sha256" in info):
        raise ValueError("The specified network password is not correct.")
    try:
        loaded = pkcs12.load_pkcs12(data, (passphrase or "").encode())
    except ValueError:
        raise ValueError("The specified network password is not correct.") from None
    # Windows takes the certificate's FriendlyName from the PFX's friendlyName attribute
    leaf = loaded.cert.certificate if loaded.cert else None
    friendly_name = (loaded.cert.friendly_name or b"").decode() if loaded.cert else ""
    return loaded.key, leaf, [item.certificate for item in loaded.additional_certs], friendly_name


def bound_thumbprints(state: dict) -> dict:
    bound = {}
    for site in state["sites"]:
        for binding in site["bindings"]:
            if binding.get("certificate_hash"):
                bound[binding["certificate_hash"]] = site["name"]
    for entry in state["sslcert"]:
        bound.setdefault(entry["thumbprint"], "http.sys")
    return bound


def sslcert_key(binding: dict) -> tuple[str, str]:
    """The http.sys entry of a binding: host:port for SNI, IP:port otherwise (0.0.0.0 for *)."""
    if binding["ssl_flags"] & 1:
        return "host_port", f"{binding['host']}:{binding['port']}"
    address = "0.0.0.0" if binding["ip"] in ("*", "") else binding["ip"]
    return "ip_port", f"{address}:{binding['port']}"


def set_sslcert(state: dict, binding: dict, thumbprint: str | None) -> None:
    field, value = sslcert_key(binding)
    state["sslcert"] = [entry for entry in state["sslcert"] if entry.get(field) != value]
    if thumbprint and not binding["ssl_flags"] & 2:
        entry = {"ip_port": None, "host_port": None, "thumbprint": thumbprint, "store": "My"}
        entry[field] = value
        state["sslcert"].append(entry)


def log(state: dict, text: str) -> None:
    state.setdefault("log", []).append(f"{datetime.datetime.now(datetime.timezone.utc).isoformat()} {text}")
