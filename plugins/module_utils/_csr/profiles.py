# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CA profiles: the rules a CA applies to a CSR, as data, and the checker.

This module is private to the certfleet.tls collection: its API may change
without notice.

A profile is a dict. Users extend the built-in ones with their own dicts, for
example ``{"extends": "cybertrust", "digests": ["sha256", "sha384"]}``.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import unicodedata

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import classify_name

# Names that only resolve inside an organisation or are reserved (RFC 2606,
# RFC 6761, RFC 8375); public CAs stopped issuing for them in 2015 (CA/B Forum
# BR 4.2.2), and Cybertrust's SureServer ordering guidance lists intranet domain
# names among what it does not certify.
INTRANET_SUFFIXES = (
    "local", "localdomain", "localhost", "lan", "internal", "intranet", "corp", "home", "home.arpa",
    "private", "priv", "intra", "test", "example", "invalid", "onion", "arpa",
)

# Second-level public suffixes (a small slice of the Public Suffix List) used to
# tell "www.example.co.jp" (subdomain only www) from "www.shop.example.jp".
PUBLIC_SUFFIXES = (
    "ac.jp", "ad.jp", "co.jp", "ed.jp", "go.jp", "gr.jp", "lg.jp", "ne.jp", "or.jp",
    "co.uk", "org.uk", "ac.uk", "gov.uk", "com.au", "net.au", "org.au", "com.cn", "com.tw", "co.kr",
    "com.br", "co.nz", "co.in", "com.sg", "com.hk",
)

# RFC 5280 Appendix A upper bounds, in characters.
FIELD_MAX_LENGTH = {"C": 2, "ST": 128, "L": 128, "O": 64, "OU": 64, "CN": 64, "emailAddress": 255}

OPTION_NAMES = {
    "C": "country_name",
    "ST": "state_or_province_name",
    "L": "locality_name",
    "O": "organization_name",
    "OU": "organizational_unit_name",
    "CN": "common_name",
    "emailAddress": "email_address",
}

_BASE_PROFILE = {
    "description": "",
    "key_types": ["RSA", "ECC"],
    "min_rsa_size": 2048,
    "curves": ["secp256r1", "secp384r1"],
    "digests": ["sha256", "sha384", "sha512"],
    "required_fields": ["CN"],
    # field -> "error" (not allowed) or a warning text shown when the field is set.
    "field_rules": {},
    "forbidden_attributes": [],
    "ascii_fields": [],
    "country_pattern": "[A-Z]{2}",
    "cn_must_be_fqdn": False,
    "allow_wildcard": True,
    "allow_ip_names": True,
    "allow_private_ips": True,
    "allow_intranet_names": True,
    "intranet_suffixes": list(INTRANET_SUFFIXES),
    "public_suffixes": list(PUBLIC_SUFFIXES),
    "cn_in_san": True,
    "www_adds_bare_domain": False,
    # The subject fields in the order the CA's application form asks for them (the request summary lists
    # them so); the default is the order of `openssl req`'s prompts.
    "form_fields": ["C", "ST", "L", "O", "OU", "CN", "emailAddress"],
}

BUILTIN_PROFILES = {
    "cybertrust": {
        "description": "Cybertrust Japan SureServer (its CSR and ordering guidance)",
        # Cybertrust's CSR guide asks for a 2048-bit RSA key and a SHA-256 signed CSR.
        "key_types": ["RSA"],
        "digests": ["sha256"],
        # Cybertrust's CSR guide: C, ST, L, O and CN are required input; e-mail, challenge
        # password and optional company name must be left empty.
        "required_fields": ["C", "ST", "L", "O", "CN"],
        "field_rules": {
            "emailAddress": "error",
            "OU": "Cybertrust does not include OU in server certificates issued on or after 2022-06-23 (its CSR guide)",
        },
        "forbidden_attributes": ["challengePassword", "unstructuredName"],
        # Cybertrust's CSR guide: the O value is the organisation's registered English name.
        "ascii_fields": ["C", "ST", "L", "O", "OU", "CN"],
        "cn_must_be_fqdn": True,
        "allow_ip_names": False,
        "allow_private_ips": False,
        "allow_intranet_names": False,
        # SureServer ordering guidance: a www. common name whose only subdomain is www gets
        # the bare domain registered as a SAN as well.
        "www_adds_bare_domain": True,
        # Cybertrust's application form asks for the common name first, then the organisation, its unit,
        # the locality, the state or province and the country.
        "form_fields": ["CN", "O", "OU", "L", "ST", "C"],
    },
    "cabf": {
        "description": "Public CAs in general (CA/Browser Forum Baseline Requirements)",
        "required_fields": ["CN"],
        "field_rules": {
            # BR 7.1.4.2.2(i): OU is prohibited in subscriber certificates since 2022-09-01.
            "OU": "error",
            "emailAddress": "error",
        },
        "forbidden_attributes": ["challengePassword", "unstructuredName"],
        "ascii_fields": ["C", "ST", "L", "CN"],
        "cn_must_be_fqdn": True,
        "allow_private_ips": False,
        "allow_intranet_names": False,
    },
    "private": {
        "description": "Internal / private CAs: intranet names and IP addresses allowed",
        "cn_must_be_fqdn": False,
    },
}

# RFC 1035 2.3.1 / RFC 1123 2.1 LDH label; used with fullmatch ("$" would accept a final newline).
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")

# Characters no DN attribute may hold in any profile: C0/C1 controls and DEL (NUL truncates the
# value in C-based relying parties), line and paragraph separators, and the bidirectional
# overrides that make a value display as something else (RFC 5280 4.1.2.4 string types are for
# text, and the CA/B Forum BRs 7.1.4.2 require subject values to be verified text).
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _forbidden_characters(value: str) -> list[str]:
    return list(dict.fromkeys(
        char for char in value
        if unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cs") or char in _BIDI_CONTROLS))


def resolve_profile(profile, user_profiles: dict | None = None) -> dict:
    """Full rule dict for a profile name or a user dict (``extends`` names its base)."""
    catalogue = dict(BUILTIN_PROFILES)
    catalogue.update(user_profiles or {})
    seen = []
    if isinstance(profile, dict):
        layers = [profile]
        parent = profile.get("extends")
        name = profile.get("name", f"custom({parent or 'base'})")
    else:
        if profile not in catalogue:
            raise CertfleetError(f"profile: unknown profile '{profile}'; known profiles are {', '.join(sorted(catalogue))}")
        layers, parent, name = [], profile, profile
    while parent:
        if parent in seen:
            raise CertfleetError(f"profile: 'extends' loops through {' -> '.join(seen + [parent])}")
        if parent not in catalogue:
            raise CertfleetError(f"profile: '{name}' extends unknown profile '{parent}'")
        seen.append(parent)
        layers.append(catalogue[parent])
        parent = catalogue[parent].get("extends")
    resolved = copy.deepcopy(_BASE_PROFILE)
    for layer in reversed(layers):
        unknown = set(layer) - set(_BASE_PROFILE) - {"extends", "name"}
        if unknown:
            raise CertfleetError(f"profile: '{name}' has unknown rule(s) {', '.join(sorted(unknown))}")
        resolved.update(copy.deepcopy({k: v for k, v in layer.items() if k not in ("extends", "name")}))
    resolved["name"] = name
    return resolved


def _label(field: str) -> str:
    return f"{OPTION_NAMES.get(field, field)} ({field})"


def is_intranet_name(name: str, suffixes) -> bool:
    """Single-label names and names under an internal-only or reserved suffix."""
    bare = name.rstrip(".").lower()
    if bare.startswith("*."):
        bare = bare[2:]
    if "." not in bare:
        return True
    return any(bare == suffix or bare.endswith("." + suffix) for suffix in suffixes)


def hostname_problem(name: str, *, allow_wildcard: bool = True) -> str | None:
    """Why ``name`` is not a DNS host name (LDH labels, at most one leading ``*.``), or None.

    The syntax every DNS name must pass in every profile, CN included: RFC 1035 2.3.1 labels
    (letters, digits, inner hyphens, 1-63 characters), 253 characters in all, one optional
    trailing dot, and a wildcard only as the whole leftmost label (RFC 6125 6.4.3, CA/B Forum
    BR 7.1.2.7.12). NUL, spaces, slashes and every other character fail here.
    """
    if not isinstance(name, str) or not name:
        return "is empty"
    if len(name) > 253:
        return "is longer than 253 characters"
    labels = (name[:-1] if name.endswith(".") else name).split(".")
    if labels[0] == "*":
        if not allow_wildcard:
            return "is a wildcard, which this profile does not allow"
        labels = labels[1:]
        if not labels:
            return "is a bare wildcard"
    for label in labels:
        if "*" in label:
            return "has a wildcard that is not the whole leftmost label (at most one, as '*.')"
        if not _DNS_LABEL.fullmatch(label):
            shown = repr(label)[1:-1]
            return f"has an invalid DNS label '{shown}' (letters, digits and inner hyphens only, 1-63 characters)"
    return None


def fqdn_problem(name: str, *, allow_wildcard: bool) -> str | None:
    """Why ``name`` is not a fully qualified DNS name, or None when it is."""
    problem = hostname_problem(name, allow_wildcard=allow_wildcard)
    if problem:
        return problem
    labels = name.rstrip(".").split(".")
    if labels[0] == "*":
        labels = labels[1:]
    if len(labels) < 2:
        return "is not a fully qualified domain name (it needs at least one dot, e.g. www.example.com)"
    if labels[-1].isdigit():
        return "has an all-numeric top-level domain"
    return None


def _parse_ip(value: str):
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


# IPv6 ranges that carry an IPv4 address: NAT64 (RFC 6052 well-known and RFC 8215 local-use
# prefixes) and IPv4-compatible (RFC 4291 2.5.5.1). 6to4, Teredo and IPv4-mapped have accessors.
_NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(address):
    """The IPv4 address an IPv6 tunnelling / translation form carries, or None."""
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _NAT64_NETWORKS) or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_non_public_ip(address) -> bool:
    """True unless the address is globally routable (the only kind a public CA may certify).

    ``is_global`` excludes RFC 1918, RFC 6598 shared space (100.64.0.0/10), loopback, link-local,
    documentation and the rest of the IANA special-purpose registries (RFC 6890); an IPv6 form
    that tunnels or translates IPv4 (6to4 2002::/16, Teredo, NAT64, mapped) is only as public as
    the IPv4 address inside it, so 2002:a00:1:: (10.0.0.1) is private.
    """
    if not address.is_global or address.is_multicast:
        return True
    embedded = _embedded_ipv4(address)
    return embedded is not None and (not embedded.is_global or embedded.is_multicast)


def bare_domain_for_www(common_name: str, public_suffixes) -> str | None:
    """``example.co.jp`` for ``www.example.co.jp``; None when the subdomain is more than ``www``."""
    name = common_name.rstrip(".").lower()
    if not name.startswith("www."):
        return None
    rest = name[4:]
    labels = rest.split(".")
    suffix_labels = 2 if ".".join(labels[-2:]) in public_suffixes else 1
    if len(labels) == suffix_labels + 1:
        return rest
    return None


def check_request(
    profile: dict,
    *,
    subject: dict,
    subject_alt_names: list,
    key_info: dict,
    digest: str,
    attributes: list | None = None,
) -> dict:
    """Check a request against a profile.

    ``subject`` maps short names (C, ST, L, O, OU, CN, emailAddress) to values;
    ``subject_alt_names`` holds strings ("www.example.jp", "IP:192.0.2.1").
    Returns {"profile", "errors", "warnings", "subject_alt_name"} where the SAN
    list is completed as the CA would (CN first, bare domain for www.).
    """
    errors: list[str] = []
    warnings: list[str] = []
    name = profile["name"]

    key_type = key_info.get("type")
    if key_type not in profile["key_types"]:
        errors.append(f"privatekey: {key_type} key, profile {name} accepts only {', '.join(profile['key_types'])}")
    elif key_type == "RSA" and (key_info.get("size") or 0) < profile["min_rsa_size"]:
        errors.append(f"privatekey: RSA key of {key_info.get('size')} bits, profile {name} requires at least {profile['min_rsa_size']} bits")
    elif key_type == "ECC" and key_info.get("curve") not in profile["curves"]:
        errors.append(f"privatekey: curve {key_info.get('curve')}, profile {name} accepts {', '.join(profile['curves'])}")
    if digest not in profile["digests"]:
        errors.append(f"digest: {digest}, profile {name} requires {' or '.join(profile['digests'])}")

    values = {field: value for field, value in subject.items() if value not in (None, "", [])}
    for field in profile["required_fields"]:
        if field not in values:
            errors.append(f"{_label(field)}: required by profile {name}")
    for field, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            _check_field(profile, field, str(item), errors, warnings)
    for attribute in attributes or []:
        if attribute in profile["forbidden_attributes"]:
            errors.append(f"attributes: {attribute} must not be set (profile {name})")

    common_name = values.get("CN")
    if isinstance(common_name, list):
        errors.append(f"{_label('CN')}: only one common name is allowed")
        common_name = common_name[0]
    if common_name:
        _check_dns_or_ip(profile, _label("CN"), common_name, errors, is_cn=True)

    sans = list(dict.fromkeys(subject_alt_names))
    for entry in sans:
        _check_dns_or_ip(profile, "subject_alt_name", entry, errors, is_cn=False)
    if common_name and profile["cn_in_san"]:
        # Copied with the type the CN was checked as: a CN "Ip:1.1.1.1" is a (bad) DNS name, and must
        # not turn into an IP SAN when the copy is classified again.
        cn_kind, cn_value = classify_name(common_name, common_name=True)
        cn_entry = f"IP:{cn_value}" if cn_kind == "IP" else (f"DNS:{cn_value}" if ":" in cn_value else cn_value)
        if cn_entry.lower() not in [s.lower() for s in sans]:
            sans.insert(0, cn_entry)
    if common_name and profile["www_adds_bare_domain"] and common_name.lower().startswith("www."):
        bare = bare_domain_for_www(common_name, profile["public_suffixes"])
        if bare is None:
            warnings.append(
                f"{_label('CN')}: '{common_name}' has a subdomain other than www, so the CA does not add the bare domain as a SAN")
        elif bare not in [s.lower() for s in sans]:
            sans.append(bare)
            warnings.append(f"subject_alt_name: added '{bare}' because the CA registers the bare domain for a www. common name")
    return {"profile": name, "errors": errors, "warnings": warnings, "subject_alt_name": sans}


def _check_field(profile: dict, field: str, value: str, errors: list, warnings: list) -> None:
    label = _label(field)
    rule = profile["field_rules"].get(field)
    if rule == "error":
        errors.append(f"{label}: must not be set (profile {profile['name']})")
    elif rule:
        warnings.append(f"{label}: {rule}")
    limit = FIELD_MAX_LENGTH.get(field)
    if limit and field != "C" and len(value) > limit:
        errors.append(f"{label}: {len(value)} characters, RFC 5280 allows at most {limit}")
    if value != value.strip():
        errors.append(f"{label}: leading or trailing spaces in '{value}'")
    bad = _forbidden_characters(value)
    if bad:
        errors.append(f"{label}: control, line-separator or bidirectional characters {''.join(bad)!r} are not allowed in {value!r}")
        return
    if field == "C" and not re.fullmatch(profile["country_pattern"].lstrip("^").rstrip("$"), value):
        errors.append(f"{label}: '{value}' must be exactly two upper-case letters (ISO 3166-1 alpha-2 code such as JP)")
    if field in profile["ascii_fields"]:
        bad = list(dict.fromkeys(char for char in value if not 0x20 <= ord(char) <= 0x7E))
        if bad:
            errors.append(
                f"{label}: must be printable ASCII (the registered English name), found {''.join(bad)!r} in '{value}' (profile {profile['name']})")


def _check_dns_or_ip(profile: dict, label: str, entry: str, errors: list, *, is_cn: bool) -> None:
    name = profile["name"]
    kind, value = classify_name(entry, common_name=is_cn)
    if kind == "IP":
        address = _parse_ip(value)
        if address is None:
            errors.append(f"{label}: '{value}' is not a valid IP address")
        elif is_cn and profile["cn_must_be_fqdn"]:
            errors.append(f"{label}: '{value}' is an IP address; profile {name} requires a fully qualified domain name")
        elif not profile["allow_ip_names"]:
            errors.append(f"{label}: IP address '{value}' is not allowed by profile {name}")
        elif not profile["allow_private_ips"] and _is_non_public_ip(address):
            errors.append(f"{label}: '{value}' is a private or reserved IP address (not globally routable: private, "
                          f"shared, reserved or tunnelling a non-public IPv4 address), not allowed by profile {name}")
        return
    if kind in ("EMAIL", "URI"):
        if not profile["allow_intranet_names"]:
            errors.append(f"{label}: {kind.lower()} entries are not allowed in server certificates by profile {name}")
        return
    if kind != "DNS":
        errors.append(f"{label}: unsupported entry type '{kind}' in '{entry}' (use a DNS name, IP:, email: or URI:)")
        return
    # Every DNS name, CN included and whatever the profile, must be a host name: the CN is
    # matched as a DNS name by clients even when it is not copied into the SANs.
    problem = hostname_problem(value, allow_wildcard=profile["allow_wildcard"])
    if problem is None and (profile["cn_must_be_fqdn"] or not is_cn):
        problem = fqdn_problem(value, allow_wildcard=profile["allow_wildcard"])
        if problem and profile["allow_intranet_names"] and "." not in value:
            problem = None  # a single-label intranet host name ("portal")
    if problem:
        errors.append(f"{label}: {value!r} {problem}")
        return
    if not profile["allow_intranet_names"] and is_intranet_name(value, profile["intranet_suffixes"]):
        errors.append(f"{label}: '{value}' is an intranet-only or reserved name; profile {name} (public CA) cannot certify it")
