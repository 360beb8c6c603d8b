# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Java keystores (JKS, JCEKS): the certificates and private keys they hold.

This module is private to the certfleet.tls collection: its API may change
without notice. Reading uses pyjks (https://pypi.org/project/pyjks/), a pure-Python reader of
the JKS / JCEKS formats (optional controller requirement, requirements.txt): the JKS integrity
check (SHA-1 over the store password and content) proves the store password before anything is
trusted, and each key entry is opened with its own password (keytool's -keypass), the store
password when none is given. PKCS#12 keystores, keytool's default since Java 9, are read by
``chain.load_certificates`` like any PFX file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import HAS_CRYPTOGRAPHY, CertfleetError

if HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

try:
    import jks as _jks  # pyjks
    HAS_PYJKS = True
except ImportError:  # pragma: no cover - depends on the controller
    _jks = None
    HAS_PYJKS = False

JKS_MAGIC = bytes.fromhex("feedfeed")
JCEKS_MAGIC = bytes.fromhex("cececece")
# A keystore is small; a larger file is not read (hostile input is bounded).
MAX_KEYSTORE_BYTES = 16 * 1024 * 1024
MAX_ENTRIES = 1024


@dataclass
class KeystoreEntry:
    """One alias: its certificate chain (leaf first, as the keystore holds it) and, for a key entry, its key."""

    alias: str
    certificates: list = field(default_factory=list)
    private_key: object = None


def is_java_keystore(data: bytes) -> bool:
    """JKS or JCEKS, by their magic number (PKCS#12 keystores are DER and read as PFX)."""
    return data[:4] in (JKS_MAGIC, JCEKS_MAGIC)


def _text(secret) -> str | None:
    if secret is None:
        return None
    return secret.decode("utf-8") if isinstance(secret, bytes) else str(secret)


def _certificate(der: bytes, *, what: str):
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CertfleetError(f"{what}: not a valid X.509 certificate ({exc})") from None


def load_keystore(data: bytes, *, source: str, password, key_passwords: dict | None = None) -> list[KeystoreEntry]:
    """Every entry of a JKS / JCEKS keystore, key entries opened; a CertfleetError names the file and the alias.

    ``key_passwords`` maps an alias to its key password when it differs from the store password.
    """
    if not HAS_PYJKS:
        raise CertfleetError(f"{source}: reading a Java keystore (JKS) needs the pyjks Python library on the controller "
                             f"(pip install pyjks), or convert it first: keytool -importkeystore -deststoretype pkcs12")
    if len(data) > MAX_KEYSTORE_BYTES:
        raise CertfleetError(f"{source}: larger than {MAX_KEYSTORE_BYTES} bytes, not a keystore this reads")
    if not is_java_keystore(data):
        raise CertfleetError(f"{source}: not a JKS or JCEKS keystore")
    secret = _text(password)
    if not secret:
        raise CertfleetError(f"{source}: a Java keystore needs its store password (keytool -storepass)")
    try:
        store = _jks.KeyStore.loads(data, secret, try_decrypt_keys=False)
    except _jks.util.KeystoreSignatureException:
        raise CertfleetError(f"{source}: wrong keystore password (the keystore's integrity check fails)") from None
    except (_jks.util.BadKeystoreFormatException, _jks.util.UnsupportedKeystoreVersionException) as exc:
        raise CertfleetError(f"{source}: damaged or unsupported Java keystore ({exc})") from None
    except Exception as exc:  # pyjks raises struct / index errors on truncated files
        raise CertfleetError(f"{source}: damaged Java keystore ({type(exc).__name__}: truncated copy?)") from None
    if len(store.entries) > MAX_ENTRIES:
        raise CertfleetError(f"{source}: more than {MAX_ENTRIES} entries")
    entries = []
    for alias in sorted(store.private_keys):
        entry = store.private_keys[alias]
        what = f"{source}: alias {alias}"
        passwords = [_text((key_passwords or {}).get(alias))] if (key_passwords or {}).get(alias) else [secret]
        for attempt in passwords:
            try:
                entry.decrypt(attempt)
                break
            except _jks.util.DecryptionFailureException:
                continue
        else:
            raise CertfleetError(f"{what}: the key password is wrong (give it in key_passwords when it is not the store password)")
        try:
            key = serialization.load_der_private_key(entry.pkey_pkcs8, password=None)
        except (ValueError, TypeError) as exc:
            raise CertfleetError(f"{what}: cannot read the private key ({exc})") from None
        certificates = [_certificate(der, what=f"{what} certificate {number}")
                        for number, (_kind, der) in enumerate(entry.cert_chain, start=1)]
        entries.append(KeystoreEntry(alias=alias, certificates=certificates, private_key=key))
    for alias in sorted(store.certs):
        entries.append(KeystoreEntry(alias=alias, certificates=[_certificate(store.certs[alias].cert, what=f"{source}: alias {alias}")]))
    if not entries:
        raise CertfleetError(f"{source}: the keystore holds no certificate")
    return entries
