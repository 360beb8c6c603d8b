# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CA product catalog: which intermediate / cross-root certificates a product needs.

This module is private to the certfleet.tls collection: its API may change
without notice.

The data comes from the CAs' public documentation: Cybertrust's SureServer FAQ
"どの中間CA証明書をダウンロードすればよいですか?" (which intermediate CA certificate to
download) and CrossTrust's Microsoft IIS 6.0 certificate installation guide (section 2.2,
the intermediate and root certificate table). Only names those documents print are used;
the certificates themselves are not shipped: users download them from the CA. Users
extend the catalog by passing their own entries to ``merge_catalog``.

An entry is a dict::

    vendor, product           names as the CA prints them
    variant                   optional label telling date-dependent variants apart
    issued_from, issued_until optional ISO 8601 bounds on the server certificate's
                              notBefore (from inclusive, until exclusive)
    intermediates             ordered list of certificate refs, the one nearest the leaf first
    cross_roots               ordered list of cross-root intermediate refs (served after the intermediates)
    roots                     root certificate refs the manual says to install (not served)
    cross_roots_optional      the cross-root certificates are a recommendation, not required
    notes                     free text (why a detail is missing, what a footnote says)
    source                    the public document the data comes from

A certificate ref is a dict ``{"name": ..., "cn": ... or None, "file": ... or None}``:
``name`` is what to download, ``cn`` the subject common name when known (used to
recognise a leaf's issuer), ``file`` the download file name when the manual gives one.
"""

from __future__ import annotations

import copy
import datetime

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import DN_OIDS, CertfleetError

JST = datetime.timezone(datetime.timedelta(hours=9), "JST")

# The public documents the built-in entries come from (an entry's "source").
SURESERVER_FAQ = "Cybertrust SureServer FAQ: which intermediate CA certificate to download"
CROSSTRUST_IIS6_GUIDE = "CrossTrust Microsoft IIS 6.0 installation guide, section 2.2"

# Order matters only for reporting: entries are listed as the manuals list them.
CATALOG: list[dict] = [
    # --- Cybertrust Japan SureServer (Cybertrust's SureServer FAQ) -------------------------
    # In the FAQ's first table the numbering (①②③) runs across the "中間CA証明書" and
    # "クロスルート用中間CA証明書" columns and is the concatenation order, which its second
    # table (連結ファイル) states explicitly as intermediate -> cross-root. Names are used as
    # common names because the FAQ tells users to identify their product by the issuer's
    # common name (発行者のコモンネーム); it gives no O / C / full subject DN for any of them.
    {
        "vendor": "Cybertrust Japan",
        "product": "SureServer[2048bit]",
        "variant": "issued on or before 2013-08-02 20:59 JST",
        # Footnote ※1: certificates issued 2013-08-02 20:59 JST or earlier chain to Public CA G2.
        # "20:59以前" includes the whole minute 20:59, hence the exclusive bound 21:00.
        "issued_until": "2013-08-02T21:00:00+09:00",
        "intermediates": [{"name": "Cybertrust Japan Public CA G2", "cn": "Cybertrust Japan Public CA G2"}],
        "cross_roots": [{"name": "Baltimore CyberTrust Root", "cn": "Baltimore CyberTrust Root"}],
        "cross_roots_optional": True,
        "notes": [
            "Footnote 2: install the cross-root intermediate as well when compatibility with mobile handsets matters.",
            "Concatenated file for OpenSSL-style servers: Cybertrust Japan Public CA G2 + Baltimore CyberTrust Root.",
        ],
        "source": SURESERVER_FAQ,
    },
    {
        "vendor": "Cybertrust Japan",
        "product": "SureServer[2048bit]",
        "variant": "issued after 2013-08-02 20:59 JST",
        "issued_from": "2013-08-02T21:00:00+09:00",
        "intermediates": [{"name": "Cybertrust Japan Public CA G3", "cn": "Cybertrust Japan Public CA G3"}],
        "cross_roots": [{"name": "Baltimore CyberTrust Root", "cn": "Baltimore CyberTrust Root"}],
        "cross_roots_optional": True,
        "notes": [
            "Footnote 2: install the cross-root intermediate as well when compatibility with mobile handsets matters.",
        ],
        "source": SURESERVER_FAQ,
    },
    {
        "vendor": "Cybertrust Japan",
        "product": "SureServer EV[2048bit]",
        "intermediates": [{"name": "Cybertrust Japan EV CA G2", "cn": "Cybertrust Japan EV CA G2"}],
        # Whether "Cybertrust Global Root" sits in the intermediate or the cross-root column is
        # not clear from the FAQ's table; the SureServer[SHA-2] row shows "-" in the
        # cross-root column where the EV[SHA-2] row shows ②Cybertrust Global Root, so it is taken
        # as a cross-root here. The served order is the same either way.
        "cross_roots": [
            {"name": "Cybertrust Global Root", "cn": "Cybertrust Global Root"},
            {"name": "Baltimore CyberTrust Root", "cn": "Baltimore CyberTrust Root"},
        ],
        "notes": ["Concatenated file: Cybertrust Japan EV CA G2 + Cybertrust Global Root + Baltimore CyberTrust Root."],
        "source": SURESERVER_FAQ,
    },
    {
        "vendor": "Cybertrust Japan",
        "product": "SureServer[SHA-2]",
        # No ※1 date footnote on this row: the G2 rule applies to SureServer[2048bit] only.
        "intermediates": [{"name": "Cybertrust Japan Public CA G3", "cn": "Cybertrust Japan Public CA G3"}],
        "cross_roots": [],
        "notes": ["The FAQ lists no cross-root intermediate for this product."],
        "source": SURESERVER_FAQ,
    },
    {
        "vendor": "Cybertrust Japan",
        "product": "SureServer EV[SHA-2]",
        "intermediates": [{"name": "Cybertrust Japan EV CA G2", "cn": "Cybertrust Japan EV CA G2"}],
        "cross_roots": [{"name": "Cybertrust Global Root", "cn": "Cybertrust Global Root"}],
        "notes": ["Concatenated file: Cybertrust Japan EV CA G2 + Cybertrust Global Root."],
        "source": SURESERVER_FAQ,
    },
    # --- CrossTrust (its Microsoft IIS 6.0 installation guide, section 2.2) ----------------------
    # The guide names download files only, never a subject CN, so these entries cannot be
    # matched against a leaf's issuer automatically (cn is None); users who know the CN add
    # it with merge_catalog. The root column is one cell spanning the SHA-256 rows and one
    # spanning the SHA-1 rows (the Crypto SSL rows have no root of their own in the text).
    # The guide does not say which time zone its dates are in; JST is assumed for a Japanese CA.
    {
        "vendor": "CrossTrust",
        "product": "Enterprise SSL(SHA-256)",
        "intermediates": [{"name": "CrossTrustOVCA3.crt", "file": "CrossTrustOVCA3.crt"}],
        "roots": [{"name": "SecurityCommunicationRootCA2.crt", "file": "SecurityCommunicationRootCA2.crt"}],
        "source": CROSSTRUST_IIS6_GUIDE,
    },
    {
        "vendor": "CrossTrust",
        "product": "Crypto SSL(SHA-256)",
        "intermediates": [{"name": "CrossTrustDVCA3.crt", "file": "CrossTrustDVCA3.crt"}],
        "roots": [{"name": "SecurityCommunicationRootCA2.crt", "file": "SecurityCommunicationRootCA2.crt"}],
        "notes": ["Root taken from the table cell shared with Enterprise SSL(SHA-256)."],
        "source": CROSSTRUST_IIS6_GUIDE,
    },
    {
        "vendor": "CrossTrust",
        "product": "Enterprise SSL(SHA-1)",
        "intermediates": [{"name": "CrossTrustOVCA1.crt", "file": "CrossTrustOVCA1.crt"}],
        "roots": [{"name": "SecurityCommunicationRootCA1.crt", "file": "SecurityCommunicationRootCA1.crt"}],
        "source": CROSSTRUST_IIS6_GUIDE,
    },
    {
        "vendor": "CrossTrust",
        "product": "Crypto SSL(SHA-1)",
        "intermediates": [{"name": "CrossTrustDVCA1.crt", "file": "CrossTrustDVCA1.crt"}],
        "roots": [{"name": "SecurityCommunicationRootCA1.crt", "file": "SecurityCommunicationRootCA1.crt"}],
        "notes": ["Root taken from the table cell shared with Enterprise SSL(SHA-1)."],
        "source": CROSSTRUST_IIS6_GUIDE,
    },
    {
        "vendor": "CrossTrust",
        "product": "Enterprise SSL",
        "intermediates": [{"name": "UTNAddTrustServerCA.crt", "file": "UTNAddTrustServerCA.crt"}],
        "roots": [{"name": "AddTrustExternalCARoot.crt", "file": "AddTrustExternalCARoot.crt"}],
        "source": CROSSTRUST_IIS6_GUIDE,
    },
    {
        "vendor": "CrossTrust",
        "product": "Enterprise EV SSL",
        "variant": "issued on or before 2010-05-26",
        "issued_until": "2010-05-27T00:00:00+09:00",
        "intermediates": [{"name": "EVSGC.p7b", "file": "EVSGC.p7b"}],
        "roots": [{"name": "AddTrustExternalCARoot.crt", "file": "AddTrustExternalCARoot.crt"}],
        "notes": ["Delivered as a PKCS#7 bundle; the guide does not list the certificates inside it."],
        "source": CROSSTRUST_IIS6_GUIDE,
    },
    {
        "vendor": "CrossTrust",
        "product": "Enterprise EV SSL",
        "variant": "issued on or after 2010-05-27",
        "issued_from": "2010-05-27T00:00:00+09:00",
        "intermediates": [{"name": "COMODO_EV_SSL.p7b", "file": "COMODO_EV_SSL.p7b"}],
        # The guide's row for this variant shows no root of its own; the one printed for the
        # earlier variant is taken to span both.
        "roots": [{"name": "AddTrustExternalCARoot.crt", "file": "AddTrustExternalCARoot.crt"}],
        "notes": ["Delivered as a PKCS#7 bundle; the guide does not list the certificates inside it."],
        "source": CROSSTRUST_IIS6_GUIDE,
    },
    {
        "vendor": "CrossTrust",
        "product": "Enterprise SSL for mobile",
        "intermediates": [],
        "notes": [
            "The guide says the intermediate changed with certificates whose validity starts around 2010-07-11 "
            "(it writes both 以前 and 以降 for that day) but names neither certificate; ask the CA.",
        ],
        "source": CROSSTRUST_IIS6_GUIDE,
    },
]

# How servers take several CA certificates (Cybertrust's SureServer FAQ): OpenSSL-bundle servers
# want one file, intermediate first, then the cross-root; the others install each certificate on its own.
SERVER_INSTALL_STYLE: dict[str, str] = {
    "apache": "concatenated",
    "big-ip": "concatenated",
    "iis": "separate",
    "iplanet": "separate",
    "tomcat": "separate",  # keytool imports one certificate per alias
}

# From Apache 2.4.8 on, SSLCertificateFile takes server certificate + intermediates concatenated;
# before it, the intermediates go to SSLCertificateChainFile (Apache's mod_ssl documentation).
APACHE_FULLCHAIN_SINCE = (2, 4, 8)

_REF_KEYS = ("name", "cn", "file")
_LIST_KEYS = ("intermediates", "cross_roots", "roots")
_ENTRY_KEYS = frozenset(("vendor", "product", "variant", "issued_from", "issued_until", "cross_roots_optional", "notes", "source")
                        + _LIST_KEYS)


def _parse_time(value, *, what: str) -> datetime.datetime | None:
    """ISO 8601 string or datetime -> aware datetime (naive values are taken as JST, the catalogued CAs' zone)."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        parsed = value
    else:
        try:
            parsed = datetime.datetime.fromisoformat(str(value))
        except ValueError as exc:
            raise CertfleetError(f"catalog entry {what}: {value!r} is not an ISO 8601 date/time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=JST)


def _normalize_ref(ref, *, what: str) -> dict:
    if isinstance(ref, str):
        ref = {"name": ref}
    if not isinstance(ref, dict) or not ref.get("name"):
        raise CertfleetError(f"catalog entry {what}: each certificate needs at least a name")
    unknown = set(ref) - set(_REF_KEYS)
    if unknown:
        raise CertfleetError(f"catalog entry {what}: unknown certificate key(s) {', '.join(sorted(unknown))}")
    return {key: ref.get(key) for key in _REF_KEYS}


def validate_entry(entry: dict) -> dict:
    """Checked, normalised copy of one catalog entry (refs as dicts, all keys present)."""
    if not isinstance(entry, dict):
        raise CertfleetError(f"catalog entry must be a dict, got {type(entry).__name__}")
    what = f"{entry.get('vendor', '?')} / {entry.get('product', '?')}"
    for key in ("vendor", "product"):
        if not entry.get(key) or not isinstance(entry[key], str):
            raise CertfleetError(f"catalog entry {what}: '{key}' is required")
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise CertfleetError(f"catalog entry {what}: unknown key(s) {', '.join(sorted(unknown))}")
    result = {
        "vendor": entry["vendor"],
        "product": entry["product"],
        "variant": entry.get("variant"),
        "issued_from": _parse_time(entry.get("issued_from"), what=what),
        "issued_until": _parse_time(entry.get("issued_until"), what=what),
        "cross_roots_optional": bool(entry.get("cross_roots_optional", False)),
        "notes": list(entry.get("notes") or []),
        "source": entry.get("source", "user"),
    }
    for key in _LIST_KEYS:
        refs = entry.get(key) or []
        if not isinstance(refs, list):
            raise CertfleetError(f"catalog entry {what}: '{key}' must be a list")
        result[key] = [_normalize_ref(ref, what=what) for ref in refs]
    if not result["intermediates"] and not result["notes"]:
        raise CertfleetError(f"catalog entry {what}: give at least one intermediate, or a note saying why none is known")
    if result["issued_from"] and result["issued_until"] and result["issued_from"] >= result["issued_until"]:
        raise CertfleetError(f"catalog entry {what}: issued_from must be before issued_until")
    return result


def _entry_key(entry: dict) -> tuple:
    return (entry["vendor"].casefold(), entry["product"].casefold(), entry["issued_from"], entry["issued_until"])


def merge_catalog(user_entries: list | None = None, *, base: list | None = None) -> list[dict]:
    """Built-in (or ``base``) entries overlaid with the user's: same vendor + product + dates replaces, others are added."""
    merged = [validate_entry(entry) for entry in (CATALOG if base is None else base)]
    positions = {_entry_key(entry): index for index, entry in enumerate(merged)}
    for raw in user_entries or []:
        entry = validate_entry(raw)
        key = _entry_key(entry)
        if key in positions:
            merged[positions[key]] = entry
        else:
            positions[key] = len(merged)
            merged.append(entry)
    return merged


def _catalog(catalog: list | None) -> list[dict]:
    return merge_catalog() if catalog is None else [validate_entry(entry) for entry in catalog]


def _covers(entry: dict, not_before: datetime.datetime | None) -> bool:
    if not_before is None:
        return True
    if not_before.tzinfo is None:
        not_before = not_before.replace(tzinfo=datetime.timezone.utc)
    if entry["issued_from"] and not_before < entry["issued_from"]:
        return False
    if entry["issued_until"] and not_before >= entry["issued_until"]:
        return False
    return True


def served_certificates(entry: dict) -> list[dict]:
    """The entry's certificates in the order a server sends them: intermediates, then cross-roots."""
    return list(entry["intermediates"]) + list(entry["cross_roots"])


def find_products(issuer_cn: str, *, not_before: datetime.datetime | None = None, catalog: list | None = None) -> list[dict]:
    """Entries whose first intermediate is the given leaf issuer CN and whose date window holds ``not_before``."""
    wanted = issuer_cn.strip().casefold()
    return [
        entry for entry in _catalog(catalog)
        if entry["intermediates"] and (entry["intermediates"][0]["cn"] or "").casefold() == wanted and _covers(entry, not_before)
    ]


def _issuer_cn(certificate) -> str | None:
    attributes = certificate.issuer.get_attributes_for_oid(DN_OIDS["CN"])
    return attributes[0].value if attributes else None


def find_products_for_certificate(certificate, *, catalog: list | None = None) -> list[dict]:
    """Entries matching a server certificate (``x509.Certificate``) by issuer CN and notBefore."""
    issuer_cn = _issuer_cn(certificate)
    if issuer_cn is None:
        return []
    return find_products(issuer_cn, not_before=certificate.not_valid_before_utc, catalog=catalog)


def select_variant(product: str, *, not_before: datetime.datetime | None = None, vendor: str | None = None,
                   catalog: list | None = None) -> dict:
    """The entry for a product name (and vendor) whose date window holds the certificate's notBefore."""
    entries = [
        entry for entry in _catalog(catalog)
        if entry["product"].casefold() == product.casefold() and (vendor is None or entry["vendor"].casefold() == vendor.casefold())
    ]
    if not entries:
        known = sorted({entry["product"] for entry in _catalog(catalog)})
        raise CertfleetError(f"unknown CA product {product!r}; the catalog knows: {', '.join(known)}")
    matching = [entry for entry in entries if _covers(entry, not_before)]
    if len(matching) == 1:
        return matching[0]
    if not matching:
        raise CertfleetError(f"no variant of {product!r} covers certificates issued at {not_before.isoformat()}")
    variants = "; ".join(entry["variant"] or "(no date rule)" for entry in matching)
    raise CertfleetError(f"{product!r} has several variants ({variants}); give the certificate's notBefore to choose one")


def entries_naming(cn: str, *, catalog: list | None = None) -> list[tuple[dict, str]]:
    """(entry, role) pairs for every entry listing a certificate with this CN; role is intermediate/cross_root/root."""
    wanted = cn.strip().casefold()
    roles = (("intermediates", "intermediate"), ("cross_roots", "cross_root"), ("roots", "root"))
    found = []
    for entry in _catalog(catalog):
        for key, role in roles:
            if any((ref["cn"] or "").casefold() == wanted for ref in entry[key]):
                found.append((entry, role))
                break
    return found


def _label(entry: dict) -> str:
    variant = f", {entry['variant']}" if entry["variant"] else ""
    return f"{entry['product']} ({entry['vendor']}{variant}; {entry['source']})"


def missing_issuer_hint(missing_cn: str | None, *, leaf=None, catalog: list | None = None) -> str | None:
    """One sentence telling which catalogued certificate to download for a missing issuer, or None."""
    if not missing_cn:
        return None
    found = entries_naming(missing_cn, catalog=catalog)
    if leaf is not None:
        # The leaf's date decides between variants (the FAQ's footnote ※1), so keep only
        # entries that fit the leaf when any do.
        for_leaf = {_entry_key(entry) for entry in find_products_for_certificate(leaf, catalog=catalog)}
        narrowed = [(entry, role) for entry, role in found if _entry_key(entry) in for_leaf]
        found = narrowed or found
    if not found:
        return None
    role_text = {"intermediate": "intermediate CA certificate", "cross_root": "cross-root intermediate CA certificate",
                 "root": "root certificate"}
    roles = sorted({role for _entry, role in found})
    products = "; ".join(_label(entry) for entry, _role in found)
    return (f"the CA product catalog lists {missing_cn!r} as the {' / '.join(role_text[r] for r in roles)} of {products}: "
            f"download {missing_cn!r} from the CA and add it to the input")


def intermediate_to_download(certificate, *, catalog: list | None = None) -> list[str]:
    """Names of the certificates to download for a server certificate, served order, from the matching entry."""
    entries = find_products_for_certificate(certificate, catalog=catalog)
    names: list[str] = []
    for entry in entries:
        for ref in served_certificates(entry):
            if ref["name"] not in names:
                names.append(ref["name"])
    return names


def installation_files(entry: dict, server: str) -> list[list[str]]:
    """Certificate names grouped per file to install on ``server``: one concatenated file, or one file each."""
    style = SERVER_INSTALL_STYLE.get(server.casefold())
    if style is None:
        raise CertfleetError(f"unknown server type {server!r}; known: {', '.join(sorted(SERVER_INSTALL_STYLE))}")
    names = [ref["name"] for ref in served_certificates(entry)]
    if not names:
        return []
    return [names] if style == "concatenated" else [[n] for n in names]


def apache_uses_fullchain(version: str) -> bool:
    """True when this Apache version takes leaf + intermediates in SSLCertificateFile (2.4.8 and later)."""
    try:
        parts = tuple(int(part) for part in version.strip().split(".")[:3])
    except ValueError as exc:
        raise CertfleetError(f"cannot read Apache version {version!r}") from exc
    return parts + (0,) * (3 - len(parts)) >= APACHE_FULLCHAIN_SINCE


def copy_catalog() -> list[dict]:
    """A deep copy of the built-in raw entries, for users who want to edit rather than overlay."""
    return copy.deepcopy(CATALOG)
