# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for the CA product catalog (seeds 001 and 002)."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._chain import catalog as _catalog
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

JST = datetime.timezone(datetime.timedelta(hours=9))
UTC = datetime.timezone.utc
G2 = "Cybertrust Japan Public CA G2"
G3 = "Cybertrust Japan Public CA G3"
EV = "Cybertrust Japan EV CA G2"
GLOBAL = "Cybertrust Global Root"
BALTIMORE = "Baltimore CyberTrust Root"


def names(refs) -> list[str]:
    return [ref["name"] for ref in refs]


def test_builtin_catalog_is_valid():
    merged = _catalog.merge_catalog()
    assert len(merged) == len(_catalog.CATALOG)
    # The sources were "seed 001" / "seed 002" (project documents users do not have); they now name the public documents.
    assert {entry["source"] for entry in merged} == {_catalog.SURESERVER_FAQ, _catalog.CROSSTRUST_IIS6_GUIDE}


SEED_001 = [
    # (product, notBefore, intermediates, cross-roots, served order)
    ("SureServer[2048bit]", datetime.datetime(2013, 8, 2, 20, 59, 59, tzinfo=JST), [G2], [BALTIMORE], [G2, BALTIMORE]),
    ("SureServer[2048bit]", datetime.datetime(2013, 8, 2, 21, 0, 0, tzinfo=JST), [G3], [BALTIMORE], [G3, BALTIMORE]),
    ("SureServer[2048bit]", datetime.datetime(2013, 8, 2, 11, 59, 59, tzinfo=UTC), [G2], [BALTIMORE], [G2, BALTIMORE]),
    ("SureServer[2048bit]", datetime.datetime(2013, 8, 2, 12, 0, 0, tzinfo=UTC), [G3], [BALTIMORE], [G3, BALTIMORE]),
    ("SureServer EV[2048bit]", None, [EV], [GLOBAL, BALTIMORE], [EV, GLOBAL, BALTIMORE]),
    ("SureServer[SHA-2]", datetime.datetime(2012, 1, 1, tzinfo=UTC), [G3], [], [G3]),
    ("SureServer EV[SHA-2]", None, [EV], [GLOBAL], [EV, GLOBAL]),
]


@pytest.mark.parametrize("product, not_before, intermediates, cross_roots, served", SEED_001)
def test_seed_001_products(product, not_before, intermediates, cross_roots, served):
    entry = _catalog.select_variant(product, not_before=not_before)
    assert names(entry["intermediates"]) == intermediates
    assert names(entry["cross_roots"]) == cross_roots
    assert names(_catalog.served_certificates(entry)) == served
    assert entry["vendor"] == "Cybertrust Japan"


SEED_002 = [
    ("Enterprise SSL(SHA-256)", None, ["CrossTrustOVCA3.crt"], ["SecurityCommunicationRootCA2.crt"]),
    ("Crypto SSL(SHA-256)", None, ["CrossTrustDVCA3.crt"], ["SecurityCommunicationRootCA2.crt"]),
    ("Enterprise SSL(SHA-1)", None, ["CrossTrustOVCA1.crt"], ["SecurityCommunicationRootCA1.crt"]),
    ("Crypto SSL(SHA-1)", None, ["CrossTrustDVCA1.crt"], ["SecurityCommunicationRootCA1.crt"]),
    ("Enterprise SSL", None, ["UTNAddTrustServerCA.crt"], ["AddTrustExternalCARoot.crt"]),
    ("Enterprise EV SSL", datetime.datetime(2010, 5, 26, 23, 59, tzinfo=JST), ["EVSGC.p7b"], ["AddTrustExternalCARoot.crt"]),
    ("Enterprise EV SSL", datetime.datetime(2010, 5, 27, 0, 0, tzinfo=JST), ["COMODO_EV_SSL.p7b"], ["AddTrustExternalCARoot.crt"]),
    ("Enterprise SSL for mobile", None, [], []),
]


@pytest.mark.parametrize("product, not_before, intermediates, roots", SEED_002)
def test_seed_002_products(product, not_before, intermediates, roots):
    entry = _catalog.select_variant(product, vendor="CrossTrust", not_before=not_before)
    assert names(entry["intermediates"]) == intermediates
    assert names(entry["roots"]) == roots
    assert entry["cross_roots"] == []
    # The seed gives file names only, never a subject CN.
    assert all(ref["cn"] is None for ref in entry["intermediates"] + entry["roots"])


def test_product_without_known_intermediate_says_why():
    entry = _catalog.select_variant("Enterprise SSL for mobile")
    assert entry["intermediates"] == [] and "names neither certificate" in entry["notes"][0]


@pytest.mark.parametrize("product, kwargs, message", [
    ("SureServer[SHA-3]", {}, "unknown CA product 'SureServer[SHA-3]'; the catalog knows:"),
    ("SureServer[2048bit]", {}, "has several variants"),
    ("Enterprise EV SSL", {}, "has several variants"),
])
def test_select_variant_errors(product, kwargs, message):
    with pytest.raises(CertfleetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _catalog.select_variant(product, **kwargs)


FIND = [
    # (issuer CN, notBefore, expected products)
    (G3, datetime.datetime(2020, 1, 1, tzinfo=UTC), ["SureServer[2048bit]", "SureServer[SHA-2]"]),
    (G3, datetime.datetime(2012, 1, 1, tzinfo=UTC), ["SureServer[SHA-2]"]),
    (G2, datetime.datetime(2012, 1, 1, tzinfo=UTC), ["SureServer[2048bit]"]),
    (G2, datetime.datetime(2020, 1, 1, tzinfo=UTC), []),
    ("cybertrust japan ev ca g2", None, ["SureServer EV[2048bit]", "SureServer EV[SHA-2]"]),
    ("Unknown CA", None, []),
    ("CrossTrustOVCA3.crt", None, []),  # a file name, not a CN
]


@pytest.mark.parametrize("issuer_cn, not_before, products", FIND)
def test_find_products(issuer_cn, not_before, products):
    found = _catalog.find_products(issuer_cn, not_before=not_before)
    assert [entry["product"] for entry in found] == products


def _leaf_issued_by(issuer_cn: str, not_before: datetime.datetime):
    root = pb.make_root("Baltimore CyberTrust Root", not_before=datetime.datetime(2000, 1, 1, tzinfo=UTC), days=20000)
    inter = pb.make_intermediate(issuer_cn, issuer=root, not_before=datetime.datetime(2001, 1, 1, tzinfo=UTC), days=15000)
    return pb.make_leaf("www.example.jp", issuer=inter, not_before=not_before, days=365).cert


@pytest.mark.parametrize("issuer_cn, not_before, download", [
    (G2, datetime.datetime(2013, 8, 2, 11, 0, tzinfo=UTC), [G2, BALTIMORE]),
    (G3, datetime.datetime(2013, 8, 2, 12, 0, tzinfo=UTC), [G3, BALTIMORE]),
    (EV, datetime.datetime(2016, 4, 1, tzinfo=UTC), [EV, GLOBAL, BALTIMORE]),
    ("Unknown CA", datetime.datetime(2016, 4, 1, tzinfo=UTC), []),
])
def test_intermediate_to_download_for_a_leaf(issuer_cn, not_before, download):
    leaf = _leaf_issued_by(issuer_cn, not_before)
    assert _catalog.intermediate_to_download(leaf) == download


def test_missing_issuer_hint_uses_the_leaf_date():
    leaf = _leaf_issued_by(G2, datetime.datetime(2013, 1, 1, tzinfo=UTC))
    hint = _catalog.missing_issuer_hint(BALTIMORE, leaf=leaf)
    assert "cross-root intermediate CA certificate" in hint
    assert "issued on or before 2013-08-02 20:59 JST" in hint and "EV" not in hint
    assert _catalog.missing_issuer_hint("Nobody CA") is None
    assert _catalog.missing_issuer_hint(None) is None


def test_entries_naming_roles():
    roles = {(entry["product"], role) for entry, role in _catalog.entries_naming(GLOBAL)}
    assert roles == {("SureServer EV[2048bit]", "cross_root"), ("SureServer EV[SHA-2]", "cross_root")}


def test_merge_catalog_adds_and_replaces():
    user = [
        {"vendor": "CrossTrust", "product": "Enterprise SSL(SHA-256)",
         "intermediates": [{"name": "CrossTrustOVCA3.crt", "cn": "Example OV CA 3", "file": "CrossTrustOVCA3.crt"}],
         "roots": ["SecurityCommunicationRootCA2.crt"]},
        {"vendor": "Example CA", "product": "Example DV", "intermediates": ["Example DV CA"], "source": "site notes"},
    ]
    merged = _catalog.merge_catalog(user)
    assert len(merged) == len(_catalog.CATALOG) + 1
    found = _catalog.find_products("Example OV CA 3", catalog=merged)
    assert [entry["product"] for entry in found] == ["Enterprise SSL(SHA-256)"]
    assert found[0]["roots"] == [{"name": "SecurityCommunicationRootCA2.crt", "cn": None, "file": None}]
    extra = _catalog.select_variant("Example DV", catalog=merged)
    assert extra["source"] == "site notes" and extra["intermediates"][0]["cn"] is None
    # The built-in data is not modified by merging.
    assert _catalog.CATALOG[5]["intermediates"][0].get("cn") is None


@pytest.mark.parametrize("entry, message", [
    ("not a dict", "catalog entry must be a dict"),
    ({"product": "X", "intermediates": ["A"]}, "'vendor' is required"),
    ({"vendor": "V", "product": "X"}, "give at least one intermediate, or a note"),
    ({"vendor": "V", "product": "X", "intermediates": ["A"], "colour": "red"}, "unknown key(s) colour"),
    ({"vendor": "V", "product": "X", "intermediates": [{"cn": "A"}]}, "each certificate needs at least a name"),
    ({"vendor": "V", "product": "X", "intermediates": [{"name": "A", "sha": "1"}]}, "unknown certificate key(s) sha"),
    ({"vendor": "V", "product": "X", "intermediates": "A"}, "'intermediates' must be a list"),
    ({"vendor": "V", "product": "X", "intermediates": ["A"], "issued_from": "yesterday"}, "is not an ISO 8601 date/time"),
    ({"vendor": "V", "product": "X", "intermediates": ["A"], "issued_from": "2020-01-02", "issued_until": "2020-01-01"},
     "issued_from must be before issued_until"),
])
def test_merge_catalog_rejects_bad_entries(entry, message):
    with pytest.raises(CertfleetError) as exc_info:
        _catalog.merge_catalog([entry])
    assert message in str(exc_info.value)


def test_naive_dates_are_jst():
    entry = _catalog.validate_entry({"vendor": "V", "product": "X", "intermediates": ["A"], "issued_from": "2013-08-02T21:00:00"})
    assert entry["issued_from"] == datetime.datetime(2013, 8, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("server, files", [
    ("apache", [[G3, BALTIMORE]]),
    ("BIG-IP", [[G3, BALTIMORE]]),
    ("iis", [[G3], [BALTIMORE]]),
    ("tomcat", [[G3], [BALTIMORE]]),
    ("iplanet", [[G3], [BALTIMORE]]),
])
def test_installation_files(server, files):
    entry = _catalog.select_variant("SureServer[2048bit]", not_before=datetime.datetime(2014, 1, 1, tzinfo=UTC))
    assert _catalog.installation_files(entry, server) == files


def test_installation_files_errors_and_empty():
    with pytest.raises(CertfleetError, match="unknown server type 'lighttpd'"):
        _catalog.installation_files(_catalog.select_variant("SureServer[SHA-2]"), "lighttpd")
    assert _catalog.installation_files(_catalog.select_variant("Enterprise SSL for mobile"), "apache") == []


@pytest.mark.parametrize("version, fullchain", [
    ("2.4.8", True), ("2.4.33", True), ("2.4.7", False), ("2.2.34", False), ("2.4", False), ("2.5", True),
])
def test_apache_uses_fullchain(version, fullchain):
    assert _catalog.apache_uses_fullchain(version) is fullchain


def test_apache_version_error():
    with pytest.raises(CertfleetError, match="cannot read Apache version 'two'"):
        _catalog.apache_uses_fullchain("two")


def test_copy_catalog_is_independent():
    copied = _catalog.copy_catalog()
    copied[0]["product"] = "changed"
    assert _catalog.CATALOG[0]["product"] == "SureServer[2048bit]"
