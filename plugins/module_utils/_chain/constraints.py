# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What path validation checks beyond signatures: parse guards, critical extensions, keys, EKU, name constraints.

This module is private to the certfleet.tls collection: its API may change
without notice.

Pure functions over cryptography certificates, used by ``chain._check_path``. Every
function answers with problem strings (empty / None when fine) and never raises on
certificate content: ``certificate_problem`` decodes every lazily parsed field up front,
so the other functions only run on certificates that passed it.

Sources: RFC 5280 §4.2 (critical extensions), §4.2.1.10 and §6.1.3 / §6.1.4 (name
constraints), the CA/Browser Forum Baseline Requirements §6.1.5 and §7.1.3.1 (CA keys) and
§7.1.2.x (the profiles' name-constraint semantics, with the subject CN as a DNS name); docs/chains.md
says which parts are checked and which are not.
"""

from __future__ import annotations

import ipaddress
import re
import warnings as _warnings

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import HAS_CRYPTOGRAPHY, name_to_string

if HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

    # Extensions the engine understands (processes, or may ignore by RFC 5280 even when critical:
    # the policy extensions are read as with an initial policy set of anyPolicy, see docs/chains.md).
    KNOWN_EXTENSIONS = frozenset((
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
        ExtensionOID.NAME_CONSTRAINTS,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.POLICY_CONSTRAINTS,
        ExtensionOID.POLICY_MAPPINGS,
        ExtensionOID.INHIBIT_ANY_POLICY,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
        ExtensionOID.SUBJECT_INFORMATION_ACCESS,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
        ExtensionOID.FRESHEST_CRL,
    ))
    # RFC 5280: "Conforming CAs MUST mark this extension as non-critical" (§4.2.1.1, §4.2.1.2,
    # §4.2.2.1, §4.2.2.2); a critical one is a malformed certificate, not an unknown extension.
    NON_CRITICAL_ONLY = {
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER: "authorityKeyIdentifier (RFC 5280 §4.2.1.1)",
        ExtensionOID.SUBJECT_KEY_IDENTIFIER: "subjectKeyIdentifier (RFC 5280 §4.2.1.2)",
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS: "authorityInfoAccess (RFC 5280 §4.2.2.1)",
        ExtensionOID.SUBJECT_INFORMATION_ACCESS: "subjectInfoAccess (RFC 5280 §4.2.2.2)",
    }

# Name-constraint comparisons allowed for one path: pathological certificates carry thousands of
# constraints and names (x509-limbo's nc-dos cases); past this the path is rejected, as
# rustls-webpki and pyca/cryptography do with a similar budget.
MAX_NAME_CONSTRAINT_CHECKS = 250_000
MIN_CA_RSA_BITS = 2048
MIN_CA_EC_BITS = 256

_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")


# --------------------------------------------------------------------------------------------
# names compared as RFC 5280 §7.1 asks, approximated: case-insensitive, runs of spaces collapsed


def canonical_value(value) -> str:
    """One attribute value in comparable form."""
    if isinstance(value, bytes):
        return value.hex()
    return " ".join(str(value).split()).casefold()


def name_key(name) -> tuple:
    """A Name as a tuple of RDNs (each a sorted tuple of (OID, canonical value)): equal names give equal keys."""
    return tuple(
        tuple(sorted((attribute.oid.dotted_string, canonical_value(attribute.value)) for attribute in rdn))
        for rdn in name.rdns
    )


# --------------------------------------------------------------------------------------------
# parse guard


def _touch(*_fields) -> None:
    """Nothing: evaluating the arguments is what makes cryptography decode a lazily parsed field."""


_OID_EC_PUBLIC_KEY = bytes.fromhex("2a8648ce3d0201")


def _der_items(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(tag, content start, content end) of each DER element in data[start:end]; ValueError when malformed."""
    items = []
    offset = start
    while offset < end:
        if offset + 2 > end:
            raise ValueError("truncated DER")
        tag, length = data[offset], data[offset + 1]
        offset += 2
        if length & 0x80:
            count = length & 0x7F
            if not 0 < count <= 4 or offset + count > end:
                raise ValueError("bad DER length")
            length = int.from_bytes(data[offset:offset + count], "big")
            offset += count
        if offset + length > end:
            raise ValueError("truncated DER")
        items.append((tag, offset, offset + length))
        offset += length
    return items


def explicit_curve(certificate) -> bool:
    """True when the certificate's EC key carries explicit curve parameters (RFC 5480 §2.1.1: specifiedCurve MUST NOT be used)."""
    tbs = certificate.tbs_certificate_bytes
    try:
        outer = _der_items(tbs, 0, len(tbs))[0]
        fields = _der_items(tbs, outer[1], outer[2])
        if fields and fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        spki = fields[5]
        algorithm = _der_items(tbs, spki[1], spki[2])[0]
        parts = _der_items(tbs, algorithm[1], algorithm[2])
    except (ValueError, IndexError):
        return False
    return (len(parts) == 2 and tbs[parts[0][1]:parts[0][2]] == _OID_EC_PUBLIC_KEY and parts[1][0] == 0x30)


def certificate_problem(certificate, *, key_required: bool = True) -> str | None:
    """Why the certificate cannot be parsed (names, validity, extensions, public key), or None.

    cryptography checks only the outer structure when loading; names, extensions (a duplicate, a
    malformed name constraint, an unsupported general name) and the public key (explicit curve
    parameters, a broken encoding) raise when first read. Reading them all here, once, keeps every
    later check free of exceptions. ``key_required=False`` accepts a well-formed key of a type the
    library does not know (the scan reports it as "unknown"); path validation needs the key.
    """
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")  # non-positive serials: reported when loading
            _touch(certificate.subject, certificate.issuer, certificate.serial_number, certificate.not_valid_before_utc,
                   certificate.not_valid_after_utc, certificate.signature_algorithm_oid)
            for extension in certificate.extensions:
                _touch(extension.value)
            try:
                certificate.public_key()
            except UnsupportedAlgorithm as exc:
                if key_required:
                    return f"unsupported public key: {exc}"
        if explicit_curve(certificate):
            return "the EC public key has explicit curve parameters, which RFC 5480 §2.1.1 forbids (a named curve is required)"
    except Exception as exc:  # pylint: disable=broad-exception-caught
        # ValueError for bad encodings, TypeError for a malformed iPAddress constraint, and
        # DuplicateExtension / UnsupportedGeneralNameType (plain Exceptions) from cryptography.
        return str(exc) if isinstance(exc, ValueError) and str(exc) else f"{type(exc).__name__}: {exc}"
    return None


# --------------------------------------------------------------------------------------------
# extensions, keys, EKU


def _extension(certificate, oid):
    try:
        return certificate.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None


def extension_problems(certificate, *, is_ca: bool) -> list[str]:
    """RFC 5280 §4.2: unknown critical extensions, must-be-non-critical ones marked critical, nameConstraints outside a CA."""
    problems = []
    for extension in certificate.extensions:
        oid = extension.oid
        if extension.critical and oid not in KNOWN_EXTENSIONS:
            problems.append(f"has an unknown critical extension {oid.dotted_string} (RFC 5280 §4.2: it must be rejected)")
        elif extension.critical and oid in NON_CRITICAL_ONLY:
            problems.append(f"marks {NON_CRITICAL_ONLY[oid]} critical, which RFC 5280 forbids")
    if not is_ca and _extension(certificate, ExtensionOID.NAME_CONSTRAINTS) is not None:
        problems.append("has nameConstraints but is not a CA certificate (RFC 5280 §4.2.1.10)")
    san = _extension(certificate, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if not len(certificate.subject.rdns) and (san is None or not san.critical):
        # RFC 5280 §4.2.1.6: with an empty subject the names are in a subjectAltName marked critical.
        problems.append("has an empty subject without a critical subjectAltName (RFC 5280 §4.2.1.6)")
    return problems


def weak_ca_key(certificate) -> str | None:
    """Why a CA's key may not sign for the Web PKI (CA/B Forum BR §6.1.5, §7.1.3.1), or None."""
    key = certificate.public_key()
    if isinstance(key, dsa.DSAPublicKey):
        return f"has a DSA key ({key.key_size} bits), which CAs may no longer use"
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_CA_RSA_BITS:
            return f"has an RSA key of {key.key_size} bits (< {MIN_CA_RSA_BITS})"
        if key.key_size % 8:
            return f"has an RSA key of {key.key_size} bits, not a multiple of 8"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_CA_EC_BITS:
        return f"has an EC key on {key.curve.name} ({key.curve.key_size} bits, < {MIN_CA_EC_BITS})"
    return None


def _eku_without_server_auth(certificate) -> set | None:
    """The usages of an extKeyUsage that allows neither serverAuth nor anyExtendedKeyUsage; None when it allows
    TLS server authentication or is absent (RFC 5280 §4.2.1.12: absent means any use)."""
    extension = _extension(certificate, ExtensionOID.EXTENDED_KEY_USAGE)
    if extension is None:
        return None
    usages = set(extension.value)
    if ExtendedKeyUsageOID.SERVER_AUTH in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages:
        return None
    return usages


def ca_eku_problem(certificate) -> str | None:
    """A CA whose extKeyUsage allows neither serverAuth nor anyExtendedKeyUsage cannot issue for TLS servers."""
    usages = _eku_without_server_auth(certificate)
    if usages is None:
        return None
    shown = ", ".join(sorted(getattr(oid, "_name", None) or oid.dotted_string for oid in usages)) or "none"
    return f"has an extKeyUsage without serverAuth ({shown}): it may not issue TLS server certificates"


def leaf_eku_problem(certificate) -> str | None:
    """A leaf whose extKeyUsage allows neither serverAuth nor anyExtendedKeyUsage is not a server certificate."""
    if _eku_without_server_auth(certificate) is None:
        return None
    return "the leaf's extKeyUsage does not allow serverAuth (TLS server authentication)"


# --------------------------------------------------------------------------------------------
# name constraints (RFC 5280 §4.2.1.10, §6.1.3 b/c, §6.1.4 g)


def _dns_name_valid(name: str, *, wildcard: bool) -> bool:
    labels = name.split(".")
    if wildcard and labels and labels[0] == "*":
        labels = labels[1:]
        if len(labels) < 2:
            return False
    return bool(labels) and all(_LABEL.match(label) for label in labels)


def _dns_within(name: str, base: str) -> bool:
    return base == "" or name == base or name.endswith("." + base)


def _dns_problem(name: str, permitted: list[str], excluded: list[str], budget: list[int]) -> str | None:
    """Why a SAN dNSName (or a DNS-like subject CN) violates the DNS subtrees, or None."""
    text = name.lower()
    text = text[:-1] if text.endswith(".") else text  # one trailing dot: the absolute form of the same name
    permitted = [subtree.lower().rstrip(".") for subtree in permitted]
    excluded = [subtree.lower().rstrip(".") for subtree in excluded]
    if not _dns_name_valid(text, wildcard=True):
        # A malformed name cannot be shown to lie inside the permitted namespace (RFC 5280 §6.1.3 b).
        return f"the malformed DNS name {name!r} cannot be checked against the DNS name constraints"
    budget[0] -= len(permitted) + len(excluded)
    if text.startswith("*."):
        # A wildcard stands for every name one label below its base: reject when any of them may be
        # excluded or outside the permitted subtrees (CVE-2025-61727: the peer name is not the point).
        base = text[2:]
        for subtree in excluded:
            if _dns_within(base, subtree) or subtree.endswith("." + base):
                return f"the wildcard DNS name {name} may match the excluded subtree {subtree or '<every name>'}"
        if permitted and not any(_dns_within(base, subtree) for subtree in permitted):
            return f"the wildcard DNS name {name} covers names outside the permitted subtrees {', '.join(permitted)}"
        return None
    for subtree in excluded:
        if _dns_within(text, subtree):
            return f"the DNS name {name} is in the excluded subtree {subtree or '<every name>'}"
    if permitted and not any(_dns_within(text, subtree) for subtree in permitted):
        return f"the DNS name {name} is outside the permitted subtrees {', '.join(permitted)}"
    return None


def _ip_problem(address, permitted: list, excluded: list, budget: list[int]) -> str | None:
    if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return f"the malformed IP address {address} (a range, not an address) cannot be checked against the IP name constraints"
    budget[0] -= len(permitted) + len(excluded)
    for network in excluded:
        if address.version == network.version and address in network:
            return f"the IP address {address} is in the excluded range {network}"
    if permitted and not any(address.version == network.version and address in network for network in permitted):
        return f"the IP address {address} is outside the permitted ranges {', '.join(map(str, permitted))}"
    return None


def _email_within(mailbox: str, constraint: str) -> bool:
    local, _at, domain = mailbox.rpartition("@")
    domain = domain.lower()
    if "@" in constraint:
        c_local, _c_at, c_domain = constraint.rpartition("@")
        return local == c_local and domain == c_domain.lower()
    constraint = constraint.lower()
    if constraint.startswith("."):
        return domain.endswith(constraint)
    return domain == constraint


def _email_problem(mailbox: str, permitted: list[str], excluded: list[str], budget: list[int]) -> str | None:
    if "@" not in mailbox:
        return f"the malformed email address {mailbox!r} cannot be checked against the email name constraints"
    budget[0] -= len(permitted) + len(excluded)
    for subtree in excluded:
        if _email_within(mailbox, subtree):
            return f"the email address {mailbox} is in the excluded subtree {subtree}"
    if permitted and not any(_email_within(mailbox, subtree) for subtree in permitted):
        return f"the email address {mailbox} is outside the permitted subtrees {', '.join(permitted)}"
    return None


def _dn_within(name: tuple, base: tuple) -> bool:
    return len(name) >= len(base) and name[:len(base)] == base


def _dn_problem(name, permitted: list, excluded: list, budget: list[int]) -> str | None:
    key = name_key(name)
    budget[0] -= len(permitted) + len(excluded)
    for subtree in excluded:
        if _dn_within(key, name_key(subtree)):
            return f"the name {name_to_string(name)} is in the excluded directory subtree {name_to_string(subtree)}"
    if permitted and not any(_dn_within(key, name_key(subtree)) for subtree in permitted):
        return (f"the name {name_to_string(name)} is outside the permitted directory subtrees "
                f"{', '.join(name_to_string(subtree) for subtree in permitted)}")
    return None


def _form(general_name) -> str:
    """dns, ip, email, dn for the forms the engine processes; the class name (URI, OtherName, ...) otherwise."""
    if isinstance(general_name, x509.DNSName):
        return "dns"
    if isinstance(general_name, x509.IPAddress):
        return "ip"
    if isinstance(general_name, x509.RFC822Name):
        return "email"
    if isinstance(general_name, x509.DirectoryName):
        return "dn"
    return type(general_name).__name__


def _subtrees(subtrees) -> dict[str, list]:
    result: dict[str, list] = {}
    for general_name in subtrees or ():
        result.setdefault(_form(general_name), []).append(general_name.value)
    return result


def _looks_like_dns(value: str) -> bool:
    text = value.lower().rstrip(".")
    return "." in text and _dns_name_valid(text, wildcard=True)


def certificate_names(certificate, *, end_entity: bool) -> list[tuple[str, object]]:
    """The names name constraints apply to: subject DN, subject emails, SAN entries, a leaf's DNS-like CN without SAN."""
    names: list[tuple[str, object]] = []
    subject = certificate.subject
    if len(subject.rdns):
        names.append(("dn", subject))
    for attribute in subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS):
        names.append(("email", str(attribute.value)))
    san = _extension(certificate, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if san is not None:
        for general_name in san.value:
            names.append((_form(general_name), general_name.value))
    elif end_entity:
        # Without a subjectAltName, clients that still read the CN as a host name must see it
        # constrained too (the CA/B Forum profiles and Chrome/Go/webpki treat it as a dNSName).
        for attribute in subject.get_attributes_for_oid(NameOID.COMMON_NAME):
            value = attribute.value
            if isinstance(value, str) and _looks_like_dns(value):
                names.append(("dns", value))
    return names


def name_constraint_problems(constrained: list, constraining: list, *, budget: list[int] | None = None) -> list[str]:
    """Problems of each (certificate, is_end_entity) in ``constrained`` against the NameConstraints of ``constraining``.

    ``constraining`` are the CA certificates above them on the path (their own constraints do not
    apply to themselves). Returns at most one problem per certificate, and stops at the work limit.
    """
    budget = budget if budget is not None else [MAX_NAME_CONSTRAINT_CHECKS]
    rules = []
    for ca in constraining:
        extension = _extension(ca, ExtensionOID.NAME_CONSTRAINTS)
        if extension is None:
            continue
        value = extension.value
        rules.append((ca, _subtrees(value.permitted_subtrees), _subtrees(value.excluded_subtrees)))
    if not rules:
        return []
    problems = []
    for certificate, end_entity in constrained:
        names = certificate_names(certificate, end_entity=end_entity)
        problem = None
        for ca, permitted, excluded in rules:
            for form, value in names:
                p_list, e_list = permitted.get(form, []), excluded.get(form, [])
                if not p_list and not e_list:
                    continue  # no constraint on this form: nothing to check, a malformed name included
                if form == "dns":
                    problem = _dns_problem(value, p_list, e_list, budget)
                elif form == "ip":
                    problem = _ip_problem(value, p_list, e_list, budget)
                elif form == "email":
                    problem = _email_problem(value, p_list, e_list, budget)
                elif form == "dn":
                    problem = _dn_problem(value, p_list, e_list, budget)
                else:
                    # RFC 5280 §4.2.1.10: constraints on a name form the application does not
                    # process mean rejecting a certificate that has a name of that form.
                    problem = f"it has a {form} name, and name constraints on {form} names are not processed"
                if budget[0] < 0:
                    return [f"name constraints: more than {MAX_NAME_CONSTRAINT_CHECKS} name/constraint comparisons "
                            f"(pathological certificates); the path is rejected"]
                if problem:
                    problem = f"{problem} (name constraints of {name_to_string(ca.subject) or '<empty subject>'})"
                    break
            if problem:
                break
        if problem:
            problems.append((certificate, problem))
    return [problem for _certificate, problem in problems]


def malformed_constraints(certificate) -> str | None:
    """A nameConstraints extension that cannot be applied: empty, or a dNSName subtree that is not a domain name."""
    extension = _extension(certificate, ExtensionOID.NAME_CONSTRAINTS)
    if extension is None:
        return None
    value = extension.value
    if not value.permitted_subtrees and not value.excluded_subtrees:
        return "has a nameConstraints extension with neither permitted nor excluded subtrees (RFC 5280 §4.2.1.10)"
    for general_name in list(value.permitted_subtrees or ()) + list(value.excluded_subtrees or ()):
        if (isinstance(general_name, x509.DNSName) and general_name.value
                and not _dns_name_valid(general_name.value.lower(), wildcard=False)):
            # RFC 5280 §4.2.1.10: a dNSName constraint is a host name; ".example.com" and wildcards are not.
            return f"has a malformed dNSName name constraint {general_name.value!r} (RFC 5280 §4.2.1.10)"
    return None
