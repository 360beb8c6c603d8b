# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Collecting certificates a person dropped into the store's incoming/ folders: pure decisions.

This module is private to the certfleet.tls collection: its API may change
without notice.

A commercial CA sends its certificate back by e-mail or download, in whatever format it likes (PEM,
DER, PKCS#7, a PEM bundle in any order, PKCS#12). The person saves it, under any name, into
``incoming/`` (the store's, or one definition's). ``plan_collect`` matches every file to a definition
by the public key of its server certificate - never by the file name - and checks it against that
definition: the key of the definition's CSR, every name the CSR asks for, the CA profile's rules,
validity, not a CA certificate, a chain that reaches a trust anchor (built from the file itself, the
other files of the run, a user-supplied pile, the CA product catalog's hints and, when enabled, AIA).
Every problem is collected with the file's name; any problem fails the whole run (nothing is written,
no file moves). The manual provider (``_issuers.manual``) turns the plan into ``Issued`` results, so
``store_issue`` and ``store_collect`` install through the store's one write path.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import os
import ssl
from dataclasses import dataclass, field

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._common.files import read_file
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import key_info
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import (
    CertfleetError,
    certificate_fingerprint,
    extension_value,
    general_names_to_list,
    name_attributes,
    name_to_string,
    public_key_fingerprint,
)
from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import csr_subject_alt_names, load_csr
from ansible_collections.certfleet.tls.plugins.module_utils._csr.profiles import check_request, resolve_profile
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import (
    MAX_DROP_IN_BYTES,
    MAX_DROP_IN_FILES,
    DropInFile,
    StoredDefinition,
)

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - the import guard in _chain reports it
    x509 = None

# PKCS#12 key derivation and MAC rounds read before a PFX is opened: OpenSSL and Windows use 2,048-600,000;
# a hostile file asking for billions would hold the run in an uninterruptible key derivation.
MAX_PKCS12_ITERATIONS = 2_000_000
_PBE_OIDS = (
    bytes.fromhex("06092a864886f70d01050c"),  # PBKDF2 (RFC 8018 A.2)
) + tuple(bytes.fromhex("060a2a864886f70d010c01") + bytes([number]) for number in range(1, 7))  # RFC 7292 C
# A file from a CA holds the certificate and a few intermediates; more is not a CA's answer.
MAX_CERTIFICATES_PER_FILE = 16
# Trust-anchor and intermediate piles a user names: each file bounded like a drop-in, a few of them.
MAX_PILE_FILES = 64
MAX_PILE_BYTES = 4 * 1024 * 1024
# AIA: different caIssuers URLs fetched in one run (each once, bounded in time and size by http_fetch).
MAX_AIA_URLS = 8
# Signature hashes no CA may use any more (CA/Browser Forum BR 7.1.3.2; RFC 6151 for MD5).
WEAK_SIGNATURE_HASHES = ("md5", "sha1")
SYSTEM_BUNDLE_CANDIDATES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")
# How the application forms of CAs label the subject fields.
FORM_LABELS = {
    "CN": "Common Name", "O": "Organization Name", "OU": "Organizational Unit Name", "L": "Locality Name",
    "ST": "State or Province Name", "C": "Country Name", "emailAddress": "Email Address",
}
FORM_OPTIONS = {
    "CN": "common_name", "O": "organization_name", "OU": "organizational_unit_name", "L": "locality_name",
    "ST": "state_or_province_name", "C": "country_name", "emailAddress": "email_address",
}


class CollectFailures(CertfleetError):
    """Drop-in files that cannot be collected; ``errors`` lists one message per problem, each naming its file."""

    def __init__(self, errors: list[str]):
        super().__init__(f"{len(errors)} problem(s) with the files in incoming/, nothing was collected and no file "
                         f"was moved: " + " | ".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True)
class CollectSettings:
    """What a collect run is given besides the files: passwords, piles, trust and limits."""

    password: str | None = None  # one PKCS#12 password for every file
    passwords: dict = field(default_factory=dict)  # file name (in incoming/) -> PKCS#12 password
    intermediates: tuple = ()  # SourcedCertificate pile offered to every chain
    trust_anchors: tuple = ()  # SourcedCertificate roots a chain must reach
    system_trust: bool = True  # the operating system's CA bundle counts as trust anchors too
    aia: bool = False  # fetch missing issuers from the certificate's AIA caIssuers URL (bounded)
    prefer: str = "shortest"
    catalog: list | None = None  # None: the built-in CA product catalog
    max_file_size: int = MAX_DROP_IN_BYTES
    max_files: int = MAX_DROP_IN_FILES
    fetch_timeout: float = 10.0
    lock_wait: float = 60.0  # seconds to wait for another collecting run


@dataclass
class Target:
    """A manual definition as the collector sees it: the key its CSR carries and the names it asks for."""

    name: str
    key_fingerprint: str
    requested: list
    subject: dict
    profile: dict
    current: object = None
    csr_subject: dict = field(default_factory=dict)


@dataclass
class Match:
    """The certificate collected for one definition, with the chain it is served with and the files it came from."""

    name: str
    certificate: object
    chain: list
    files: list
    warnings: list = field(default_factory=list)
    already_current: bool = False

    @property
    def sha256(self) -> str:
        return certificate_fingerprint(self.certificate)


@dataclass
class CollectPlan:
    """What one run collects: matches by definition, every file the run consumes, and notes."""

    matches: dict = field(default_factory=dict)
    files: list = field(default_factory=list)  # DropInFile, every file consumed (leaf files and chain material)
    reports: list = field(default_factory=list)  # one dict per file, for the module's result
    warnings: list = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# settings from module options


def _bounded_read(path: str, *, what: str) -> bytes:
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise CertfleetError(f"{what}: cannot read '{path}' ({exc.strerror})") from None
    if size > MAX_PILE_BYTES:
        raise CertfleetError(f"{what}: '{path}' is {size} bytes, more than a certificate pile holds (limit {MAX_PILE_BYTES})")
    data = read_file(path, option=what)
    if data is None:
        raise CertfleetError(f"{what}: '{path}' does not exist")
    return data


def load_pile(entries, *, what: str) -> tuple:
    """Certificates of a user's pile: each entry a file path or PEM text, bounded in number and size."""
    entries = list(entries or [])
    if len(entries) > MAX_PILE_FILES:
        raise CertfleetError(f"{what}: {len(entries)} entries, at most {MAX_PILE_FILES}")
    pile = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, str) or not entry.strip():
            raise CertfleetError(f"{what}[{number}]: a file path or PEM text is required")
        if "-----BEGIN" in entry:
            data, source = entry.encode("utf-8"), f"{what}[{number}]"
            if len(data) > MAX_PILE_BYTES:
                raise CertfleetError(f"{what}[{number}]: more than {MAX_PILE_BYTES} bytes")
        else:
            data, source = _bounded_read(entry, what=what), entry
        bundle = _chain.load_certificates(data, source=source)
        pile.extend(bundle.certificates)
    return tuple(pile)


@functools.lru_cache(maxsize=1)
def _system_anchors_cached(path: str, mtime: float) -> tuple:
    del mtime  # part of the cache key only: a changed bundle is read again
    data = _bounded_read(path, what="system CA bundle")
    bundle = _chain.load_certificates(data, source=path)
    return tuple(bundle.certificates)


def system_anchors() -> tuple:
    """The operating system's CA bundle (empty when there is none)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile) + SYSTEM_BUNDLE_CANDIDATES:
        if candidate and os.path.isfile(candidate):
            return _system_anchors_cached(candidate, os.stat(candidate).st_mtime)
    return ()


def settings_from_options(options: dict) -> CollectSettings:
    """CollectSettings from the collect options of store_collect / store_issue (see ``argument_spec``)."""
    options = dict(options or {})
    passwords = options.get("pkcs12_passwords") or {}
    if not isinstance(passwords, dict):
        raise CertfleetError("pkcs12_passwords must map file names (in incoming/) to passwords")
    prefer = options.get("prefer") or "shortest"
    if prefer not in _chain.PREFER_CHOICES:
        raise CertfleetError(f"prefer must be one of {', '.join(_chain.PREFER_CHOICES)}, not {prefer!r}")
    limits = {}
    for key, default, ceiling in (("max_file_size", MAX_DROP_IN_BYTES, 16 * MAX_DROP_IN_BYTES),
                                  ("max_files", MAX_DROP_IN_FILES, 10 * MAX_DROP_IN_FILES)):
        value = options.get(key)
        value = default if value is None else value
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= ceiling:
            raise CertfleetError(f"{key} must be a number from 1 to {ceiling}, not {value!r}")
        limits[key] = value
    return CollectSettings(
        password=options.get("pkcs12_password"),
        passwords={str(name): str(value) for name, value in passwords.items()},
        intermediates=load_pile(options.get("intermediates"), what="intermediates"),
        trust_anchors=load_pile(options.get("trust_anchors"), what="trust_anchors"),
        system_trust=bool(options.get("system_trust", True)),
        aia=bool(options.get("aia", False)),
        prefer=prefer,
        **limits,
    )


def argument_spec() -> dict:
    """The collect options, shared by store_collect (top level) and store_issue (its ``collect`` option)."""
    return {
        "pkcs12_password": {"type": "str", "no_log": True},
        "pkcs12_passwords": {"type": "dict", "default": {}, "no_log": True},
        "intermediates": {"type": "list", "elements": "str", "default": []},
        "trust_anchors": {"type": "list", "elements": "str", "default": []},
        "system_trust": {"type": "bool", "default": True},
        "aia": {"type": "bool", "default": False},
        "prefer": {"type": "str", "default": "shortest", "choices": list(_chain.PREFER_CHOICES)},
        "max_file_size": {"type": "int", "default": MAX_DROP_IN_BYTES},
        "max_files": {"type": "int", "default": MAX_DROP_IN_FILES},
    }


# --------------------------------------------------------------------------------------------
# definitions


def target_for(definition: dict, stored: StoredDefinition, *, profiles: dict | None = None,
               resolved: dict | None = None) -> Target | None:
    """The collector's view of a normalised manual definition; None before store_request wrote its CSR.
    ``resolved`` caches resolved profiles by name across the definitions of one run."""
    csr_pem = stored.files.get("csr")
    if not csr_pem:
        return None
    try:
        csr = load_csr(csr_pem, source=f"{definition['name']}: {layout.filename('csr')}")
    except CertfleetError:
        return None
    profile_name = definition["issuer"].get("profile") or "private"
    return Target(
        name=definition["name"],
        key_fingerprint=public_key_fingerprint(csr.public_key()),
        requested=[normalise_name(entry) for entry in csr_subject_alt_names(csr)],
        subject={short: definition.get(option) for short, option in FORM_OPTIONS.items() if definition.get(option)},
        profile=_resolved(profile_name, profiles, resolved),
        current=stored.current,
        csr_subject=name_attributes(csr.subject),
    )


def _resolved(name: str, profiles: dict | None, cache: dict | None) -> dict:
    if cache is None:
        return resolve_profile(name, profiles)
    if name not in cache:
        cache[name] = resolve_profile(name, profiles)
    return cache[name]


def normalise_name(entry: str) -> str:
    """A SAN entry in a form two spellings of one name share: DNS names lower-case without a final dot, IPs compressed."""
    text = str(entry)
    if text.upper().startswith("IP:"):
        try:
            return f"IP:{ipaddress.ip_address(text[3:].strip())}"
        except ValueError:
            return text
    if text.upper().startswith("DNS:"):
        text = text[4:]
    return text.strip().rstrip(".").lower()


def form_fields(profile: dict, subject: dict) -> list[dict]:
    """The subject as the CA's application form asks for it: the profile's field order, set fields only."""
    order = list(profile.get("form_fields") or FORM_LABELS)
    order += [short for short in subject if short not in order]
    rows = []
    for short in order:
        value = subject.get(short)
        if value in (None, "", []):
            continue
        rows.append({"field": short, "label": FORM_LABELS.get(short, short),
                     "value": ", ".join(value) if isinstance(value, list) else str(value)})
    return rows


# --------------------------------------------------------------------------------------------
# files


@dataclass
class ParsedFile:
    """One drop-in file read: its server certificate (None: CA certificates only) and its CA certificates."""

    drop: DropInFile
    leaf: object
    cas: list
    warnings: list


def _is_ca(certificate) -> bool:
    constraints = extension_value(certificate, x509.BasicConstraints)
    return bool(constraints is not None and constraints.ca)


def _describe(certificate) -> str:
    return f"{name_to_string(certificate.subject)} (serial {_chain.certificate_info(certificate)['serial']})"


def _der_tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``offset``; ValueError when it does not fit."""
    if offset + 2 > len(data):
        raise ValueError("truncated")
    tag, first = data[offset], data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("bad length")
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    if start + length > len(data):
        raise ValueError("truncated")
    return tag, start, start + length


def _der_children(data: bytes, start: int, end: int, limit: int = 8) -> list[tuple[int, int, int]]:
    children, offset = [], start
    while offset < end and len(children) < limit:
        child = _der_tlv(data, offset)
        children.append(child)
        offset = child[2]
    return children


def _integer_at(data: bytes, element: tuple[int, int, int]) -> int | None:
    tag, start, end = element
    if tag != 0x02 or end - start > 8:
        return None if tag != 0x02 else 1 << 64
    return int.from_bytes(data[start:end], "big", signed=True)


def pkcs12_work(data: bytes) -> int:
    """The largest iteration count a PKCS#12 file asks for (its MAC, its PBKDF2 / PKCS#12 PBE parameters), read
    without opening it; 0 when it is not PKCS#12 or names none."""
    if not data.startswith(b"\x30"):
        return 0
    found = 0
    try:
        _tag, start, end = _der_tlv(data, 0)
        children = _der_children(data, start, end, limit=3)
        if len(children) == 3 and children[2][0] == 0x30:  # PFX: version, authSafe, macData
            mac = _der_children(data, children[2][1], children[2][2], limit=3)
            if len(mac) == 3:
                found = max(found, _integer_at(data, mac[2]) or 0)
    except ValueError:
        return 0
    for oid in _PBE_OIDS:
        position = data.find(oid)
        while position != -1:
            try:
                tag, start, end = _der_tlv(data, position + len(oid))
                params = _der_children(data, start, end, limit=2) if tag == 0x30 else []
                if len(params) == 2:
                    found = max(found, _integer_at(data, params[1]) or 0)
            except ValueError:
                pass
            position = data.find(oid, position + 1)
    return found


def parse_file(drop: DropInFile, settings: CollectSettings) -> ParsedFile:
    """The certificates of one drop-in file; a CertfleetError naming the file when it cannot be read or makes no sense."""
    name = os.path.basename(drop.path)
    password = settings.passwords.get(name, settings.password)
    if not drop.data.strip():
        raise CertfleetError(f"{drop.label}: the file is empty (was the download or the save interrupted?)")
    rounds = pkcs12_work(drop.data)
    if rounds > MAX_PKCS12_ITERATIONS:
        raise CertfleetError(f"{drop.label}: the PKCS#12 file asks for {rounds} key derivation rounds (at most "
                             f"{MAX_PKCS12_ITERATIONS}); not opened. Ask the CA for PEM or DER, or re-export the PFX")
    bundle = _chain.load_certificates(drop.data, source=drop.label, password=password)
    warnings = list(bundle.warnings)
    if bundle.private_key is not None:
        warnings.append(f"{drop.label}: holds a private key, which is ignored: the store keeps the definition's own key")
    if not bundle.certificates:
        raise CertfleetError(f"{drop.label}: holds no certificate")
    if len(bundle.certificates) > MAX_CERTIFICATES_PER_FILE:
        raise CertfleetError(f"{drop.label}: holds {len(bundle.certificates)} certificates; a CA's answer holds the "
                             f"certificate and a few intermediates (at most {MAX_CERTIFICATES_PER_FILE})")
    leaves, cas, seen = [], [], set()
    for item in bundle.certificates:
        fingerprint = certificate_fingerprint(item.certificate)
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        (cas if _is_ca(item.certificate) else leaves).append(item)
    if len(leaves) > 1:
        raise CertfleetError(f"{drop.label}: holds {len(leaves)} server certificates ("
                             + "; ".join(_describe(item.certificate) for item in leaves)
                             + "): drop one certificate per file")
    return ParsedFile(drop=drop, leaf=leaves[0].certificate if leaves else None, cas=cas, warnings=warnings)


# --------------------------------------------------------------------------------------------
# checks


def certificate_names(certificate) -> list[str] | None:
    """The certificate's DNS and IP SANs, normalised; None when it has no SAN extension."""
    san = extension_value(certificate, x509.SubjectAlternativeName)
    if san is None:
        return None
    return [normalise_name(entry) for entry in general_names_to_list(san)]


def check_certificate(certificate, target: Target, *, label: str, now: datetime.datetime) -> list[str]:
    """Problems of a server certificate for a definition (same key assumed): validity, names, profile, signature.

    Returns warnings; raises a CertfleetError naming the file at the first problem that refuses it.
    """
    warnings = []
    described = _describe(certificate)
    if now > certificate.not_valid_after_utc:
        raise CertfleetError(f"{label}: the certificate {described} for {target.name} expired on "
                             f"{iso(certificate.not_valid_after_utc)}; ask the CA for a current one")
    if now < certificate.not_valid_before_utc:
        raise CertfleetError(f"{label}: the certificate {described} for {target.name} is not valid before "
                             f"{iso(certificate.not_valid_before_utc)} (check the clock, or collect it then)")
    names = certificate_names(certificate)
    if names is None:
        raise CertfleetError(f"{label}: the certificate {described} for {target.name} has no subjectAltName "
                             f"extension; clients check names only there (RFC 6125 6.4.4)")
    missing = [name for name in target.requested if name not in names]
    if missing:
        raise CertfleetError(f"{label}: the certificate {described} for {target.name} lacks requested name(s) "
                             f"{', '.join(missing)} (it holds {', '.join(names) or 'none'}); ask the CA to reissue it")
    digest = certificate.signature_hash_algorithm
    if digest is not None and digest.name in WEAK_SIGNATURE_HASHES:
        raise CertfleetError(f"{label}: the certificate {described} for {target.name} is signed with {digest.name.upper()}, "
                             f"which clients no longer accept; ask the CA to reissue it with SHA-256")
    subject = name_attributes(certificate.subject)
    profile = target.profile
    report = check_request(profile, subject=subject, subject_alt_names=list(names),
                           key_info=key_info(certificate.public_key()), digest=profile["digests"][0])
    if report["errors"]:
        raise CertfleetError(f"{label}: the certificate {described} for {target.name} breaks CA profile "
                             f"{profile['name']}: {'; '.join(report['errors'])}")
    # DN check: the organisation and the country the definition names are the ones certified.
    for short in ("O", "C"):
        wanted, got = target.subject.get(short), subject.get(short)
        if wanted and got and str(wanted) != str(got):
            warnings.append(f"{label}: {short} is {got!r} in the certificate, {wanted!r} in definition {target.name}")
    current = target.current
    if (current is not None and certificate_fingerprint(current) != certificate_fingerprint(certificate)
            and public_key_fingerprint(current.public_key()) == target.key_fingerprint
            and certificate.not_valid_before_utc < current.not_valid_before_utc):
        raise CertfleetError(f"{label}: the certificate {described} for {target.name} is older than the one the store "
                             f"holds (issued {iso(current.not_valid_before_utc)}); it would replace a newer certificate")
    return warnings


def _anchors(settings: CollectSettings) -> list:
    anchors = list(settings.trust_anchors)
    if settings.system_trust:
        anchors.extend(system_anchors())
    return anchors


def run_fetcher(settings: CollectSettings, fetch=None):
    """The AIA fetch of one run (None: AIA off): each URL fetched once, at most MAX_AIA_URLS different URLs per run,
    so a run over many certificates waits at most that many bounded fetches."""
    if not settings.aia:
        return None
    fetch = fetch or functools.partial(_chain.http_fetch, timeout=settings.fetch_timeout)
    cache: dict = {}

    def fetch_once(url: str) -> bytes:
        if url not in cache:
            if len(cache) >= MAX_AIA_URLS:
                cache[url] = CertfleetError(f"{url}: not fetched, this run already fetched {MAX_AIA_URLS} AIA URLs")
            else:
                try:
                    cache[url] = fetch(url)
                except CertfleetError as exc:
                    cache[url] = exc
        if isinstance(cache[url], Exception):
            raise cache[url]
        return cache[url]

    return fetch_once


def build_served_chain(certificate, candidates: list, *, label: str, settings: CollectSettings, anchors: list,
                       now: datetime.datetime, fetch=None):
    """The checked chain (ChainResult) of a collected certificate, or a CertfleetError naming the file.
    ``fetch``: the run's AIA fetcher (``run_fetcher``), None when AIA is off."""
    if not anchors:
        raise CertfleetError(f"{label}: no trust anchor to check the chain against: give trust_anchors (the CA's root) "
                             f"or leave system_trust on")
    try:
        return _chain.build_chain(certificate, candidates, trust_anchors=anchors, prefer=settings.prefer,
                                  catalog=settings.catalog, fetch_issuer=fetch, now=now)
    except CertfleetError as exc:
        raise CertfleetError(f"{label}: the chain of {_describe(certificate)} reaches no trust anchor: {exc}") from None


class ChainCache:
    """The chains built in one run, by issuer: the CA's other certificates reuse a chain after one signature check.

    A run collects many certificates of one issuing CA; the chain engine checks that CA's chain once. A chain with
    name constraints is never reused (they apply to each certificate's names), nor one that gave warnings.
    """

    def __init__(self):
        self._chains: dict = {}

    @staticmethod
    def _key(certificate) -> tuple:
        aki = extension_value(certificate, x509.AuthorityKeyIdentifier)
        return certificate.issuer.public_bytes(), aki.key_identifier if aki is not None else None

    def get(self, certificate):
        """(served intermediates, root, warnings) of a chain built for the same issuer, when it signed this one."""
        cached = self._chains.get(self._key(certificate))
        if cached is None or not cached[0] or not _chain.is_issued_by(certificate, cached[0][0]):
            return None
        return cached

    def put(self, certificate, result) -> tuple:
        """Keep a built chain (ChainResult) for the issuer of ``certificate``; returns it as get() does."""
        served = [entry.certificate for entry in result.intermediates]
        root = result.root.certificate if result.root is not None else None
        warnings = [warning for warning in result.warnings if not warning.startswith("ignored unrelated certificate")]
        value = (served, root, warnings)
        constrained = any(extension_value(cert, x509.NameConstraints) is not None for cert in served + ([root] if root else []))
        if served and not warnings and not constrained:
            self._chains[self._key(certificate)] = value
        return value


# --------------------------------------------------------------------------------------------
# the plan


def plan_collect(drops: list, targets: list, settings: CollectSettings, *, now: datetime.datetime, fetch=None) -> CollectPlan:
    """Match every drop-in file to a target by public key and check it; raises CollectFailures with every problem."""
    plan = CollectPlan()
    errors: list[str] = []
    by_key = {target.key_fingerprint: target for target in targets}
    by_name = {target.name: target for target in targets}
    parsed = []
    for drop in drops:
        try:
            item = parse_file(drop, settings)
        except CertfleetError as exc:
            errors.append(str(exc))
            continue
        plan.warnings.extend(item.warnings)
        parsed.append(item)
    # Every CA certificate of the run, once (a CA's intermediate comes with every one of its certificates).
    candidates_extra = list({certificate_fingerprint(ca.certificate): ca for ca in reversed(
        [ca for item in parsed for ca in item.cas] + list(settings.intermediates))}.values())[::-1]
    anchors = _anchors(settings) if any(item.leaf is not None for item in parsed) else []
    fetch = run_fetcher(settings, fetch)

    found: dict[str, list] = {}
    for item in parsed:
        if item.leaf is None:
            continue
        label = item.drop.label
        key = public_key_fingerprint(item.leaf.public_key())
        target = by_key.get(key)
        folder = item.drop.definition
        if target is None:
            errors.append(_unmatched_message(item, key=key, folder=folder, targets=targets, by_name=by_name))
            continue
        if folder is not None and folder != target.name:
            errors.append(f"{label}: holds the certificate for {target.name}'s key, but lies in {folder}'s incoming/ "
                          f"folder; move it to {target.name}'s folder or the store's incoming/")
            continue
        found.setdefault(target.name, []).append(item)

    used_material = set()
    chains = ChainCache()
    for name, items in found.items():
        target = by_name[name]
        distinct = {certificate_fingerprint(item.leaf): item for item in items}
        if len(distinct) > 1:
            errors.append(f"{name}: {len(distinct)} different certificates for one definition in this run ("
                          + ", ".join(f"{item.drop.label}: {_describe(item.leaf)}" for item in distinct.values())
                          + "); keep only the one to install in incoming/")
            continue
        item = items[0]
        try:
            warnings = check_certificate(item.leaf, target, label=item.drop.label, now=now)
            reused = chains.get(item.leaf)
            if reused is None:
                result = build_served_chain(item.leaf, candidates_extra, label=item.drop.label, settings=settings,
                                            anchors=anchors, now=now, fetch=fetch)
                reused = chains.put(item.leaf, result)
        except CertfleetError as exc:
            errors.append(str(exc))
            continue
        served, root, chain_warnings = reused
        warnings.extend(f"{item.drop.label}: {warning}" for warning in chain_warnings)
        used_material.update(certificate_fingerprint(cert) for cert in served)
        if root is not None:
            used_material.add(certificate_fingerprint(root))
        already = target.current is not None and certificate_fingerprint(target.current) == certificate_fingerprint(item.leaf)
        plan.matches[name] = Match(name=name, certificate=item.leaf, chain=served, files=[entry.drop for entry in items],
                                   warnings=warnings, already_current=already)

    for item in parsed:
        if item.leaf is not None:
            continue
        fingerprints = {certificate_fingerprint(ca.certificate) for ca in item.cas}
        if fingerprints & used_material:
            continue
        errors.append(f"{item.drop.label}: holds only CA certificate(s) ("
                      + "; ".join(name_to_string(ca.certificate.subject) for ca in item.cas)
                      + "), no server certificate, and issued no certificate collected in this run: a CA certificate "
                        "dropped by mistake? Drop the server certificate the CA issued for the CSR")
    if errors:
        raise CollectFailures(errors)

    for name, match in plan.matches.items():
        for drop in match.files:
            plan.files.append(drop)
            plan.reports.append(_report(drop, match, role="certificate"))
    for item in parsed:
        if item.leaf is None:
            plan.files.append(item.drop)
            plan.reports.append({"file": item.drop.label, "sha256": item.drop.sha256, "definition": None,
                                 "role": "chain", "action": "used for the chain"})
    return plan


def _report(drop: DropInFile, match: Match, *, role: str) -> dict:
    info = _chain.certificate_info(match.certificate)
    return {"file": drop.label, "sha256": drop.sha256, "definition": match.name, "role": role,
            "action": "already in the store" if match.already_current else "collected",
            "serial": info["serial"], "certificate_sha256": info["sha256"], "not_after": info["not_after"],
            "subject": info["subject"], "chain": [name_to_string(cert.subject) for cert in match.chain]}


def _unmatched_message(item: ParsedFile, *, key: str, folder: str | None, targets: list, by_name: dict) -> str:
    label, leaf = item.drop.label, item.leaf
    described = _describe(leaf)
    if folder is not None and folder in by_name:
        return (f"{label}: the certificate {described} is for another key (public key SHA-256 {key}) than "
                f"{folder}'s CSR ({by_name[folder].key_fingerprint}): was it issued for an older CSR? Submit the "
                f"current CSR to the CA")
    names = set(certificate_names(leaf) or [])
    same_names = [target.name for target in targets if names and set(target.requested) & names]
    if same_names:
        return (f"{label}: the certificate {described} is for another key (public key SHA-256 {key}) than the CSR of "
                f"{', '.join(same_names)}, which asks for the same names: was it issued for an older CSR? Submit the "
                f"current CSR to the CA")
    if folder is not None:
        return f"{label}: lies in the drop-in folder of {folder}, which is not a manual definition waiting for a certificate"
    return (f"{label}: the certificate {described} (public key SHA-256 {key}) matches no pending definition: its key "
            f"is not the key of any manual definition's CSR")
