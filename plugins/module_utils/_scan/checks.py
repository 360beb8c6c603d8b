# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks over the chain a TLS endpoint presented: expiry, completeness, order, trust, names, weak crypto.

This module is private to the certfleet.tls collection: its API may change
without notice.

Pure functions and small classes over cryptography objects; no network I/O (``tls``
fetches the chain, ``runner`` plans and runs whole scans). Signature links, self-signed
detection and path validation are ``_chain``'s (``is_issued_by``, ``is_self_signed``,
``build_chain``, ``certificate_info``): ``ChainAnalyzer`` only memoises them, because in a
scan the same intermediates and roots come back for thousands of endpoints.

Every check gives a status (``ok`` / ``warning`` / ``critical``) and a message; the
endpoint's status is the worst of them. The severities are in ``CHECKS`` and docs/scanning.md.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
import re
import ssl
from dataclasses import dataclass, field
from typing import Iterable

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._chain import constraints as _constraints
from ansible_collections.certfleet.tls.plugins.module_utils._chain import names as _names
from ansible_collections.certfleet.tls.plugins.module_utils._chain import verify as _verify
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso, utc_now
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import (
    HAS_CRYPTOGRAPHY,
    CertfleetError,
    extension_value,
    fingerprint,
    name_attributes,
    name_to_dict,
    name_to_string,
)

if HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
    from cryptography.x509.oid import NameOID

STATUSES = ("ok", "warning", "critical")
_RANK = {"ok": 0, "warning": 1, "critical": 2}

# check name -> what it looks at (warning / critical conditions are in the functions and docs/scanning.md)
CHECKS = {
    "connect": "the TCP connection, the TLS handshake and a readable chain (critical on any outcome but ok)",
    "expiry": "days left on the leaf vs warning_days / critical_days; expired or not yet valid is critical",
    "chain_complete": "the server sends every intermediate between the leaf and a trust anchor (or its own root)",
    "chain_order": "each certificate is followed by its issuer; extra or misplaced certificates warn",
    "trust": "X.509 path validation up to an anchor of the trusted CA set",
    "hostname": "the name (SNI / host) is in the leaf's subjectAltName (DNS with RFC 6125 wildcards, or IP)",
    "subject": "the leaf's subject DN has the expected CN / O / C (monitored_only definitions)",
    "fingerprint": "the leaf is the expected certificate (SHA-256 or SHA-1 fingerprint: the deploy check)",
    "key_size": "RSA / DSA keys of leaf and intermediates >= min_rsa_bits, EC >= 256 bits",
    "signature": "no SHA-1 or MD5 signature on the leaf or an intermediate",
    "validity_period": "leaf validity no longer than max_validity_days (398, CA/Browser Forum)",
    "self_signed": "the leaf is not self-signed",
    "intermediate_expiry": "no intermediate expires before the leaf (critical when already expired)",
    "revocation": "the leaf and the intermediates are not on a CRL of the trusted CA set (revocation_lists; critical when "
                  "revoked, a warning when the CRL is past its nextUpdate)",
}
DEFAULT_WARNING_DAYS = 30
DEFAULT_CRITICAL_DAYS = 14
DEFAULT_MIN_RSA_BITS = 2048
DEFAULT_MAX_VALIDITY_DAYS = 398
WEAK_SIGNATURE_HASHES = ("md5", "sha1")
MODES = ("monitored_only", "lifecycle_managed")

SYSTEM_BUNDLE_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, Fedora
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # RHEL 8+
    "/etc/ssl/ca-bundle.pem",  # SUSE
    "/etc/ssl/cert.pem",  # Alpine, BSDs, macOS
)
_HEX = re.compile(r"^[0-9A-F]+\Z")
_MEMO_LIMIT = 50000
# Work one endpoint may cost, whatever it presents. Real chains are a handful of certificates; a
# server may send hundreds (bounded only by the 1 MiB handshake cap), and with no key
# identifiers and one issuer name for all, ordering them tries every pair: n² / 2 signature
# checks. Only the first MAX_CHAIN_CERTIFICATES are checked, and the fresh (not memoised)
# signature checks of one endpoint stop at MAX_SIGNATURE_CHECKS; the report says when either cut in.
MAX_CHAIN_CERTIFICATES = 16
MAX_SIGNATURE_CHECKS = 64


# --------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class Policy:
    """Thresholds shared by every endpoint of a scan."""

    warning_days: int = DEFAULT_WARNING_DAYS
    critical_days: int = DEFAULT_CRITICAL_DAYS
    min_rsa_bits: int = DEFAULT_MIN_RSA_BITS
    max_validity_days: int = DEFAULT_MAX_VALIDITY_DAYS

    def __post_init__(self) -> None:
        if self.critical_days < 0 or self.warning_days < 0:
            raise CertfleetError("warning_days and critical_days must not be negative")
        if self.critical_days > self.warning_days:
            raise CertfleetError(f"critical_days ({self.critical_days}) must not be larger than warning_days ({self.warning_days})")


@dataclass(frozen=True)
class Expectations:
    """What one endpoint is checked against; None / empty switches the check off."""

    hostname: str | None = None
    fingerprint: str | None = None
    intermediates: tuple = ()
    subject: tuple = ()
    trust: TrustStore | None = None
    # lifecycle_managed endpoints use the CA set to judge completeness but are not trust-checked:
    # their certificate was validated when it entered the store, and the fingerprint check
    # proves the served one is that certificate.
    check_trust: bool = True

    @property
    def subject_dict(self) -> dict:
        """The expected DN as {short name: value}."""
        return dict(self.subject)


def normalize_fingerprint(value: str) -> str:
    """Upper-case hex without separators; SHA-256 (64 digits) or SHA-1 (40 digits, as Windows shows a thumbprint)."""
    text = re.sub(r"[\s:.-]", "", str(value or "")).upper()
    if text.startswith("SHA256") or text.startswith("SHA1"):
        text = text.split("=", 1)[-1] if "=" in text else text[6 if text.startswith("SHA256") else 4:]
    if not _HEX.fullmatch(text) or len(text) not in (40, 64):
        raise CertfleetError(f"expected fingerprint {value!r} is not a SHA-256 (64 hex digits) or SHA-1 (40 hex digits) fingerprint")
    return text


def _colon_hex(text: str) -> str:
    return ":".join(text[i:i + 2] for i in range(0, len(text), 2))


def subject_expectations(subject: dict | None) -> tuple:
    """Validated, hashable expected DN from {CN: ..., O: ..., C: ...} (any short name of _x509.DN_FIELDS)."""
    if not subject:
        return ()
    from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import DN_FIELDS  # pylint: disable=import-outside-toplevel

    long_names = {long: short for short, long in DN_FIELDS}
    shorts = {short for short, _long in DN_FIELDS}
    result = []
    for key, value in subject.items():
        short = long_names.get(key, key)
        if short not in shorts:
            raise CertfleetError(f"expected subject: unknown attribute {key!r}; use {', '.join(sorted(shorts))}")
        if value is None:
            continue
        result.append((short, str(value)))
    return tuple(sorted(result))


def expected_from_certificate(data: bytes, *, source: str) -> tuple[str, tuple]:
    """(SHA-256 of the leaf, intermediates) from a PEM / DER / P7B file, such as the store's certificate or full chain."""
    bundle = _chain.load_certificates(data, source=source)
    if not bundle.certificates:
        raise CertfleetError(f"{source}: no certificate found")
    leaf = bundle.certificates[0].certificate
    rest = tuple(item.certificate for item in bundle.certificates[1:] if not _chain.is_self_signed(item.certificate))
    return normalize_fingerprint(_der_fingerprint(_der(leaf), "sha256")), expected_intermediates(rest)


def expected_intermediates(certificates: Iterable) -> tuple:
    """(certificate, SHA-256 digest) pairs for ``Expectations.intermediates``."""
    return tuple((cert, hashlib.sha256(_der(cert)).digest()) for cert in certificates)


# --------------------------------------------------------------------------------------------
# trusted CA sets: the roots an endpoint's chain is validated against


def system_bundle_path() -> str | None:
    """The operating system's CA bundle file, or None."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile) + SYSTEM_BUNDLE_CANDIDATES:
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def _cn_key(name) -> str:
    # A loose key (casefolded CN) that is equal whenever _chain's RFC 5280 name comparison is:
    # only a prefilter, every candidate is confirmed by _chain.is_issued_by / build_chain.
    try:
        attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return ""
    if not attributes:
        return ""
    value = attributes[0].value
    return " ".join(str(value).split()).casefold() if isinstance(value, str) else ""


class TrustStore:
    """A named trusted CA set: system CAs and/or user PEMs, indexed for quick anchor lookup."""

    def __init__(self, certificates: Iterable, *, name: str = "default", sources: Iterable[str] = (),
                 warnings: Iterable[str] = (), revocation_lists: Iterable = ()) -> None:
        self.name = name
        self.sources = list(sources)
        self.warnings = list(warnings)
        # issuer name (DER) -> the revocation lists of that issuer: (CRL, source)
        self.revocation: dict[bytes, list] = {}
        self.anchors: list = []
        self._by_cn: dict[str, list] = {}
        seen = set()
        for item in certificates:
            sourced = item if isinstance(item, _chain.SourcedCertificate) else _chain.SourcedCertificate(item, name)
            digest = hashlib.sha256(_der(sourced.certificate)).digest()
            if digest in seen:
                continue
            seen.add(digest)
            self.anchors.append(sourced)
            self._by_cn.setdefault(_cn_key(sourced.certificate.subject), []).append((sourced, digest))
        crl_digests = []
        for crl, source in revocation_lists:
            self._add_crl(crl, source)
            crl_digests.append(hashlib.sha256(crl.public_bytes(serialization.Encoding.DER)).digest())
        self.ident = hashlib.sha256(b"".join(sorted(seen)) + b"".join(sorted(crl_digests))).hexdigest()

    def _add_crl(self, crl, source: str) -> None:
        """Keep a CRL; one issued by an anchor of this set must carry that anchor's valid signature."""
        issuers = [anchor.certificate for anchor in self.anchors if anchor.certificate.subject == crl.issuer]
        if issuers and not any(_crl_signed_by(crl, issuer) for issuer in issuers):
            raise CertfleetError(f"trusted CA set {self.name}: the revocation list {source} claims to be issued by "
                                 f"{name_to_string(crl.issuer)} but is not signed by that CA of the set")
        self.revocation.setdefault(crl.issuer.public_bytes(), []).append((crl, source))

    def revoked(self, certificate) -> tuple[bool | None, str, bool]:
        """(revoked, message, stale) of one certificate from this set's CRLs of its issuer; None when none covers it."""
        lists = self.revocation.get(certificate.issuer.public_bytes())
        if not lists:
            return None, "", False
        subject = name_to_string(certificate.subject) or "<empty subject>"
        stale = False
        now = utc_now()
        for crl, source in lists:
            entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
            if entry is not None:
                return True, (f"{subject} (serial {certificate.serial_number:X}) was revoked by {name_to_string(crl.issuer)} "
                              f"on {iso(entry.revocation_date_utc)} (CRL {source})"), False
            next_update = crl.next_update_utc
            stale = stale or (next_update is not None and next_update < now)
        return False, f"{subject} is not on the CRL of {name_to_string(certificate.issuer)}", stale

    def __len__(self) -> int:
        return len(self.anchors)

    def candidates(self, certificate) -> list:
        """(anchor, SHA-256 digest) pairs that may have issued ``certificate`` or share its subject (same CA)."""
        keys = {_cn_key(certificate.issuer), _cn_key(certificate.subject)}
        result = []
        for key in keys:
            result.extend(self._by_cn.get(key, ()))
        return result

    @classmethod
    def load(cls, *, name: str = "default", system: bool = True, certificates: Iterable = (),
             system_path: str | None = None, revocation_lists: Iterable = ()) -> TrustStore:
        """From the system bundle (when ``system``) plus user items: PEM/DER bytes or file paths.

        revocation_lists: CRLs (file paths, PEM text or DER / PEM bytes) whose entries make the
        ``revocation`` check critical; a CRL of one of the set's anchors must carry its signature.
        """
        items = []
        sources = []
        warnings = []
        if system:
            path = system_path or system_bundle_path()
            if path is None:
                raise CertfleetError(f"trusted CA set {name}: no system CA bundle found (looked at {', '.join(SYSTEM_BUNDLE_CANDIDATES)})")
            items.extend(_load_items(_read(path, what=f"trusted CA set {name}"), source=path, warnings=warnings))
            sources.append(path)
        for number, entry in enumerate(certificates, start=1):
            if isinstance(entry, bytes):
                data, source = entry, f"{name}#{number}"
            elif isinstance(entry, str) and "-----BEGIN" in entry:
                data, source = entry.encode("utf-8"), f"{name}#{number}"
            elif isinstance(entry, str):
                data, source = _read(entry, what=f"trusted CA set {name}"), entry
            else:
                raise CertfleetError(f"trusted CA set {name}: entry {number} must be a path or PEM text")
            items.extend(_load_items(data, source=source, warnings=warnings))
            sources.append(source)
        if not items:
            raise CertfleetError(f"trusted CA set {name} is empty: give system: true or certificates")
        crls = []
        for number, entry in enumerate(revocation_lists or (), start=1):
            if isinstance(entry, bytes):
                data, source = entry, f"{name} CRL #{number}"
            elif isinstance(entry, str) and "-----BEGIN" in entry:
                data, source = entry.encode("utf-8"), f"{name} CRL #{number}"
            elif isinstance(entry, str):
                data, source = _read(entry, what=f"trusted CA set {name}: revocation list"), entry
            else:
                raise CertfleetError(f"trusted CA set {name}: revocation list {number} must be a path or PEM text")
            crls.append((load_crl(data, source=source), source))
        return cls(items, name=name, sources=sources, warnings=warnings, revocation_lists=crls)


def load_crl(data: bytes, *, source: str):
    """One CRL from DER or PEM bytes (a clear error otherwise)."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise CertfleetError(f"{source}: not a certificate revocation list (DER or PEM): {exc}") from None


def _crl_signed_by(crl, issuer) -> bool:
    try:
        return crl.is_signature_valid(issuer.public_key())
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return False


def _read(path: str, *, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise CertfleetError(f"{what}: cannot read {path}: {exc.strerror}") from None


def _load_items(data: bytes, *, source: str, warnings: list) -> list:
    bundle = _chain.load_certificates(data, source=source)
    warnings.extend(bundle.warnings)
    return list(bundle.certificates)


# --------------------------------------------------------------------------------------------
# small pure checks


@dataclass
class Check:
    """One check's verdict."""

    name: str
    status: str
    message: str


def worst(statuses: Iterable[str]) -> str:
    """The most severe status (ok < warning < critical)."""
    result = "ok"
    for status in statuses:
        if _RANK[status] > _RANK[result]:
            result = status
    return result


def _der(certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


class _WithDer:
    """A certificate that answers ``public_bytes(DER)`` with the bytes the server sent.

    cryptography re-encodes a certificate on every ``public_bytes`` call (tens of microseconds);
    _chain's helpers (fingerprints in ``certificate_info``, signature checks) only read attributes,
    so they get this wrapper and the DER the handshake already has.
    """

    __slots__ = ("certificate", "der")

    def __init__(self, certificate, der: bytes) -> None:
        self.certificate = certificate
        self.der = der

    def public_bytes(self, encoding):
        """DER from the wire; any other encoding from cryptography."""
        if encoding == serialization.Encoding.DER:
            return self.der
        return self.certificate.public_bytes(encoding)

    def __getattr__(self, name):
        return getattr(self.certificate, name)


def _der_fingerprint(der: bytes, algorithm: str) -> str:
    return fingerprint(der, algorithm)


def days_left(certificate, now: datetime.datetime) -> int:
    """Whole days until notAfter (negative once expired)."""
    return int((certificate.not_valid_after_utc - now).total_seconds() // 86400)


def check_expiry(certificate, *, now: datetime.datetime, policy: Policy, left: int | None = None, end: str | None = None) -> Check:
    """Days left vs the thresholds; expired and not-yet-valid are critical (``left`` / ``end`` when already known)."""
    not_after = certificate.not_valid_after_utc
    now = now.replace(microsecond=0)  # one-second granularity, both ends inclusive (RFC 5280 §4.1.2.5)
    if now < certificate.not_valid_before_utc:
        return Check("expiry", "critical", f"not yet valid: notBefore is {iso(certificate.not_valid_before_utc)}")
    left = days_left(certificate, now) if left is None else left
    end = end or iso(not_after)
    if now > not_after:
        return Check("expiry", "critical", f"expired on {end} ({-left} day(s) ago)")
    if left < policy.critical_days:
        return Check("expiry", "critical", f"expires on {end}: {left} day(s) left (< {policy.critical_days})")
    if left < policy.warning_days:
        return Check("expiry", "warning", f"expires on {end}: {left} day(s) left (< {policy.warning_days})")
    return Check("expiry", "ok", f"expires on {end}: {left} day(s) left")


# Name matching is the chain engine's (``_chain.names``), so tls_probe, cert_scan and the engine agree.
_dns_matches = _names.dns_matches
_a_label = _names.a_label
_ip_literal = _names.ip_literal
_UNSET = _names.UNSET
hostname_matches = _names.hostname_matches


def check_hostname(certificate, hostname: str, *, san=_UNSET) -> Check:
    """Hostname check as a Check."""
    ok, message = hostname_matches(certificate, hostname, san=san)
    return Check("hostname", "ok" if ok else "critical", message)


def _canonical(value: str) -> str:
    return " ".join(str(value).split()).casefold()


def check_subject(certificate, expected: dict) -> Check:
    """Expected DN attributes (CN / O / C ...) against the leaf's subject, case- and space-insensitive."""
    actual = name_to_dict(certificate.subject)
    problems = []
    for key, want in expected.items():
        have = actual.get(key)
        values = have if isinstance(have, list) else ([have] if have is not None else [])
        if not any(_canonical(value) == _canonical(want) for value in values):
            problems.append(f"{key} is {', '.join(map(repr, values)) or 'missing'}, expected {want!r}")
    if problems:
        return Check("subject", "critical", "subject DN differs: " + "; ".join(problems))
    return Check("subject", "ok", "subject DN has " + ", ".join(f"{k}={v}" for k, v in expected.items()))


def check_fingerprint(sha256: str, sha1: str, *, expected: str) -> Check:
    """The presented leaf against the expected fingerprint (SHA-256 or SHA-1 by length)."""
    algorithm, have = ("SHA-256", sha256) if len(expected) == 64 else ("SHA-1", sha1)
    if have.replace(":", "") == expected:
        return Check("fingerprint", "ok", f"the server presents the expected certificate ({algorithm} {have})")
    return Check("fingerprint", "critical", f"the server presents a different certificate: {algorithm} {have}, "
                                            f"expected {_colon_hex(expected)}")


def key_description(public_key) -> tuple[str, int | None]:
    """(type, bits) of a public key: RSA, DSA, EC (curve bits), Ed25519, Ed448."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size
    if isinstance(public_key, dsa.DSAPublicKey):
        return "DSA", public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC {public_key.curve.name}", public_key.curve.key_size
    return type(public_key).__name__.replace("PublicKey", "").lstrip("_"), None


def weak_key(certificate, *, min_rsa_bits: int) -> str | None:
    """Why the key is too weak, or None."""
    try:
        kind, bits = key_description(certificate.public_key())
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"unreadable public key ({exc})"
    if kind in ("RSA", "DSA") and bits is not None and bits < min_rsa_bits:
        return f"{kind} {bits} bits (< {min_rsa_bits})"
    if kind.startswith("EC") and bits is not None and bits < 256:
        return f"{kind} {bits} bits (< 256)"
    return None


def signature_hash(certificate) -> str | None:
    """Lower-case name of the signature's hash (sha256, sha1, md5), None for EdDSA or unknown."""
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None
    return algorithm.name.lower() if algorithm is not None else None


def validity_days(certificate) -> float:
    """Length of the validity period in days."""
    return (certificate.not_valid_after_utc - certificate.not_valid_before_utc).total_seconds() / 86400


# --------------------------------------------------------------------------------------------
# the analyzer


@dataclass
class ChainReport:
    """Checks and facts of one presented chain."""

    checks: list[Check]
    status: str
    facts: dict = field(default_factory=dict)
    chain: list = field(default_factory=list)

    def check(self, name: str) -> Check | None:
        """The check called ``name``, if it ran."""
        for item in self.checks:
            if item.name == name:
                return item
        return None


class ChainAnalyzer:
    """Runs the checks; memoises _chain's signature, self-signed, info and path verdicts across endpoints."""

    def __init__(self, *, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()
        self._issued: dict[tuple[bytes, bytes], bool] = {}
        self._self_signed: dict[bytes, bool] = {}
        self._info: dict[bytes, dict] = {}
        self._verdicts: dict[tuple, tuple[bool, str]] = {}
        # Fresh signature checks left for the endpoint being analysed (None: no endpoint, no limit).
        self._budget: int | None = None
        self._exhausted = False

    # -- memoised _chain primitives

    def _spend(self) -> bool:
        """Take one signature check from the endpoint's budget; False once it is spent (the caller answers "no")."""
        if self._budget is None:
            return True
        if self._budget <= 0:
            self._exhausted = True
            return False
        self._budget -= 1
        return True

    def _limit(self, memo: dict) -> None:
        if len(memo) > _MEMO_LIMIT:
            memo.clear()

    def issued_by(self, child, child_id: bytes, parent, parent_id: bytes) -> bool:
        """_chain.is_issued_by, memoised by the two certificates' SHA-256."""
        key = (child_id, parent_id)
        found = self._issued.get(key)
        if found is None:
            if not self._spend():
                return False  # not memoised: another endpoint with budget left decides it
            self._limit(self._issued)
            found = self._issued[key] = _chain.is_issued_by(child, parent)
        return found

    def self_signed(self, certificate, ident: bytes) -> bool:
        """_chain.is_self_signed, memoised."""
        found = self._self_signed.get(ident)
        if found is None:
            if not self._spend():
                return False
            self._limit(self._self_signed)
            found = self._self_signed[ident] = _chain.is_self_signed(certificate)
        return found

    def info(self, certificate, ident: bytes, *, cache: bool) -> dict:
        """_chain.certificate_info (CA certificates memoised: they repeat across endpoints)."""
        if cache:
            found = self._info.get(ident)
            if found is None:
                self._limit(self._info)
                found = self._info[ident] = _chain.certificate_info(certificate)
            return dict(found)
        return _chain.certificate_info(certificate)

    def _trust_verdict(self, certificates: list, ids: list[bytes], trust: TrustStore, now: datetime.datetime) -> tuple[bool, str] | None:
        """(trusted, message) from _chain.build_chain's own path search over every presented certificate; None without a candidate anchor.

        The anchors are every certificate of the trusted CA set that may have issued, or be the
        same CA as, any presented certificate (a name prefilter, confirmed by build_chain), so the
        verdict does not depend on the order the server sent its certificates in.

        In a scan thousands of leaves share a few CA paths: a path build_chain accepted is kept per
        (leaf issuer, presented CAs, CA set), and a new leaf of the same issuer is checked against
        it by what depends on the leaf alone (its signature, critical extensions, the path's name
        constraints, serverAuth). Anything else, or a leaf that fails there, gets the full search.
        """
        leaf = certificates[0]
        anchors = {}
        for certificate in certificates:
            for anchor, digest in trust.candidates(certificate):
                anchors.setdefault(digest, anchor)
        if not anchors:
            return None
        aki = extension_value(leaf, x509.AuthorityKeyIdentifier)
        ca_key = (leaf.issuer.public_bytes(), aki.key_identifier if aki is not None else None, tuple(sorted(ids[1:])),
                  trust.ident, tuple(sorted(anchors)))
        known = self._verdicts.get(ca_key)
        if known is not None:
            verdict = self._leaf_on_known_path(leaf, ids[0], known, now)
            if verdict is not None:
                return verdict
        try:
            result = _chain.build_chain(leaf, certificates[1:], trust_anchors=list(anchors.values()), catalog=[], now=now)
        except CertfleetError as exc:
            return False, str(exc)
        problems = _verify.leaf_usage_problems(leaf)
        if problems:
            return False, "; ".join(problems)
        path = [item.certificate for item in result.intermediates] + ([result.root.certificate] if result.root is not None else [])
        top = result.sourced[-1] if result.root is None else result.root
        message = f"trusted by the CA set {trust.name} (anchor {name_to_string(top.certificate.subject) or '<empty subject>'})"
        if path:
            # The path holds while every CA on it is within its validity period.
            window = (max(cert.not_valid_before_utc for cert in path), min(cert.not_valid_after_utc for cert in path))
            self._limit(self._verdicts)
            self._verdicts[ca_key] = (path, hashlib.sha256(_der(path[0])).digest(), message, window)
        return True, message

    def _leaf_on_known_path(self, leaf, leaf_id: bytes, known: tuple, now: datetime.datetime) -> tuple[bool, str] | None:
        """(True, message) when the leaf passes every leaf-dependent check on a CA path build_chain accepted; None to search afresh."""
        path, issuer_id, message, (start, end) = known
        if not start <= now.replace(microsecond=0) <= end or not self.issued_by(leaf, leaf_id, path[0], issuer_id):
            return None
        constraints = extension_value(leaf, x509.BasicConstraints)
        if _constraints.extension_problems(leaf, is_ca=constraints is not None and constraints.ca):
            return None
        if _constraints.name_constraint_problems([(leaf, True)], path) or _verify.leaf_usage_problems(leaf):
            return None
        return True, message

    def _anchors(self, certificates: list, ids: list[bytes], path: list[int], trust: TrustStore) -> list:
        """Anchors that issued the top of the path, or that are the same CA (subject and key) as a node of it."""
        found = {}
        for position, index in enumerate(path):
            node = certificates[index]
            spki = None
            for anchor, digest in trust.candidates(node):
                if digest in found:
                    continue
                if position == len(path) - 1 and self.issued_by(node, ids[index], anchor.certificate, digest):
                    found[digest] = anchor
                    continue
                if spki is None:
                    spki = node.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
                anchor_spki = anchor.certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                                           serialization.PublicFormat.SubjectPublicKeyInfo)
                # A cross-signed CA: same subject and key as an anchor (RFC 5280 trust anchors are subject + key).
                if anchor_spki == spki and _cn_key(anchor.certificate.subject) == _cn_key(node.subject):
                    found[digest] = anchor
        return list(found.values())

    # -- the checks of one chain

    def analyze(self, certificates: list, *, der: list | None = None, expect: Expectations | None = None,
                now: datetime.datetime | None = None) -> ChainReport:
        """Every applicable check over the chain as presented (leaf first), within the per-endpoint work limits."""
        presented = len(certificates)
        if presented > MAX_CHAIN_CERTIFICATES:
            certificates = list(certificates)[:MAX_CHAIN_CERTIFICATES]
            der = list(der)[:MAX_CHAIN_CERTIFICATES] if der and len(der) == presented else None
        self._budget, self._exhausted = MAX_SIGNATURE_CHECKS, False
        try:
            report = self._analyze(certificates, der=der, expect=expect, now=now)
        finally:
            self._budget = None
        limits = []
        if presented > len(certificates):
            limits.append(f"the server sent {presented} certificates; only the first {len(certificates)} were checked")
        if self._exhausted:
            limits.append(f"analysis stopped after {MAX_SIGNATURE_CHECKS} signature checks: the issuer search through the "
                          f"presented certificates was cut short (its results are incomplete)")
        if limits:
            for number, check in enumerate(report.checks):
                if check.name == "chain_order":
                    message = "; ".join(limits + ([check.message] if check.status != "ok" else []))
                    report.checks[number] = Check("chain_order", worst([check.status, "warning"]), message)
                    report.facts["chain_order_ok"] = False
            report.status = worst(check.status for check in report.checks)
        return report

    def _analyze(self, certificates: list, *, der: list | None, expect: Expectations | None,
                 now: datetime.datetime | None) -> ChainReport:
        expect = expect or Expectations()
        now = now or utc_now()
        policy = self.policy
        if not certificates:
            check = Check("chain_complete", "critical", "the server presented no certificate")
            return ChainReport([check], "critical", {"chain_complete": False})
        der = list(der) if der and len(der) == len(certificates) else [_der(cert) for cert in certificates]
        ids = [hashlib.sha256(item).digest() for item in der]
        certificates = list(certificates)
        leaf = certificates[0]
        checks: list[Check] = []
        facts: dict = {}

        # Chain description (subjects, fingerprints, validity): certificate_info of _chain, given the
        # DER from the wire for the fingerprints; CA certificates memoised.
        chain = [self.info(_WithDer(cert, der[i]) if i == 0 else cert, ids[i], cache=i > 0) for i, cert in enumerate(certificates)]
        leaf_info = chain[0]
        left = days_left(leaf, now)
        facts.update(subject=leaf_info["subject"], issuer=leaf_info["issuer"], sha256=leaf_info["sha256"],
                     sha1=leaf_info["sha1"], not_before=leaf_info["not_before"], not_after=leaf_info["not_after"],
                     days_left=left, serial=leaf_info["serial"])
        # The attributes themselves, for reports and discovery: the joined DN strings cannot be split back.
        facts.update(subject_attributes=name_attributes(leaf.subject), issuer_attributes=name_attributes(leaf.issuer))
        sans = extension_value(leaf, x509.SubjectAlternativeName)
        facts["subject_alt_name"] = ([str(v) for v in sans.get_values_for_type(x509.DNSName)]
                                     + [str(v) for v in sans.get_values_for_type(x509.IPAddress)]) if sans is not None else []

        checks.append(check_expiry(leaf, now=now, policy=policy, left=left, end=leaf_info["not_after"]))

        # Order: follow issuers through the presented certificates.
        path = [0]
        used = {0}
        while not self.self_signed(certificates[path[-1]], ids[path[-1]]):
            top = path[-1]
            nxt = next((j for j in range(1, len(certificates)) if j not in used
                        and self.issued_by(certificates[top], ids[top], certificates[j], ids[j])), None)
            if nxt is None:
                break
            path.append(nxt)
            used.add(nxt)
        checks.append(self._order_check(certificates, chain, path, used))
        facts["chain_order_ok"] = checks[-1].status == "ok"

        top = certificates[path[-1]]
        top_self_signed = self.self_signed(top, ids[path[-1]])
        anchors = self._anchors(certificates, ids, path, expect.trust) if expect.trust is not None else []
        complete = self._completeness_check(certificates, chain, path, top_self_signed, anchors, expect, ids)
        verdict = self._trust_verdict(certificates, ids, expect.trust, now) if expect.trust is not None and expect.check_trust else None
        if complete.status == "critical" and verdict is not None and verdict[0] and not complete.message.startswith("the server does not send"):
            # The issuer walk follows the presented order; build_chain found a trusted path through
            # what was sent, so nothing is missing (the order is chain_order's business).
            complete = Check("chain_complete", "ok", f"complete: {verdict[1]}")
        checks.append(complete)
        facts["chain_complete"] = None if complete.message.startswith("not checked") else complete.status == "ok"

        if expect.trust is not None and expect.check_trust:
            if verdict is not None:
                trusted, message = verdict
            elif top_self_signed:
                trusted, message = False, (f"the chain ends at the self-signed {chain[path[-1]]['subject'] or '<empty subject>'}, "
                                           f"which is not in the trusted CA set {expect.trust.name}")
            else:
                trusted, message = False, (f"no certificate of the trusted CA set {expect.trust.name} issued "
                                           f"{chain[path[-1]]['subject'] or '<empty subject>'} (issuer {chain[path[-1]]['issuer']})")
            checks.append(Check("trust", "ok" if trusted else "critical", message if trusted else f"not trusted: {message}"))
            facts["trusted"] = trusted
        else:
            facts["trusted"] = None

        revocation = self._revocation_check(certificates, path, expect.trust)
        facts["revoked"] = None
        if revocation is not None:
            checks.append(revocation)
            facts["revoked"] = revocation.status == "critical"
            if facts["revoked"]:
                # a revoked certificate is not trusted, whatever the path validation found
                facts["trusted"] = False

        if expect.hostname:
            checks.append(check_hostname(leaf, expect.hostname, san=sans))
            facts["hostname_ok"] = checks[-1].status == "ok"
        else:
            facts["hostname_ok"] = None
        if expect.subject:
            checks.append(check_subject(leaf, expect.subject_dict))
        if expect.fingerprint:
            checks.append(check_fingerprint(leaf_info["sha256"], leaf_info["sha1"], expected=expect.fingerprint))
            facts["matches_expected"] = checks[-1].status == "ok"
        else:
            facts["matches_expected"] = None

        on_path = [i for i in path if i == 0 or not self.self_signed(certificates[i], ids[i])]
        try:
            kind, bits = key_description(leaf.public_key())
        except (ValueError, UnsupportedAlgorithm):
            kind, bits = "unknown", None
        leaf_hash = signature_hash(leaf)
        checks.append(self._key_check(certificates, chain, on_path, leaf_key=(kind, bits)))
        checks.append(self._signature_check(certificates, chain, on_path, leaf_hash=leaf_hash))
        period = validity_days(leaf)
        if period > policy.max_validity_days:
            checks.append(Check("validity_period", "warning", f"the leaf is valid for {period:.0f} days (> {policy.max_validity_days})"))
        else:
            checks.append(Check("validity_period", "ok", f"the leaf is valid for {period:.0f} days"))
        if top_self_signed and path == [0]:
            checks.append(Check("self_signed", "warning", "the leaf certificate is self-signed"))
        else:
            checks.append(Check("self_signed", "ok", "the leaf is issued by a CA"))
        checks.append(self._intermediate_expiry_check(certificates, chain, path[1:], ids, now))

        facts.update(key_type=kind, key_bits=bits, signature_hash=leaf_hash)
        return ChainReport(checks, worst(check.status for check in checks), facts, chain)

    @staticmethod
    def _revocation_check(certificates: list, path: list[int], trust: TrustStore | None) -> Check | None:
        """Critical when the leaf or a CA on its path is on a CRL of the trusted CA set; None when no CRL covers them."""
        if trust is None or not trust.revocation:
            return None
        verdicts = [trust.revoked(certificates[index]) for index in path
                    if index == 0 or certificates[index].issuer != certificates[index].subject]
        covered = [verdict for verdict in verdicts if verdict[0] is not None]
        if not covered:
            return None
        revoked = [message for state, message, _stale in covered if state]
        if revoked:
            return Check("revocation", "critical", "revoked: " + "; ".join(revoked))
        messages = "; ".join(message for _state, message, _stale in covered)
        if any(stale for _state, _message, stale in covered):
            return Check("revocation", "warning", f"{messages}, but the CRL is past its nextUpdate: refresh it")
        return Check("revocation", "ok", messages)

    def _order_check(self, certificates: list, chain: list, path: list[int], used: set) -> Check:
        constraints = extension_value(certificates[0], x509.BasicConstraints)
        if constraints is not None and constraints.ca and any(
                (extension_value(c, x509.BasicConstraints) is None or not extension_value(c, x509.BasicConstraints).ca) for c in certificates[1:]):
            return Check("chain_order", "critical", f"the first certificate sent ({chain[0]['subject']}) is a CA certificate; "
                                                    f"the server certificate must come first")
        problems = []
        if path != list(range(len(path))):
            expected = " -> ".join(chain[i]["subject"] or "<empty>" for i in path)
            presented = " -> ".join(f"#{i + 1}" for i in path)
            problems.append(f"not in issuing order: the chain is {expected}, but it is sent as certificates {presented}")
        extra = [i for i in range(len(certificates)) if i not in used]
        for i in extra:
            problems.append(f"certificate #{i + 1} ({chain[i]['subject'] or '<empty>'}) is not part of the leaf's chain")
        if problems:
            return Check("chain_order", "warning", "; ".join(problems))
        return Check("chain_order", "ok", f"{len(certificates)} certificate(s) in issuing order")

    def _completeness_check(self, certificates: list, chain: list, path: list[int], top_self_signed: bool, anchors: list,
                            expect: Expectations, ids: list[bytes]) -> Check:
        presented = set(ids)
        missing_expected = [cert for cert, digest in expect.intermediates if digest not in presented]
        top = chain[path[-1]]
        if missing_expected:
            names = ", ".join(name_to_string(cert.subject) or "<empty>" for cert in missing_expected)
            return Check("chain_complete", "critical", f"the server does not send the intermediate(s) of the expected chain: {names}")
        if top_self_signed:
            return Check("chain_complete", "ok", "complete: the chain ends at a self-signed certificate sent by the server"
                         if len(path) > 1 else "complete: the leaf is self-signed")
        if anchors:
            return Check("chain_complete", "ok", f"complete: the chain reaches {name_to_string(anchors[0].certificate.subject) or '<empty>'} "
                                                 f"of the trusted CA set {expect.trust.name}")
        if expect.trust is None:
            if expect.intermediates:
                return Check("chain_complete", "ok", "every intermediate of the expected chain is sent")
            return Check("chain_complete", "ok", "not checked: no trusted CA set to tell a missing intermediate from a root")
        for cert, digest in expect.intermediates:
            if self.issued_by(certificates[path[-1]], ids[path[-1]], cert, digest):
                return Check("chain_complete", "critical", f"missing intermediate: {name_to_string(cert.subject)} (issuer of "
                                                           f"{top['subject']}) is not sent")
        return Check("chain_complete", "critical",
                     f"incomplete chain: the issuer of {top['subject'] or '<empty>'} ({top['issuer'] or '<empty>'}) is neither "
                     f"sent by the server nor in the trusted CA set {expect.trust.name}: a missing intermediate, or a root "
                     f"to add to the trusted CA set")

    def _key_check(self, certificates: list, chain: list, indexes: list[int], *, leaf_key: tuple) -> Check:
        problems = []
        for i in indexes:
            reason = weak_key(certificates[i], min_rsa_bits=self.policy.min_rsa_bits)
            if reason:
                problems.append(f"{'leaf' if i == 0 else 'intermediate'} {chain[i]['subject'] or '<empty>'}: {reason}")
        if problems:
            return Check("key_size", "critical", "weak key: " + "; ".join(problems))
        kind, bits = leaf_key
        return Check("key_size", "ok", f"leaf key {kind}" + (f" {bits} bits" if bits else ""))

    def _signature_check(self, certificates: list, chain: list, indexes: list[int], *, leaf_hash: str | None) -> Check:
        problems = []
        for i in indexes:
            algorithm = leaf_hash if i == 0 else signature_hash(certificates[i])
            if algorithm in WEAK_SIGNATURE_HASHES:
                problems.append(f"{'leaf' if i == 0 else 'intermediate'} {chain[i]['subject'] or '<empty>'} is signed with {algorithm.upper()}")
        if problems:
            return Check("signature", "critical", "weak signature: " + "; ".join(problems))
        return Check("signature", "ok", f"leaf signed with {(leaf_hash or 'EdDSA').upper()}")

    def _intermediate_expiry_check(self, certificates: list, chain: list, indexes: list[int], ids: list[bytes],
                                   now: datetime.datetime) -> Check:
        leaf_end = certificates[0].not_valid_after_utc
        now = now.replace(microsecond=0)
        expired = []
        early = []
        for i in indexes:
            cert = certificates[i]
            if self.self_signed(cert, ids[i]):
                continue
            if cert.not_valid_after_utc < now:
                expired.append(f"{chain[i]['subject'] or '<empty>'} expired on {chain[i]['not_after']}")
            elif cert.not_valid_after_utc < leaf_end:
                early.append(f"{chain[i]['subject'] or '<empty>'} expires on {chain[i]['not_after']}, before the leaf "
                             f"({iso(leaf_end)})")
        if expired:
            return Check("intermediate_expiry", "critical", "expired intermediate: " + "; ".join(expired))
        if early:
            return Check("intermediate_expiry", "warning", "intermediate expires before the leaf: " + "; ".join(early))
        return Check("intermediate_expiry", "ok", "no intermediate expires before the leaf")


# --------------------------------------------------------------------------------------------
# endpoint reports and the summary


def endpoint_report(result, report: ChainReport | None, *, include_chain: bool = True, extra: dict | None = None) -> dict:
    """JSON-ready result of one endpoint: handshake facts, check facts, checks by name, the presented chain."""
    endpoint = result.endpoint
    data = {
        "index": endpoint.index,
        "host": endpoint.host,
        "port": endpoint.port,
        "server_name": result.server_name,
        "starttls": endpoint.starttls,
        "address": result.address,
        "outcome": result.outcome,
        "outcome_message": result.message,
        "protocol": result.protocol,
        "cipher": result.cipher,
        "elapsed_ms": round(result.elapsed * 1000, 1),
    }
    if extra:
        data.update(extra)
    facts_keys = ("subject", "issuer", "sha256", "sha1", "serial", "not_before", "not_after", "days_left", "subject_alt_name",
                  "key_type", "key_bits", "signature_hash", "matches_expected", "chain_complete", "chain_order_ok", "trusted",
                  "revoked", "hostname_ok", "subject_attributes", "issuer_attributes")
    if report is None:
        data.update({key: None for key in facts_keys})
        data["status"] = "critical"
        data["checks"] = {"connect": {"status": "critical", "message": result.message}}
        data["problems"] = [f"connect: {result.message}"]
        data["chain"] = []
        return data
    data.update({key: report.facts.get(key) for key in facts_keys})
    checks = {"connect": {"status": "ok", "message": f"{result.protocol or 'TLS'} {result.cipher or ''}".strip()}}
    checks.update({check.name: {"status": check.status, "message": check.message} for check in report.checks})
    data["status"] = report.status
    data["checks"] = checks
    data["problems"] = [f"{check.name}: {check.message}" for check in report.checks if check.status != "ok"]
    notes = list(result.notes)
    if notes:
        data["notes"] = notes
    data["chain"] = [
        {key: info[key] for key in ("subject", "issuer", "sha256", "sha1", "serial", "not_before", "not_after", "is_ca", "self_signed")}
        for info in report.chain
    ] if include_chain else []
    return data


def _decode_fields(*_fields) -> None:
    """Nothing: the caller's arguments are evaluated, which is where cryptography decodes a lazily parsed field."""


def certificate_problem(certificate) -> str | None:
    """Why a presented certificate cannot be read, or None: the chain engine's parse guard (``_chain.constraints``).

    ``load_der_x509_certificate`` checks the outer structure only; names (a T61String that is not
    text), extensions and the public key are decoded when first read, so a certificate OpenSSL
    serves can still raise in the middle of the checks. A well-formed key of a type cryptography
    does not know is readable here (the key check says "unknown"); the trust check rejects it.
    """
    return _constraints.certificate_problem(certificate, key_required=False)


def _extensions_readable(certificates: list) -> bool:
    """True when every certificate's extensions decode (cryptography caches them: the checks then read them for free).

    The checks read extensions through ``extension_value``, which takes an undecodable extension
    as absent; a scan must say the certificate is broken instead ("no subjectAltName" would mislead).
    """
    for certificate in certificates:
        try:
            _decode_fields(certificate.extensions)
        except Exception:  # pylint: disable=broad-exception-caught
            return False
    return True


def _unreadable_result(result, failure: BaseException | None):
    """The HandshakeResult as an endpoint failure: which presented certificate cannot be parsed, or the error."""
    der = list(result.der or [])

    def unparsable(number: int, problem: str):
        digest = f" (SHA-256 {_colon_hex(hashlib.sha256(der[number - 1]).hexdigest().upper())})" if number <= len(der) else ""
        return dataclasses.replace(result, outcome="bad_certificate", message=(
            f"certificate cannot be parsed: presented certificate #{number}{digest}: {problem}"))

    if len(result.certificates) < len(der):
        # tls stopped at the first DER it could not load and said why in a note.
        number = len(result.certificates) + 1
        note = next((note for note in result.notes if f"#{number} " in note), "")
        return unparsable(number, note.split(": ", 1)[1] if ": " in note else "not a DER certificate")
    for number, certificate in enumerate(result.certificates, start=1):
        problem = certificate_problem(certificate)
        if problem is not None:
            return unparsable(number, problem)
    if failure is None:
        return None
    return dataclasses.replace(result, outcome="error", message=(
        f"unexpected error while checking the presented chain: {type(failure).__name__}: {failure}"))


def evaluate(result, analyzer: ChainAnalyzer, *, expect: Expectations | None = None, include_chain: bool = True,
             extra: dict | None = None, now: datetime.datetime | None = None) -> dict:
    """``endpoint_report`` for one HandshakeResult: checks when the handshake succeeded, a connect failure otherwise.

    Whatever a presented certificate holds, the outcome is this endpoint's: a certificate that
    cannot be parsed gives outcome ``bad_certificate`` ("certificate cannot be parsed"), never
    an exception that would end a whole scan.
    """
    if not result.ok:
        return endpoint_report(result, None, include_chain=include_chain, extra=extra)
    unreadable = None
    if len(result.certificates) < len(result.der or []) or not _extensions_readable(result.certificates[:MAX_CHAIN_CERTIFICATES]):
        unreadable = _unreadable_result(result, None)
    if unreadable is None:
        try:
            report = analyzer.analyze(result.certificates, der=result.der, expect=expect, now=now)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # Lazily decoded fields raise wherever they are first read; find which certificate it was.
            unreadable = _unreadable_result(result, exc)
        else:
            return endpoint_report(result, report, include_chain=include_chain, extra=extra)
    return endpoint_report(unreadable, None, include_chain=include_chain, extra=extra)


class Summary:
    """Counts over a stream of endpoint reports (constant memory)."""

    def __init__(self) -> None:
        self.total = 0
        self.by_status = {status: 0 for status in STATUSES}
        self.by_outcome: dict[str, int] = {}
        self.by_check: dict[str, dict[str, int]] = {}
        self.expiring_within_warning = 0
        self.expired = 0

    def add(self, report: dict) -> None:
        """Count one endpoint report."""
        self.total += 1
        self.by_status[report["status"]] += 1
        self.by_outcome[report["outcome"]] = self.by_outcome.get(report["outcome"], 0) + 1
        for name, check in report["checks"].items():
            if check["status"] != "ok":
                counts = self.by_check.setdefault(name, {"warning": 0, "critical": 0})
                counts[check["status"]] += 1
        left = report.get("days_left")
        if left is not None and left < 0:
            self.expired += 1
        elif report["checks"].get("expiry", {}).get("status") in ("warning", "critical"):
            self.expiring_within_warning += 1

    def as_dict(self) -> dict:
        """The counts as plain data."""
        return {
            "total": self.total,
            "ok": self.by_status["ok"],
            "warning": self.by_status["warning"],
            "critical": self.by_status["critical"],
            "by_outcome": dict(sorted(self.by_outcome.items())),
            "by_check": dict(sorted(self.by_check.items())),
            "expired": self.expired,
            "expiring": self.expiring_within_warning,
        }


# --------------------------------------------------------------------------------------------
# options shared by tls_probe and cert_scan (the scan plan is in runner)


def read_certificate_option(value: str, *, option: str) -> tuple[bytes, str]:
    """(bytes, source label) from an option that holds PEM text or a path."""
    text = str(value)
    if "-----BEGIN" in text:
        return text.encode("utf-8"), option
    if not os.path.isfile(text):
        raise CertfleetError(f"{option}: {text!r} is neither PEM text nor an existing file")
    return _read(text, what=option), text


def expectations_for(*, hostname: str | None, expected_fingerprint: str | None = None,
                     expected_certificate: str | None = None, expected_subject: dict | None = None,
                     trust: TrustStore | None = None, mode: str = "monitored_only", what: str = "") -> Expectations:
    """Expectations from module-style options (what = option prefix for messages)."""
    if mode not in MODES:
        raise CertfleetError(f"{what}mode must be one of {', '.join(MODES)}, not {mode!r}")
    if expected_fingerprint and expected_certificate:
        raise CertfleetError(f"{what}expected_fingerprint and expected_certificate are mutually exclusive")
    try:
        fingerprint_value = normalize_fingerprint(expected_fingerprint) if expected_fingerprint else None
    except CertfleetError as exc:
        raise CertfleetError(f"{what}{exc}") from None
    intermediates: tuple = ()
    if expected_certificate:
        data, source = read_certificate_option(expected_certificate, option=f"{what}expected_certificate")
        fingerprint_value, intermediates = expected_from_certificate(data, source=source)
    if mode == "lifecycle_managed" and not fingerprint_value:
        raise CertfleetError(f"{what}mode lifecycle_managed needs expected_certificate or expected_fingerprint "
                             f"(the current certificate of the store)")
    return Expectations(hostname=hostname or None, fingerprint=fingerprint_value, intermediates=intermediates,
                        subject=subject_expectations(expected_subject), trust=trust,
                        check_trust=mode == "monitored_only")
