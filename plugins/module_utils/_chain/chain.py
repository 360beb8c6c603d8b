# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate chain engine: load any certificate file, build and check the path, write server layouts.

This module is private to the certfleet.tls collection: its API may change
without notice.

Everything here is a pure function over bytes and cryptography objects, except
``http_fetch`` (network I/O, only used when a caller passes it as the AIA hook).
Needs cryptography >= 42.0 (``signature_algorithm_parameters``, ``*_utc`` dates,
PKCS#12 encryption builder).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import http.client
import re
import socket
import ssl
import threading
import time
import urllib.parse
import warnings as _warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from ansible_collections.certfleet.tls.plugins.module_utils._chain import catalog as _catalog
from ansible_collections.certfleet.tls.plugins.module_utils._chain import constraints as _constraints

from ansible_collections.certfleet.tls.plugins.module_utils._common import keys as _keys
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso, utc_now
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import (
    HAS_CRYPTOGRAPHY,
    CertfleetError,
    certificate_fingerprint,
    extension_value,
    name_to_string,
    public_key_fingerprint,
)

if HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
    from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

MINIMUM_CRYPTOGRAPHY_VERSION = "42.0.0"

# shortest: fewest intermediates up to a trust anchor (the trust bundle when given, else any
#   self-signed root in the pile); ties go to the newest root.
# cross_root: the longest trusted path, through cross-signed certificates as far as their issuers
#   are available, because old clients and handsets only know the older root (Cybertrust's
#   SureServer FAQ recommends the cross-root certificate for mobile handsets);
#   ties go to the oldest root.
PREFER_CHOICES = ("shortest", "cross_root")
PKCS12_ENCRYPTIONS = ("modern", "compatibility")
DEFAULT_FETCH_TIMEOUT = 10.0
DEFAULT_FETCH_MAX_BYTES = 1024 * 1024
_MAX_PATHS = 256

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----(.*?)-----END \1-----", re.DOTALL)
_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----")
_PEM_CERT_TYPES = frozenset((b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"))
_PEM_PKCS7_TYPES = frozenset((b"PKCS7", b"PKCS #7 SIGNED DATA", b"CMS"))
_PEM_KEY_TYPES = frozenset((b"PRIVATE KEY", b"ENCRYPTED PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY"))

# DER encodings of the object identifiers used to tell binary formats apart.
_OID_PKCS7_DATA = bytes.fromhex("2a864886f70d010701")
_OID_PKCS7_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")
_OID_SHA1 = bytes.fromhex("2b0e03021a")
_OID_SHA256 = bytes.fromhex("608648016503040201")


@dataclass(frozen=True)
class SourcedCertificate:
    """A certificate plus a label saying where it came from (``chain.p7b#2``, a URL, ...)."""

    certificate: x509.Certificate
    source: str


@dataclass
class LoadedBundle:
    """What one input held: certificates in file order, at most one private key, and notes."""

    source: str
    certificates: list[SourcedCertificate] = field(default_factory=list)
    private_key: object = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class ChainResult:
    """An ordered, checked path: leaf, intermediates (nearest the leaf first), optional root."""

    leaf: SourcedCertificate
    intermediates: list[SourcedCertificate]
    root: SourcedCertificate | None
    include_root: bool
    complete: bool
    prefer: str
    warnings: list[str] = field(default_factory=list)
    unused: list[dict] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)

    @property
    def sourced(self) -> list[SourcedCertificate]:
        """Leaf, intermediates and, when include_root is set and known, the root."""
        tail = [self.root] if self.include_root and self.root is not None else []
        return [self.leaf] + list(self.intermediates) + tail

    @property
    def certificates(self) -> list[x509.Certificate]:
        """The same as ``sourced`` without the labels: what the output builders take."""
        return [item.certificate for item in self.sourced]


# --------------------------------------------------------------------------------------------
# small helpers


def _as_bytes(secret: bytes | str | None) -> bytes | None:
    if secret is None or isinstance(secret, bytes):
        return secret
    return secret.encode("utf-8")


def _cert(item) -> x509.Certificate:
    return item.certificate if isinstance(item, SourcedCertificate) else item


def _sourced(items: Iterable, *, default_label: str) -> list[SourcedCertificate]:
    result = []
    for index, item in enumerate(items, start=1):
        if isinstance(item, SourcedCertificate):
            result.append(item)
        elif HAS_CRYPTOGRAPHY and isinstance(item, x509.Certificate):
            result.append(SourcedCertificate(item, f"{default_label}#{index}"))
        else:
            raise CertfleetError(f"{default_label}#{index}: expected a certificate, got {type(item).__name__}")
    return result


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _sha256(certificate: x509.Certificate) -> str:
    return certificate_fingerprint(certificate, "sha256")


def _spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _identity(certificate: x509.Certificate) -> tuple:
    """Subject + key: what RFC 5280 calls a trust anchor, shared by a CA and its cross certificates."""
    return (_name_key(certificate.subject), _spki(certificate.public_key()))


# RFC 5280 §7.1 name comparison, approximated: case-insensitive, runs of spaces collapsed.
_canonical_value = _constraints.canonical_value
_name_key = _constraints.name_key


def _describe(item: SourcedCertificate) -> str:
    try:
        subject = name_to_string(item.certificate.subject) or "<empty subject>"
    except Exception:  # pylint: disable=broad-exception-caught  # an undecodable subject: the label must still print
        subject = "subject cannot be decoded"
    return f"{item.source} ({subject})"


def _common_name(name: x509.Name) -> str | None:
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attributes[0].value) if attributes else None


# --------------------------------------------------------------------------------------------
# minimal DER reading, only to tell formats apart and give precise errors


def _der_element(data: bytes, offset: int = 0) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``offset``; ValueError when malformed."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER element")
    tag = data[offset]
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER element")
    return tag, start, end


def _der_children(data: bytes, start: int, end: int, limit: int = 4) -> list[tuple[int, int, int]]:
    children = []
    offset = start
    while offset < end and len(children) < limit:
        tag, content_start, content_end = _der_element(data, offset)
        children.append((tag, content_start, content_end))
        offset = content_end
    return children


def _sniff_der(data: bytes) -> str:
    """certificate, pkcs7, pkcs12, private_key, truncated or unknown, from the outer ASN.1 structure."""
    try:
        tag, start, end = _der_element(data)
        if tag != 0x30:
            return "unknown"
        children = _der_children(data, start, end)
    except ValueError as exc:
        return "truncated" if data[:1] == b"\x30" and "truncated" in str(exc) else "unknown"
    if not children:
        return "unknown"
    first_tag, first_start, first_end = children[0]
    if first_tag == 0x30 and len(children) >= 3 and children[1][0] == 0x30 and children[2][0] == 0x03:
        return "certificate"
    if first_tag == 0x06 and data[first_start:first_end] == _OID_PKCS7_SIGNED_DATA:
        return "pkcs7"
    if first_tag == 0x02 and data[first_start:first_end] == b"\x03" and len(children) >= 2 and children[1][0] == 0x30:
        try:
            info = _der_children(data, children[1][1], children[1][2], limit=1)
        except ValueError:
            return "unknown"
        if info and info[0][0] == 0x06 and data[info[0][1]:info[0][2]] == _OID_PKCS7_DATA:
            return "pkcs12"
    if first_tag == 0x02 or (first_tag == 0x30 and len(children) == 2 and children[1][0] == 0x04):
        return "private_key"
    return "unknown"


def _first_der_element(data: bytes) -> bytes:
    """The leading DER element; OpenSSL's TRUSTED CERTIFICATE appends trust settings after it."""
    _tag, _start, end = _der_element(data)
    return data[:end]


def _pkcs12_mac_algorithm(data: bytes) -> str | None:
    """sha1 / sha256 / None: the MAC digest of a PKCS#12 file (PFX.macData, RFC 7292 §4)."""
    try:
        _tag, start, end = _der_element(data)
        children = _der_children(data, start, end, limit=3)
        if len(children) < 3:
            return None
        mac_data = children[2]
        digest_info = _der_children(data, mac_data[1], mac_data[2], limit=1)[0]
        algorithm = _der_children(data, digest_info[1], digest_info[2], limit=1)[0]
        oid = _der_children(data, algorithm[1], algorithm[2], limit=1)[0]
    except (ValueError, IndexError):
        return None
    value = data[oid[1]:oid[2]]
    return {_OID_SHA1: "sha1", _OID_SHA256: "sha256"}.get(value, "other")


# --------------------------------------------------------------------------------------------
# loading


def _label(source: str, index: int, count: int) -> str:
    return source if count == 1 else f"{source}#{index}"


def _relabel(source: str, certificates: list[x509.Certificate], *, first: int = 1) -> list[SourcedCertificate]:
    count = len(certificates) + first - 1
    return [SourcedCertificate(cert, _label(source, index, count)) for index, cert in enumerate(certificates, start=first)]


def _load_der_certificate(der: bytes, *, what: str, notes: list[str] | None = None) -> x509.Certificate:
    # cryptography warns (e.g. about a non-positive serial) instead of failing; keep that out of
    # stderr and hand it to the caller as a warning naming the certificate.
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise CertfleetError(f"{what} is not a valid X.509 certificate: {exc}") from None
    if notes is not None:
        notes.extend(f"{what} ({name_to_string(certificate.subject)}): {warning.message}" for warning in caught)
    return certificate


def _load_pkcs7(der: bytes, *, what: str) -> list[x509.Certificate]:
    try:
        certificates = pkcs7.load_der_pkcs7_certificates(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertfleetError(f"{what} is not a valid PKCS#7 certificate bundle: {exc}") from None
    if not certificates:
        raise CertfleetError(f"{what} is a PKCS#7 bundle without certificates")
    return list(certificates)


def _load_pkcs12(data: bytes, *, source: str, password: bytes | None) -> LoadedBundle:
    attempts = [password] if password is not None else [None, b""]
    for attempt in attempts:
        try:
            loaded = pkcs12.load_pkcs12(data, attempt)
        except ValueError:
            continue
        except UnsupportedAlgorithm as exc:
            raise CertfleetError(f"{source}: PKCS#12 uses an algorithm this cryptography/OpenSSL cannot read: {exc}") from None
        certificates = ([loaded.cert] if loaded.cert is not None else []) + list(loaded.additional_certs)
        bundle = LoadedBundle(source=source, private_key=loaded.key)
        bundle.certificates = _relabel(source, [item.certificate for item in certificates])
        if not bundle.certificates:
            bundle.warnings.append(f"{source}: the PKCS#12 file holds no certificate")
        return bundle
    if password is None:
        raise CertfleetError(f"{source}: the PKCS#12 (PFX) file is protected by a password; give the PFX password")
    raise CertfleetError(f"{source}: wrong password for the PKCS#12 (PFX) file (or its MAC is corrupt)")


def _key_is_encrypted(data: bytes) -> bool:
    """True for an encrypted PEM key, or a DER EncryptedPrivateKeyInfo (RFC 5958 §3: SEQUENCE {algorithm, OCTET STRING})."""
    armour = _keys.inspect_private_key_pem(data)
    if armour["format"] is not None:
        return bool(armour["encrypted"])
    try:
        tag, start, end = _der_element(data)
        children = _der_children(data, start, end, limit=3)
    except ValueError:
        return False
    return tag == 0x30 and len(children) == 2 and children[0][0] == 0x30 and children[1][0] == 0x04


def _open_key(data: bytes, *, what: str, password: bytes | None):
    """A PEM or DER private key through ``_keys.load_private_key``; None when it is encrypted and no password was given.

    A password for a key that is not encrypted is ignored: in a pile it was meant for something else (a PFX).
    """
    encrypted = _key_is_encrypted(data)
    if encrypted and password is None:
        return None
    try:
        return _keys.load_private_key(data, source=what, passphrase=password if encrypted else None)
    except CertfleetError:
        if encrypted:
            raise CertfleetError(f"{what}: cannot read the private key (wrong passphrase)") from None
        raise


def _load_pem(data: bytes, *, source: str, password: bytes | None) -> LoadedBundle:
    bundle = LoadedBundle(source=source)
    found: list[x509.Certificate] = []
    blocks = list(_PEM_BLOCK.finditer(data))
    if len(_PEM_BEGIN.findall(data)) > len(blocks):
        raise CertfleetError(f"{source}: a PEM block has a BEGIN line without its matching END line (truncated copy?)")
    for number, match in enumerate(blocks, start=1):
        kind = match.group(1)
        what = f"{source}: PEM block {number} ({kind.decode()})"
        if kind in _PEM_KEY_TYPES:
            if bundle.private_key is not None:
                bundle.warnings.append(f"{what}: a second private key, ignored")
                continue
            key = _open_key(match.group(0).replace(b"\r\n", b"\n"), what=what, password=password)
            if key is None:
                bundle.warnings.append(f"{what}: encrypted private key ignored (no passphrase given)")
            else:
                bundle.private_key = key
            continue
        if kind not in _PEM_CERT_TYPES and kind not in _PEM_PKCS7_TYPES:
            bundle.warnings.append(f"{what}: not a certificate, ignored")
            continue
        try:
            der = base64.b64decode(b"".join(match.group(2).split()), validate=True)
        except (binascii.Error, ValueError):
            raise CertfleetError(f"{what}: invalid base64 (damaged copy?)") from None
        if kind in _PEM_PKCS7_TYPES:
            found.extend(_load_pkcs7(der, what=what))
        else:
            if kind == b"TRUSTED CERTIFICATE":
                try:
                    der = _first_der_element(der)
                except ValueError:
                    raise CertfleetError(f"{what} is not a valid X.509 certificate: truncated DER") from None
            found.append(_load_der_certificate(der, what=what, notes=bundle.warnings))
    if not found and bundle.private_key is None:
        raise CertfleetError(f"{source}: no certificate found (PEM text without a CERTIFICATE or PKCS7 block)")
    bundle.certificates = _relabel(source, found)
    return bundle


def load_certificates(data: bytes, *, source: str, password: bytes | str | None = None) -> LoadedBundle:
    """Read PEM (any text around, CRLF), DER, PKCS#7 (DER/PEM) or PKCS#12 into labelled certificates (+ key)."""
    if not HAS_CRYPTOGRAPHY:
        raise CertfleetError("the Python cryptography library is required")
    if not isinstance(data, bytes):
        raise CertfleetError(f"{source}: expected bytes, got {type(data).__name__}")
    if not data.strip():
        raise CertfleetError(f"{source}: the file is empty")
    secret = _as_bytes(password)
    if _PEM_BEGIN.search(data):
        return _load_pem(data, source=source, password=secret)
    kind = _sniff_der(data)
    if kind == "certificate":
        bundle = LoadedBundle(source=source)
        bundle.certificates = [SourcedCertificate(_load_der_certificate(data, what=source, notes=bundle.warnings), source)]
        return bundle
    if kind == "pkcs7":
        return LoadedBundle(source=source, certificates=_relabel(source, _load_pkcs7(data, what=source)))
    if kind == "pkcs12":
        return _load_pkcs12(data, source=source, password=secret)
    if kind == "truncated":
        raise CertfleetError(f"{source}: binary (DER) data that ends too early: truncated download or copy?")
    if kind == "private_key":
        raise CertfleetError(f"{source}: holds a DER private key, not a certificate")
    raise CertfleetError(f"{source}: no certificate found (not PEM, DER, PKCS#7 or PKCS#12)")


def extract_private_key(data: bytes, *, source: str, passphrase: bytes | str | None = None):
    """The private key of a key file, of a PEM bundle that holds one, or of a PKCS#12 file.

    PEM and DER keys are loaded by ``_keys.load_private_key``; this adds finding the key among
    certificates and opening PKCS#12.
    """
    if not HAS_CRYPTOGRAPHY:
        raise CertfleetError("the Python cryptography library is required")
    secret = _as_bytes(passphrase)
    if not data.strip():
        raise CertfleetError(f"{source}: the file is empty")
    if _PEM_BEGIN.search(data):
        # A PEM file may hold certificates too (HAProxy style): take the key block itself.
        blocks = [match.group(0) for match in _PEM_BLOCK.finditer(data) if match.group(1) in _PEM_KEY_TYPES]
        if not blocks:
            raise CertfleetError(f"{source}: no private key found in the PEM text")
        data = blocks[0].replace(b"\r\n", b"\n")
    elif _sniff_der(data) == "pkcs12":
        bundle = _load_pkcs12(data, source=source, password=secret)
        if bundle.private_key is None:
            raise CertfleetError(f"{source}: the PKCS#12 file holds no private key")
        return bundle.private_key
    key = _open_key(data, what=source, password=secret)
    if key is None:
        raise CertfleetError(f"{source}: the private key is encrypted; a passphrase is required")
    return key


# --------------------------------------------------------------------------------------------
# key <-> certificate


def key_matches_certificate(private_key, certificate: x509.Certificate) -> bool:
    """True when the certificate carries the private key's public key."""
    return _spki(private_key.public_key()) == _spki(_cert(certificate).public_key())


def check_key_matches(private_key, certificate, *, key_source: str = "private key", cert_source: str = "certificate") -> None:
    """Raise a CertfleetError naming both sides when the key does not belong to the certificate."""
    cert = _cert(certificate)
    if key_matches_certificate(private_key, cert):
        return
    raise CertfleetError(
        f"{key_source} does not match {cert_source} ({name_to_string(cert.subject)}): the certificate's public key is "
        f"SHA-256 {public_key_fingerprint(cert.public_key())}, the private key's is {public_key_fingerprint(private_key.public_key())}"
    )


def select_leaf(certificates: Sequence, *, private_key=None) -> SourcedCertificate:
    """The server certificate in a pile: the one matching ``private_key``, else the only non-CA certificate."""
    items = _sourced(certificates, default_label="input")
    if not items:
        raise CertfleetError("no certificate given")
    if private_key is not None:
        for item in items:
            if key_matches_certificate(private_key, item.certificate):
                return item
        raise CertfleetError(
            f"none of the {len(items)} certificate(s) matches the private key (public key SHA-256 "
            f"{public_key_fingerprint(private_key.public_key())})"
        )
    candidates = []
    seen = set()
    for item in items:
        constraints = extension_value(item.certificate, x509.BasicConstraints)
        fingerprint = _sha256(item.certificate)
        if (constraints is None or not constraints.ca) and fingerprint not in seen:
            seen.add(fingerprint)
            candidates.append(item)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise CertfleetError("no server certificate found: every certificate given is a CA certificate")
    raise CertfleetError("several server certificates found, say which is the leaf: " + ", ".join(_describe(c) for c in candidates))


# --------------------------------------------------------------------------------------------
# signatures


def verify_signature(certificate: x509.Certificate, issuer_public_key) -> bool:
    """True when ``issuer_public_key`` verifies the certificate's signature (RSA PKCS#1 v1.5 / PSS, ECDSA, EdDSA, DSA)."""
    cert = _cert(certificate)
    try:
        parameters = cert.signature_algorithm_parameters
        if isinstance(issuer_public_key, rsa.RSAPublicKey):
            issuer_public_key.verify(cert.signature, cert.tbs_certificate_bytes, parameters, cert.signature_hash_algorithm)
        elif isinstance(issuer_public_key, ec.EllipticCurvePublicKey):
            issuer_public_key.verify(cert.signature, cert.tbs_certificate_bytes, parameters)
        elif isinstance(issuer_public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            issuer_public_key.verify(cert.signature, cert.tbs_certificate_bytes)
        elif isinstance(issuer_public_key, dsa.DSAPublicKey):
            issuer_public_key.verify(cert.signature, cert.tbs_certificate_bytes, cert.signature_hash_algorithm)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        return False
    return True


def _key_ids_compatible(child: x509.Certificate, parent: x509.Certificate) -> bool:
    aki = extension_value(child, x509.AuthorityKeyIdentifier)
    ski = extension_value(parent, x509.SubjectKeyIdentifier)
    if aki is None or aki.key_identifier is None or ski is None:
        return True
    return aki.key_identifier == ski.digest


def is_self_signed(certificate) -> bool:
    """Subject equals issuer and the certificate's own key verifies its signature."""
    cert = _cert(certificate)
    return _name_key(cert.subject) == _name_key(cert.issuer) and verify_signature(cert, cert.public_key())


def is_issued_by(certificate, issuer) -> bool:
    """Issuer name matches, AKI/SKI agree when both present, and the signature verifies."""
    child, parent = _cert(certificate), _cert(issuer)
    return (_name_key(child.issuer) == _name_key(parent.subject) and _key_ids_compatible(child, parent)
            and verify_signature(child, parent.public_key()))


# --------------------------------------------------------------------------------------------
# AIA


def ca_issuers_urls(certificate) -> list[str]:
    """The certificate's AIA caIssuers URIs, in order."""
    aia = extension_value(_cert(certificate), x509.AuthorityInformationAccess)
    if aia is None:
        return []
    return [
        description.access_location.value for description in aia
        if description.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(description.access_location, x509.UniformResourceIdentifier)
    ]


_FETCH_CHUNK = 64 * 1024


def _fetch_once(url: str, parts, *, deadline: float, max_bytes: int, state: dict) -> bytes:
    """One GET, no redirects; ``state["connection"]`` lets the caller cut the socket at the deadline."""
    host = parts.hostname
    if not host:
        raise CertfleetError(f"{url}: the URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise CertfleetError(f"{url}: the URL's port is not a number from 0 to 65535") from None
    # Each socket operation may take at most what is left of the whole; the caller cuts the rest.
    left = max(deadline - time.monotonic(), 0.001)
    if parts.scheme.lower() == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=left, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=left)
    state["connection"] = connection
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.connect()  # name resolution, TCP and TLS: not interruptible, so checked right after
        if time.monotonic() >= deadline:
            raise TimeoutError
        connection.request("GET", path, headers={"User-Agent": "certfleet.tls", "Accept": "*/*", "Connection": "close"})
        response = connection.getresponse()
        if 300 <= response.status < 400:
            # An AIA caIssuers URL names the certificate itself (RFC 5280 4.2.2.1); a redirect could
            # point the controller anywhere (another local service, a metadata endpoint), so none is followed.
            location = (response.getheader("Location") or "?")[:200]
            raise CertfleetError(f"{url}: HTTP {response.status} redirect to {location} not followed "
                                 "(an AIA caIssuers URL must serve the certificate itself)")
        if response.status >= 400:
            raise CertfleetError(f"{url}: HTTP error {response.status} {response.reason[:200]}")
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise CertfleetError(f"{url}: response of {declared} bytes is larger than the limit of {max_bytes} bytes")
        chunks, size = [], 0
        while size <= max_bytes:
            if time.monotonic() >= deadline:
                raise TimeoutError
            chunk = response.read1(min(_FETCH_CHUNK, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        connection.close()


def http_fetch(url: str, *, timeout: float = DEFAULT_FETCH_TIMEOUT, max_bytes: int = DEFAULT_FETCH_MAX_BYTES) -> bytes:
    """GET an http/https URL (certificate verification on) within one total deadline and a size cap.

    ``timeout`` bounds the whole fetch (name resolution, connect, TLS, headers, body), not each read:
    a server that trickles one byte a second never trips a per-read socket timeout. The fetch runs in
    a daemon thread; at the deadline the socket is shut down so the thread ends too. Redirects are
    not followed.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise CertfleetError(f"{url}: only http and https URLs are fetched (not {scheme or 'a relative URL'})")
    deadline = time.monotonic() + timeout
    state: dict = {}
    done = threading.Event()

    def work() -> None:
        try:
            state["body"] = _fetch_once(url, parts, deadline=deadline, max_bytes=max_bytes, state=state)
        except BaseException as exc:  # pylint: disable=broad-except  # handed to the caller's thread
            state["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="certfleet-aia-fetch", daemon=True).start()
    if not done.wait(max(deadline - time.monotonic(), 0)):
        sock = getattr(state.get("connection"), "sock", None)
        if sock is not None:
            try:  # the plain socket's shutdown: wakes the blocked read at once, TLS or not
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        raise CertfleetError(f"{url}: timed out after {timeout} s")
    exc = state.get("error")
    if exc is None:
        body = state["body"]
    elif isinstance(exc, CertfleetError):
        raise exc
    elif isinstance(exc, TimeoutError):
        raise CertfleetError(f"{url}: timed out after {timeout} s") from None
    elif isinstance(exc, ssl.SSLCertVerificationError):
        raise CertfleetError(f"{url}: TLS certificate verification failed: {exc.verify_message}") from None
    elif isinstance(exc, (OSError, ValueError, http.client.HTTPException)):
        raise CertfleetError(f"{url}: cannot fetch: {exc or type(exc).__name__}") from None
    else:
        raise CertfleetError(f"{url}: cannot fetch: {type(exc).__name__}: {exc}") from None
    if len(body) > max_bytes:
        raise CertfleetError(f"{url}: response is larger than the limit of {max_bytes} bytes")
    return body


def fetch_ca_issuers(url: str, *, timeout: float = DEFAULT_FETCH_TIMEOUT, max_bytes: int = DEFAULT_FETCH_MAX_BYTES) -> list[SourcedCertificate]:
    """Fetch a caIssuers URL and parse the DER certificate or PKCS#7 bundle it serves (PEM accepted too)."""
    return load_certificates(http_fetch(url, timeout=timeout, max_bytes=max_bytes), source=url).certificates


# --------------------------------------------------------------------------------------------
# path building


@dataclass
class _Path:
    nodes: list[SourcedCertificate]
    end: str  # root, open, loop, depth
    trusted_at: int | None = None
    detail: str = ""


class _Pool:
    """Deduplicated candidate issuers, indexed by subject, with cached signature checks."""

    def __init__(self) -> None:
        self.by_fingerprint: dict[str, SourcedCertificate] = {}
        self.by_subject: dict[tuple, list[SourcedCertificate]] = {}
        self.duplicates: list[tuple[SourcedCertificate, SourcedCertificate]] = []
        self.anchor_fingerprints: set[str] = set()
        self._issued: dict[tuple[str, str], bool] = {}
        self._self_signed: dict[str, bool] = {}
        self.near_misses: dict[str, list[str]] = {}
        # Certificates left out because a field cannot be decoded: (item, problem), reported on failure.
        self.unparsable: list[tuple[SourcedCertificate, str]] = []
        self._checked: set[str] = set()

    def add(self, item: SourcedCertificate, *, anchor: bool = False) -> bool:
        fingerprint = _sha256(item.certificate)
        if fingerprint not in self._checked:
            problem = _constraints.certificate_problem(item.certificate)
            if problem is not None:
                # Never an issuer: an undecodable key or extension cannot be checked (a path through
                # another issuer may still exist). The failure message names it, once.
                if all(_sha256(known.certificate) != fingerprint for known, _problem in self.unparsable):
                    self.unparsable.append((item, problem))
                return False
            self._checked.add(fingerprint)
        if anchor:
            self.anchor_fingerprints.add(fingerprint)
        if fingerprint in self.by_fingerprint:
            if not anchor:
                self.duplicates.append((item, self.by_fingerprint[fingerprint]))
            return False
        self.by_fingerprint[fingerprint] = item
        self.by_subject.setdefault(_name_key(item.certificate.subject), []).append(item)
        return True

    def self_signed(self, item: SourcedCertificate) -> bool:
        fingerprint = _sha256(item.certificate)
        if fingerprint not in self._self_signed:
            self._self_signed[fingerprint] = is_self_signed(item.certificate)
        return self._self_signed[fingerprint]

    def issuers_of(self, item: SourcedCertificate) -> list[SourcedCertificate]:
        child = item.certificate
        child_fp = _sha256(child)
        result = []
        for candidate in self.by_subject.get(_name_key(child.issuer), []):
            candidate_fp = _sha256(candidate.certificate)
            if candidate_fp == child_fp:
                continue
            key = (child_fp, candidate_fp)
            if key not in self._issued:
                ok = _key_ids_compatible(child, candidate.certificate) and verify_signature(child, candidate.certificate.public_key())
                self._issued[key] = ok
                if not ok:
                    self.near_misses.setdefault(child_fp, []).append(
                        f"{_describe(candidate)} has the issuer's name but its key does not verify the signature (AKI/SKI or signature mismatch)"
                    )
            if self._issued[key]:
                result.append(candidate)
        # Fingerprint order keeps the search, and so the result, independent of input order.
        return sorted(result, key=lambda c: _sha256(c.certificate))


def _validity_problem(certificate: x509.Certificate, now: datetime.datetime) -> str | None:
    # X.509 validity has one-second granularity, both ends inclusive (RFC 5280 §4.1.2.5): compare whole seconds.
    now = now.replace(microsecond=0)
    if now < certificate.not_valid_before_utc:
        return f"is not yet valid (notBefore {iso(certificate.not_valid_before_utc)})"
    if now > certificate.not_valid_after_utc:
        return f"expired on {iso(certificate.not_valid_after_utc)}"
    return None


def _is_ca(certificate: x509.Certificate) -> bool:
    constraints = extension_value(certificate, x509.BasicConstraints)
    return constraints is not None and constraints.ca


def _check_path(nodes: list[SourcedCertificate], root: SourcedCertificate | None, *, now: datetime.datetime,
                pool: _Pool, anchor_index: int | None = None) -> tuple[list[str], list[str]]:
    """(errors, warnings) for leaf + issuers + optional root: RFC 5280 §6.1 as TLS clients apply it (docs/chains.md).

    ``anchor_index``: the position of the trust anchor; certificates above it (cross_root paths
    served for old clients) are not needed for trust, so their problems are warnings.
    """
    errors: list[str] = []
    warnings: list[str] = []
    leaf = nodes[0]
    problem = _validity_problem(leaf.certificate, now)
    if problem:
        warnings.append(f"the leaf certificate {_describe(leaf)} {problem}")
    chain = list(nodes) + ([root] if root is not None else [])
    for item in chain:
        problem = _constraints.certificate_problem(item.certificate)
        if problem is not None:  # pool members were checked when added: this guards a caller's own list
            return errors + [f"certificate cannot be parsed: {_describe(item)}: {problem}"], warnings
    below = 0  # non-self-issued intermediates between the leaf and the issuer being checked
    for index, item in enumerate(chain):
        cert = item.certificate
        needed = anchor_index is None or index <= anchor_index
        found = errors if needed else warnings
        role = "leaf" if index == 0 else ("root" if pool.self_signed(item) else "intermediate")
        suffix = "" if needed else " (above the trust anchor)"
        found.extend(f"{role} {_describe(item)} {text}{suffix}"
                     for text in _constraints.extension_problems(cert, is_ca=_is_ca(cert)))
        if index == 0:
            continue
        self_signed = pool.self_signed(item)
        problem = _validity_problem(cert, now)
        if problem:
            # An expired trust anchor is rejected, as OpenSSL, Go, NSS and webpki do; a self-signed
            # root that is not the anchor (not trusted anyway, or above it) only warns.
            (errors if needed and (not self_signed or index == anchor_index) else warnings).append(
                f"{role} {_describe(item)} {problem}{suffix}")
        elif not self_signed and cert.not_valid_after_utc < leaf.certificate.not_valid_after_utc:
            warnings.append(
                f"intermediate {_describe(item)} expires on {iso(cert.not_valid_after_utc)}, before the leaf "
                f"({iso(leaf.certificate.not_valid_after_utc)})"
            )
        constraints = extension_value(cert, x509.BasicConstraints)
        if constraints is None:
            # X.509 v1 self-signed roots predate extensions; OpenSSL still accepts them as anchors.
            if not (self_signed and cert.version == x509.Version.v1):
                found.append(f"{_describe(item)} is not a CA certificate (no basicConstraints CA:TRUE){suffix}")
        elif not constraints.ca:
            found.append(f"{_describe(item)} is not a CA certificate (basicConstraints CA:FALSE){suffix}")
        elif constraints.path_length is not None and below > constraints.path_length:
            found.append(
                f"{_describe(item)} has pathLenConstraint {constraints.path_length} but {below} intermediate(s) below it{suffix}"
            )
        usage = extension_value(cert, x509.KeyUsage)
        if usage is not None and not usage.key_cert_sign:
            found.append(f"{_describe(item)} has a keyUsage without keyCertSign: it may not sign certificates{suffix}")
        if not cert.subject.rdns:
            found.append(f"{role} {_describe(item)} has an empty subject, which a CA may not have (RFC 5280 §4.1.2.6){suffix}")
        for check in (_constraints.weak_ca_key, _constraints.ca_eku_problem, _constraints.malformed_constraints):
            text = check(cert)
            if text:
                found.append(f"{role} {_describe(item)} {text}{suffix}")
        if _name_key(cert.subject) != _name_key(cert.issuer):  # self-issued certificates do not count (RFC 5280 §4.2.1.9)
            below += 1
    errors.extend(_path_name_constraints(chain, anchor_index=anchor_index))
    return errors, warnings


def _path_name_constraints(chain: list[SourcedCertificate], *, anchor_index: int | None) -> list[str]:
    """RFC 5280 §6.1.3 (b)(c): each CA's name constraints over every certificate below it, except self-issued intermediates."""
    top = len(chain) - 1 if anchor_index is None else min(anchor_index, len(chain) - 1)
    budget = [_constraints.MAX_NAME_CONSTRAINT_CHECKS]
    errors = []
    for index in range(1, top + 1):
        ca = chain[index].certificate
        if extension_value(ca, x509.NameConstraints) is None:
            continue
        constrained = [(chain[below].certificate, below == 0) for below in range(index)
                       if below == 0 or _name_key(chain[below].certificate.subject) != _name_key(chain[below].certificate.issuer)]
        for problem in _constraints.name_constraint_problems(constrained, [ca], budget=budget):
            errors.append(f"name constraints violated: {problem}")
        if errors:
            break
    return errors


def _enumerate_paths(leaf: SourcedCertificate, pool: _Pool, *, max_depth: int, fetch: Callable[[SourcedCertificate], bool]) -> list[_Path]:
    paths: list[_Path] = []

    def walk(nodes: list[SourcedCertificate], identities: list[tuple]) -> None:
        if len(paths) >= _MAX_PATHS:
            return
        top = nodes[-1]
        if pool.self_signed(top):
            paths.append(_Path(nodes, "root"))
            return
        if len(nodes) > max_depth:
            paths.append(_Path(nodes, "depth", detail=f"the path is longer than {max_depth} certificates"))
            return
        parents = pool.issuers_of(top)
        if not parents and fetch(top):
            parents = pool.issuers_of(top)
        if not parents:
            paths.append(_Path(nodes, "open"))
            return
        usable = [parent for parent in parents if _identity(parent.certificate) not in identities]
        if not usable:
            cycle = " -> ".join(_describe(n) for n in nodes) + f" -> {_describe(parents[0])}"
            paths.append(_Path(nodes, "loop", detail=f"issuer loop: {cycle}"))
            return
        for parent in usable:
            walk(nodes + [parent], identities + [_identity(parent.certificate)])

    walk([leaf], [_identity(leaf.certificate)])
    return paths


def _served(path: _Path, *, prefer: str, pool: _Pool) -> tuple[list[SourcedCertificate], SourcedCertificate | None]:
    """(leaf + intermediates, root or None) a path gives for the chosen preference."""
    nodes = path.nodes
    if prefer == "shortest" and path.trusted_at is not None:
        nodes = nodes[:path.trusted_at + 1]
    root = nodes[-1] if len(nodes) > 1 and pool.self_signed(nodes[-1]) else None
    body = nodes[:-1] if root is not None else nodes
    return list(body), root


def _rank(served: list[SourcedCertificate], root: SourcedCertificate | None, *, prefer: str, has_errors: bool) -> tuple:
    top = (root or served[-1]).certificate
    top_age = top.not_valid_before_utc.timestamp()
    shortest_life = min((item.certificate.not_valid_after_utc.timestamp() for item in served[1:]), default=0.0)
    fingerprints = tuple(_sha256(item.certificate) for item in served + ([root] if root else []))
    length = len(served)
    if prefer == "shortest":
        # Fewest intermediates, then the newest root, then the longest-lived intermediates.
        return (has_errors, length, -top_age, -shortest_life, fingerprints)
    # Longest path (through the cross certificates), then the oldest root, as old clients know it.
    return (has_errors, -length, top_age, -shortest_life, fingerprints)


def _failure_message(path: _Path, *, anchored: bool, catalog: list | None, fetch_notes: dict[str, list[str]],
                     pool: _Pool, leaf: SourcedCertificate, aia_enabled: bool) -> str:
    top = path.nodes[-1]
    if path.end in ("loop", "depth"):
        return f"cannot build the chain for {_describe(leaf)}: {path.detail}"
    if path.end == "root":
        message = (f"the chain of {_describe(leaf)} ends at the self-signed root {_describe(top)}, "
                   f"which is not in the trust bundle")
        unparsable = [f"{_describe(item)} was left out: certificate cannot be parsed: {problem}" for item, problem in pool.unparsable]
        return "; ".join([message] + unparsable)
    issuer = top.certificate.issuer
    message = (f"cannot complete the chain of {_describe(leaf)}: no issuer found for {_describe(top)}; "
               f"missing issuer certificate: {name_to_string(issuer) or '<empty name>'}")
    if anchored:
        message += " (no trust anchor reached)"
    details = list(pool.near_misses.get(_sha256(top.certificate), []))
    details.extend(f"{_describe(item)} was left out: certificate cannot be parsed: {problem}" for item, problem in pool.unparsable)
    urls = ca_issuers_urls(top.certificate)
    notes = fetch_notes.get(_sha256(top.certificate), [])
    details.extend(notes)
    if urls and not aia_enabled:
        details.append(f"its AIA caIssuers URL is {urls[0]} (AIA fetching is off)")
    hint = _catalog.missing_issuer_hint(_common_name(issuer), leaf=leaf.certificate, catalog=catalog) if catalog != [] else None
    if hint:
        details.append(hint)
    if details:
        message += "; " + "; ".join(details)
    return message


def build_chain(
    leaf,
    candidates: Iterable = (),
    *,
    trust_anchors: Iterable = (),
    prefer: str = "shortest",
    include_root: bool = False,
    fetch_issuer: Callable[[str], bytes] | None = None,
    allow_incomplete: bool = False,
    catalog: list | None = None,
    now: datetime.datetime | None = None,
    max_depth: int = 10,
    max_fetches: int = 4,
) -> ChainResult:
    """Order and check leaf -> intermediates -> (cross-root) -> root from a pile; see PREFER_CHOICES, catalog None = built-in, [] = off."""
    if prefer not in PREFER_CHOICES:
        raise CertfleetError(f"prefer must be one of {', '.join(PREFER_CHOICES)}, not {prefer!r}")
    now = now or utc_now()
    if isinstance(leaf, SourcedCertificate):
        leaf_item = leaf
    elif isinstance(leaf, x509.Certificate):
        leaf_item = SourcedCertificate(leaf, "leaf")
    else:
        raise CertfleetError(f"the leaf must be a certificate, got {type(leaf).__name__}")
    leaf_fp = _sha256(leaf_item.certificate)
    problem = _constraints.certificate_problem(leaf_item.certificate)
    if problem is not None:
        raise CertfleetError(f"certificate cannot be parsed: {_describe(leaf_item)}: {problem}")
    pile = _sourced(candidates, default_label="input")
    anchors = _sourced(trust_anchors, default_label="trust bundle")

    pool = _Pool()
    leaf_copies = []
    for item in pile:
        if _sha256(item.certificate) == leaf_fp:
            leaf_copies.append(item)
            continue
        pool.add(item)
    # After the pile, so a root given in both keeps the pile's label.
    for item in anchors:
        pool.add(item, anchor=True)
    pile_fingerprints = {_sha256(item.certificate) for item in pile}

    fetched: list[str] = []
    fetched_ok: list[str] = []
    fetch_notes: dict[str, list[str]] = {}
    warnings: list[str] = []

    def fetch(item: SourcedCertificate) -> bool:
        if fetch_issuer is None:
            return False
        added = False
        for url in ca_issuers_urls(item.certificate):
            if url in fetched or len(fetched) >= max_fetches:
                continue
            fetched.append(url)
            try:
                bundle = load_certificates(fetch_issuer(url), source=url)
            except CertfleetError as exc:
                fetch_notes.setdefault(_sha256(item.certificate), []).append(f"AIA fetch failed: {exc}")
                continue
            except Exception as exc:  # a caller's hook must never surface as a traceback
                fetch_notes.setdefault(_sha256(item.certificate), []).append(f"AIA fetch of {url} failed: {exc}")
                continue
            fetched_ok.append(url)
            for fetched_item in bundle.certificates:
                added = pool.add(fetched_item) or added
            if pool.issuers_of(item):
                break
        return added

    paths = _enumerate_paths(leaf_item, pool, max_depth=max_depth, fetch=fetch)

    anchored = bool(anchors)
    if anchored:
        anchor_ids = {_identity(pool.by_fingerprint[fp].certificate) for fp in pool.anchor_fingerprints}
    else:
        anchor_ids = {_identity(item.certificate) for item in pool.by_fingerprint.values() if pool.self_signed(item)}
        if is_self_signed(leaf_item.certificate):
            anchor_ids.add(_identity(leaf_item.certificate))
    for path in paths:
        for index, node in enumerate(path.nodes):
            if _identity(node.certificate) in anchor_ids:
                path.trusted_at = index
                break

    trusted = [path for path in paths if path.trusted_at is not None]
    complete = bool(trusted)
    if trusted:
        considered = trusted
    else:
        # Report the failure that got furthest; missing issuers are the most actionable.
        order = {"open": 0, "root": 1, "loop": 2, "depth": 3}
        worst = sorted(paths, key=lambda p: (-len(p.nodes), order[p.end], tuple(_sha256(n.certificate) for n in p.nodes)))[0]
        message = _failure_message(worst, anchored=anchored, catalog=catalog, fetch_notes=fetch_notes, pool=pool,
                                   leaf=leaf_item, aia_enabled=fetch_issuer is not None)
        if not allow_incomplete or worst.end in ("loop", "depth"):
            raise CertfleetError(message)
        warnings.append(f"incomplete chain: {message}")
        considered = [worst]

    options = []
    for path in considered:
        served, root = _served(path, prefer=prefer, pool=pool)
        errors, path_warnings = _check_path(served, root, now=now, pool=pool, anchor_index=path.trusted_at)
        options.append((_rank(served, root, prefer=prefer, has_errors=bool(errors)), path, served, root, errors, path_warnings))
    options.sort(key=lambda option: option[0])
    _rank_key, _chosen, served, root, errors, path_warnings = options[0]
    if errors:
        raise CertfleetError(f"the chain of {_describe(leaf_item)} is not valid: " + "; ".join(errors))
    warnings.extend(path_warnings)
    preferred = min(options, key=lambda option: option[0][1:])
    if preferred[4]:
        # The path the preference asked for exists but is invalid: say why a different one is used.
        warnings.append(f"the path preferred by prefer={prefer} was not used: " + "; ".join(preferred[4]))
    if served == [leaf_item] and root is None and pool.self_signed(leaf_item):
        warnings.append(f"the leaf certificate {_describe(leaf_item)} is self-signed")
    if include_root and root is None:
        warnings.append("include_root is set but the root certificate of this path is not available")

    used = {_sha256(item.certificate) for item in served + ([root] if root else [])}
    used_ids = {_identity(item.certificate) for item in served + ([root] if root else [])}
    on_some_path = {_sha256(node.certificate) for path in paths for node in path.nodes}
    unused = []
    unparsable = {_sha256(item.certificate): (item, problem) for item, problem in pool.unparsable}
    for fingerprint in sorted(pile_fingerprints - used - {leaf_fp}):
        if fingerprint in unparsable:
            item, problem = unparsable[fingerprint]
            warnings.append(f"ignored {item.source}: certificate cannot be parsed: {problem}")
            unused.append({"source": item.source, "subject": "", "sha256": fingerprint,
                           "reason": f"certificate cannot be parsed: {problem}"})
            continue
        item = pool.by_fingerprint[fingerprint]
        if _identity(item.certificate) in used_ids:
            reason = "another certificate for the same CA (same subject and key, e.g. cross-signed) is used"
        elif fingerprint in on_some_path:
            reason = f"on an alternative path not chosen (prefer={prefer})"
        else:
            reason = "unrelated to this leaf"
            warnings.append(f"ignored unrelated certificate {_describe(item)}")
        unused.append({"source": item.source, "subject": name_to_string(item.certificate.subject), "sha256": fingerprint,
                       "reason": reason})
    for duplicate, kept in pool.duplicates:
        unused.append({"source": duplicate.source, "subject": name_to_string(duplicate.certificate.subject),
                       "sha256": _sha256(duplicate.certificate), "reason": f"duplicate of {kept.source}"})
    for copy in leaf_copies:
        unused.append({"source": copy.source, "subject": name_to_string(copy.certificate.subject),
                       "sha256": leaf_fp, "reason": "copy of the leaf"})

    return ChainResult(
        leaf=leaf_item,
        intermediates=served[1:],
        root=root,
        include_root=include_root,
        complete=complete,
        prefer=prefer,
        warnings=warnings,
        unused=unused,
        fetched=fetched_ok,
    )


# --------------------------------------------------------------------------------------------
# outputs


def _pem(certificate) -> bytes:
    return _cert(certificate).public_bytes(serialization.Encoding.PEM)


def _certificate_list(certificates) -> list[x509.Certificate]:
    if isinstance(certificates, ChainResult):
        return certificates.certificates
    result = [_cert(item) for item in certificates]
    if not result:
        raise CertfleetError("no certificates to write")
    return result


def fullchain_pem(certificates) -> bytes:
    """Leaf then intermediates as PEM: Apache >= 2.4.8 SSLCertificateFile, nginx ssl_certificate."""
    return b"".join(_pem(cert) for cert in _certificate_list(certificates))


def chain_pem(certificates) -> bytes:
    """Intermediates only (everything after the leaf) as PEM: Apache < 2.4.8 SSLCertificateChainFile."""
    return b"".join(_pem(cert) for cert in _certificate_list(certificates)[1:])


def private_key_pem(private_key) -> bytes:
    """Unencrypted PKCS#8 PEM; deterministic, unlike an encrypted key."""
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def combined_pem(private_key, certificates) -> bytes:
    """Key, leaf, intermediates in one PEM file (HAProxy ``crt``); the key must match the leaf."""
    certs = _certificate_list(certificates)
    check_key_matches(private_key, certs[0], cert_source="the leaf certificate")
    return private_key_pem(private_key) + b"".join(_pem(cert) for cert in certs)


def _pkcs12_encryption(passphrase: bytes, encryption: str):
    builder = serialization.PrivateFormat.PKCS12.encryption_builder()
    if encryption == "modern":
        builder = builder.kdf_rounds(20000).key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
    elif encryption == "compatibility":
        # Windows Server 2016 and older cannot read PBES2/AES PFX files; 3DES + SHA-1 MAC is the
        # newest scheme they accept. 2048 rounds is OpenSSL's own PKCS12 default.
        builder = builder.kdf_rounds(2048).key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1())
    else:
        raise CertfleetError(f"PKCS#12 encryption must be one of {', '.join(PKCS12_ENCRYPTIONS)}, not {encryption!r}")
    return builder.build(passphrase)


def pkcs12_bytes(private_key, certificates, *, passphrase: bytes | str, encryption: str = "modern",
                 friendly_name: str | None = None) -> bytes:
    """PKCS#12 (PFX) with key, leaf and intermediates; ``modern`` AES-256/SHA-256 or ``compatibility`` 3DES/SHA-1."""
    certs = _certificate_list(certificates)
    secret = _as_bytes(passphrase)
    if not secret:
        raise CertfleetError("a PKCS#12 file needs a non-empty passphrase")
    check_key_matches(private_key, certs[0], cert_source="the leaf certificate")
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode("utf-8") if friendly_name else None,
        private_key,
        certs[0],
        certs[1:] or None,
        _pkcs12_encryption(secret, encryption),
    )


def pkcs12_matches(data: bytes, *, passphrase: bytes | str, private_key, certificates, encryption: str | None = None,
                   friendly_name: str | None = None) -> bool:
    """True when an existing PKCS#12 opens with the passphrase and holds the same key, leaf and chain (in order)."""
    try:
        loaded = pkcs12.load_pkcs12(data, _as_bytes(passphrase))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    certs = _certificate_list(certificates)
    if loaded.key is None or loaded.cert is None:
        return False
    if _spki(loaded.key.public_key()) != _spki(private_key.public_key()):
        return False
    stored = [_der(loaded.cert.certificate)] + [_der(item.certificate) for item in loaded.additional_certs]
    if stored != [_der(cert) for cert in certs]:
        return False
    if friendly_name is not None and loaded.cert.friendly_name != friendly_name.encode("utf-8"):
        return False
    if encryption is not None:
        # The MAC digest tells the two schemes apart: SHA-256 (modern) vs SHA-1 (compatibility).
        wanted = {"modern": "sha256", "compatibility": "sha1"}.get(encryption)
        if wanted is None:
            raise CertfleetError(f"PKCS#12 encryption must be one of {', '.join(PKCS12_ENCRYPTIONS)}, not {encryption!r}")
        if _pkcs12_mac_algorithm(data) != wanted:
            return False
    return True


def certificate_info(certificate) -> dict:
    """Subject, issuer, fingerprints, serial, validity (ISO 8601 UTC), CA flag and self-signed flag of one certificate."""
    cert = _cert(certificate)
    constraints = extension_value(cert, x509.BasicConstraints)
    with _warnings.catch_warnings():
        # Already reported when loading (non-positive serials); do not repeat it on stderr.
        _warnings.simplefilter("ignore")
        number = cert.serial_number
    digits = format(abs(number), "X")
    # Even number of hex digits, as `openssl x509 -serial` prints it.
    serial = ("-" if number < 0 else "") + ("0" * (len(digits) % 2)) + digits
    info = {
        "subject": name_to_string(cert.subject),
        "issuer": name_to_string(cert.issuer),
        "sha256": certificate_fingerprint(cert, "sha256"),
        "sha1": certificate_fingerprint(cert, "sha1"),
        "serial": serial,
        "not_before": iso(cert.not_valid_before_utc),
        "not_after": iso(cert.not_valid_after_utc),
        "is_ca": bool(constraints is not None and constraints.ca),
        "self_signed": is_self_signed(cert),
    }
    if isinstance(certificate, SourcedCertificate):
        info["source"] = certificate.source
    return info


def chain_info(certificates) -> list[dict]:
    """``certificate_info`` for each certificate, in chain order."""
    if isinstance(certificates, ChainResult):
        certificates = certificates.sourced
    return [certificate_info(item) for item in certificates]
