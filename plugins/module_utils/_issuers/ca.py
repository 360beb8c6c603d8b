# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The built-in private CA: create, issue under a policy, issuance index, revocation, CRL.

This module is private to the certfleet.tls collection: its API may change
without notice.

A root CA by default, optionally an issuing intermediate under it or a subordinate of an
existing enterprise CA (for example Windows Server AD CS); CRL distribution point and AIA
caIssuers URLs of the CA's settings put in every issued certificate (RFC 5280 4.2.1.13,
4.2.2.1); CRL generation. The files of one CA and where they live are ``layout.CA_FILES``
and ``layout.ca_dir`` (docs/private-ca.md describes them).

The first part of the file is pure (cryptography objects, dicts, bytes); the
second reads and writes a CA directory through ``_common.files``.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass, field

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import (
    build_name,
    csr_attributes,
    csr_digest_name,
    csr_subject_alt_names,
    classify_name,
    load_csr,
    parse_general_name,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common import files as _files
from ansible_collections.certfleet.tls.plugins.module_utils._common.files import read_file
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import (
    generate_private_key,
    key_info,
    load_private_key,
    serialize_private_key,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso, parse_iso, utc_now
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import (
    HAS_CRYPTOGRAPHY,
    CertfleetError,
    certificate_fingerprint,
    extension_value,
    general_names_to_list,
    name_to_dict,
    name_to_string,
    public_key_fingerprint,
)
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import DEFAULT_RENEW_BEFORE_DAYS

if HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ExtensionOID

    EKU_OIDS = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH, "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH}
    REVOCATION_REASONS = {
        "unspecified": x509.ReasonFlags.unspecified,
        "key_compromise": x509.ReasonFlags.key_compromise,
        "ca_compromise": x509.ReasonFlags.ca_compromise,
        "affiliation_changed": x509.ReasonFlags.affiliation_changed,
        "superseded": x509.ReasonFlags.superseded,
        "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
        "certificate_hold": x509.ReasonFlags.certificate_hold,
        "privilege_withdrawn": x509.ReasonFlags.privilege_withdrawn,
    }
else:  # pragma: no cover
    EKU_OIDS = {}
    REVOCATION_REASONS = {}

_FILES = layout.CA_FILES
CA_KINDS = ("root", "intermediate", "subordinate")
EKU_CHOICES = ("serverAuth", "clientAuth")
REASON_CHOICES = ("unspecified", "key_compromise", "ca_compromise", "affiliation_changed", "superseded",
                  "cessation_of_operation", "certificate_hold", "privilege_withdrawn")
ACTIVE = "active"
PENDING_SIGNATURE = "pending_signature"

# The built-in CA's default DN is O = "... Built-in Private CA" and a CN with the creation time
# stamp: a new CA must never reuse an old CA's DN, or clients confuse the two CAs' certificates.
DEFAULT_ORGANIZATION = "certfleet.tls Built-in Private CA"
ROLE_LABELS = {"root": "Root CA", "intermediate": "Issuing CA", "subordinate": "Subordinate CA"}

# CA/Browser Forum BR 6.3.2: 398 days at most for TLS server certificates; 397 keeps
# every client (Apple's 398-day rule counts the last day) happy.
DEFAULT_MAX_VALIDITY_DAYS = 397
DEFAULT_CRL_NEXT_UPDATE_DAYS = 30
DEFAULT_ROOT_DAYS = 3650
DEFAULT_INTERMEDIATE_DAYS = 1825
# Issued certificates start a few minutes in the past so a server whose clock is slightly
# behind does not see a "not yet valid" certificate.
BACKDATE = datetime.timedelta(minutes=5)

DEFAULT_SETTINGS = {
    "allowed_domains": [],
    "allowed_ip_networks": [],
    "max_validity_days": DEFAULT_MAX_VALIDITY_DAYS,
    "crl_distribution_points": [],
    "ca_issuers_urls": [],
    "crl_next_update_days": DEFAULT_CRL_NEXT_UPDATE_DAYS,
    "extended_key_usages": ["serverAuth"],
}


class PolicyError(CertfleetError):
    """A CSR breaks the CA's policy; ``errors`` lists every broken rule."""

    def __init__(self, message: str, errors: list[str]):
        super().__init__(message)
        self.errors = errors


# --------------------------------------------------------------------------------------------
# small helpers


def format_serial(number: int) -> str:
    """Upper-case hex with an even number of digits, as ``openssl x509 -serial`` prints it."""
    digits = format(number, "X")
    return "0" * (len(digits) % 2) + digits


def parse_serial(text) -> str:
    """Normalise a serial given as hex (colons, spaces, 0x allowed) or an int to ``format_serial`` form."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise CertfleetError(f"serial {text} must be positive")
        return format_serial(text)
    cleaned = str(text).strip().replace(":", "").replace(" ", "")
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    try:
        number = int(cleaned, 16)
    except ValueError:
        raise CertfleetError(f"serial {text!r} is not a hexadecimal number") from None
    if number <= 0:
        raise CertfleetError(f"serial {text!r} must be positive")
    return format_serial(number)


def new_serial(taken) -> int:
    """Random positive 128-bit serial not in ``taken`` (hex strings); CA/B BR 7.1 wants 64+ random bits."""
    while True:
        number = secrets.randbits(128)
        if number and format_serial(number) not in taken:
            return number


def signing_hash(private_key):
    """SHA-384 for a P-384 key, SHA-256 otherwise (RSA, P-256)."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey) and private_key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def pem(certificate) -> bytes:
    """PEM of a certificate, CSR or CRL."""
    return certificate.public_bytes(serialization.Encoding.PEM)


def pem_list(certificates) -> bytes:
    """Concatenated PEM of certificates, in order."""
    return b"".join(pem(cert) for cert in certificates)


def load_pem_list(data: bytes | None, *, source: str) -> list:
    """Certificates of a PEM file (empty when the file is absent or holds none)."""
    if not data or not data.strip():
        return []
    return [item.certificate for item in _chain.load_certificates(data, source=source).certificates]


def _aki_for(issuer_certificate, issuer_public_key):
    ski = extension_value(issuer_certificate, x509.SubjectKeyIdentifier) if issuer_certificate is not None else None
    if ski is not None:
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key)


# --------------------------------------------------------------------------------------------
# settings and subjects


def normalise_domain(value: str) -> str:
    """Lower-case DNS suffix without a leading dot or wildcard."""
    domain = str(value).strip().lower().rstrip(".")
    while domain.startswith("*.") or domain.startswith("."):
        domain = domain[2:] if domain.startswith("*.") else domain[1:]
    if not domain or not domain.isascii() or " " in domain:
        raise CertfleetError(f"allowed_domains: {value!r} is not a DNS name (use the xn-- form for internationalised names)")
    return domain


def normalise_settings(options: dict) -> dict:
    """CA settings (policy, URLs, CRL) from module-style options; None values take the defaults."""
    settings = {key: options.get(key) if options.get(key) is not None else value for key, value in DEFAULT_SETTINGS.items()}
    settings["allowed_domains"] = sorted({normalise_domain(domain) for domain in settings["allowed_domains"]})
    networks = []
    for value in settings["allowed_ip_networks"]:
        try:
            networks.append(str(ipaddress.ip_network(str(value).strip(), strict=False)))
        except ValueError:
            raise CertfleetError(f"allowed_ip_networks: {value!r} is not an IP network (CIDR such as 10.0.0.0/8)") from None
    settings["allowed_ip_networks"] = sorted(set(networks))
    for key in ("max_validity_days", "crl_next_update_days"):
        try:
            settings[key] = int(settings[key])
        except (TypeError, ValueError):
            raise CertfleetError(f"{key}: {settings[key]!r} is not a number of days") from None
        if settings[key] < 1:
            raise CertfleetError(f"{key}: must be at least 1 day, not {settings[key]}")
    for key in ("crl_distribution_points", "ca_issuers_urls"):
        urls = [str(url).strip() for url in settings[key]]
        for url in urls:
            if not (url.startswith("http://") or url.startswith("https://") or url.startswith("ldap://")):
                raise CertfleetError(f"{key}: {url!r} must be an http://, https:// or ldap:// URL")
        settings[key] = urls
    ekus = list(dict.fromkeys(settings["extended_key_usages"]))
    unknown = [eku for eku in ekus if eku not in EKU_CHOICES]
    if unknown or not ekus:
        raise CertfleetError(f"extended_key_usages: use one or more of {', '.join(EKU_CHOICES)}, not {unknown or ekus}")
    settings["extended_key_usages"] = ekus
    return settings


def ca_subject(name: str, subject: dict, *, kind: str, now: datetime.datetime) -> dict:
    """Short-name subject for a new CA: the given fields, with defaults for O and a CN unique to this CA."""
    result = {key: value for key, value in subject.items() if value not in (None, "")}
    result.setdefault("O", DEFAULT_ORGANIZATION)
    result.setdefault("CN", f"{name} {ROLE_LABELS[kind]} {now.strftime('%Y%m%d%H%M%S')}")
    return result


# --------------------------------------------------------------------------------------------
# CA certificates


def build_ca_certificate(
    *,
    subject: dict,
    public_key,
    signing_key,
    issuer_certificate=None,
    days: int,
    path_length: int | None,
    permitted_domains: list | None = None,
    permitted_networks: list | None = None,
    now: datetime.datetime | None = None,
):
    """A CA certificate: self-signed root when ``issuer_certificate`` is None, else signed by it."""
    now = now or utc_now()
    subject_name = build_name(subject)
    not_after = now + datetime.timedelta(days=days)
    if issuer_certificate is not None:
        issuer_name = issuer_certificate.subject
        # An intermediate never outlives the root that signs it.
        not_after = min(not_after, issuer_certificate.not_valid_after_utc)
    else:
        issuer_name = subject_name
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(new_serial(()))
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_aki_for(issuer_certificate, signing_key.public_key()), critical=False)
    )
    subtrees = [x509.DNSName(domain) for domain in permitted_domains or []]
    subtrees += [x509.IPAddress(ipaddress.ip_network(network)) for network in permitted_networks or []]
    if subtrees:
        builder = builder.add_extension(x509.NameConstraints(permitted_subtrees=subtrees, excluded_subtrees=None), critical=True)
    return builder.sign(signing_key, signing_hash(signing_key))


def build_ca_csr(private_key, *, subject: dict, path_length: int | None = 0):
    """CSR for a subordinate CA, asking for CA:TRUE and keyCertSign / cRLSign (the parent CA decides)."""
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(build_name(subject))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    )
    return builder.sign(private_key, signing_hash(private_key))


def ca_certificate_problems(certificate, *, private_key=None, now: datetime.datetime | None = None) -> list[str]:
    """Why a certificate cannot serve as this CA's certificate (empty list when it can)."""
    now = now or utc_now()
    problems = []
    what = name_to_string(certificate.subject) or "<empty subject>"
    if private_key is not None and not _chain.key_matches_certificate(private_key, certificate):
        problems.append(f"the certificate ({what}) is not for this CA's key (public key SHA-256 "
                        f"{public_key_fingerprint(certificate.public_key())}, the CA key's is "
                        f"{public_key_fingerprint(private_key.public_key())})")
    constraints = extension_value(certificate, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        problems.append(f"the certificate ({what}) is not a CA certificate (no basicConstraints CA:TRUE)")
    usage = extension_value(certificate, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        problems.append(f"the certificate ({what}) has a keyUsage without keyCertSign")
    if certificate.not_valid_after_utc <= now:
        problems.append(f"the certificate ({what}) expired on {iso(certificate.not_valid_after_utc)}")
    return problems


# --------------------------------------------------------------------------------------------
# policy and issuance


def _name_allowed(name: str, domains: list[str]) -> bool:
    bare = name.lower().rstrip(".")
    if bare.startswith("*."):
        bare = bare[2:]
    return any(bare == domain or bare.endswith("." + domain) for domain in domains)


def _ip_allowed(value: str, networks: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False  # not an address at all: the profile check names it
    return any(address in ipaddress.ip_network(network) for network in networks)


def name_policy_errors(subject_alt_names: list, common_name, settings: dict) -> list[str]:
    """Every SAN and the CN against allowed_domains / allowed_ip_networks.

    Names are typed by ``classify_name``, the classifier the signer uses, so "ip:8.8.8.8" is
    checked as the IP address it will be issued as. The CN is checked even when it is not
    copied into the SANs: clients still match it as a host name.
    """
    errors: list[str] = []
    domains, networks = settings["allowed_domains"], settings["allowed_ip_networks"]
    entries = [("subject_alt_name", *classify_name(entry)) for entry in subject_alt_names]
    seen = {(kind, value.lower()) for _label, kind, value in entries}
    for value in common_name if isinstance(common_name, list) else [common_name]:
        if value not in (None, ""):
            kind, value = classify_name(value, common_name=True)
            if (kind, value.lower()) not in seen:  # a CN copied into the SANs is checked once
                entries.append(("common_name (CN)", kind, value))
    for label, kind, value in entries:
        if kind == "DNS" and domains and not _name_allowed(value, domains):
            errors.append(f"{label}: {value!r} is outside the CA's allowed domains ({', '.join(domains)})")
        elif kind == "IP" and (networks or domains) and not (networks and _ip_allowed(value, networks)):
            errors.append(f"{label}: IP address {value!r} is outside the CA's allowed networks "
                          f"({', '.join(networks) or 'none allowed'})")
        elif kind in ("EMAIL", "URI") and domains:
            errors.append(f"{label}: {kind.lower()} entries are not allowed by a CA with allowed domains")
    return list(dict.fromkeys(errors))


def _csr_extension_names(csr) -> list[str]:
    names = []
    for extension in csr.extensions:
        if extension.oid == ExtensionOID.SUBJECT_ALTERNATIVE_NAME:
            continue
        label = getattr(extension.oid, "_name", None) or extension.oid.dotted_string
        if isinstance(extension.value, x509.BasicConstraints) and extension.value.ca:
            label += " (CA:TRUE)"
        names.append(label)
    return names


def plan_issue(
    csr,
    *,
    ca_certificate,
    settings: dict,
    profile="private",
    profiles: dict | None = None,
    validity_days: int | None = None,
    now: datetime.datetime | None = None,
) -> dict:
    """Check a CSR against the CA's policy and the CA profile; returns what would be issued.

    Returns {"subject", "subject_alt_name", "not_before", "not_after", "errors", "warnings",
    "profile", "public_key_sha256"}; nothing here raises for a policy problem.
    """
    # Imported here to keep the profile data out of modules that never check policy.
    from ansible_collections.certfleet.tls.plugins.module_utils._csr.profiles import check_request, resolve_profile

    now = now or utc_now()
    errors: list[str] = []
    warnings: list[str] = []
    if not csr.is_signature_valid:
        errors.append("csr: the CSR's signature does not verify (damaged or edited request)")
    public = key_info(csr.public_key())
    resolved = resolve_profile(profile or "private", profiles)
    subject = name_to_dict(csr.subject)
    report = check_request(
        resolved,
        subject=subject,
        subject_alt_names=csr_subject_alt_names(csr),
        key_info=public,
        digest=csr_digest_name(csr) or "sha256",
        attributes=csr_attributes(csr),
    )
    errors.extend(report["errors"])
    warnings.extend(report["warnings"])
    sans = report["subject_alt_name"]
    if not sans:
        errors.append("csr: the request names no DNS name or IP address (no CN and no subjectAltName)")
    errors.extend(name_policy_errors(sans, subject.get("CN"), settings))
    ignored = _csr_extension_names(csr)
    if ignored:
        # Only the SANs are taken from a CSR: a requester must never obtain CA:TRUE, extra EKUs,
        # or name constraints of their choosing.
        warnings.append(f"csr: extension(s) {', '.join(ignored)} ignored; only subjectAltName is taken from the CSR")
    maximum = settings["max_validity_days"]
    days = maximum if validity_days is None else int(validity_days)
    if days < 1:
        errors.append(f"validity_days: must be at least 1, not {days}")
    elif days > maximum:
        errors.append(f"validity_days: {days} days is more than the CA's maximum of {maximum} days")
    not_before = now - BACKDATE
    not_after = now + datetime.timedelta(days=max(days, 1))
    ca_end = ca_certificate.not_valid_after_utc
    if ca_end <= now:
        errors.append(f"the CA certificate ({name_to_string(ca_certificate.subject)}) expired on {iso(ca_end)}; renew the CA first")
    elif not_after > ca_end:
        warnings.append(f"validity shortened to the CA certificate's own expiry {iso(ca_end)}")
        not_after = ca_end
    return {
        "subject": subject,
        "subject_string": name_to_string(csr.subject),
        "subject_alt_name": sans,
        "not_before": not_before,
        "not_after": not_after,
        "errors": errors,
        "warnings": warnings,
        "profile": report["profile"],
        "public_key_sha256": public["fingerprint"],
    }


def policy_failure_message(errors: list[str], *, what: str = "the CSR") -> str:
    """One line listing every broken rule."""
    return f"{what} breaks {len(errors)} rule(s) of the CA policy, nothing was issued: " + "; ".join(errors)


def sign_certificate(csr, plan: dict, *, ca_certificate, ca_key, settings: dict, serial: int):
    """Issue a server certificate: subject and SANs from the plan, every other extension from the CA."""
    public_key = csr.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(plan["not_before"])
        .not_valid_after(plan["not_after"])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False,
            # RSA key exchange (TLS 1.2 without ECDHE, old Windows clients) needs keyEncipherment.
            key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([EKU_OIDS[name] for name in settings["extended_key_usages"]]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_aki_for(ca_certificate, ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName([parse_general_name(entry) for entry in plan["subject_alt_name"]]),
                       critical=False)
    )
    if settings["crl_distribution_points"]:
        points = [x509.DistributionPoint(full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None,
                                         crl_issuer=None) for url in settings["crl_distribution_points"]]
        builder = builder.add_extension(x509.CRLDistributionPoints(points), critical=False)
    if settings["ca_issuers_urls"]:
        access = [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url))
                  for url in settings["ca_issuers_urls"]]
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    return builder.sign(ca_key, signing_hash(ca_key))


def certificate_sans(certificate) -> list[str]:
    """SAN strings of a certificate, empty without the extension."""
    extension = extension_value(certificate, x509.SubjectAlternativeName)
    return general_names_to_list(extension) if extension is not None else []


def reissue_reason(certificate, *, plan: dict, ca_certificate, index: dict, now: datetime.datetime,
                   renew_before_days: int) -> str | None:
    """Why an existing certificate cannot be kept for this plan, or None when it can."""
    if not _chain.is_issued_by(certificate, ca_certificate):
        return "the existing certificate was not issued by this CA"
    if public_key_fingerprint(certificate.public_key()) != plan["public_key_sha256"]:
        return "the existing certificate is for another key"
    if name_to_string(certificate.subject) != plan["subject_string"]:
        return "the subject changed"
    if sorted(certificate_sans(certificate)) != sorted(plan["subject_alt_name"]):
        return "the subject alternative names changed"
    entry = index["certificates"].get(format_serial(certificate.serial_number))
    if entry is None:
        return "the existing certificate is not in the CA's issuance index"
    if entry["status"] != "valid":
        return f"the existing certificate is {entry['status'].replace('_', ' ')}"
    remaining = certificate.not_valid_after_utc - now
    if remaining <= datetime.timedelta(days=renew_before_days):
        return (f"the existing certificate expires on {iso(certificate.not_valid_after_utc)}, "
                f"within the renewal window of {renew_before_days} days")
    return None


def describe_certificate(certificate) -> dict:
    """Subject, issuer, serial, fingerprints, dates and SANs of one certificate (no key material)."""
    info = _chain.certificate_info(certificate)
    info["subject_alt_name"] = certificate_sans(certificate)
    return info


# --------------------------------------------------------------------------------------------
# issuance index and revocation state machine
#
#   valid --revoke(reason)--> revoked            (final)
#   valid --revoke(certificate_hold)--> on_hold
#   on_hold --release--> valid
#   on_hold --revoke(reason)--> revoked


def empty_index() -> dict:
    """A new issuance index."""
    return {"version": 1, "crl_number": 0, "certificates": {}}


def parse_index(data: bytes | None, *, source: str = _FILES["index"]) -> dict:
    """The issuance index as a dict (a new index when absent); a damaged file is an error naming it."""
    if data is None:
        return empty_index()
    try:
        index = json.loads(data)
    except ValueError as exc:
        raise CertfleetError(f"{source}: not valid JSON ({exc}); restore it from a backup") from None
    if not isinstance(index, dict) or not isinstance(index.get("certificates"), dict):
        raise CertfleetError(f"{source}: not a certfleet.tls issuance index")
    index.setdefault("crl_number", 0)
    return index


def dump_json(data: dict) -> bytes:
    """Deterministic JSON for the CA files."""
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def record_issued(index: dict, certificate, *, requester: str | None, profile: str | None, now: datetime.datetime) -> dict:
    """Add a newly issued certificate to the index; returns its entry."""
    serial = format_serial(certificate.serial_number)
    if serial in index["certificates"]:
        raise CertfleetError(f"serial {serial} is already in the issuance index")
    entry = {
        "serial": serial,
        "subject": name_to_string(certificate.subject),
        "subject_alt_name": certificate_sans(certificate),
        "sha256": certificate_fingerprint(certificate),
        "public_key_sha256": public_key_fingerprint(certificate.public_key()),
        "not_before": iso(certificate.not_valid_before_utc),
        "not_after": iso(certificate.not_valid_after_utc),
        "issued": iso(now),
        "status": "valid",
        "requester": requester,
        "profile": profile,
    }
    index["certificates"][serial] = entry
    return entry


def find_reusable(index: dict, *, plan: dict, now: datetime.datetime, renew_before_days: int) -> list[str]:
    """Serials of valid certificates for the same key, subject and SANs, outside the renewal window, newest first."""
    found = []
    for serial, entry in index["certificates"].items():
        if (entry["status"] == "valid" and entry["public_key_sha256"] == plan["public_key_sha256"]
                and entry["subject"] == plan["subject_string"]
                and sorted(entry["subject_alt_name"]) == sorted(plan["subject_alt_name"])
                and parse_iso(entry["not_after"]) - now > datetime.timedelta(days=renew_before_days)):
            found.append((entry["issued"], serial))
    return [serial for _issued, serial in sorted(found, reverse=True)]


def revoke(index: dict, serial, *, reason: str = "unspecified", when: datetime.datetime | None = None,
           invalidity_date: str | None = None, ca_name: str = "the CA") -> bool:
    """Apply one revocation to the index; True when it changed something (see the state machine above)."""
    key = parse_serial(serial)
    entry = index["certificates"].get(key)
    if entry is None:
        raise CertfleetError(f"revoke: serial {key} was not issued by {ca_name} (not in its issuance index)")
    if reason not in REASON_CHOICES:
        raise CertfleetError(f"revoke: reason {reason!r} must be one of {', '.join(REASON_CHOICES)}")
    status = entry["status"]
    if status == "revoked":
        if entry.get("reason") == reason:
            return False
        raise CertfleetError(f"revoke: serial {key} is already revoked ({entry.get('reason')}); a revocation is final")
    if status == "on_hold" and reason == "certificate_hold":
        return False
    if invalidity_date is not None:
        try:
            parse_iso(invalidity_date)
        except ValueError:
            raise CertfleetError(f"revoke: invalidity_date {invalidity_date!r} must look like 2026-01-31T00:00:00Z") from None
    entry.update(status="on_hold" if reason == "certificate_hold" else "revoked", reason=reason,
                 revoked=iso(when or utc_now()))
    if invalidity_date is not None:
        entry["invalidity_date"] = invalidity_date
    return True


def release_hold(index: dict, serial, *, ca_name: str = "the CA") -> bool:
    """Take a certificate off hold (certificate_hold is the only reversible reason, RFC 5280 §5.3.1)."""
    key = parse_serial(serial)
    entry = index["certificates"].get(key)
    if entry is None:
        raise CertfleetError(f"release_hold: serial {key} was not issued by {ca_name} (not in its issuance index)")
    if entry["status"] == "valid":
        return False
    if entry["status"] != "on_hold":
        raise CertfleetError(f"release_hold: serial {key} is revoked ({entry.get('reason')}), not on hold; a revocation is final")
    entry["status"] = "valid"
    for name in ("reason", "revoked", "invalidity_date"):
        entry.pop(name, None)
    return True


def index_summary(index: dict, *, now: datetime.datetime | None = None) -> dict:
    """Counts by status (valid certificates past notAfter count as expired)."""
    now = now or utc_now()
    counts = {"issued": 0, "valid": 0, "expired": 0, "on_hold": 0, "revoked": 0}
    for entry in index["certificates"].values():
        counts["issued"] += 1
        status = entry["status"]
        if status == "valid" and parse_iso(entry["not_after"]) <= now:
            status = "expired"
        counts[status] += 1
    return counts


def _revoked_set(index: dict) -> set:
    return {(serial, entry.get("reason")) for serial, entry in index["certificates"].items()
            if entry["status"] in ("revoked", "on_hold")}


# --------------------------------------------------------------------------------------------
# CRL


def build_crl(*, ca_certificate, ca_key, index: dict, number: int, now: datetime.datetime, next_update_days: int):
    """A CRL listing every revoked and on-hold certificate of the index, with CRL number and AKI."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_certificate.subject)
        .last_update(now)
        .next_update(now + datetime.timedelta(days=next_update_days))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(_aki_for(ca_certificate, ca_key.public_key()), critical=False)
    )
    for serial, entry in sorted(index["certificates"].items()):
        if entry["status"] not in ("revoked", "on_hold"):
            continue
        revoked = (x509.RevokedCertificateBuilder().serial_number(int(serial, 16))
                   .revocation_date(parse_iso(entry["revoked"])))
        if entry.get("reason") and entry["reason"] != "unspecified":
            # RFC 5280 §5.3.1: reasonCode unspecified SHOULD be absent.
            revoked = revoked.add_extension(x509.CRLReason(REVOCATION_REASONS[entry["reason"]]), critical=False)
        if entry.get("invalidity_date"):
            revoked = revoked.add_extension(x509.InvalidityDate(parse_iso(entry["invalidity_date"]).replace(tzinfo=None)),
                                            critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    return builder.sign(ca_key, signing_hash(ca_key))


def crl_refresh_reason(existing: bytes | None, *, ca_certificate, index: dict, now: datetime.datetime,
                       next_update_days: int) -> str | None:
    """Why the CRL must be (re)generated, or None when the current one is fine."""
    if existing is None:
        return "no CRL yet"
    try:
        crl = x509.load_pem_x509_crl(existing)
    except ValueError:
        return "the CRL file cannot be read"
    if crl.issuer != ca_certificate.subject or not crl.is_signature_valid(ca_certificate.public_key()):
        return "the CRL was not signed by this CA certificate"
    listed = set()
    for revoked in crl:
        try:
            reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
        except x509.ExtensionNotFound:
            reason = "unspecified"
        listed.add((format_serial(revoked.serial_number), reason))
    if listed != _revoked_set(index):
        return "the revocations changed"
    next_update = crl.next_update_utc
    if next_update is None or (next_update - now) < datetime.timedelta(days=next_update_days) / 2:
        return "the CRL is past half of its lifetime"
    return None


def crl_info(data: bytes | None) -> dict | None:
    """Number, dates and revoked serials of a PEM CRL (None when absent)."""
    if not data:
        return None
    crl = x509.load_pem_x509_crl(data)
    try:
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        number = None
    return {
        "number": number,
        "this_update": iso(crl.last_update_utc),
        "next_update": iso(crl.next_update_utc) if crl.next_update_utc else None,
        "revoked": sorted(format_serial(item.serial_number) for item in crl),
    }


# --------------------------------------------------------------------------------------------
# the CA directory


@dataclass
class CaDirectory:
    """One CA as stored: files read, key not yet decrypted (``open_key`` does that)."""

    name: str
    directory: str
    config: dict
    certificate: object = None
    chain: list = field(default_factory=list)
    root: object = None
    index: dict = field(default_factory=empty_index)
    key_pem: bytes | None = None
    crl_pem: bytes | None = None
    csr_pem: bytes | None = None
    _key: object = None

    @property
    def kind(self) -> str:
        return self.config.get("kind", "root")

    @property
    def status(self) -> str:
        return self.config.get("status", ACTIVE)

    @property
    def settings(self) -> dict:
        return normalise_settings(self.config.get("settings") or {})

    def open_key(self, passphrase: str):
        """The decrypted CA key (cached); a wrong passphrase is an error naming the CA."""
        if self._key is None:
            if self.key_pem is None:
                raise CertfleetError(f"CA {self.name}: {_FILES['key']} is missing from {self.directory}")
            self._key = load_private_key(self.key_pem, source=f"CA {self.name}: {_FILES['key']} (CA passphrase)", passphrase=passphrase)
        return self._key

    def issuer_chain(self) -> list:
        """Certificates a leaf issued by this CA is served with: the CA certificate unless it is a root, then its chain."""
        if self.certificate is None:
            return []
        own = [] if _chain.is_self_signed(self.certificate) else [self.certificate]
        return own + list(self.chain)

    def trust_anchors(self) -> list:
        """The root certificate(s) that anchor this CA's chain."""
        if self.root is not None:
            return [self.root]
        if self.certificate is not None and _chain.is_self_signed(self.certificate):
            return [self.certificate]
        return []


def load_ca(directory: str, *, name: str) -> CaDirectory | None:
    """Read a CA directory (None when it does not exist); damaged files are errors naming them."""
    config_data = read_file(os.path.join(directory, _FILES["config"]), option=f"CA {name}: {_FILES['config']}")
    if config_data is None:
        if os.path.isdir(directory) and [entry for entry in os.listdir(directory) if not entry.startswith(".")]:
            raise CertfleetError(f"CA {name}: {directory} exists but has no {_FILES['config']}; it is not a certfleet.tls "
                                 f"CA directory")
        return None
    try:
        config = json.loads(config_data)
    except ValueError as exc:
        raise CertfleetError(f"CA {name}: {directory}/{_FILES['config']} is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("kind") not in CA_KINDS:
        raise CertfleetError(f"CA {name}: {directory}/{_FILES['config']} is not a certfleet.tls CA description")

    def cert_file(filename):
        data = read_file(os.path.join(directory, filename), option=f"CA {name}: {filename}")
        return load_pem_list(data, source=f"CA {name}: {filename}")

    certs = cert_file(_FILES["cert"])
    roots = cert_file(_FILES["root"])
    ca = CaDirectory(
        name=name,
        directory=directory,
        config=config,
        certificate=certs[0] if certs else None,
        chain=cert_file(_FILES["chain"]),
        root=roots[0] if roots else None,
        index=parse_index(read_file(os.path.join(directory, _FILES["index"]), option=f"CA {name}: {_FILES['index']}"),
                          source=f"CA {name}: {directory}/{_FILES['index']}"),
        key_pem=read_file(os.path.join(directory, _FILES["key"]), option=f"CA {name}: {_FILES['key']}"),
        crl_pem=read_file(os.path.join(directory, _FILES["crl_pem"]), option=f"CA {name}: {_FILES['crl_pem']}"),
        csr_pem=read_file(os.path.join(directory, _FILES["csr"]), option=f"CA {name}: {_FILES['csr']}"),
    )
    if ca.status == ACTIVE and ca.certificate is None:
        raise CertfleetError(f"CA {name}: {_FILES['cert']} is missing from {directory}")
    return ca


def load_store_ca(store_path: str, name: str) -> CaDirectory:
    """An existing, active CA of the store, or an error telling how to create it."""
    directory = layout.ca_dir(store_path, name)
    ca = load_ca(directory, name=name)
    if ca is None:
        raise CertfleetError(f"CA {name}: not found in {os.path.dirname(directory)}; create it with "
                             f"certfleet.tls.private_ca (the request playbook does, from certfleet_private_cas)")
    if ca.status != ACTIVE:
        raise CertfleetError(f"CA {name}: the subordinate CA is waiting for its certificate from the parent CA "
                             f"(submit {directory}/{_FILES['csr']}, then run certfleet.tls.private_ca with signed_certificate_path)")
    return ca


def _open_ca_directory(directory: str, subdirectories=()) -> int:
    """Descriptor of a CA directory (0700: it holds the CA key), created as needed; no symbolic link is
    followed from its parent's parent down (ca/, ca/<ca>, <ca>/root, issued/), so a planted link cannot
    redirect the CA's files out of the store."""
    top = os.path.dirname(os.path.dirname(os.path.abspath(directory)))
    try:
        os.makedirs(top, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise CertfleetError(f"store_path: cannot create '{top}' ({exc.strerror})") from None
    parts = [os.path.basename(os.path.dirname(os.path.abspath(directory))), os.path.basename(directory), *subdirectories]
    return _files.open_directory_nofollow(top, parts, create_mode=0o700, option="store_path")


def ensure_private_directory(path: str) -> None:
    """Create a CA directory (0700: it holds the CA key); a symbolic link on the way is refused."""
    os.close(_open_ca_directory(path))


@contextlib.contextmanager
def locked(directory: str):
    """Hold an exclusive lock on a CA directory while its index is read, changed and written."""
    import fcntl  # POSIX only; imported here so the pure functions above import anywhere

    ensure_private_directory(directory)
    lock_path = os.path.join(directory, _FILES["lock"])
    try:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        reason = "a symbolic link; the store never writes through a link" if os.path.islink(lock_path) else exc.strerror
        raise CertfleetError(f"store_path: cannot open the CA lock '{lock_path}' ({reason})") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def write_files(directory: str, files: dict, *, name: str) -> None:
    """Write CA files atomically in a safe order: key, certificates, issued copies, index, CRL, the CA description last."""
    first = [_FILES[kind] for kind in ("key", "csr", "cert", "chain", "root")]
    last = [_FILES[kind] for kind in ("index", "crl_pem", "crl", "config")]
    rest = sorted(key for key in files if key not in first and key not in last)
    for filename in first + rest + last:
        if filename not in files:
            continue
        path = os.path.join(directory, filename)
        # Certificates and CRLs are public; the key stays 0600 from its creation.
        public = (filename.endswith(".pem") and os.path.basename(filename) != _FILES["key"]) or filename.endswith(".der")
        descriptor = _open_ca_directory(directory, filename.split("/")[:-1])
        try:
            _files.write_file_atomic_at(descriptor, os.path.basename(filename), files[filename], path=path,
                                        option=f"CA {name}: {filename}", mode=0o644 if public else 0o600)
        finally:
            os.close(descriptor)


def new_key_pem(key_spec: dict, passphrase: str) -> tuple[object, bytes]:
    """A new CA key and its encrypted PKCS#8 PEM."""
    key = generate_private_key(key_type=key_spec["type"], size=key_spec["size"], curve=key_spec["curve"])
    return key, serialize_private_key(key, passphrase=passphrase)


# --------------------------------------------------------------------------------------------
# the private_ca module's engine: create, import, settings, revoke, CRL


def _ca_config(*, name: str, kind: str, status: str, subject: dict, key_spec: dict, settings: dict,
               now: datetime.datetime) -> dict:
    return {
        "version": 1,
        "name": name,
        "kind": kind,
        "status": status,
        "created": iso(now),
        "subject": name_to_string(build_name(subject)),
        "key": {"type": key_spec["type"], "size": key_spec["size"] if key_spec["type"] == "RSA" else None,
                "curve": key_spec["curve"] if key_spec["type"] == "ECC" else None},
        "settings": settings,
    }


def _crl_files(*, ca_certificate, ca_key, index: dict, now: datetime.datetime, next_update_days: int) -> dict:
    index["crl_number"] = int(index.get("crl_number", 0)) + 1
    crl = build_crl(ca_certificate=ca_certificate, ca_key=ca_key, index=index, number=index["crl_number"], now=now,
                    next_update_days=next_update_days)
    return {_FILES["crl_pem"]: pem(crl), _FILES["crl"]: crl.public_bytes(serialization.Encoding.DER), _FILES["index"]: dump_json(index)}


def _create(*, name: str, kind: str, passphrase: str, subject: dict, key_spec: dict, settings: dict,
            validity_days: int | None, intermediate_validity_days: int | None, name_constraints: bool,
            now: datetime.datetime) -> tuple[dict, dict, list[str]]:
    """Files of a new CA (and of its root for kind=intermediate): ({relative path: bytes}, config, actions)."""
    permitted = {"permitted_domains": settings["allowed_domains"], "permitted_networks": settings["allowed_ip_networks"]} \
        if name_constraints else {}
    files: dict = {}
    actions = []
    if kind == "subordinate":
        key, key_pem = new_key_pem(key_spec, passphrase)
        csr = build_ca_csr(key, subject=ca_subject(name, subject, kind=kind, now=now))
        config = _ca_config(name=name, kind=kind, status=PENDING_SIGNATURE, subject=ca_subject(name, subject, kind=kind, now=now),
                            key_spec=key_spec, settings=settings, now=now)
        files.update({_FILES["key"]: key_pem, _FILES["csr"]: pem(csr), _FILES["index"]: dump_json(empty_index()), _FILES["config"]: dump_json(config)})
        return files, config, ["CA key generated", "CA CSR generated for the parent CA"]
    if kind == "intermediate":
        root_key, root_key_pem = new_key_pem(key_spec, passphrase)
        root_subject = ca_subject(name, {k: v for k, v in subject.items() if k != "CN"}, kind="root", now=now)
        root = build_ca_certificate(subject=root_subject, public_key=root_key.public_key(), signing_key=root_key,
                                    days=validity_days or DEFAULT_ROOT_DAYS, path_length=1, now=now)
        key, key_pem = new_key_pem(key_spec, passphrase)
        issuing_subject = ca_subject(name, subject, kind="intermediate", now=now)
        certificate = build_ca_certificate(subject=issuing_subject, public_key=key.public_key(), signing_key=root_key,
                                           issuer_certificate=root, days=intermediate_validity_days or DEFAULT_INTERMEDIATE_DAYS,
                                           path_length=0, now=now, **permitted)
        root_index = empty_index()
        record_issued(root_index, certificate, requester=name, profile=None, now=now)
        root_config = _ca_config(name=f"{name}/root", kind="root", status=ACTIVE, subject=root_subject, key_spec=key_spec,
                                 settings=normalise_settings({"crl_next_update_days": settings["crl_next_update_days"]}),
                                 now=now)
        root_files = {_FILES["key"]: root_key_pem, _FILES["cert"]: pem(root), _FILES["chain"]: b"", _FILES["root"]: pem(root),
                      layout.ca_issued_file(format_serial(certificate.serial_number)): pem(certificate),
                      _FILES["config"]: dump_json(root_config)}
        root_files.update(_crl_files(ca_certificate=root, ca_key=root_key, index=root_index, now=now,
                                     next_update_days=settings["crl_next_update_days"]))
        files.update({f"{layout.CA_ROOT}/{path}": data for path, data in root_files.items()})
        files.update({_FILES["chain"]: b"", _FILES["root"]: pem(root)})
        actions += ["root CA created", "intermediate CA created"]
    else:
        key, key_pem = new_key_pem(key_spec, passphrase)
        issuing_subject = ca_subject(name, subject, kind="root", now=now)
        # pathLenConstraint 0: this root signs server certificates only.
        certificate = build_ca_certificate(subject=issuing_subject, public_key=key.public_key(), signing_key=key,
                                           days=validity_days or DEFAULT_ROOT_DAYS, path_length=0, now=now, **permitted)
        files.update({_FILES["chain"]: b"", _FILES["root"]: pem(certificate)})
        actions.append("root CA created")
    config = _ca_config(name=name, kind=kind, status=ACTIVE, subject=issuing_subject, key_spec=key_spec, settings=settings, now=now)
    index = empty_index()
    files.update({_FILES["key"]: key_pem, _FILES["cert"]: pem(certificate), _FILES["config"]: dump_json(config)})
    files.update(_crl_files(ca_certificate=certificate, ca_key=key, index=index, now=now,
                            next_update_days=settings["crl_next_update_days"]))
    actions.append("CRL 1 generated")
    return files, config, actions


def _import_subordinate(ca: CaDirectory, key, *, signed: list[bytes], sources: list[str], now: datetime.datetime) -> tuple[dict, list[str]]:
    """Files for the parent CA's certificate of a subordinate CA, and warnings; raises when it does not fit."""
    pile = []
    for data, source in zip(signed, sources):
        pile.extend(_chain.load_certificates(data, source=source).certificates)
    own = [item for item in pile if _chain.key_matches_certificate(key, item.certificate)]
    if not own:
        raise CertfleetError(f"CA {ca.name}: none of the certificates in {', '.join(sources)} is for this CA's key "
                             f"(public key SHA-256 {public_key_fingerprint(key.public_key())}); was {_FILES['csr']} signed?")
    leaf = sorted(own, key=lambda item: item.certificate.not_valid_after_utc)[-1]
    problems = ca_certificate_problems(leaf.certificate, private_key=key, now=now)
    if problems:
        raise CertfleetError(f"CA {ca.name}: cannot use {leaf.source} as the CA certificate: " + "; ".join(problems))
    others = [item for item in pile if item is not leaf and not _chain.key_matches_certificate(key, item.certificate)]
    result = _chain.build_chain(leaf, others, allow_incomplete=True, catalog=[], now=now)
    warnings = [f"CA {ca.name}: {warning}" for warning in result.warnings if not warning.startswith("ignored unrelated")]
    if result.root is None:
        warnings.append(f"CA {ca.name}: the parent CA's root certificate is not among the files given; add it "
                        f"(signed_chain_paths) so issued chains can be verified")
    files = {
        _FILES["cert"]: pem(leaf.certificate),
        _FILES["chain"]: pem_list(item.certificate for item in result.intermediates),
    }
    if result.root is not None:
        files[_FILES["root"]] = pem(result.root.certificate)
    return files, warnings


def _identity_warnings(ca: CaDirectory, *, kind: str | None, subject: dict, key_spec_given: dict) -> list[str]:
    warnings = []
    if kind and kind != ca.kind:
        warnings.append(f"CA {ca.name} exists as kind={ca.kind}; kind={kind} is only used when a CA is created "
                        f"(a CA is never replaced: remove {ca.directory} to start again)")
    source = ca.certificate.subject if ca.certificate is not None else None
    if source is None and ca.csr_pem:
        source = load_csr(ca.csr_pem, source=f"CA {ca.name}: {_FILES['csr']}").subject
    existing = name_to_dict(source) if source is not None else {}
    for short, value in subject.items():
        if value not in (None, "") and existing.get(short) != value:
            warnings.append(f"CA {ca.name}: subject {short}={existing.get(short)!r} is kept; {short}={value!r} only applies "
                            f"to a new CA")
    recorded = ca.config.get("key") or {}
    for item, value in key_spec_given.items():
        if value is not None and recorded.get(item) not in (None, value):
            warnings.append(f"CA {ca.name}: key {item}={recorded.get(item)!r} is kept; {item}={value!r} only applies to a new CA")
    return warnings


def ca_view(ca: CaDirectory | None) -> dict:
    """What the diff shows of a CA: status, certificate fingerprint, CRL number, revocations, settings."""
    if ca is None:
        return {"exists": False}
    return {
        "exists": True,
        "kind": ca.kind,
        "status": ca.status,
        "certificate_sha256": certificate_fingerprint(ca.certificate) if ca.certificate is not None else None,
        "crl_number": ca.index.get("crl_number"),
        "revoked": sorted(serial for serial, _reason in _revoked_set(ca.index)),
        "settings": ca.config.get("settings"),
    }


def run_private_ca(
    *,
    store_path: str,
    name: str,
    passphrase: str,
    kind: str | None = None,
    subject: dict | None = None,
    key_spec: dict | None = None,
    settings_options: dict | None = None,
    validity_days: int | None = None,
    intermediate_validity_days: int | None = None,
    name_constraints: bool = False,
    signed_certificates: list[tuple[bytes, str]] | None = None,
    revocations: list[dict] | None = None,
    release: list | None = None,
    refresh_crl: bool = False,
    check_mode: bool = False,
    now: datetime.datetime | None = None,
) -> dict:
    """Ensure one CA in the store; returns the module result (no key material)."""
    if not layout.NAME_PATTERN.fullmatch(name or ""):
        raise CertfleetError(f"name: {name!r} must be 1-128 characters of letters, digits, '.', '_' or '-' (it names a directory)")
    if not passphrase:
        raise CertfleetError("passphrase: the CA passphrase is required (the CA key is encrypted at rest); keep it in Ansible Vault")
    now = now or utc_now()
    subject = subject or {}
    key_given = key_spec or {}
    full_key = {"type": key_given.get("type") or "RSA", "size": key_given.get("size") or 3072,
                "curve": key_given.get("curve") or "secp384r1"}
    given = {key: value for key, value in (settings_options or {}).items() if value is not None}
    directory = layout.ca_dir(store_path, name)
    ca = load_ca(directory, name=name)
    # Settings not given keep their recorded values (defaults for a new CA).
    settings = normalise_settings(dict((ca.config.get("settings") or {}) if ca is not None else {}, **given))
    before = ca_view(ca)
    actions: list[str] = []
    warnings: list[str] = []
    files: dict = {}
    result = {"name": name, "directory": directory}

    if ca is None:
        kind = kind or "root"
        if full_key["type"] == "RSA" and (full_key["size"] < 2048 or full_key["size"] % 8):
            raise CertfleetError(f"key_size: a CA key needs at least 2048 bits, a multiple of 8, not {full_key['size']}")
        if signed_certificates:
            raise CertfleetError(f"signed_certificate_path: CA {name} does not exist yet; create the subordinate CA first, "
                                 f"submit its {_FILES['csr']}, then import the certificate")
        if revocations or release:
            raise CertfleetError(f"revoke: CA {name} does not exist yet, it has issued nothing")
        if check_mode:
            actions = {"root": ["root CA created"], "intermediate": ["root CA created", "intermediate CA created"],
                       "subordinate": ["CA key generated", "CA CSR generated for the parent CA"]}[kind]
            result.update(changed=True, actions=actions, kind=kind,
                          status=PENDING_SIGNATURE if kind == "subordinate" else ACTIVE, warnings=warnings,
                          diff={"before": before, "after": {"exists": True, "kind": kind}})
            return result
        files, _config, actions = _create(name=name, kind=kind, passphrase=passphrase, subject=subject, key_spec=full_key,
                                          settings=settings, validity_days=validity_days,
                                          intermediate_validity_days=intermediate_validity_days,
                                          name_constraints=name_constraints, now=now)
        with locked(directory):
            if load_ca(directory, name=name) is not None:
                raise CertfleetError(f"CA {name} was created by another run meanwhile; run the task again")
            write_files(directory, files, name=name)
        ca = load_ca(directory, name=name)
        if kind == "subordinate":
            warnings.append(f"CA {name}: submit {directory}/{_FILES['csr']} to the parent (enterprise) CA, then run this task "
                            f"again with signed_certificate_path")
    else:
        with contextlib.ExitStack() as stack:
            if not check_mode:
                stack.enter_context(locked(directory))
                ca = load_ca(directory, name=name)  # re-read under the lock
            key = ca.open_key(passphrase)
            warnings += _identity_warnings(ca, kind=kind, subject=subject, key_spec_given=key_given)
            config = dict(ca.config)
            if settings != normalise_settings(ca.config.get("settings") or {}):
                changed_keys = sorted(k for k in settings if settings[k] != (ca.config.get("settings") or {}).get(k))
                actions.append(f"settings updated ({', '.join(changed_keys)})")
                config["settings"] = settings
                if name_constraints and ({"allowed_domains", "allowed_ip_networks"} & set(changed_keys)):
                    warnings.append(f"CA {name}: name constraints in the CA certificate are fixed at creation; the new "
                                    f"allowed domains / networks are enforced when issuing")
            if signed_certificates:
                if ca.kind != "subordinate":
                    raise CertfleetError(f"signed_certificate_path: CA {name} is a {ca.kind} CA; only a subordinate CA imports "
                                         f"its certificate from a parent CA")
                new_files, import_warnings = _import_subordinate(
                    ca, key, signed=[data for data, _source in signed_certificates],
                    sources=[source for _data, source in signed_certificates], now=now)
                warnings += import_warnings
                current = pem(ca.certificate) if ca.certificate is not None else None
                if new_files[_FILES["cert"]] != current or new_files[_FILES["chain"]] != pem_list(ca.chain) \
                        or new_files.get(_FILES["root"], pem(ca.root) if ca.root is not None else None) != (
                            pem(ca.root) if ca.root is not None else None):
                    actions.append("CA certificate imported" if ca.status != ACTIVE else "CA certificate replaced")
                    files.update(new_files)
                    ca.certificate = load_pem_list(new_files[_FILES["cert"]], source=_FILES["cert"])[0]
                    ca.chain = load_pem_list(new_files[_FILES["chain"]], source=_FILES["chain"])
                    if _FILES["root"] in new_files:
                        ca.root = load_pem_list(new_files[_FILES["root"]], source=_FILES["root"])[0]
                    config["status"] = ACTIVE
            elif ca.status != ACTIVE:
                warnings.append(f"CA {name}: waiting for the parent CA's certificate; submit {directory}/{_FILES['csr']} and run "
                                f"again with signed_certificate_path")
            index_changed = False
            for item in revocations or []:
                if ca.status != ACTIVE and config["status"] != ACTIVE:
                    raise CertfleetError(f"revoke: CA {name} has not issued anything yet")
                if revoke(ca.index, item["serial"], reason=item.get("reason") or "unspecified", when=now,
                          invalidity_date=item.get("invalidity_date"), ca_name=f"CA {name}"):
                    actions.append(f"revoked {parse_serial(item['serial'])} ({item.get('reason') or 'unspecified'})")
                    index_changed = True
            for serial in release or []:
                if release_hold(ca.index, serial, ca_name=f"CA {name}"):
                    actions.append(f"released {parse_serial(serial)} from hold")
                    index_changed = True
            if config["status"] == ACTIVE:
                reason = crl_refresh_reason(None if _FILES["cert"] in files else ca.crl_pem, ca_certificate=ca.certificate,
                                            index=ca.index, now=now, next_update_days=settings["crl_next_update_days"])
                if refresh_crl and reason is None:
                    reason = "refresh_crl=true"
                if reason:
                    actions.append(f"CRL {int(ca.index.get('crl_number', 0)) + 1} generated ({reason})")
                    if not check_mode:
                        files.update(_crl_files(ca_certificate=ca.certificate, ca_key=key, index=ca.index, now=now,
                                                next_update_days=settings["crl_next_update_days"]))
                elif index_changed:
                    files[_FILES["index"]] = dump_json(ca.index)
            elif index_changed:
                files[_FILES["index"]] = dump_json(ca.index)
            if actions and config != ca.config:
                config["updated"] = iso(now)
                files[_FILES["config"]] = dump_json(config)
            ca.config = config
            root_actions = _refresh_root_crl(ca, passphrase=passphrase, now=now, check_mode=check_mode)
            actions += root_actions
            if files and not check_mode:
                write_files(directory, files, name=name)
        if files and not check_mode:
            ca = load_ca(directory, name=name)
    result.update(
        changed=bool(actions),
        actions=actions,
        kind=ca.kind,
        status=ca.status,
        warnings=warnings,
        diff={"before": before, "after": ca_view(ca)},
    )
    result.update(describe_ca(ca, now=now))
    return result


def _refresh_root_crl(ca: CaDirectory, *, passphrase: str, now: datetime.datetime, check_mode: bool) -> list[str]:
    """Keep the CRL of an intermediate CA's root current (it lists revoked intermediates)."""
    if ca.kind != "intermediate":
        return []
    directory = os.path.join(ca.directory, layout.CA_ROOT)
    root = load_ca(directory, name=f"{ca.name}/root")
    if root is None:
        return []
    settings = root.settings
    reason = crl_refresh_reason(root.crl_pem, ca_certificate=root.certificate, index=root.index, now=now,
                                next_update_days=settings["crl_next_update_days"])
    if not reason:
        return []
    action = f"root CRL {int(root.index.get('crl_number', 0)) + 1} generated ({reason})"
    if not check_mode:
        files = _crl_files(ca_certificate=root.certificate, ca_key=root.open_key(passphrase), index=root.index, now=now,
                           next_update_days=settings["crl_next_update_days"])
        write_files(directory, files, name=root.name)
    return [action]


def describe_ca(ca: CaDirectory, *, now: datetime.datetime | None = None) -> dict:
    """The public side of a CA for module results: certificates (PEM), chain, CRL, index counts, settings."""
    now = now or utc_now()
    info = {
        "certificate": pem(ca.certificate).decode("ascii") if ca.certificate is not None else None,
        "root_certificate": pem(ca.trust_anchors()[0]).decode("ascii") if ca.trust_anchors() else None,
        "ca_chain": [describe_certificate(cert) for cert in ([ca.certificate] if ca.certificate is not None else []) + list(ca.chain)
                     + ([ca.root] if ca.root is not None and ca.root != ca.certificate else [])],
        "csr": ca.csr_pem.decode("ascii") if ca.csr_pem and ca.status != ACTIVE else None,
        "crl": crl_info(ca.crl_pem),
        "index": index_summary(ca.index, now=now),
        "settings": ca.settings,
    }
    if ca.certificate is not None:
        info.update(subject=name_to_string(ca.certificate.subject), sha256=certificate_fingerprint(ca.certificate),
                    sha1=certificate_fingerprint(ca.certificate, "sha1"), not_after=iso(ca.certificate.not_valid_after_utc))
    return info


# --------------------------------------------------------------------------------------------
# issuing one CSR (private_ca_certificate, store_issue)


def decide(
    ca: CaDirectory,
    csr,
    *,
    existing=None,
    profile="private",
    profiles: dict | None = None,
    validity_days: int | None = None,
    renew_before_days: int = DEFAULT_RENEW_BEFORE_DAYS,
    force: bool = False,
    now: datetime.datetime | None = None,
    what: str = "the CSR",
) -> dict:
    """Keep the existing certificate, reuse one from the index, or issue - decided without signing anything.

    Returns {"action": keep|reuse|issue, "reason", "certificate" (kept or reused; None for issue),
    "plan", "ca_files": {}}. Raises PolicyError listing every broken rule.
    """
    now = now or utc_now()
    plan = plan_issue(csr, ca_certificate=ca.certificate, settings=ca.settings, profile=profile, profiles=profiles,
                      validity_days=validity_days, now=now)
    if plan["errors"]:
        raise PolicyError(policy_failure_message(plan["errors"], what=what), plan["errors"])
    decision = {"plan": plan, "ca_files": {}, "certificate": None}
    if force:
        reason = "force=true"
    elif existing is not None:
        reason = reissue_reason(existing, plan=plan, ca_certificate=ca.certificate, index=ca.index, now=now,
                                renew_before_days=renew_before_days)
        if reason is None:
            return dict(decision, action="keep", reason="the existing certificate is valid for this CSR", certificate=existing)
    else:
        reason = "no certificate yet"
    if not force:
        for serial in find_reusable(ca.index, plan=plan, now=now, renew_before_days=renew_before_days):
            relative = layout.ca_issued_file(serial)
            data = read_file(os.path.join(ca.directory, relative), option=f"CA {ca.name}: {relative}")
            certs = load_pem_list(data, source=f"CA {ca.name}: {relative}")
            if certs and reissue_reason(certs[0], plan=plan, ca_certificate=ca.certificate, index=ca.index, now=now,
                                        renew_before_days=renew_before_days) is None:
                return dict(decision, action="reuse", reason=f"{reason}; CA {ca.name} already issued serial {serial} for this CSR",
                            certificate=certs[0])
    return dict(decision, action="issue", reason=reason)


def sign_decided(ca: CaDirectory, csr, decision: dict, *, passphrase: str | None, requester: str | None,
                 now: datetime.datetime | None = None) -> dict:
    """Sign what ``decide`` chose to issue; the CA's index is changed in memory, the files to write are ``ca_files``."""
    now = now or utc_now()
    key = ca.open_key(passphrase)
    plan = decision["plan"]
    certificate = sign_certificate(csr, plan, ca_certificate=ca.certificate, ca_key=key, settings=ca.settings,
                                   serial=new_serial(ca.index["certificates"]))
    record_issued(ca.index, certificate, requester=requester, profile=plan["profile"], now=now)
    ca_files = {layout.ca_issued_file(format_serial(certificate.serial_number)): pem(certificate),
                _FILES["index"]: dump_json(ca.index)}
    return dict(decision, certificate=certificate, ca_files=ca_files)


def decide_issue(
    ca: CaDirectory,
    csr,
    *,
    existing=None,
    passphrase: str | None,
    profile="private",
    profiles: dict | None = None,
    validity_days: int | None = None,
    renew_before_days: int = DEFAULT_RENEW_BEFORE_DAYS,
    force: bool = False,
    requester: str | None = None,
    check_mode: bool = False,
    now: datetime.datetime | None = None,
    what: str = "the CSR",
) -> dict:
    """``decide``, then ``sign_decided`` when a certificate is to be issued (not in check mode).

    Returns what ``decide`` returns, with the new certificate (None for issue in check mode) and
    its ``ca_files`` ({relative path: bytes} to write in the CA directory).
    Raises PolicyError listing every broken rule.
    """
    now = now or utc_now()
    decision = decide(ca, csr, existing=existing, profile=profile, profiles=profiles, validity_days=validity_days,
                      renew_before_days=renew_before_days, force=force, now=now, what=what)
    if decision["action"] == "issue" and not check_mode:
        decision = sign_decided(ca, csr, decision, passphrase=passphrase, requester=requester, now=now)
    return decision


def served_chain(ca: CaDirectory, certificate, *, now: datetime.datetime | None = None) -> "_chain.ChainResult":
    """The checked chain leaf -> CA -> (parent CAs) built by the chain engine from the CA's files."""
    anchors = ca.trust_anchors()
    return _chain.build_chain(certificate, ca.issuer_chain() + anchors, trust_anchors=anchors, allow_incomplete=not anchors,
                              catalog=[], now=now)
