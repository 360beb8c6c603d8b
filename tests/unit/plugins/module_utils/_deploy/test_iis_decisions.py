# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IIS decisions made on the controller (plugins/module_utils/_deploy/iis.py), one table per decision."""

from __future__ import annotations

import copy
import datetime

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import iis
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils.pki_builder import (
    issue,
    make_intermediate,
    make_key,
    make_leaf,
    make_root,
    name,
)

A = "A" * 40
B = "B" * 40
C = "C" * 40
D = "D" * 40
E = "E" * 40


@pytest.fixture(scope="module")
def pki():
    root = make_root("IIS Test Root")
    intermediate = make_intermediate("IIS Test Issuing CA", issuer=root)
    leaf = make_leaf("www.example.com", issuer=intermediate)
    # same name as the root, another key: an old same-name root (the seeds' chain-building trap)
    old_root = make_root("IIS Test Root")
    return {"root": root, "int": intermediate, "leaf": leaf, "old_root": old_root}


def facts(*, build=17763, my=(), ca=(), root=(), sites=(), sslcert=()):
    return iis.normalise_facts({
        "os": {"version": f"10.0.{build}" if build else "", "build": build, "caption": "Windows"},
        "certificates": {"My": list(my), "CA": list(ca), "Root": list(root)},
        "sites": list(sites), "sslcert": list(sslcert),
    })


def cert(thumbprint, *, subject="CN=www.example.com", key=True, friendly="", not_after="2027-01-01T00:00:00Z"):
    return {"thumbprint": thumbprint, "subject": subject, "issuer": "CN=x", "not_after": not_after,
            "has_private_key": key, "friendly_name": friendly}


def site(name, *bindings):
    return {"name": name, "id": 1, "bindings": list(bindings)}


def https(host="www.example.com", *, ip="*", port=443, flags=1, thumbprint=A, store="My"):
    return {"protocol": "https", "ip": ip, "port": port, "host": host, "ssl_flags": flags, "certificate_hash": thumbprint,
            "certificate_store": store}


# --------------------------------------------------------------------------------------------
# PFX encryption by OS version


@pytest.mark.parametrize("build, override, expected, reason_part", [
    (20348, "auto", "modern", "Windows Server 2022 (build 20348)"),
    (17763, "auto", "modern", "Windows Server 2019 (build 17763)"),
    (17762, "auto", "compatible", "refuses AES-256"),
    (14393, "auto", "compatible", "Windows Server 2016 (build 14393) refuses"),
    (9600, "auto", "compatible", "Windows Server 2012 R2"),
    (3790, "auto", "compatible", "Windows Server 2003"),
    (None, "auto", "compatible", "do not give the Windows build"),
    (14393, "modern", "modern", "the import will fail"),
    (20348, "compatible", "compatible", "asked"),
    (20348, "compatibility", "compatible", "asked"),
    (None, "modern", "modern", "asked"),
])
def test_pfx_encryption_by_build(build, override, expected, reason_part):
    encryption, reason = iis.pfx_encryption({"build": build}, override)
    assert encryption == expected
    assert reason_part in reason


def test_pfx_encryption_rejects_unknown_override():
    with pytest.raises(CertfleetError, match="pfx_encryption must be one of"):
        iis.pfx_encryption({"build": 1}, "aes")


@pytest.mark.parametrize("os_facts, build", [
    ({"version": "10.0.14393", "build": 14393}, 14393),
    ({"version": "10.0.17763"}, 17763),          # build derived from the version
    ({"version": "6.2.9200", "build": "9200"}, 9200),
    ({"version": "", "build": None}, None),
    ({}, None),
])
def test_build_from_os_facts(os_facts, build):
    assert iis.normalise_facts({"os": os_facts})["os"]["build"] == build


# --------------------------------------------------------------------------------------------
# thumbprints and names


@pytest.mark.parametrize("raw, expected", [
    ("ab" * 20, "AB" * 20),
    (" ".join(["ab"] * 20), "AB" * 20),                   # as Windows Server 2003's dialog shows it
    ("\u200e" + "Ab" * 20, "AB" * 20),                   # the invisible mark a copy from the MMC brings
    (":".join(["AB"] * 20), "AB" * 20),
])
def test_thumbprint_normalised(raw, expected):
    assert iis.normalise_thumbprint(raw) == expected


@pytest.mark.parametrize("raw", ["AB" * 19, "ZZ" * 20, "", None, 12, "AB" * 32])
def test_thumbprint_rejected(raw):
    with pytest.raises(CertfleetError, match="thumbprint"):
        iis.normalise_thumbprint(raw, what="thumbprint")


@pytest.mark.parametrize("left, right, same", [
    ("CN=Root, O=Example, C=JP", "C=JP, O=Example, CN=Root", True),
    ("CN=Root, O=Example, C=JP", "cn=root,  o=EXAMPLE , c=jp", True),
    ('CN=Root, O="Example, Inc.", C=JP', "CN=Root, O=Example\\, Inc., C=JP", True),
    ("CN=Root, S=Tokyo", "CN=Root, ST=Tokyo", True),
    ("CN=Root, E=ca@example.com", "CN=Root, OID.1.2.840.113549.1.9.1=ca@example.com", True),
    ("CN=Root, O=Example", "CN=Root, O=Other", False),
    ("CN=Root", "CN=Root G2", False),
])
def test_dn_key(left, right, same):
    assert (iis.dn_key(left) == iis.dn_key(right)) is same


def test_dn_key_of_x509_name_equals_windows_text():
    subject = name("Root CA", O="Example, Inc.", C="JP", ST="Tokyo")
    text = iis.windows_subject(subject)
    assert text == 'CN=Root CA, S=Tokyo, C=JP, O="Example, Inc."'
    assert iis.dn_key(subject) == iis.dn_key('CN=Root CA, O="Example, Inc.", S=Tokyo, C=JP')


# --------------------------------------------------------------------------------------------
# several servers, one name


@pytest.mark.parametrize("definition, host, option, expected", [
    ({"name": "www"}, "web1", None, ("www", "shared")),
    ({"name": "www", "deploy": {"key_policy": "shared"}}, "web1", "shared", ("www", "shared")),
    ({"name": "www", "deploy": {"key_policy": "per_server"}}, "web1", None, ("www--web1", "per_server")),
    ({"name": "www", "deploy": {"key_policy": "per_server"}}, "IIS-01.corp.example", "auto", ("www--iis-01.corp.example", "per_server")),
    ({"name": "www", "deploy": {"key_policy": "per_server"}}, "web 1@dc:2", None, ("www--web-1-dc-2", "per_server")),
])
def test_deploy_name(definition, host, option, expected):
    assert iis.deploy_name(definition["name"], definition, host=host, policy=option) == expected


@pytest.mark.parametrize("definition, host, option, available, message", [
    ({"name": "www", "deploy": {"key_policy": "per_server"}}, "web1", "shared", None,
     "refusing a shared-key deploy that would copy one key to every server"),
    ({"name": "www", "deploy": {"key_policy": "per_server"}}, "web1", None, lambda name: False,
     "the store has no definition www--web1 .* refusing to deploy the shared www"),
    ({"name": "www", "deploy": {"key_policy": "per_server"}}, None, None, None, "needs the host's name"),
    ({"name": "www", "deploy": {"key_policy": "per_server"}}, "h" * 130, None, None, "must be 1-128 characters"),
    ({"name": "www", "deploy": {"key_policy": "everywhere"}}, "web1", None, None, "must be one of shared, per_server"),
    ({"name": "www"}, "web1", "per_server", None, "deploy.key_policy is shared"),
    ({"name": "../x"}, "web1", None, None, "must be 1-128 characters"),
])
def test_deploy_name_refused(definition, host, option, available, message):
    with pytest.raises(CertfleetError, match=message):
        iis.deploy_name(definition["name"], definition, host=host, policy=option, available=available)


def test_per_server_definitions():
    shared = {"name": "www", "common_name": "www.example.com"}
    assert iis.per_server_definitions(shared, ["a", "b"]) == [shared]
    split = dict(shared, deploy={"key_policy": "per_server"})
    assert [item["name"] for item in iis.per_server_definitions(split, ["iis1", "IIS2"])] == ["www--iis1", "www--iis2"]


# --------------------------------------------------------------------------------------------
# which certificate goes to which store


def test_intermediates_to_ca_never_my_and_root_only_when_asked(pki):
    intermediate, root = pki["int"].cert, pki["root"].cert
    empty = facts()
    missing, root_entry, messages = iis.store_placement([intermediate], root, empty, install_root=False)
    assert [entry["thumbprint"] for entry in missing] == [iis.certificate_thumbprint(intermediate)]
    assert root_entry is None and "not in Root" in messages[0]
    missing, root_entry, _messages = iis.store_placement([intermediate], root, empty, install_root=True)
    assert root_entry["thumbprint"] == iis.certificate_thumbprint(root) and "BEGIN CERTIFICATE" in root_entry["pem"]


@pytest.mark.parametrize("where, missing, message", [
    ("CA", 0, None),
    ("My", 1, "it belongs in CA"),
    (None, 1, None),
])
def test_intermediate_already_somewhere(pki, where, missing, message):
    thumbprint = iis.certificate_thumbprint(pki["int"].cert)
    stores = {"my": [], "ca": []}
    if where:
        stores[where.lower()] = [cert(thumbprint, subject="CN=IIS Test Issuing CA")]
    found, _root, messages = iis.store_placement([pki["int"].cert], None, facts(**stores), install_root=False)
    assert len(found) == missing
    assert (message is None and not messages) or message in messages[0]


def test_root_already_in_root_is_not_added(pki):
    thumbprint = iis.certificate_thumbprint(pki["root"].cert)
    _missing, root_entry, messages = iis.store_placement([], pki["root"].cert, facts(root=[cert(thumbprint)]), install_root=True)
    assert root_entry is None and not messages


def test_split_chain_takes_a_sent_root_out(pki):
    proper, root = iis.split_chain([pki["int"].cert, pki["root"].cert])
    assert proper == [pki["int"].cert] and root == pki["root"].cert
    assert iis.split_chain([pki["int"].cert]) == ([pki["int"].cert], None)


def test_find_root(pki):
    assert iis.find_root(pki["int"].cert, [pki["old_root"].cert, pki["root"].cert]) == pki["root"].cert
    assert iis.find_root(pki["int"].cert, [pki["old_root"].cert]) is None
    assert iis.find_root(pki["int"].cert, []) is None


# --------------------------------------------------------------------------------------------
# same-name roots


ROOT_NAME = "CN=IIS Test Root"


@pytest.mark.parametrize("known, roots, remove, expected, message", [
    # the intended root known: any other root with its name conflicts
    (True, ["right"], False, [], None),
    (True, ["right", "old"], False, [("old", "report")], "remove_conflicting_roots"),
    (True, ["right", "old"], True, [("old", "remove")], None),
    (True, ["old"], True, [("old", "remove")], None),
    (True, ["other-name"], True, [], None),
    # only the name known: one root of that name is fine, several are reported, never removed
    (False, ["right"], True, [], None),
    (False, ["right", "old"], True, [("right", "report"), ("old", "report")], "cannot tell which one is right"),
])
def test_conflicting_roots(pki, known, roots, remove, expected, message):
    thumbprints = {"right": iis.certificate_thumbprint(pki["root"].cert), "old": iis.certificate_thumbprint(pki["old_root"].cert),
                   "other-name": C}
    subjects = {"right": ROOT_NAME, "old": "cn=iis test root", "other-name": "CN=Another Root"}
    state = facts(root=[cert(thumbprints[label], subject=subjects[label]) for label in roots])
    conflicts, messages = iis.conflicting_roots(pki["root"].cert if known else None, pki["int"].cert.issuer, state, remove=remove)
    assert [(entry["thumbprint"], entry["action"]) for entry in conflicts] == [(thumbprints[label], action) for label, action in expected]
    if message:
        assert any(message in line for line in messages)
    else:
        assert not messages


# --------------------------------------------------------------------------------------------
# repair


@pytest.mark.parametrize("my, sites, expected", [
    ([cert(A, key=True)], [], []),
    ([cert(A, key=False)], [], [A]),                                          # the one deployed lost its key
    ([cert(B, key=False, friendly="www")], [site("S", https(thumbprint=B))], [B]),  # an older generation still bound
    ([cert(B, key=False, friendly="www")], [], []),                           # older, unbound: clean-up's business
    ([cert(C, key=False, friendly="other")], [site("S", https(thumbprint=C))], []),  # not ours
])
def test_repair_list(my, sites, expected):
    assert iis.repair_list(A, facts(my=my, sites=sites), friendly_name="www") == expected


# --------------------------------------------------------------------------------------------
# bindings


SITE = {"name": "Shop", "certificate": "www", "host": "www.example.com", "port": 443, "ip": "*", "sni": True}


@pytest.mark.parametrize("existing, wanted, action, flags, previous", [
    # no binding yet: add with the SNI bit
    ([], {}, "add", 1, None),
    ([], {"sni": False, "host": ""}, "add", 0, None),
    # the same thumbprint in another case, same flags: unchanged
    ([https(thumbprint=A.lower(), flags=1)], {}, "unchanged", 1, A),
    # another certificate: switch, recording the previous one
    ([https(thumbprint=B, flags=1)], {}, "switch", 1, B),
    # IIS 10 flags (disable HTTP/2 4, OCSP stapling 8, QUIC 16, TLS 1.3 over TCP 32, legacy TLS 64) are kept
    ([https(thumbprint=B, flags=1 | 4 | 8 | 16 | 32 | 64)], {}, "switch", 1 | 4 | 8 | 16 | 32 | 64, B),
    ([https(thumbprint=A, flags=1 | 32)], {}, "unchanged", 33, A),
    # SNI bit turned on for an existing binding: a switch even with the same certificate
    ([https(thumbprint=A, flags=0)], {}, "switch", 1, A),
    # central certificate store binding: the bit is cleared, the others kept
    ([https(thumbprint=None, flags=1 | 2 | 8)], {}, "switch", 1 | 8, None),
    # a binding for another host name on the same site is not ours: ours is added
    ([https(host="old.example.com", thumbprint=B)], {}, "add", 1, None),
    # host names compare case-insensitively, "0.0.0.0" and "" are "*"
    ([https(host="WWW.Example.COM.", ip="0.0.0.0", thumbprint=A)], {}, "unchanged", 1, A),
    # the certificate in another store than My: switched into My
    ([https(thumbprint=A, store="WebHosting")], {}, "switch", 1, A),
])
def test_binding_plan(existing, wanted, action, flags, previous):
    state = facts(sites=[site("Shop", *existing, {"protocol": "http", "ip": "*", "port": 80, "host": ""})])
    bindings, collisions, _messages = iis.binding_plan([dict(SITE, **wanted)], state, A)
    assert not collisions
    (binding,) = bindings
    assert (binding["action"], binding["ssl_flags"], binding["previous_thumbprint"]) == (action, flags, previous)
    assert binding["certificate_store"] == "My" and binding["site"] == "Shop"


@pytest.mark.parametrize("wanted, build, message", [
    ({"host": ""}, 17763, "sni needs a host name"),
    ({}, 7601, "SNI bindings need IIS 8"),
    ({"name": "Nope"}, 17763, "no IIS site of that name"),
])
def test_binding_plan_refuses(wanted, build, message):
    with pytest.raises(CertfleetError, match=message):
        iis.binding_plan([dict(SITE, **wanted)], facts(build=build, sites=[site("Shop")]), A)


def test_site_names_compare_case_insensitively():
    bindings, _c, _m = iis.binding_plan([dict(SITE, name="shop")], facts(sites=[site("Shop", https(thumbprint=A))]), A)
    assert bindings[0]["site"] == "Shop" and bindings[0]["action"] == "unchanged"


NON_SNI = dict(SITE, sni=False, host="")


@pytest.mark.parametrize("others, managed, collides", [
    # another site on 0.0.0.0:443 without SNI: switching ours would switch it -> collision
    ([site("Other", https(host="", flags=0, thumbprint=B))], None, True),
    # the other site is managed too and gets the same certificate: no collision
    ([site("Other", https(host="", flags=0, thumbprint=B))], "www", False),
    # the other site is managed but gets another certificate: collision
    ([site("Other", https(host="", flags=0, thumbprint=B))], "other-def", True),
    # the other site is managed, but its certificate could not be loaded: collision
    ([site("Other", https(host="", flags=0, thumbprint=B))], "unloadable", True),
    # the other site uses SNI on the same port: it has its own host:port entry
    ([site("Other", https(host="other.example.com", flags=1, thumbprint=B))], None, False),
    # another IP or port
    ([site("Other", https(host="", ip="192.0.2.7", flags=0, thumbprint=B))], None, False),
    ([site("Other", https(host="", port=8443, flags=0, thumbprint=B))], None, False),
])
def test_non_sni_collision(others, managed, collides):
    state = facts(sites=[site("Shop", https(host="", flags=0, thumbprint=B))] + others)
    all_sites = [NON_SNI]
    thumbprint_of = {"www": A}
    if managed:
        all_sites.append(dict(NON_SNI, name="Other", certificate=managed))
        if managed != "unloadable":
            thumbprint_of.setdefault(managed, D)
    bindings, collisions, messages = iis.binding_plan([NON_SNI], state, A, all_sites=all_sites, thumbprint_of=thumbprint_of)
    if collides:
        assert not bindings
        assert collisions == [{"ip_port": "0.0.0.0:443", "sites": ["Shop", "Other"], "message": messages[0]}]
        assert "left unchanged" in messages[0]
    else:
        assert [binding["action"] for binding in bindings] == ["switch"] and not collisions


def test_non_sni_binding_already_right_is_no_collision():
    state = facts(sites=[site("Shop", https(host="", flags=0, thumbprint=A)), site("Other", https(host="", flags=0, thumbprint=A))])
    bindings, collisions, _m = iis.binding_plan([NON_SNI], state, A)
    assert [binding["action"] for binding in bindings] == ["unchanged"] and not collisions


# --------------------------------------------------------------------------------------------
# rollback


@pytest.mark.parametrize("record, expected", [
    ([], []),
    ([{"site": "S", "ip": "*", "port": 443, "host": "h", "action": "unchanged", "previous_thumbprint": A, "previous_ssl_flags": 1}], []),
    ([{"site": "S", "ip": "*", "port": 443, "host": "h", "action": "add", "previous_thumbprint": None, "previous_ssl_flags": None}],
     [{"site": "S", "ip": "*", "port": 443, "host": "h", "action": "remove", "thumbprint": None, "ssl_flags": None}]),
    ([{"site": "S", "ip": "*", "port": 443, "host": "h", "action": "switch", "previous_thumbprint": B, "previous_ssl_flags": 33},
      {"site": "T", "ip": "*", "port": 443, "host": "t", "action": "add", "previous_thumbprint": None, "previous_ssl_flags": None}],
     [{"site": "T", "ip": "*", "port": 443, "host": "t", "action": "remove", "thumbprint": None, "ssl_flags": None},
      {"site": "S", "ip": "*", "port": 443, "host": "h", "action": "switch", "thumbprint": B, "ssl_flags": 33}]),
])
def test_rollback_plan(record, expected):
    assert iis.rollback_plan(record) == expected


@pytest.mark.parametrize("existed, changed, expected", [
    (True, True, [{"site": "S", "ip": "*", "port": 443, "host": "h", "action": "switch", "thumbprint": B, "ssl_flags": 33}]),
    (False, True, [{"site": "S", "ip": "*", "port": 443, "host": "h", "action": "remove", "thumbprint": None, "ssl_flags": None}]),
    (True, False, []),
])
def test_rollback_plan_from_win_iis_binding_record(existed, changed, expected):
    record = [{"site": "S", "ip": "*", "port": 443, "host": "h", "existed": existed, "changed": changed,
               "previous_thumbprint": B if existed else None, "previous_ssl_flags": 33 if existed else None,
               "thumbprint": A, "ssl_flags": 33}]
    assert iis.rollback_plan(record) == expected


# --------------------------------------------------------------------------------------------
# clean-up of old generations


def generation(thumbprint, year, *, friendly="www", key=True):
    return cert(thumbprint, friendly=friendly, key=key, not_after=f"{year}-06-01T00:00:00Z")


@pytest.mark.parametrize("my, sites, sslcert, keep, expected", [
    # current A; B newest older, C, D older: keep 1 -> C and D go
    ([generation(A, 2028), generation(B, 2027), generation(C, 2026), generation(D, 2025)], [], [], 1, [C, D]),
    ([generation(A, 2028), generation(B, 2027), generation(C, 2026)], [], [], 0, [B, C]),
    ([generation(A, 2028), generation(B, 2027), generation(C, 2026)], [], [], 5, []),
    # never one still bound: by a site, or by an http.sys entry
    ([generation(A, 2028), generation(B, 2027), generation(C, 2026)], [site("X", https(thumbprint=C))], [], 0, [B]),
    ([generation(A, 2028), generation(B, 2027), generation(C, 2026)], [], [{"ip_port": "0.0.0.0:8443", "thumbprint": B}], 0, [C]),
    # other definitions' certificates are never touched
    ([generation(A, 2028), generation(B, 2020, friendly="other"), generation(C, 2020, friendly="")], [], [], 0, []),
    # the deployed certificate itself is never cleaned, whatever its date
    ([generation(A, 2020), generation(B, 2027)], [], [], 0, [B]),
    # a .NET style date with 7 fractional digits and an offset
    ([generation(A, 2028), dict(generation(B, 2027), not_after="2027-01-06T19:00:00.0000000+09:00")], [], [], 0, [B]),
])
def test_cleanup_plan(my, sites, sslcert, keep, expected):
    remove, _messages = iis.cleanup_plan(facts(my=my, sites=sites, sslcert=sslcert), thumbprint=A, friendly_name="www",
                                         keep_generations=keep)
    assert remove == expected


def test_cleanup_keeps_unreadable_dates():
    state = facts(my=[generation(A, 2028), dict(generation(B, 2020), not_after="someday")])
    remove, messages = iis.cleanup_plan(state, thumbprint=A, friendly_name="www", keep_generations=0)
    assert remove == [] and "no readable not_after" in messages[0]


# --------------------------------------------------------------------------------------------
# hostile FACTS


@pytest.mark.parametrize("bad, message", [
    ({"certificates": {"My": [{"thumbprint": "nope"}]}}, r"facts.certificates.My\[0\].thumbprint"),
    ({"certificates": {"My": [{"thumbprint": A}] * (iis.MAX_STORE_CERTIFICATES + 1)}}, "more than the 5000"),
    ({"sites": [{"name": "S", "bindings": [{"protocol": "https", "port": 70000}]}]}, r"port: 70000 is outside"),
    ({"sites": [{"name": "S", "bindings": [{"protocol": "https", "port": 443, "ssl_flags": "lots"}]}]}, "expected a number"),
    ({"sites": [{"name": ""}]}, "must not be empty"),
    ({"sites": "Default Web Site"}, "expected a list"),
    ({"sites": [{"name": "S" * 5000}]}, "longer than 4096"),
    ({"os": "Windows"}, "facts.os: expected a dict"),
    ("nothing", "facts: expected a dict"),
])
def test_hostile_facts_are_refused_naming_the_field(bad, message):
    with pytest.raises(CertfleetError, match=message):
        iis.normalise_facts(bad, host="web1")


def test_single_entries_from_powershell_json_are_lists():
    state = iis.normalise_facts({"certificates": {"My": {"thumbprint": A}}, "sites": {"name": "S", "bindings": https()}})
    assert state["certificates"]["My"][0]["thumbprint"] == A and state["sites"][0]["bindings"][0]["certificate_hash"] == A


@pytest.mark.parametrize("sites, message", [
    ([{"name": "S"}], r"sites\[S\].certificate"),
    ([{"name": "S", "certificate": "../../etc"}], "must be 1-128 characters"),
    ([{"name": "S", "certificate": "www", "bogus": 1}], "unknown keys bogus"),
    ([{"name": "S", "certificate": "www", "sni": "yes"}], "expected true or false"),
    ([{"name": "S", "certificate": "www", "host": "a"}, {"name": "S", "certificate": "www", "host": "A"}], "listed twice"),
])
def test_bad_sites(sites, message):
    with pytest.raises(CertfleetError, match=message):
        iis.normalise_sites(sites, {})


# --------------------------------------------------------------------------------------------
# the whole plan


def test_plan_first_deploy_then_idempotent(pki):
    leaf = pki["leaf"].cert
    thumbprint = iis.certificate_thumbprint(leaf)
    sites = iis.normalise_sites([{"name": "Shop", "certificate": "www"}], {"www": {"common_name": "www.example.com"}})
    before = facts(build=14393, sites=[site("Shop", {"protocol": "http", "port": 80, "ip": "*", "host": ""})])
    plan = iis.build_plan(name="www", definition="www", policy="shared", leaf=leaf, intermediates=[pki["int"].cert],
                          root=pki["root"].cert, sites=sites, facts=before, install_root=True)
    assert plan["changed"] and plan["pfx_encryption"] == "compatible" and plan["thumbprint"] == thumbprint
    assert iis.pfx_needed(thumbprint, before)
    assert [entry["action"] for entry in plan["bindings"]] == ["add"]
    assert plan["rollback"] == [{"site": "Shop", "ip": "*", "port": 443, "host": "www.example.com", "action": "remove",
                                 "thumbprint": None, "ssl_flags": None}]
    assert plan["root"]["thumbprint"] == iis.certificate_thumbprint(pki["root"].cert)
    assert len(plan["intermediates"]) == 1
    diff = iis.plan_diff(plan)
    assert "PRIVATE" not in repr(diff) and "BEGIN" not in repr(diff)
    # after the role ran: certificate with its key in My, chain in CA and Root, binding on it
    after = facts(build=14393, my=[cert(thumbprint, friendly="www")],
                  ca=[cert(iis.certificate_thumbprint(pki["int"].cert))], root=[cert(iis.certificate_thumbprint(pki["root"].cert),
                                                                                     subject=ROOT_NAME)],
                  sites=[site("Shop", https(thumbprint=thumbprint.lower(), flags=1))])
    again = iis.build_plan(name="www", definition="www", policy="shared", leaf=leaf, intermediates=[pki["int"].cert],
                           root=pki["root"].cert, sites=sites, facts=after, install_root=True)
    assert not again["changed"] and not iis.pfx_needed(thumbprint, after)
    assert [entry["action"] for entry in again["bindings"]] == ["unchanged"] and again["rollback"] == []
    assert again["intermediates"] == [] and again["root"] is None and again["repair"] == []


def test_plan_changed_for_key_lost_even_with_bindings_right(pki):
    leaf = pki["leaf"].cert
    thumbprint = iis.certificate_thumbprint(leaf)
    sites = iis.normalise_sites([{"name": "Shop", "certificate": "www", "host": "www.example.com"}])
    state = facts(my=[cert(thumbprint, key=False, friendly="www")], ca=[cert(iis.certificate_thumbprint(pki["int"].cert))],
                  sites=[site("Shop", https(thumbprint=thumbprint))])
    plan = iis.build_plan(name="www", definition="www", policy="shared", leaf=leaf, intermediates=[pki["int"].cert], root=None,
                          sites=sites, facts=state)
    assert plan["changed"] and plan["repair"] == [thumbprint] and iis.pfx_needed(thumbprint, state)
    assert any("certutil -repairstore my" in line for line in plan["messages"])


def test_plan_changed_only_for_conflicting_root_when_removing(pki):
    leaf = pki["leaf"].cert
    thumbprint = iis.certificate_thumbprint(leaf)
    sites = iis.normalise_sites([{"name": "Shop", "certificate": "www", "host": "www.example.com"}])
    old = cert(iis.certificate_thumbprint(pki["old_root"].cert), subject=ROOT_NAME)
    right = cert(iis.certificate_thumbprint(pki["root"].cert), subject=ROOT_NAME)
    base = dict(my=[cert(thumbprint, friendly="www")], ca=[cert(iis.certificate_thumbprint(pki["int"].cert))], root=[right, old],
                sites=[site("Shop", https(thumbprint=thumbprint))])
    for remove, changed in ((False, False), (True, True)):
        plan = iis.build_plan(name="www", definition="www", policy="shared", leaf=leaf, intermediates=[pki["int"].cert],
                              root=pki["root"].cert, sites=sites, facts=facts(**copy.deepcopy(base)), remove_conflicting_roots=remove)
        assert plan["changed"] is changed
        assert [entry["action"] for entry in plan["conflicting_roots"]] == ["remove" if remove else "report"]


def test_leaf_without_common_name_uses_its_dns_name(pki):
    key = make_key()
    leaf = issue(__import__("cryptography").x509.Name([]), public_key=key.public_key(), issuer_name=pki["int"].cert.subject,
                 signing_key=pki["int"].key, ca=False, san=["portal.example.com"],
                 not_after=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30))
    (filled,) = iis.fill_hosts([dict(SITE, host=None)], leaf)
    assert filled["host"] == "portal.example.com"


def test_plan_changed_for_clean_up_alone(pki):
    leaf = pki["leaf"].cert
    thumbprint = iis.certificate_thumbprint(leaf)
    sites = iis.normalise_sites([{"name": "Shop", "certificate": "www", "host": "www.example.com"}])
    state = dict(my=[cert(thumbprint, friendly="www"), generation(B, 2026), generation(C, 2025)],
                 ca=[cert(iis.certificate_thumbprint(pki["int"].cert))], sites=[site("Shop", https(thumbprint=thumbprint))])
    for keep, changed, cleanup in ((2, False, []), (1, True, [C]), (0, True, [B, C])):
        plan = iis.build_plan(name="www", definition="www", policy="shared", leaf=leaf, intermediates=[pki["int"].cert],
                              root=None, sites=sites, facts=facts(**copy.deepcopy(state)), keep_generations=keep)
        assert (plan["changed"], plan["cleanup"]) == (changed, cleanup)
