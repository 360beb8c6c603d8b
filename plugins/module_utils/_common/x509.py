# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small X.509 helpers shared by every certfleet.tls plugin.

This module is private to the certfleet.tls collection: its API may change
without notice.
"""

from __future__ import annotations

import hashlib
import traceback

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID
except ImportError:  # pragma: no cover - reported by the modules via missing_required_lib
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
    HAS_CRYPTOGRAPHY = False
else:
    HAS_CRYPTOGRAPHY = True


class CertfleetError(Exception):
    """An error whose message is meant for the user as it is (no traceback)."""


# Short names used in options, reports and the store, in the order a DN is
# conventionally written (C first), as OpenSSL's `req` prompts for them.
DN_FIELDS = (
    ("C", "country_name"),
    ("ST", "state_or_province_name"),
    ("L", "locality_name"),
    ("O", "organization_name"),
    ("OU", "organizational_unit_name"),
    ("CN", "common_name"),
    ("emailAddress", "email_address"),
)

if HAS_CRYPTOGRAPHY:
    DN_OIDS = {
        "C": NameOID.COUNTRY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "L": NameOID.LOCALITY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "CN": NameOID.COMMON_NAME,
        "emailAddress": NameOID.EMAIL_ADDRESS,
    }
    OID_SHORT_NAMES = {oid.dotted_string: short for short, oid in DN_OIDS.items()}
else:  # pragma: no cover
    DN_OIDS = {}
    OID_SHORT_NAMES = {}


def extension_value(certificate, extension_class):
    """The value of one extension of a certificate or CSR, None when it is absent or cannot be decoded.

    cryptography parses extensions lazily: a malformed or duplicated extension raises only when it
    is read (``ValueError``, ``x509.DuplicateExtension``). Treating it as absent keeps every caller's
    verdict on the parts it can read; signature and path checks still apply.
    """
    try:
        return certificate.extensions.get_extension_for_class(extension_class).value
    except x509.ExtensionNotFound:
        return None
    except (ValueError, x509.DuplicateExtension):
        return None


def fingerprint(data: bytes, algorithm: str = "sha256") -> str:
    """Colon-separated upper-case hex digest, the way OpenSSL and browsers print it."""
    digest = hashlib.new(algorithm, data).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def public_key_fingerprint(public_key, algorithm: str = "sha256") -> str:
    """Fingerprint of the DER SubjectPublicKeyInfo, equal for a key, its CSR and its certificate."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return fingerprint(spki, algorithm)


def certificate_fingerprint(certificate, algorithm: str = "sha256") -> str:
    """Fingerprint (thumbprint) of a certificate's DER encoding."""
    return fingerprint(certificate.public_bytes(serialization.Encoding.DER), algorithm)


def name_to_dict(name) -> dict:
    """Map a ``x509.Name`` to {short name: value}; repeated attributes become lists."""
    result: dict = {}
    for attribute in name:
        key = OID_SHORT_NAMES.get(attribute.oid.dotted_string, attribute.oid.dotted_string)
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.hex()
        if key in result:
            existing = result[key]
            result[key] = (existing if isinstance(existing, list) else [existing]) + [value]
        else:
            result[key] = value
    return result


def name_attributes(name) -> dict:
    """``name_to_dict`` for results and reports: {} when the name cannot be decoded.

    The joined one-line DN (``name_to_string``) cannot be split back into attributes: a value may hold
    ``/O=...`` itself (a CN ``evil.example/O=Trusted Corp``). Anything that needs attributes takes them from here.
    """
    try:
        return name_to_dict(name)
    except ValueError:  # cryptography decodes attribute values lazily (a T61String with invalid bytes)
        return {}


def name_to_string(name) -> str:
    """One-line DN in the order it is encoded (C first), e.g. ``/C=JP/ST=Tokyo/CN=www.example.jp``."""
    parts = []
    for attribute in name:
        key = OID_SHORT_NAMES.get(attribute.oid.dotted_string, attribute.oid.dotted_string)
        parts.append(f"/{key}={attribute.value}")
    return "".join(parts)


def general_names_to_list(names) -> list:
    """SAN entries as strings: bare DNS names, ``IP:`` and ``email:`` / ``URI:`` prefixed others."""
    result = []
    for name in names:
        if isinstance(name, x509.DNSName):
            result.append(name.value)
        elif isinstance(name, x509.IPAddress):
            result.append(f"IP:{name.value}")
        elif isinstance(name, x509.RFC822Name):
            result.append(f"email:{name.value}")
        elif isinstance(name, x509.UniformResourceIdentifier):
            result.append(f"URI:{name.value}")
        else:
            result.append(f"{type(name).__name__}:{name.value}")
    return result
