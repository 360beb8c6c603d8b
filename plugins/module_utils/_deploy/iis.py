# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IIS deployment decisions, made on the controller from the host's facts: the PLAN of certfleet.tls.iis_plan.

This module is private to the certfleet.tls collection: its API may change
without notice.

Everything here is a pure function of the store's current generation (a ``CurrentGeneration``
or its certificates), the options and the FACTS that ``certfleet.tls.win_iis_facts`` read on the
host. Nothing touches a file or a host; ``certfleet.tls.iis_plan`` writes the PFX, the
``iis_ssl`` role's Windows modules carry the PLAN out.

=============================  ===================================================================
``pfx_encryption``             AES-256 / SHA-256 MAC from Windows Server 2019 (build 17763), 3DES / SHA-1 MAC before
``store_placement``            intermediates into ``CA`` (never ``My``), the root into ``Root`` only when asked
``conflicting_roots``          roots in ``Root`` with the intended root's name but another key (old same-name roots)
``repair_list``                certificates of this definition in ``My`` without their private key
``binding_plan``               one HTTPS binding per site: add / switch / unchanged, SNI, ssl_flags bits kept
``rollback_plan``              what restores the bindings a plan changed
``cleanup_plan``               old generations beyond ``keep_generations``, never one still bound
``deploy_name``                the store definition one host gets: shared key, or ``<definition>--<host>``
``build_plan``                 all of the above for one definition on one host
=============================  ===================================================================
"""

from __future__ import annotations

import re

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - the modules report the missing library first
    x509 = None

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso, parse_timestamp
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import (
    CertfleetError,
    certificate_fingerprint,
    extension_value,
)
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout

# Windows Server 2019 / Windows 10 1809 is the first build whose PFX import reads PBES2 (AES-256-CBC,
# PBKDF2) and a SHA-256 MAC; Windows Server 2016 (14393) and older fail such a file with "The specified
# network password is not correct" (Microsoft: Export-PfxCertificate -CryptoAlgorithmOption AES256_SHA256
# is documented from Windows Server 2019 on).
MODERN_PFX_MIN_BUILD = 17763
# SNI bindings (sslFlags bit 1) came with IIS 8 (Windows Server 2012, build 9200).
SNI_MIN_BUILD = 9200
PFX_ENCRYPTIONS = ("modern", "compatible")
PFX_ENCRYPTION_CHOICES = ("auto", "modern", "compatible", "compatibility")
# PLAN name -> the name _chain.pkcs12_bytes uses
CHAIN_ENCRYPTION = {"modern": "modern", "compatible": "compatibility"}
KEY_POLICIES = ("shared", "per_server")
PER_SERVER_SEPARATOR = "--"

# sslFlags (IIS applicationHost.config, site/bindings/binding@sslFlags)
SSL_FLAG_SNI = 1
SSL_FLAG_CENTRAL_STORE = 2
SSL_FLAGS_MAX = 0xFFFF

WINDOWS_BUILDS = {  # a name for messages only; decisions use the build number
    3790: "Windows Server 2003", 6001: "Windows Server 2008", 6002: "Windows Server 2008", 6003: "Windows Server 2008",
    7600: "Windows Server 2008 R2", 7601: "Windows Server 2008 R2", 9200: "Windows Server 2012",
    9600: "Windows Server 2012 R2", 14393: "Windows Server 2016", 17763: "Windows Server 2019",
    20348: "Windows Server 2022", 26100: "Windows Server 2025",
}

# Hostile-input bounds on FACTS (a host answers them; nothing it says is trusted unchecked).
MAX_STORE_CERTIFICATES = 5000
MAX_SITES = 2000
MAX_BINDINGS = 500
MAX_SSLCERT = 10000
MAX_TEXT = 4096
STORES = ("My", "CA", "Root")

_THUMBPRINT_NOISE = re.compile(r"[\s:\u200e\u200f\ufeff-]")
_HEX40 = re.compile(r"^[0-9A-F]{40}\Z")
_HOST_SLUG = re.compile(r"[^a-z0-9.-]+")


# --------------------------------------------------------------------------------------------
# small normalisations


def normalise_thumbprint(value, *, what: str = "thumbprint") -> str:
    """Upper-case 40-digit hex; spaces, colons and the invisible marks a copy from the MMC dialog brings are dropped."""
    if not isinstance(value, str):
        raise CertfleetError(f"{what}: expected a SHA-1 thumbprint (40 hex digits), got {type(value).__name__}")
    text = _THUMBPRINT_NOISE.sub("", value).upper()
    if not _HEX40.match(text):
        raise CertfleetError(f"{what}: {value[:80]!r} is not a SHA-1 thumbprint (40 hex digits)")
    return text


def certificate_thumbprint(certificate) -> str:
    """Windows' thumbprint of a certificate: SHA-1 of the DER, upper-case hex without separators."""
    return certificate_fingerprint(certificate, "sha1").replace(":", "")


def normalise_ip(value) -> str:
    """IIS's "all unassigned" spelled one way: ``*`` for ``*``, empty and ``0.0.0.0``."""
    text = "" if value is None else str(value).strip()
    return "*" if text in ("", "*", "0.0.0.0") else text.lower().strip("[]")


def normalise_host(value) -> str:
    """Host header as IIS compares it: case-insensitive, no trailing dot."""
    return ("" if value is None else str(value)).strip().rstrip(".").lower()


# Windows prints DNs most specific first with its own short names (S= for the state, E= for e-mail).
_WINDOWS_ATTRIBUTES = {
    "CN": "2.5.4.3", "C": "2.5.4.6", "L": "2.5.4.7", "S": "2.5.4.8", "ST": "2.5.4.8", "O": "2.5.4.10",
    "OU": "2.5.4.11", "T": "2.5.4.12", "TITLE": "2.5.4.12", "STREET": "2.5.4.9", "SERIALNUMBER": "2.5.4.5",
    "SN": "2.5.4.4", "G": "2.5.4.42", "GIVENNAME": "2.5.4.42", "E": "1.2.840.113549.1.9.1",
    "EMAIL": "1.2.840.113549.1.9.1", "EMAILADDRESS": "1.2.840.113549.1.9.1", "DC": "0.9.2342.19200300.100.1.25",
    "UID": "0.9.2342.19200300.100.1.1", "POSTALCODE": "2.5.4.17",
}


def _value_key(value: str) -> str:
    return " ".join(value.split()).casefold()


def _split_dn(text: str) -> list[str]:
    """RDN components of a Windows or RFC 4514 DN string, splitting on ``,`` ``;`` ``+`` outside quotes."""
    parts, current, quoted, index = [], [], False, 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index + 1])
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in ",;+" and not quoted:
            parts.append("".join(current))
            current = []
            index += 1
            continue
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def dn_key(subject) -> tuple:
    """A DN compared the way a person reads it: attribute types by OID, values case- and space-folded, order ignored.

    ``subject`` is an ``x509.Name`` or a string as Windows prints it (``CN=Example Root, O=Example, C=JP``).
    """
    pairs = []
    if isinstance(subject, str):
        for part in _split_dn(subject[:MAX_TEXT]):
            attribute, _sep, value = part.partition("=")
            attribute = attribute.strip().upper()
            if attribute.startswith("OID."):
                attribute = attribute[4:]
            pairs.append((_WINDOWS_ATTRIBUTES.get(attribute, attribute), _value_key(value)))
    else:
        for attribute in subject:
            value = attribute.value if isinstance(attribute.value, str) else attribute.value.hex()
            pairs.append((attribute.oid.dotted_string, _value_key(value)))
    return tuple(sorted(pairs))


def windows_subject(name) -> str:
    """A DN as Windows shows it: most specific first, its short names, ``, `` between, values with a comma quoted."""
    short = {oid: attribute for attribute, oid in _WINDOWS_ATTRIBUTES.items()
             if attribute in ("CN", "C", "L", "S", "O", "OU", "T", "STREET", "SERIALNUMBER", "SN", "G", "E", "DC")}
    parts = []
    for attribute in reversed(list(name)):
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.hex()
        if any(char in value for char in ',+=";<>') or value != value.strip():
            value = '"' + value.replace('"', '""') + '"'
        label = short.get(attribute.oid.dotted_string, f"OID.{attribute.oid.dotted_string}")
        parts.append(f"{label}={value}")
    return ", ".join(parts)


def _when(value):
    if value in (None, ""):
        return None
    try:
        return parse_timestamp(value, what="not_after")
    except CertfleetError:
        return None


# --------------------------------------------------------------------------------------------
# FACTS


def _text(value, *, what: str, allow_empty: bool = True) -> str:
    if value is None:
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise CertfleetError(f"{what}: expected text, got {type(value).__name__}")
    text = str(value)
    if len(text) > MAX_TEXT:
        raise CertfleetError(f"{what}: longer than {MAX_TEXT} characters")
    if not text and not allow_empty:
        raise CertfleetError(f"{what}: must not be empty")
    return text


def _int(value, *, what: str, low: int, high: int, default: int | None = None) -> int:
    if value in (None, "") and default is not None:
        return default
    if isinstance(value, bool):
        raise CertfleetError(f"{what}: expected a number, got {value!r}")
    try:
        number = int(str(value).strip(), 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise CertfleetError(f"{what}: expected a number, got {str(value)[:40]!r}") from None
    if not low <= number <= high:
        raise CertfleetError(f"{what}: {number} is outside {low}..{high}")
    return number


def _list(value, *, what: str, limit: int) -> list:
    if value is None:
        return []
    if isinstance(value, dict):  # PowerShell's ConvertTo-Json turns a one-element array into the element
        value = [value]
    if not isinstance(value, list):
        raise CertfleetError(f"{what}: expected a list, got {type(value).__name__}")
    if len(value) > limit:
        raise CertfleetError(f"{what}: {len(value)} entries, more than the {limit} certfleet reads")
    return value


def _dict(value, *, what: str) -> dict:
    if not isinstance(value, dict):
        raise CertfleetError(f"{what}: expected a dict, got {type(value).__name__}")
    return value


def normalise_facts(facts, *, host: str = "host") -> dict:
    """FACTS of win_iis_facts checked and normalised: thumbprints upper-case hex, IPs and host names in one spelling.

    Raises CertfleetError naming the host and the field for anything malformed or beyond the bounds.
    """
    facts = _dict(facts, what=f"{host}: facts")
    os_facts = facts.get("os") or {}
    os_facts = _dict(os_facts, what=f"{host}: facts.os")
    build = os_facts.get("build")
    if build in (None, ""):
        version = str(os_facts.get("version") or "")
        pieces = version.split(".")
        build = pieces[2] if len(pieces) >= 3 and pieces[2].isdigit() else None
    result = {
        "os": {
            "version": _text(os_facts.get("version"), what=f"{host}: facts.os.version"),
            "build": None if build in (None, "") else _int(build, what=f"{host}: facts.os.build", low=0, high=10 ** 6),
            "caption": _text(os_facts.get("caption"), what=f"{host}: facts.os.caption"),
        },
        "certificates": {},
        "sites": [],
        "sslcert": [],
    }
    certificates = _dict(facts.get("certificates") or {}, what=f"{host}: facts.certificates")
    for store in STORES:
        entries = []
        for index, entry in enumerate(_list(certificates.get(store), what=f"{host}: facts.certificates.{store}",
                                            limit=MAX_STORE_CERTIFICATES)):
            what = f"{host}: facts.certificates.{store}[{index}]"
            entry = _dict(entry, what=what)
            entries.append({
                "thumbprint": normalise_thumbprint(entry.get("thumbprint"), what=f"{what}.thumbprint"),
                "subject": _text(entry.get("subject"), what=f"{what}.subject"),
                "issuer": _text(entry.get("issuer"), what=f"{what}.issuer"),
                "not_after": _text(entry.get("not_after"), what=f"{what}.not_after"),
                "has_private_key": bool(entry.get("has_private_key")),
                "friendly_name": _text(entry.get("friendly_name"), what=f"{what}.friendly_name"),
            })
        result["certificates"][store] = entries
    for index, site in enumerate(_list(facts.get("sites"), what=f"{host}: facts.sites", limit=MAX_SITES)):
        what = f"{host}: facts.sites[{index}]"
        site = _dict(site, what=what)
        bindings = []
        for number, binding in enumerate(_list(site.get("bindings"), what=f"{what}.bindings", limit=MAX_BINDINGS)):
            where = f"{what}.bindings[{number}]"
            binding = _dict(binding, what=where)
            protocol = _text(binding.get("protocol"), what=f"{where}.protocol").lower()
            certificate_hash = binding.get("certificate_hash")
            bindings.append({
                "protocol": protocol,
                "ip": normalise_ip(_text(binding.get("ip"), what=f"{where}.ip")),
                "port": _int(binding.get("port"), what=f"{where}.port", low=0, high=65535, default=0),
                "host": normalise_host(_text(binding.get("host"), what=f"{where}.host")),
                "ssl_flags": _int(binding.get("ssl_flags"), what=f"{where}.ssl_flags", low=0, high=SSL_FLAGS_MAX, default=0),
                "certificate_hash": (normalise_thumbprint(certificate_hash, what=f"{where}.certificate_hash")
                                     if certificate_hash not in (None, "") else None),
                "certificate_store": _text(binding.get("certificate_store"), what=f"{where}.certificate_store") or None,
            })
        result["sites"].append({
            "name": _text(site.get("name"), what=f"{what}.name", allow_empty=False),
            "id": site.get("id") if isinstance(site.get("id"), int) and not isinstance(site.get("id"), bool) else None,
            "bindings": bindings,
        })
    for index, entry in enumerate(_list(facts.get("sslcert"), what=f"{host}: facts.sslcert", limit=MAX_SSLCERT)):
        what = f"{host}: facts.sslcert[{index}]"
        entry = _dict(entry, what=what)
        thumbprint = entry.get("thumbprint")
        result["sslcert"].append({
            "ip_port": _text(entry.get("ip_port"), what=f"{what}.ip_port") or None,
            "host_port": _text(entry.get("host_port"), what=f"{what}.host_port").lower() or None,
            "thumbprint": normalise_thumbprint(thumbprint, what=f"{what}.thumbprint") if thumbprint not in (None, "") else None,
            "store": _text(entry.get("store"), what=f"{what}.store") or None,
        })
    return result


def bound_thumbprints(facts: dict) -> set[str]:
    """Every thumbprint a site binding or an http.sys sslcert entry uses (normalised FACTS)."""
    bound = {binding["certificate_hash"] for site in facts["sites"] for binding in site["bindings"] if binding["certificate_hash"]}
    bound.update(entry["thumbprint"] for entry in facts["sslcert"] if entry["thumbprint"])
    return bound


def _in_store(facts: dict, store: str, thumbprint: str) -> dict | None:
    for entry in facts["certificates"][store]:
        if entry["thumbprint"] == thumbprint:
            return entry
    return None


# --------------------------------------------------------------------------------------------
# PFX encryption


def windows_name(build: int | None) -> str:
    """'Windows Server 2016 (build 14393)' for messages."""
    if build is None:
        return "a Windows version the facts do not tell"
    known = [number for number in WINDOWS_BUILDS if number <= build]
    label = WINDOWS_BUILDS[max(known)] if known else "Windows"
    return f"{label} (build {build})"


def pfx_encryption(os_facts: dict | None, override: str = "auto") -> tuple[str, str]:
    """(``modern`` | ``compatible``, the reason) for a host's OS facts; ``override`` other than auto wins.

    Unknown builds get ``compatible``: every Windows reads 3DES / SHA-1, only 17763 and later read AES.
    """
    override = override or "auto"
    if override not in PFX_ENCRYPTION_CHOICES:
        raise CertfleetError(f"pfx_encryption must be one of {', '.join(PFX_ENCRYPTION_CHOICES)}, not {override!r}")
    build = (os_facts or {}).get("build")
    name = windows_name(build)
    if override == "compatibility":
        override = "compatible"
    if override == "modern":
        if build is not None and build < MODERN_PFX_MIN_BUILD:
            return "modern", (f"pfx_encryption=modern asked for {name}, which refuses AES-256 PFX files "
                              f"(\"The specified network password is not correct\"); the import will fail")
        return "modern", "pfx_encryption=modern asked: AES-256-CBC with PBKDF2 and a SHA-256 MAC"
    if override == "compatible":
        return "compatible", "pfx_encryption=compatible asked: 3DES with a SHA-1 MAC"
    if build is None:
        return "compatible", ("the facts do not give the Windows build; 3DES with a SHA-1 MAC, which every Windows "
                              "version imports")
    if build >= MODERN_PFX_MIN_BUILD:
        return "modern", f"{name} imports AES-256-CBC / PBKDF2 PFX files with a SHA-256 MAC"
    return "compatible", (f"{name} refuses AES-256 PFX files (\"The specified network password is not correct\"); "
                          f"3DES with a SHA-1 MAC, the newest scheme it imports")


# --------------------------------------------------------------------------------------------
# several servers, one name


def key_policy(definition: dict | None) -> str:
    """``shared`` (one key, the same PFX on every server) or ``per_server`` (a key and CSR per server)."""
    deploy = (definition or {}).get("deploy") or {}
    if not isinstance(deploy, dict):
        raise CertfleetError(f"{(definition or {}).get('name')}: deploy must be a dict (deploy.key_policy)")
    policy = deploy.get("key_policy") or "shared"
    if policy not in KEY_POLICIES:
        raise CertfleetError(f"{(definition or {}).get('name')}: deploy.key_policy {policy!r} must be one of "
                             f"{', '.join(KEY_POLICIES)}")
    return policy


def per_server_name(definition: str, host: str) -> str:
    """The store definition of one server under key_policy per_server: ``<definition>--<host>``."""
    slug = _HOST_SLUG.sub("-", str(host or "").lower()).strip("-.")
    if not slug:
        raise CertfleetError(f"{definition}: deploy.key_policy per_server needs the host's name (host) to find its own key")
    return layout.check_name(f"{definition}{PER_SERVER_SEPARATOR}{slug}", what=f"{definition}: per-server definition name")


def per_server_definitions(definition: dict, hosts: list) -> list[dict]:
    """The definitions a per_server definition stands for, one per host (copies with the derived name)."""
    name = layout.check_name(definition.get("name"), what="definitions: name")
    if key_policy(definition) != "per_server":
        return [definition]
    return [dict(definition, name=per_server_name(name, host)) for host in hosts]


def deploy_name(definition_name: str, definition: dict | None, *, host: str | None, policy: str | None = None,
                available=None) -> tuple[str, str]:
    """(store definition to deploy, key policy) for one definition on one host.

    ``policy`` forces a policy (the module's ``key_policy`` option): asking for a shared-key deploy of a
    per_server definition is refused, never silently turned into copying one key to every server.
    ``available(name) -> bool`` tells whether the store holds a definition (for a clear message).
    """
    layout.check_name(definition_name, what="sites[]: certificate")
    declared = key_policy(definition)
    if policy not in (None, "", "auto") and policy != declared:
        if declared == "per_server":
            raise CertfleetError(f"{definition_name}: deploy.key_policy is per_server (a key and CSR per server); refusing a "
                                 f"shared-key deploy that would copy one key to every server")
        raise CertfleetError(f"{definition_name}: deploy.key_policy is shared; key_policy=per_server asked, set "
                             f"deploy.key_policy: per_server on the definition and request one key per server first")
    if declared == "shared":
        return definition_name, "shared"
    name = per_server_name(definition_name, host)
    if available is not None and not available(name):
        raise CertfleetError(f"{definition_name}: deploy.key_policy is per_server, and the store has no definition {name} "
                             f"(this server's own key and CSR); refusing to deploy the shared {definition_name} instead. "
                             f"Add {name} to certfleet_certificates (a copy of {definition_name} with that name) and run "
                             f"certfleet.tls.request")
    return name, "per_server"


# --------------------------------------------------------------------------------------------
# sites


SITE_KEYS = {"name", "certificate", "host", "port", "ip", "sni"}


def normalise_sites(sites, definitions: dict | None = None) -> list[dict]:
    """iis_ssl_sites checked: name, certificate, host (None = the certificate's name), port, ip, sni."""
    result, seen = [], set()
    for index, site in enumerate(_list(sites, what="sites", limit=MAX_SITES)):
        what = f"sites[{index}]"
        site = _dict(site, what=what)
        unknown = sorted(set(site) - SITE_KEYS)
        if unknown:
            raise CertfleetError(f"{what}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(SITE_KEYS))})")
        name = _text(site.get("name"), what=f"{what}.name", allow_empty=False)
        what = f"sites[{name}]"
        certificate = layout.check_name(site.get("certificate"), what=f"{what}.certificate")
        host = site.get("host")
        if host is None:
            definition = (definitions or {}).get(certificate) or {}
            host = definition.get("common_name")
        host = None if host is None else normalise_host(_text(host, what=f"{what}.host"))
        sni = site.get("sni")
        sni = True if sni is None else sni
        if not isinstance(sni, bool):
            raise CertfleetError(f"{what}.sni: expected true or false")
        entry = {"name": name, "certificate": certificate, "host": host,
                 "port": _int(site.get("port"), what=f"{what}.port", low=1, high=65535, default=443),
                 "ip": normalise_ip(_text(site.get("ip"), what=f"{what}.ip")), "sni": sni}
        key = (name.casefold(), entry["ip"], entry["port"], host)
        if key in seen:
            raise CertfleetError(f"{what}: the same binding ({entry['ip']}:{entry['port']}:{host or ''}) is listed twice")
        seen.add(key)
        result.append(entry)
    return result


def fill_hosts(sites: list[dict], leaf) -> list[dict]:
    """Sites without a host name get the certificate's common name (or first DNS name)."""
    default = None
    for attribute in leaf.subject:
        if attribute.oid.dotted_string == "2.5.4.3":
            default = attribute.value
    if default is None:
        names = extension_value(leaf, x509.SubjectAlternativeName)
        dns = names.get_values_for_type(x509.DNSName) if names is not None else []
        default = dns[0] if dns else None
    out = []
    for site in sites:
        host = site["host"]
        if host is None:
            if default is None:
                raise CertfleetError(f"sites[{site['name']}]: no host given and the certificate has no common name")
            host = normalise_host(default)
        out.append(dict(site, host=host))
    return out


# --------------------------------------------------------------------------------------------
# which certificate goes to which store


def _describe(certificate) -> dict:
    return {"thumbprint": certificate_thumbprint(certificate), "subject": windows_subject(certificate.subject),
            "not_after": iso(certificate.not_valid_after_utc), "pem": _chain.fullchain_pem([certificate]).decode("ascii")}


def split_chain(intermediates: list) -> tuple[list, object | None]:
    """(intermediates proper, a self-signed root the CA sent at the end of the chain or None)."""
    if intermediates and _chain.is_self_signed(intermediates[-1]):
        return list(intermediates[:-1]), intermediates[-1]
    return list(intermediates), None


def find_root(top, candidates) -> object | None:
    """The candidate root (self-signed) that issued ``top`` (the last intermediate, or the leaf), or None."""
    for candidate in candidates or []:
        if _chain.is_self_signed(candidate) and _chain.is_issued_by(top, candidate):
            return candidate
    return None


def store_placement(intermediates: list, root, facts: dict, *, install_root: bool) -> tuple[list[dict], dict | None, list[str]]:
    """(intermediates missing from CA, the root for Root or None, messages).

    The leaf and its key go to ``My`` alone; an intermediate goes to ``CA`` and never ``My`` (an
    intermediate in ``My`` beside the leaf confuses the certificate selection of IIS Manager and of
    chain building); the root goes to ``Root`` only with ``install_root``.
    """
    messages, missing = [], []
    for certificate in intermediates:
        entry = _describe(certificate)
        if _in_store(facts, "My", entry["thumbprint"]):
            messages.append(f"intermediate {entry['subject']} ({entry['thumbprint']}) is in My; it belongs in CA "
                            f"(Intermediate Certification Authorities)")
        if not _in_store(facts, "CA", entry["thumbprint"]):
            missing.append(entry)
    root_entry = None
    if root is not None:
        described = _describe(root)
        present = _in_store(facts, "Root", described["thumbprint"])
        if install_root and not present:
            root_entry = described
        elif not install_root and not present:
            messages.append(f"root {described['subject']} ({described['thumbprint']}) is not in Root; the chain will not be "
                            f"trusted on the server unless it gets there (install_root: true puts it there)")
    return missing, root_entry, messages


def conflicting_roots(root, expected_issuer, facts: dict, *, remove: bool) -> tuple[list[dict], list[str]]:
    """Roots in ``Root`` with the intended root's name but another thumbprint (old same-name roots break chain building).

    ``root`` is the intended root certificate when known; otherwise only its name (``expected_issuer``, the
    last intermediate's issuer) is known, and several roots of that name are reported, never removed,
    because certfleet cannot tell which one is right.
    """
    messages = []
    if root is not None:
        wanted_name, wanted = dn_key(root.subject), certificate_thumbprint(root)
        label = windows_subject(root.subject)
    else:
        wanted_name, wanted, label = dn_key(expected_issuer), None, windows_subject(expected_issuer)
    same_name = [entry for entry in facts["certificates"]["Root"] if dn_key(entry["subject"]) == wanted_name]
    if wanted is not None:
        others = [entry for entry in same_name if entry["thumbprint"] != wanted]
        action = "remove" if remove else "report"
    elif len(same_name) > 1:
        others, action = same_name, "report"
        messages.append(f"{len(same_name)} roots named {label} in Root; without the intended root certificate "
                        f"(root_certificates) certfleet cannot tell which one is right, so none is removed")
    else:
        others, action = [], "report"
    conflicts = [{"thumbprint": entry["thumbprint"], "subject": entry["subject"], "not_after": entry["not_after"],
                  "action": action} for entry in others]
    if conflicts and action == "report" and wanted is not None:
        messages.append(f"{len(conflicts)} other root(s) named {label} in Root can break chain building; "
                        f"remove_conflicting_roots: true removes them")
    return conflicts, messages


def repair_list(thumbprint: str, facts: dict, *, friendly_name: str | None = None) -> list[str]:
    """Certificates of this definition in My whose private key association is lost (HasPrivateKey false):
    the one being deployed, and earlier generations (same friendly name) that a binding still uses."""
    bound = bound_thumbprints(facts)
    repair = []
    for entry in facts["certificates"]["My"]:
        if entry["has_private_key"]:
            continue
        ours = entry["thumbprint"] == thumbprint or (friendly_name and entry["friendly_name"] == friendly_name
                                                     and entry["thumbprint"] in bound)
        if ours and entry["thumbprint"] not in repair:
            repair.append(entry["thumbprint"])
    return repair


# --------------------------------------------------------------------------------------------
# bindings


def _site(facts: dict, name: str) -> dict | None:
    for site in facts["sites"]:
        if site["name"].casefold() == name.casefold():
            return site
    return None


def _https(site: dict) -> list[dict]:
    return [binding for binding in site["bindings"] if binding["protocol"] == "https"]


def desired_ssl_flags(existing: int | None, *, sni: bool) -> int:
    """SNI bit as asked, central-store bit cleared (the certificate comes from My), every other bit kept."""
    base = (existing or 0) & ~(SSL_FLAG_SNI | SSL_FLAG_CENTRAL_STORE)
    return base | (SSL_FLAG_SNI if sni else 0)


def binding_plan(sites: list[dict], facts: dict, thumbprint: str, *, all_sites: list[dict] | None = None,
                 thumbprint_of: dict | None = None) -> tuple[list[dict], list[dict], list[str]]:
    """(bindings, collisions, messages) for ``sites`` (normalised, hosts filled) on the host of ``facts``.

    A site's binding is matched by site name, IP, port and host name (case-insensitive); found with the
    same thumbprint and flags it is ``unchanged``, otherwise ``switch``; not found, ``add``. A non-SNI
    binding changes the one certificate of its IP:port in http.sys for every site bound there: when
    another site shares that IP:port and is not meant to get the same certificate, the binding is left
    alone and reported in ``collisions``.
    ``all_sites`` / ``thumbprint_of`` (definition -> thumbprint) describe the other managed sites of the
    host, so sites that all move to the same certificate together are no collision.
    """
    bindings, collisions, messages = [], [], []
    build = facts["os"].get("build")
    ours = {site["certificate"] for site in sites}
    managed = {}
    for site in all_sites or sites:
        wanted = thumbprint if site["certificate"] in ours else (thumbprint_of or {}).get(site["certificate"])
        managed[(site["name"].casefold(), site["ip"], site["port"])] = wanted
    for site in sites:
        what = f"sites[{site['name']}]"
        if site["sni"] and not site["host"]:
            raise CertfleetError(f"{what}: sni needs a host name (give host, or sni: false for an IP:port binding)")
        if site["sni"] and build is not None and build < SNI_MIN_BUILD:
            raise CertfleetError(f"{what}: SNI bindings need IIS 8 (Windows Server 2012, build {SNI_MIN_BUILD}); this host is "
                                 f"{windows_name(build)}: use sni: false (one certificate per IP:port)")
        existing_site = _site(facts, site["name"])
        if existing_site is None:
            known = ", ".join(sorted(entry["name"] for entry in facts["sites"])[:20]) or "none"
            raise CertfleetError(f"{what}: no IIS site of that name on the host (sites: {known}); certfleet binds "
                                 f"certificates to existing sites, it does not create them")
        match = None
        for binding in _https(existing_site):
            if binding["ip"] == site["ip"] and binding["port"] == site["port"] and binding["host"] == site["host"]:
                match = binding
                break
        previous = match["certificate_hash"] if match else None
        previous_flags = match["ssl_flags"] if match else None
        flags = desired_ssl_flags(previous_flags, sni=site["sni"])
        if match is None:
            action = "add"
        elif previous == thumbprint and previous_flags == flags and (match["certificate_store"] or "My").lower() == "my":
            action = "unchanged"
        else:
            action = "switch"
        entry = {"site": existing_site["name"], "protocol": "https", "ip": site["ip"], "port": site["port"],
                 "host": site["host"], "sni": site["sni"], "ssl_flags": flags, "certificate_store": "My",
                 "previous_thumbprint": previous, "previous_ssl_flags": previous_flags, "action": action}
        if action != "unchanged" and not site["sni"]:
            collision = _non_sni_collision(site, facts, thumbprint, managed)
            if collision is not None:
                collisions.append(collision)
                messages.append(collision["message"])
                continue
        if match is not None and match["ssl_flags"] & SSL_FLAG_CENTRAL_STORE:
            messages.append(f"{what}: the binding used the Centralized Certificate Store; it now uses {thumbprint} from My")
        bindings.append(entry)
    return bindings, collisions, messages


def _non_sni_collision(site: dict, facts: dict, thumbprint: str, managed: dict) -> dict | None:
    """The other sites with a non-SNI HTTPS binding on the same IP:port that would not get ``thumbprint``."""
    sharing = []
    for other in facts["sites"]:
        if other["name"].casefold() == site["name"].casefold():
            continue
        for binding in _https(other):
            if binding["ip"] == site["ip"] and binding["port"] == site["port"] and not binding["ssl_flags"] & SSL_FLAG_SNI:
                wanted = managed.get((other["name"].casefold(), binding["ip"], binding["port"]))
                if wanted != thumbprint:
                    sharing.append(other["name"])
                break
    if not sharing:
        return None
    ip_port = f"{'0.0.0.0' if site['ip'] == '*' else site['ip']}:{site['port']}"
    sites = [site["name"]] + sorted(set(sharing))
    return {"ip_port": ip_port, "sites": sites,
            "message": (f"{ip_port} without SNI is shared by the sites {', '.join(sites)}: http.sys holds one certificate "
                        f"per IP:port, so switching {site['name']} would switch every one of them; left unchanged. Use SNI "
                        f"(sni: true with a host name), another IP or port, or give all of them the same certificate")}


def rollback_plan(bindings: list[dict]) -> list[dict]:
    """What restores the bindings a plan changed, last change first.

    Takes the PLAN's bindings (``action``) or the record win_iis_binding returns (``existed``, ``changed``).
    """
    steps = []
    for binding in reversed(bindings or []):
        action = binding.get("action")
        if action is None:  # win_iis_binding's record: existed / changed instead of the plan's action
            action = "unchanged" if not binding.get("changed") else ("switch" if binding.get("existed") else "add")
        base = {"site": binding["site"], "ip": binding["ip"], "port": binding["port"], "host": binding["host"]}
        if action == "add":
            steps.append(dict(base, action="remove", thumbprint=None, ssl_flags=None))
        elif action == "switch":
            steps.append(dict(base, action="switch", thumbprint=binding.get("previous_thumbprint"),
                              ssl_flags=binding.get("previous_ssl_flags")))
    return steps


# --------------------------------------------------------------------------------------------
# old certificates


def cleanup_plan(facts: dict, *, thumbprint: str, friendly_name: str, keep_generations: int) -> tuple[list[str], list[str]]:
    """(thumbprints to remove from My, messages): this definition's older generations (same friendly name, the
    name certfleet gives its PFX) beyond the newest ``keep_generations``, never the one deployed, never one bound
    by a site or an http.sys sslcert entry, never one whose expiry the facts do not give."""
    if keep_generations < 0:
        raise CertfleetError("keep_generations must be 0 or more")
    bound = bound_thumbprints(facts)
    older = [entry for entry in facts["certificates"]["My"]
             if entry["friendly_name"] == friendly_name and entry["thumbprint"] != thumbprint]
    messages, dated = [], []
    for entry in older:
        moment = _when(entry["not_after"])
        if moment is None:
            messages.append(f"{entry['thumbprint']} in My has no readable not_after; it is kept")
        else:
            dated.append((moment, entry))
    dated.sort(key=lambda item: item[0], reverse=True)
    remove = []
    for moment, entry in dated[keep_generations:]:
        if entry["thumbprint"] in bound:
            messages.append(f"{entry['thumbprint']} (until {iso(moment)}) is still bound; it is kept")
            continue
        remove.append(entry["thumbprint"])
    return remove, messages


# --------------------------------------------------------------------------------------------
# the PLAN


def pfx_needed(thumbprint: str, facts: dict) -> bool:
    """A PFX is copied unless the certificate is in My with its private key."""
    entry = _in_store(facts, "My", thumbprint)
    return not (entry and entry["has_private_key"])


def build_plan(*, name: str, definition: str, policy: str, leaf, intermediates: list, root, sites: list[dict], facts: dict,
               pfx_encryption_option: str = "auto", install_root: bool = False, remove_conflicting_roots: bool = False,
               keep_generations: int = 1, key_exportable: bool = False, all_sites: list[dict] | None = None,
               thumbprint_of: dict | None = None) -> dict:
    """The PLAN for one definition on one host (see the iis_plan module's RETURN); ``pfx_path`` is left None.

    ``name`` is the store definition deployed (``definition`` or its per-server name), ``sites`` the
    normalised sites of this definition, ``root`` the intended root when known, ``facts`` normalised.
    """
    thumbprint = certificate_thumbprint(leaf)
    proper, sent_root = split_chain(intermediates)
    root = root if root is not None else sent_root
    encryption, reason = pfx_encryption(facts["os"], pfx_encryption_option)
    messages = []
    if encryption == "modern" and facts["os"].get("build") is not None and facts["os"]["build"] < MODERN_PFX_MIN_BUILD:
        messages.append(reason)
    to_ca, to_root, placement_messages = store_placement(proper, root, facts, install_root=install_root)
    top = proper[-1] if proper else leaf
    conflicts, root_messages = conflicting_roots(root, top.issuer, facts, remove=remove_conflicting_roots)
    repair = repair_list(thumbprint, facts, friendly_name=name)
    bindings, collisions, binding_messages = binding_plan(fill_hosts(sites, leaf), facts, thumbprint, all_sites=all_sites,
                                                          thumbprint_of=thumbprint_of)
    cleanup, cleanup_messages = cleanup_plan(facts, thumbprint=thumbprint, friendly_name=name, keep_generations=keep_generations)
    messages.extend(placement_messages + root_messages + binding_messages + cleanup_messages)
    for entry in repair:
        messages.append(f"{entry} is in My without its private key: the PFX is imported again and "
                        f"certutil -repairstore my {entry} restores the association")
    need_pfx = pfx_needed(thumbprint, facts)
    info = _chain.certificate_info(leaf)
    changed = bool(need_pfx or to_ca or to_root or repair or cleanup
                   or any(entry["action"] == "remove" for entry in conflicts)
                   or any(binding["action"] != "unchanged" for binding in bindings))
    return {
        "changed": changed,
        "name": name,
        "definition": definition,
        "key_policy": policy,
        "pfx_path": None,
        "pfx_encryption": encryption,
        "pfx_encryption_reason": reason,
        "key_exportable": bool(key_exportable),
        "thumbprint": thumbprint,
        "certificate": {"name": name, "sha256": certificate_fingerprint(leaf, "sha256"), "subject": info.get("subject"),
                        "not_after": iso(leaf.not_valid_after_utc)},
        "intermediates": [{key: entry[key] for key in ("thumbprint", "subject", "pem")} for entry in to_ca],
        "root": {key: to_root[key] for key in ("thumbprint", "subject", "pem")} if to_root else None,
        "conflicting_roots": conflicts,
        "repair": repair,
        "bindings": bindings,
        "rollback": rollback_plan(bindings),
        "collisions": collisions,
        "cleanup": cleanup,
        "messages": messages,
    }


def plan_diff(plan: dict) -> dict:
    """before / after of a PLAN for --diff: thumbprints, stores and bindings, never key material or PEM."""
    before = {"bindings": [], "stores": {}}
    after = {"bindings": [], "stores": {}}
    for binding in plan["bindings"]:
        label = f"{binding['site']} https {binding['ip']}:{binding['port']}:{binding['host']}"
        if binding["action"] != "add":
            before["bindings"].append(f"{label} -> {binding['previous_thumbprint']} (ssl_flags {binding['previous_ssl_flags']})")
        after["bindings"].append(f"{label} -> {plan['thumbprint']} (ssl_flags {binding['ssl_flags']})")
    if plan["pfx_path"] or plan["repair"]:
        after["stores"].setdefault("My", []).append(f"+ {plan['thumbprint']} with its private key")
    for entry in plan["intermediates"]:
        after["stores"].setdefault("CA", []).append(f"+ {entry['thumbprint']} {entry['subject']}")
    if plan["root"]:
        after["stores"].setdefault("Root", []).append(f"+ {plan['root']['thumbprint']} {plan['root']['subject']}")
    for entry in plan["conflicting_roots"]:
        if entry["action"] == "remove":
            after["stores"].setdefault("Root", []).append(f"- {entry['thumbprint']} {entry['subject']}")
    for entry in plan["cleanup"]:
        after["stores"].setdefault("My", []).append(f"- {entry}")
    return {"before": before, "after": after}


# --------------------------------------------------------------------------------------------
# one host: from the store and the FACTS to its PLANs


def definitions_by_name(definitions) -> dict:
    """certfleet_certificates as {name: definition}; every name checked."""
    result = {}
    for index, definition in enumerate(_list(definitions, what="definitions", limit=100000)):
        definition = _dict(definition, what=f"definitions[{index}]")
        result[layout.check_name(definition.get("name"), what=f"definitions[{index}].name")] = definition
    return result


def load_roots(paths, *, read) -> list:
    """Candidate roots from PEM / DER files on the controller (``read(path) -> bytes | None``)."""
    roots = []
    for path in paths or []:
        data = read(path)
        if data is None:
            raise CertfleetError(f"root_certificates: {path} does not exist")
        roots.extend(item.certificate for item in _chain.load_certificates(data, source=str(path)).certificates)
    return roots


def private_ca_root(store_path: str, definition: dict | None, *, read) -> list:
    """The store CA's root for a private_ca definition ([] for any other issuer or a CA without one)."""
    issuer = (definition or {}).get("issuer") or {}
    if not isinstance(issuer, dict) or issuer.get("provider") != "private_ca" or not issuer.get("ca"):
        return []
    path = layout.ca_path(store_path, issuer["ca"], "root")
    data = read(path)
    if data is None:
        return []
    return [item.certificate for item in _chain.load_certificates(data, source=path).certificates]


def plan_host(*, store_path: str, passphrase: str | None, sites, definitions, facts, host: str | None = None,
              certificate: str | None = None, key_policy_option: str | None = None, root_certificates=(),
              load, read, exists, options: dict | None = None) -> list[tuple[dict, object]]:
    """[(PLAN, CurrentGeneration)] for every definition the host's sites use (only ``certificate`` when given).

    ``load(store_path, name, passphrase)`` is ``_store.store.load_current``, ``read(path)`` reads a controller
    file (None when absent), ``exists(name)`` tells whether the store holds a definition; ``options`` are
    build_plan's keyword options (pfx_encryption_option, install_root, ...).
    """
    label = host or "host"
    facts = normalise_facts(facts, host=label)
    by_name = definitions_by_name(definitions)
    all_sites = normalise_sites(sites, by_name)
    if not all_sites:
        raise CertfleetError(f"{label}: no sites to plan (iis_ssl_sites is empty)")
    order = []
    for site in all_sites:
        if site["certificate"] not in order:
            order.append(site["certificate"])
    if certificate is not None:
        layout.check_name(certificate, what="certificate")
        if certificate not in order:
            raise CertfleetError(f"{label}: no site uses certificate {certificate} (sites use {', '.join(order)})")
    extra_roots = load_roots(root_certificates, read=read)
    loaded, thumbprint_of = {}, {}
    for definition in order:
        wanted = certificate is None or definition == certificate
        try:
            name, policy = deploy_name(definition, by_name.get(definition), host=host, policy=key_policy_option,
                                       available=exists)
            current = load(store_path, name, passphrase)
        except CertfleetError:
            if wanted:
                raise
            continue  # another definition of the host: only its thumbprint was wanted (collisions)
        loaded[definition] = (name, policy, current)
        thumbprint_of[definition] = certificate_thumbprint(current.leaf)
    plans = []
    for definition in order:
        if certificate is not None and definition != certificate:
            continue
        name, policy, current = loaded[definition]
        candidates = private_ca_root(store_path, by_name.get(definition), read=read) + extra_roots
        proper, sent_root = split_chain(current.intermediates)
        root = sent_root or find_root(proper[-1] if proper else current.leaf, candidates)
        plan = build_plan(name=name, definition=definition, policy=policy, leaf=current.leaf, intermediates=current.intermediates,
                          root=root, sites=[site for site in all_sites if site["certificate"] == definition], facts=facts,
                          all_sites=all_sites, thumbprint_of=thumbprint_of, **(options or {}))
        plans.append((plan, current))
    return plans


def pfx_file_name(name: str, host: str | None, thumbprint: str, *, token: str) -> str:
    """``<name>.<host>.<thumbprint 8>.pfx``: parallel hosts never share one PFX file (each has its passphrase)."""
    slug = _HOST_SLUG.sub("-", str(host or "").lower()).strip("-.") or token
    return f"{name}.{slug[:64]}.{thumbprint[:8]}.pfx"
