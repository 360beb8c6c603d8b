# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline packages for IIS servers Ansible cannot reach (IIS 6 / Windows Server 2003, air-gapped hosts).

This module is private to the certfleet.tls collection: its API may change
without notice.

One package per definition and host: a zip with the PFX (leaf and key, 3DES / SHA-1 MAC by default,
the scheme Windows Server 2003 imports), the intermediates (and the root when asked), step-by-step
instructions for the Certificates snap-in and IIS Manager, the SHA-1 thumbprint to compare after
installing, and SHA256SUMS.txt. The zip is sealed in the format of ``openssl enc -aes-256-cbc -pbkdf2
-md sha256 -iter 600000`` (``Salted__``, an 8-byte salt, AES-256-CBC with key and IV from
PBKDF2-HMAC-SHA256), so any machine with OpenSSL 1.1.1 or later opens it without certfleet. The same
passphrase opens the PFX; it travels another way than the package (see docs/iis-offline.md).
"""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import zipfile

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError, certificate_fingerprint
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import artifacts
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import iis

try:
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
except ImportError:  # pragma: no cover - the module reports the missing library first
    pass

# OWASP's 2023 figure for PBKDF2-HMAC-SHA256; openssl enc needs the same number (-iter) to open it.
ITERATIONS = 600000
MAGIC = b"Salted__"
PACKAGE_SUFFIX = ".zip.enc"
MAX_PACKAGE_BYTES = 16 * 1024 * 1024
IIS_VERSIONS = ("6", "7", "8", "10")
# Letters and digits a person can read out and type without confusion (no 0/o, 1/l/i).
PASSPHRASE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def new_passphrase(groups: int = 6, size: int = 5) -> str:
    """A passphrase to read out or type on a console: 6 groups of 5 (about 148 bits), e.g. ``k7mx2-q9cvb-...``."""
    return "-".join("".join(secrets.choice(PASSPHRASE_ALPHABET) for _char in range(size)) for _group in range(groups))


# --------------------------------------------------------------------------------------------
# the envelope: openssl enc -aes-256-cbc -pbkdf2 -md sha256 -iter 600000


def _key_iv(passphrase: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    material = PBKDF2HMAC(algorithm=hashes.SHA256(), length=48, salt=salt, iterations=iterations).derive(passphrase.encode("utf-8"))
    return material[:32], material[32:]


def seal(data: bytes, passphrase: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> bytes:
    """``data`` encrypted as ``openssl enc -aes-256-cbc -pbkdf2 -md sha256 -iter <iterations>`` writes it."""
    if not passphrase:
        raise CertfleetError("the package needs a non-empty passphrase")
    salt = salt if salt is not None else secrets.token_bytes(8)
    key, iv = _key_iv(passphrase, salt, iterations)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return MAGIC + salt + encryptor.update(padded) + encryptor.finalize()


def unseal(data: bytes, passphrase: str, *, iterations: int = ITERATIONS) -> bytes:
    """The inverse of ``seal`` (and of that openssl command); a wrong passphrase fails clearly."""
    if len(data) > MAX_PACKAGE_BYTES + 64:
        raise CertfleetError(f"the package is larger than {MAX_PACKAGE_BYTES} bytes")
    if not data.startswith(MAGIC) or len(data) < 32 or (len(data) - 16) % 16:
        raise CertfleetError("not a certfleet offline package (no openssl 'Salted__' header)")
    key, iv = _key_iv(passphrase, data[8:16], iterations)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data[16:]) + decryptor.finalize()
    try:
        unpadder = padding.PKCS7(128).unpadder()
        plain = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise CertfleetError("the package does not open with this passphrase (or it was damaged)") from None
    if not plain.startswith(b"PK"):
        raise CertfleetError("the package does not open with this passphrase (or it was damaged)")
    return plain


# --------------------------------------------------------------------------------------------
# what goes in


def grouped_thumbprint(thumbprint: str) -> str:
    """The thumbprint as Windows Server 2003's certificate dialog shows it: lower-case pairs with spaces."""
    return " ".join(thumbprint[index:index + 2] for index in range(0, len(thumbprint), 2)).lower()


def _slug(text: str) -> str:
    return _SLUG.sub("-", text).strip("-.")[:60] or "certificate"


def _common_name(certificate) -> str:
    for attribute in certificate.subject:
        if attribute.oid.dotted_string == "2.5.4.3":
            return attribute.value
    return iis.certificate_thumbprint(certificate)[:8]


def compatibility_problems(current, *, iis_version: str) -> tuple[list[str], list[str]]:
    """(problems that make the package useless on that IIS, warnings)."""
    problems, warnings = [], []
    if iis_version == "6":
        if not isinstance(current.private_key, rsa.RSAPrivateKey):
            problems.append(f"{current.name}: Windows Server 2003 / IIS 6 cannot use an ECDSA key (no CNG before Windows "
                            f"Server 2008); request this definition with key type RSA")
        algorithm = current.leaf.signature_hash_algorithm
        if algorithm is not None and algorithm.name != "sha1":
            warnings.append(f"{current.name}: the certificate is signed with {algorithm.name.upper()}; Windows Server 2003 "
                            f"reads such certificates only with KB968730 (SP2) installed")
    return problems, warnings


def instructions(*, name: str, definition: str, host: str, thumbprint: str, sha256: str, subject: str, not_after: str,
                 pfx_file: str, pfx_encryption: str, intermediates: list[tuple[str, str]], root: tuple[str, str] | None,
                 iis_version: str, sites: list[dict], key_exportable: bool) -> str:
    """The step-by-step text (CRLF line ends, which Notepad on Windows Server 2003 needs)."""
    site_lines = [f"  - {site['name']}" + (f" (host name {site['host']}, port {site['port']})" if site.get("host") else
                                           f" (port {site.get('port', 443)})") for site in sites] or ["  - the site(s) of this certificate"]
    encryption = "3DES with a SHA-1 MAC" if pfx_encryption == "compatible" else "AES-256 with a SHA-256 MAC"
    lines = [
        "certfleet.tls offline installation package",
        "============================================",
        "",
        f"Definition:          {definition}" + (f" (store name {name})" if name != definition else ""),
        f"Server:              {host}",
        f"Certificate:         {subject}",
        f"Valid until:         {not_after}",
        f"SHA-1 thumbprint:    {thumbprint}",
        f"  as Windows shows:  {grouped_thumbprint(thumbprint)}",
        f"SHA-256 fingerprint: {sha256}",
        "",
        "Files",
        f"  {pfx_file:<40} certificate and private key (PKCS#12, {encryption});",
        f"  {'':<40} its password is the package passphrase",
    ]
    lines += [f"  {'intermediates' + chr(92) + file:<40} intermediate CA certificate: {label}" for file, label in intermediates]
    if root:
        lines.append(f"  {'root' + chr(92) + root[0]:<40} root CA certificate: {root[1]}")
    lines += [f"  {'SHA256SUMS.txt':<40} SHA-256 of every file", "", "Steps", ""]
    step = [0]

    def add(*text: str) -> None:
        step[0] += 1
        first, *rest = text
        lines.append(f"{step[0]}. {first}")
        lines.extend(f"   {line}" for line in rest)
        lines.append("")

    add("Copy this folder to the server (removable media or a share). The PFX holds the private key: keep it off",
        "shared folders, and delete every copy at the end (last step).")
    add("Open the Certificates snap-in for the computer: Start > Run > mmc; File > Add/Remove Snap-in > Add >",
        "Certificates > Computer account > Next > Local computer > Finish > Close > OK.",
        "(Not 'My user account': a key in the user's store makes the binding fail.)")
    add("Import the certificate and key: Certificates (Local Computer) > Personal > right-click Certificates >",
        f"All Tasks > Import > Next > Browse > file type 'Personal Information Exchange (*.pfx;*.p12)' > {pfx_file}.",
        "Password: the package passphrase.",
        ("Tick 'Mark this key as exportable' (asked for this server)." if key_exportable else
         "Leave 'Mark this key as exportable' unticked: the store on the controller keeps the key."),
        "Place all certificates in the following store: Personal > Next > Finish.")
    if intermediates:
        add("Import the intermediate CA certificate(s): Intermediate Certification Authorities > right-click",
            "Certificates > All Tasks > Import > each file in the intermediates folder > Place all certificates in the",
            "following store: Intermediate Certification Authorities > Finish. Never into Personal.")
    if root:
        add("Import the root CA certificate: Trusted Root Certification Authorities > right-click Certificates >",
            f"All Tasks > Import > root{chr(92)}{root[0]} > Trusted Root Certification Authorities > Finish.",
            f"If another certificate named {root[1]} is already there with another thumbprint (an older root of the",
            "same name), chain building may pick the wrong one: remove the old one after checking with the CA operator.")
    add("Check the certificate: Personal > Certificates > double-click it.",
        "General tab: 'You have a private key that corresponds to this certificate.'",
        f"Details tab: Thumbprint must be {grouped_thumbprint(thumbprint)} ({thumbprint}).",
        "Certification Path tab: the chain up to the root, 'This certificate is OK.'",
        f"If the private key line is missing, run in a command prompt: certutil -repairstore my {thumbprint}")
    if iis_version == "6":
        add("Assign it in IIS 6: Start > Administrative Tools > Internet Information Services (IIS) Manager >",
            "Web Sites > right-click the site > Properties > Directory Security > Server Certificate... > Next >",
            "'Replace the current certificate' (or 'Assign an existing certificate' when the site has none) > Next >",
            f"select the certificate whose thumbprint is {thumbprint} (View Certificate > Details) > Next >",
            "SSL port 443 (as before) > Next > Finish > OK. For the site(s):", *site_lines)
    else:
        add(f"Bind it in IIS Manager (IIS {iis_version}): Sites > select the site > Bindings... (Actions pane) >",
            "select the https binding > Edit... (or Add... > Type https) > SSL certificate: the one whose thumbprint is",
            f"{thumbprint} (View... > Details) > OK > Close."
            + (" Keep the host name and tick 'Require Server Name Indication' when the site uses one." if iis_version in ("8", "10")
               else ""),
            "For the site(s):", *site_lines)
    add("Delete the package, the decrypted folder and the PFX from the server and from the removable media.")
    add("Tell the certfleet operator it is installed: they run the certfleet.tls.verify playbook for this server,",
        "which connects over the network and compares the served certificate with the store, like any other host.")
    lines.append("Thumbprints compare without spaces and case; when copying one out of the certificate dialog, an invisible")
    lines.append("character comes first (U+200E): type it rather than paste it into certutil.")
    return "\r\n".join(lines) + "\r\n"


def _pem(certificate) -> bytes:
    return _chain.fullchain_pem([certificate]).replace(b"\n", b"\r\n")


def _site_for_text(site, index: int) -> dict:
    if not isinstance(site, dict) or not isinstance(site.get("name"), str) or not site["name"].strip():
        raise CertfleetError(f"sites[{index}]: each site needs a name")
    port = site.get("port", 443)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise CertfleetError(f"sites[{site['name']}].port: {port!r} is not a port number")
    host = site.get("host")
    return {"name": site["name"][:256], "host": str(host)[:256] if host else None, "port": port}


def build_package(current, *, definition: str, host: str, passphrase: str, root=None, install_root: bool = False,
                  pfx_encryption: str = "compatible", iis_version: str = "6", sites: list | None = None,
                  key_exportable: bool = False, iterations: int = ITERATIONS) -> tuple[bytes, dict, list[str]]:
    """(sealed package, manifest, warnings) for one definition's current generation on one host.

    ``current`` is the store's checked generation (``load_current``), ``root`` the intended root when known.
    The manifest names the files, the thumbprint and the package's SHA-256; it holds no secret.
    """
    if pfx_encryption not in iis.PFX_ENCRYPTIONS:
        raise CertfleetError(f"pfx_encryption must be one of {', '.join(iis.PFX_ENCRYPTIONS)}, not {pfx_encryption!r}")
    if str(iis_version) not in IIS_VERSIONS:
        raise CertfleetError(f"iis_version must be one of {', '.join(IIS_VERSIONS)}, not {iis_version!r}")
    iis_version = str(iis_version)
    sites = [_site_for_text(site, index) for index, site in enumerate(sites or [])]
    problems, warnings = compatibility_problems(current, iis_version=iis_version)
    if iis_version == "6" and pfx_encryption == "modern":
        problems.append("pfx_encryption=modern: Windows Server 2003 cannot import an AES PFX; use compatible")
    if problems:
        raise CertfleetError("; ".join(problems))
    thumbprint = iis.certificate_thumbprint(current.leaf)
    proper, sent_root = iis.split_chain(current.intermediates)
    root = root if root is not None else sent_root
    folder = _slug(f"{current.name}-{host}")
    pfx_file = f"{_slug(current.name)}.pfx"
    files = {pfx_file: artifacts.pkcs12(current, passphrase=passphrase, encryption=iis.CHAIN_ENCRYPTION[pfx_encryption],
                                        include_chain=False)}
    intermediates = []
    for index, certificate in enumerate(proper, start=1):
        file = f"{index:02d}-{_slug(_common_name(certificate))}.cer"
        files[f"intermediates/{file}"] = _pem(certificate)
        intermediates.append((file, iis.windows_subject(certificate.subject)))
    root_entry = None
    if install_root:
        if root is None:
            raise CertfleetError(f"{current.name}: install_root asked, but the chain's root is not known "
                                 f"(a private_ca definition's root is in the store; give root_certificates otherwise)")
        root_entry = (f"{_slug(_common_name(root))}.cer", iis.windows_subject(root.subject))
        files[f"root/{root_entry[0]}"] = _pem(root)
    info = _chain.certificate_info(current.leaf)
    text = instructions(name=current.name, definition=definition, host=host, thumbprint=thumbprint,
                        sha256=certificate_fingerprint(current.leaf, "sha256"), subject=iis.windows_subject(current.leaf.subject),
                        not_after=info["not_after"], pfx_file=pfx_file, pfx_encryption=pfx_encryption,
                        intermediates=intermediates, root=root_entry, iis_version=iis_version, sites=sites or [],
                        key_exportable=key_exportable)
    files["INSTALL.txt"] = text.encode("utf-8")
    sums = "".join(f"{hashlib.sha256(content).hexdigest()}  {path}\r\n" for path, content in sorted(files.items()))
    files["SHA256SUMS.txt"] = sums.encode("ascii")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in ["INSTALL.txt", pfx_file] + sorted(path for path in files if path not in ("INSTALL.txt", pfx_file)):
            entry = zipfile.ZipInfo(f"{folder}/{path}", date_time=max(current.leaf.not_valid_before_utc.timetuple()[:6], (1980, 1, 1, 0, 0, 0)))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            archive.writestr(entry, files[path])
    sealed = seal(buffer.getvalue(), passphrase, iterations=iterations)
    manifest = {
        "name": current.name,
        "definition": definition,
        "host": host,
        "thumbprint": thumbprint,
        "sha256": certificate_fingerprint(current.leaf, "sha256"),
        "subject": info["subject"],
        "not_after": iso(current.leaf.not_valid_after_utc),
        "pfx_encryption": pfx_encryption,
        "iis_version": iis_version,
        "files": [f"{folder}/{path}" for path in sorted(files)],
        "root_included": root_entry is not None,
        "package_sha256": hashlib.sha256(sealed).hexdigest(),
        "open_command": f"openssl enc -d -aes-256-cbc -pbkdf2 -md sha256 -iter {iterations} -in <package> -out <package>.zip",
    }
    return sealed, manifest, warnings


def package_file_name(name: str, host: str, thumbprint: str) -> str:
    """``<name>.<host>.<thumbprint 8>.zip.enc``: one file per definition, host and certificate."""
    return f"{_slug(name)}.{_slug(str(host).lower())}.{thumbprint[:8]}{PACKAGE_SUFFIX}"
