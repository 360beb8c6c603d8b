# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller-side certificate store: layout, definitions, state and history.

This module is private to the certfleet.tls collection: its API may change
without notice. Layout (see docs/store.md)::

    <store>/certs/<name>/key.pem csr.pem cert.pem chain.pem fullchain.pem
                        incoming/ archive/<generation>/ state.json history.jsonl
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._common.files import read_file, write_file_atomic
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import utc_now as utc_now_datetime
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError, name_to_string
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# Keys a definition may carry; later stages (issuance, deploy, monitor) read the ones after "digest".
DEFINITION_KEYS = {
    "name", "common_name", "country_name", "state_or_province_name", "locality_name", "organization_name",
    "organizational_unit_name", "email_address", "subject_alt_name", "digest", "key", "issuer", "profile",
    "mode", "renew_before_days", "deploy", "check_name", "description", "trusted_ca_set", "sites", "endpoints",
}
SUBJECT_OPTION_KEYS = (
    "common_name", "country_name", "state_or_province_name", "locality_name", "organization_name",
    "organizational_unit_name", "email_address",
)
KEY_DEFAULTS = {"type": "RSA", "size": 2048, "curve": "secp256r1"}
ISSUER_PROVIDERS = ("manual", "private_ca", "acme")


def utc_now() -> str:
    """ISO 8601 UTC timestamp with seconds, as written in history and state."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def sha256_hex(data: bytes | None) -> str | None:
    """Plain hex SHA-256 of file content, None for a missing file."""
    return hashlib.sha256(data).hexdigest() if data is not None else None


def certificate_dir(store_path: str, name: str) -> str:
    """Directory of one definition in the store."""
    return os.path.join(store_path, "certs", name)


def normalise_definition(definition: dict, defaults: dict | None = None) -> tuple[dict, list[str]]:
    """Definition merged over defaults, with key and issuer filled in; returns (definition, warnings).

    Raises CertfleetError naming the definition for structural problems.
    """
    if not isinstance(definition, dict):
        raise CertfleetError(f"definitions: every entry must be a dict, got {type(definition).__name__}")
    name = definition.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise CertfleetError(
            f"definitions: name {name!r} must be 1-128 characters of letters, digits, '.', '_' or '-' (it names a store directory)")
    merged = dict(defaults or {})
    merged.update(definition)
    warnings = [f"{name}: unknown key '{key}' ignored" for key in sorted(set(definition) - DEFINITION_KEYS)]
    key = dict(KEY_DEFAULTS)
    key.update(merged.get("key") or {})
    if key["type"] not in ("RSA", "ECC"):
        raise CertfleetError(f"{name}: key.type '{key['type']}' must be RSA or ECC")
    try:
        key["size"] = int(key["size"])
    except (TypeError, ValueError):
        raise CertfleetError(f"{name}: key.size '{key['size']}' is not a number") from None
    issuer = {"provider": "manual", "profile": merged.get("profile") or "private"}
    issuer.update(merged.get("issuer") or {})
    if issuer["provider"] not in ISSUER_PROVIDERS:
        raise CertfleetError(f"{name}: issuer.provider '{issuer['provider']}' must be one of {', '.join(ISSUER_PROVIDERS)}")
    sans = merged.get("subject_alt_name") or []
    if isinstance(sans, str):
        sans = [sans]
    merged.update(key=key, issuer=issuer, subject_alt_name=[str(entry) for entry in sans], digest=merged.get("digest") or "sha256")
    return merged, warnings


def request_options(definition: dict, profiles: dict | None) -> dict:
    """The csr-module style options of a normalised definition."""
    options = {key: definition.get(key) for key in SUBJECT_OPTION_KEYS}
    options.update(
        subject_alt_name=definition["subject_alt_name"],
        digest=definition["digest"],
        profile=definition["issuer"]["profile"],
        profiles=profiles or {},
    )
    return options


def request_hash(*, subject: dict, subject_alt_name: list, digest: str, key: dict, profile: str) -> str:
    """Stable hash of everything that shapes the key and CSR; unchanged hash means nothing to redo."""
    payload = {
        "subject": subject,
        "subject_alt_name": subject_alt_name,
        "digest": digest,
        "key": {"type": key["type"], "size": key["size"] if key["type"] == "RSA" else None,
                "curve": key["curve"] if key["type"] == "ECC" else None},
        "profile": profile,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def load_state(directory: str) -> dict:
    """state.json as a dict, {} when absent; a corrupt file is an error naming it."""
    path = os.path.join(directory, "state.json")
    data = read_file(path, option="state.json")
    if data is None:
        return {}
    try:
        state = json.loads(data)
    except ValueError as exc:
        raise CertfleetError(f"{path}: not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(state, dict):
        raise CertfleetError(f"{path}: expected a JSON object")
    return state


def dump_state(state: dict) -> bytes:
    """Deterministic JSON for state.json."""
    return (json.dumps(state, indent=2, sort_keys=True) + "\n").encode("utf-8")


def append_history(directory: str, events: list[dict]) -> None:
    """Append events to history.jsonl (one JSON object per line, never rewritten)."""
    if not events:
        return
    lines = "".join(json.dumps(event, sort_keys=True) + "\n" for event in events)
    # O_APPEND writes of one small buffer land whole; the file is append-only by design.
    descriptor = os.open(os.path.join(directory, "history.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, lines.encode("utf-8"))
    finally:
        os.close(descriptor)


def read_history(directory: str) -> list[dict]:
    """All events of a definition, oldest first."""
    data = read_file(os.path.join(directory, "history.jsonl"), option="history.jsonl") or b""
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def ensure_directory(path: str, mode: int = 0o750) -> None:
    """Create a store directory (private by default, since it holds keys)."""
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
    except OSError as exc:
        raise CertfleetError(f"store_path: cannot create '{path}' ({exc.strerror})") from None


def archive_files(directory: str, names: list[str], *, label: str) -> str | None:
    """Copy the current generation's files to archive/<label>/ before they are replaced."""
    present = [(name, read_file(os.path.join(directory, name))) for name in names]
    present = [(name, data) for name, data in present if data is not None]
    if not present:
        return None
    target = os.path.join(directory, "archive", label)
    ensure_directory(target, 0o700)
    for name, data in present:
        write_file_atomic(os.path.join(target, name), data, option="archive")
    return target


class CurrentGeneration:
    """The store's current certificate of one definition, loaded and checked.

    ``private_key`` is the decrypted key object, ``key_pem`` the bytes as stored (encrypted with the
    store passphrase), ``leaf`` the certificate and ``intermediates`` its issuers in order (leaf's
    issuer first, no root unless the CA sent a cross-root as part of the chain).
    """

    def __init__(self, *, name: str, directory: str, private_key, key_pem: bytes, leaf, intermediates: list):
        self.name = name
        self.directory = directory
        self.private_key = private_key
        self.key_pem = key_pem
        self.leaf = leaf
        self.intermediates = intermediates


def _required_file(store_path: str, name: str, kind: str) -> bytes:
    path = layout.certificate_path(store_path, name, kind)
    data = read_file(path, option=f"{name}/{layout.filename(kind)}")
    if data is None:
        raise CertfleetError(f"{name}: {layout.filename(kind)} is missing from the store ({os.path.dirname(path)}); "
                             f"run certfleet.tls.request (and drop the CA's certificate into incoming/ for a manual CA) first")
    return data


def check_chain(leaf, intermediates: list, *, definition: str, now: datetime.datetime) -> None:
    """Each certificate must be issued by the next one, and none may be expired or not yet valid."""
    for certificate in [leaf] + intermediates:
        if now > certificate.not_valid_after_utc:
            raise CertfleetError(f"{definition}: {name_to_string(certificate.subject)} expired on "
                                 f"{iso(certificate.not_valid_after_utc)}")
        if now < certificate.not_valid_before_utc:
            raise CertfleetError(f"{definition}: {name_to_string(certificate.subject)} is not valid before "
                                 f"{iso(certificate.not_valid_before_utc)}")
    if _chain.is_self_signed(leaf):
        if intermediates:
            raise CertfleetError(f"{definition}: the certificate is self-signed, yet {layout.filename('chain')} holds "
                                 f"{len(intermediates)} certificate(s)")
        return
    child = leaf
    for position, parent in enumerate(intermediates, start=1):
        if not _chain.is_issued_by(child, parent):
            wanted = name_to_string(child.issuer)
            raise CertfleetError(
                f"{definition}: {layout.filename('chain')} certificate {position} ({name_to_string(parent.subject)}) did not "
                f"issue {name_to_string(child.subject)}, whose issuer is {wanted}: a chain for the wrong issuer, or out of order")
        child = parent


def load_current(store_path: str, name: str, passphrase: str | None, *,
                 now: datetime.datetime | None = None) -> CurrentGeneration:
    """Key, leaf and ordered intermediates of a definition, checked: the key opens with ``passphrase`` and
    matches the certificate, the chain is the leaf's real issuers in order, nothing is expired.

    Raises CertfleetError naming the definition and what is wrong.
    """
    now = now or utc_now_datetime()
    directory = layout.certificate_dir(store_path, name)
    if not os.path.isdir(directory):
        raise CertfleetError(f"{name}: not in the store ({directory} does not exist)")
    key_pem = _required_file(store_path, name, "key")
    cert_data = _required_file(store_path, name, "cert")
    chain_data = read_file(layout.certificate_path(store_path, name, "chain"), option=f"{name}/{layout.filename('chain')}") or b""
    private_key = _chain.load_private_key(key_pem, source=f"{name}/{layout.filename('key')}", passphrase=passphrase)
    leaves = _chain.load_certificates(cert_data, source=f"{name}/{layout.filename('cert')}").certificates
    if len(leaves) != 1:
        raise CertfleetError(f"{name}: {layout.filename('cert')} must hold exactly one certificate, it holds {len(leaves)}")
    leaf = leaves[0].certificate
    intermediates = ([item.certificate for item in
                      _chain.load_certificates(chain_data, source=f"{name}/{layout.filename('chain')}").certificates]
                     if chain_data.strip() else [])
    _chain.check_key_matches(private_key, leaf, key_source=f"{name}/{layout.filename('key')}",
                             cert_source=f"{name}/{layout.filename('cert')}")
    check_chain(leaf, intermediates, definition=name, now=now)
    return CurrentGeneration(name=name, directory=directory, private_key=private_key, key_pem=key_pem, leaf=leaf,
                             intermediates=intermediates)
