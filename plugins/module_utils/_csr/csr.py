# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate signing requests: build, compare, describe.

This module is private to the certfleet.tls collection: its API may change
without notice.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import key_info
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import (
    DN_FIELDS,
    DN_OIDS,
    HAS_CRYPTOGRAPHY,
    CertfleetError,
    fingerprint,
    general_names_to_list,
    name_to_dict,
    name_to_string,
)

if HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import AttributeOID, ExtensionOID

    DIGESTS = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512, "sha1": hashes.SHA1}
    # PKCS#9 request attributes that `openssl req` prompts for ("extra" attributes).
    REQUEST_ATTRIBUTES = {
        AttributeOID.CHALLENGE_PASSWORD.dotted_string: "challengePassword",
        AttributeOID.UNSTRUCTURED_NAME.dotted_string: "unstructuredName",
    }
else:  # pragma: no cover
    DIGESTS = {}
    REQUEST_ATTRIBUTES = {}


def subject_from_options(options: dict) -> dict:
    """Short-name subject dict (C, ST, ... in DN order) from module option names; empty values dropped."""
    subject = {}
    for short, option in DN_FIELDS:
        value = options.get(option)
        if value not in (None, ""):
            subject[short] = value
    return subject


def build_name(subject: dict):
    """x509.Name in the conventional order C, ST, L, O, OU, CN, emailAddress."""
    attributes = []
    for short, _option in DN_FIELDS:
        value = subject.get(short)
        for item in value if isinstance(value, list) else [value]:
            if item not in (None, ""):
                try:
                    attributes.append(x509.NameAttribute(DN_OIDS[short], str(item)))
                except ValueError as exc:
                    raise CertfleetError(f"{short}: {exc}") from None
    return x509.Name(attributes)


# Entry-type prefixes, compared case-insensitively: "ip:", "Ip:" and "IP:" are the same type.
NAME_KINDS = ("DNS", "IP", "EMAIL", "URI")


def classify_name(entry, *, common_name: bool = False) -> tuple[str, str]:
    """(kind, value) of a SAN or CN string; kind is DNS, IP, EMAIL, URI or the unknown prefix upper-cased.

    The one classifier for checking a name and for signing it: the policy check and the
    certificate builder must never disagree on whether a string is a DNS name or an IP
    address, or a name typed one way passes the check made for the other. A bare IP
    address is an IP. A common name carries no type prefix: "Ip:1.1.1.1" as CN is the
    DNS name it spells (and fails the hostname rules), never an IP address.
    """
    # Only spaces are trimmed (a convenience for "IP: 10.0.0.1"): a newline, tab or NUL stays part of
    # the name, so "www\n" fails the host name rules instead of being issued as "www".
    text = str(entry).strip(" ")
    if _ip_or_none(text) is not None:
        return "IP", text
    if common_name:
        return "DNS", text
    kind, sep, value = text.partition(":")
    if not sep:
        return "DNS", text
    return kind.strip(" ").upper(), value.strip(" ")


def _ip_or_none(text: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_general_name(entry: str):
    """``www.example.jp`` / ``DNS:x`` -> DNSName, ``IP:192.0.2.1`` -> IPAddress, ``email:`` / ``URI:``."""
    kind, value = classify_name(entry)
    if not value:
        raise CertfleetError(f"subject_alt_name: empty entry '{entry}'")
    if kind == "DNS":
        if not value.isascii():
            raise CertfleetError(f"subject_alt_name: '{value}' must be ASCII; give internationalised names in their xn-- (IDNA) form")
        return x509.DNSName(value)
    if kind == "IP":
        address = _ip_or_none(value)
        if address is None:
            raise CertfleetError(f"subject_alt_name: '{value}' is not a valid IP address")
        return x509.IPAddress(address)
    if kind == "EMAIL":
        return x509.RFC822Name(value)
    if kind == "URI":
        return x509.UniformResourceIdentifier(value)
    raise CertfleetError(f"subject_alt_name: unsupported entry type '{kind}' in '{entry}' (use a DNS name, IP:, email: or URI:)")


def normalise_san_entries(entries) -> list[str]:
    """SAN strings in the canonical text form (bare DNS names, ``IP:`` with a normalised address)."""
    return general_names_to_list([parse_general_name(str(entry)) for entry in entries or []])


def create_csr_pem(private_key, *, subject: dict, subject_alt_names: list, digest: str = "sha256") -> bytes:
    """A PEM CSR signed by ``private_key``; no request attributes (no challenge password)."""
    if digest not in DIGESTS:
        raise CertfleetError(f"digest: '{digest}' is not supported; use one of {', '.join(DIGESTS)}")
    builder = x509.CertificateSigningRequestBuilder().subject_name(build_name(subject))
    if subject_alt_names:
        general_names = [parse_general_name(entry) for entry in subject_alt_names]
        builder = builder.add_extension(x509.SubjectAlternativeName(general_names), critical=False)
    algorithm = None if key_info(private_key)["type"] in ("Ed25519", "Ed448") else DIGESTS[digest]()
    csr = builder.sign(private_key, algorithm)
    return csr.public_bytes(serialization.Encoding.PEM)


def load_csr(data: bytes, *, source: str = "csr"):
    """Parse a PEM or DER CSR; malformed input raises CertfleetError naming ``source``."""
    try:
        if b"-----BEGIN" in data:
            if b"CERTIFICATE REQUEST-----" not in data:
                raise CertfleetError(f"{source}: no 'CERTIFICATE REQUEST' PEM block found")
            return x509.load_pem_x509_csr(data)
        if not data.startswith(b"\x30"):
            raise CertfleetError(f"{source}: not a CSR (no PEM 'CERTIFICATE REQUEST' block, and not DER)")
        return x509.load_der_x509_csr(data)
    except CertfleetError:
        raise
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertfleetError(f"{source}: malformed certificate signing request ({str(exc).splitlines()[0]})") from None


def csr_subject_alt_names(csr) -> list[str]:
    """SAN entries of a CSR as strings, empty when it has no SAN extension."""
    try:
        extension = csr.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return []
    return general_names_to_list(extension.value)


def csr_attributes(csr) -> list[str]:
    """Names of PKCS#9 request attributes present (challengePassword, unstructuredName)."""
    found = []
    for oid, label in REQUEST_ATTRIBUTES.items():
        try:
            csr.attributes.get_attribute_for_oid(x509.ObjectIdentifier(oid))
        except x509.AttributeNotFound:
            continue
        found.append(label)
    return found


def csr_digest_name(csr) -> str | None:
    """Hash name of the CSR's signature ("sha256"), or None for hash-less signatures."""
    algorithm = csr.signature_hash_algorithm
    return algorithm.name if algorithm is not None else None


def csr_matches(existing: bytes | None, *, private_key, subject: dict, subject_alt_names: list, digest: str) -> bool:
    """True when an existing CSR already says what is wanted (same key, DN, SANs, digest, valid signature)."""
    if not existing:
        return False
    try:
        csr = load_csr(existing)
    except CertfleetError:
        return False
    if not csr.is_signature_valid:
        return False
    if key_info(csr.public_key())["fingerprint"] != key_info(private_key)["fingerprint"]:
        return False
    if csr.subject != build_name(subject):
        return False
    if csr_subject_alt_names(csr) != normalise_san_entries(subject_alt_names):
        return False
    if csr_attributes(csr):
        return False
    return csr_digest_name(csr) == digest


def describe_csr(csr) -> dict:
    """Everything a person checks before submitting a CSR: subject, names, key, signature algorithm, fingerprints."""
    public = key_info(csr.public_key())
    try:
        signature_algorithm = csr.signature_algorithm_oid._name  # pylint: disable=protected-access
    except AttributeError:  # pragma: no cover
        signature_algorithm = csr.signature_algorithm_oid.dotted_string
    return {
        "subject": name_to_dict(csr.subject),
        "subject_string": name_to_string(csr.subject),
        "subject_alt_name": csr_subject_alt_names(csr),
        "public_key": public,
        "signature_algorithm": signature_algorithm,
        "digest": csr_digest_name(csr),
        "signature_valid": csr.is_signature_valid,
        "attributes": csr_attributes(csr),
        "sha256": fingerprint(csr.public_bytes(serialization.Encoding.DER)),
    }


def plan_request(options: dict, *, public_key_info: dict) -> dict:
    """Subject, completed SANs and the policy report for module-style options.

    ``options`` uses the module option names (common_name, ..., subject_alt_name,
    digest, profile, profiles). Every problem is collected, so users fix them
    all in one go; nothing here raises for a policy problem.
    """
    # Imported here to keep the profile data out of modules that never check policy.
    from ansible_collections.certfleet.tls.plugins.module_utils._csr.profiles import check_request, resolve_profile

    subject = subject_from_options(options)
    errors = []
    sans = []
    for entry in options.get("subject_alt_name") or []:
        try:
            sans.extend(normalise_san_entries([entry]))
        except CertfleetError as exc:
            errors.append(str(exc))
    profile = resolve_profile(options.get("profile") or "private", options.get("profiles"))
    report = check_request(
        profile,
        subject=subject,
        subject_alt_names=sans,
        key_info=public_key_info,
        digest=options.get("digest") or "sha256",
    )
    return {
        "subject": subject,
        "subject_alt_name": report["subject_alt_name"],
        "policy": {"profile": report["profile"], "errors": errors + report["errors"], "warnings": report["warnings"]},
    }


def policy_failure_message(policy: dict, *, what: str = "the request") -> str:
    """One message listing every violation, for fail_json."""
    count = len(policy["errors"])
    return f"{what} breaks {count} rule(s) of profile {policy['profile']}: " + "; ".join(policy["errors"])
