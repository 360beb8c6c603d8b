"""CA profile rules, table-driven."""
from __future__ import annotations

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._csr.profiles import (
    bare_domain_for_www,
    check_request,
    fqdn_problem,
    is_intranet_name,
    resolve_profile,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

RSA2048 = {"type": "RSA", "size": 2048, "curve": None}
EC256 = {"type": "ECC", "size": 256, "curve": "secp256r1"}
DN = {"C": "JP", "ST": "Tokyo", "L": "Minato-ku", "O": "Cybertrust Japan Co.Ltd.", "CN": "www.cybertrust.ne.jp"}


def check(profile_name, subject=None, sans=(), key=None, digest="sha256", attributes=None):
    return check_request(resolve_profile(profile_name), subject=dict(DN if subject is None else subject),
                         subject_alt_names=list(sans), key_info=key or RSA2048, digest=digest, attributes=attributes)


def test_seed_000_example_passes_cybertrust():
    report = check("cybertrust")
    assert report["errors"] == []
    # Seed 004: the bare domain is registered along with a www. common name.
    assert report["subject_alt_name"] == ["www.cybertrust.ne.jp", "cybertrust.ne.jp"]


@pytest.mark.parametrize("profile, subject_change, sans, key, digest, attributes, expected", [
    ("cybertrust", {"C": "JPN"}, [], RSA2048, "sha256", None, "country_name (C): 'JPN' must be exactly two upper-case letters"),
    ("cybertrust", {"C": "jp"}, [], RSA2048, "sha256", None, "country_name (C): 'jp'"),
    ("cybertrust", {"ST": None}, [], RSA2048, "sha256", None, "state_or_province_name (ST): required by profile cybertrust"),
    ("cybertrust", {"L": ""}, [], RSA2048, "sha256", None, "locality_name (L): required"),
    ("cybertrust", {"O": "サイバートラスト株式会社"}, [], RSA2048, "sha256", None, "organization_name (O): must be printable ASCII"),
    ("cybertrust", {"CN": "192.0.2.7"}, [], RSA2048, "sha256", None, "is an IP address"),
    ("cybertrust", {"CN": "intranet"}, [], RSA2048, "sha256", None, "not a fully qualified domain name"),
    ("cybertrust", {"CN": "mail.example.local"}, [], RSA2048, "sha256", None, "intranet-only"),
    ("cybertrust", {"CN": "host.internal"}, [], RSA2048, "sha256", None, "intranet-only"),
    ("cybertrust", {"CN": "a.b.home.arpa"}, [], RSA2048, "sha256", None, "intranet-only"),
    ("cybertrust", {"CN": "*.*.example.com"}, [], RSA2048, "sha256", None, "wildcard that is not the whole leftmost label"),
    ("cybertrust", {"CN": "-bad.example.com"}, [], RSA2048, "sha256", None, "invalid DNS label '-bad'"),
    ("cybertrust", {"emailAddress": "a@example.com"}, [], RSA2048, "sha256", None, "email_address (emailAddress): must not be set"),
    ("cybertrust", {}, [], EC256, "sha256", None, "privatekey: ECC key, profile cybertrust accepts only RSA"),
    ("cybertrust", {}, [], {"type": "RSA", "size": 1024}, "sha256", None, "RSA key of 1024 bits"),
    ("cybertrust", {}, [], RSA2048, "sha384", None, "digest: sha384, profile cybertrust requires sha256"),
    ("cybertrust", {}, [], RSA2048, "sha256", ["challengePassword"], "attributes: challengePassword must not be set"),
    ("cybertrust", {}, [], RSA2048, "sha256", ["unstructuredName"], "attributes: unstructuredName must not be set"),
    ("cybertrust", {}, ["IP:203.0.113.5"], RSA2048, "sha256", None, "IP address '203.0.113.5' is not allowed"),
    ("cybertrust", {"CN": "x" * 60 + ".example.com"}, [], RSA2048, "sha256", None, "RFC 5280 allows at most 64"),
    ("cabf", {"OU": "IT"}, [], RSA2048, "sha256", None, "organizational_unit_name (OU): must not be set (profile cabf)"),
    ("cabf", {}, ["IP:10.1.2.3"], RSA2048, "sha256", None, "'10.1.2.3' is a private or reserved IP address"),
    ("cabf", {}, ["wiki"], RSA2048, "sha256", None, "subject_alt_name: 'wiki' is not a fully qualified domain name"),
    ("cabf", {}, [], {"type": "ECC", "size": 521, "curve": "secp521r1"}, "sha256", None, "curve secp521r1"),
    ("cabf", {"C": "Japan"}, [], RSA2048, "sha256", None, "country_name (C): 'Japan'"),
    ("private", {}, [], {"type": "RSA", "size": 1024}, "sha256", None, "at least 2048 bits"),
    ("private", {}, [], RSA2048, "sha1", None, "digest: sha1"),
])
def test_violation_names_field_and_rule(profile, subject_change, sans, key, digest, attributes, expected):
    subject = dict(DN)
    subject.update(subject_change)
    report = check(profile, subject=subject, sans=sans, key=key, digest=digest, attributes=attributes)
    assert any(expected in error for error in report["errors"]), report["errors"]


@pytest.mark.parametrize("profile, subject, sans", [
    ("private", {"CN": "wiki"}, ["wiki.corp", "IP:10.0.0.1"]),
    ("private", {"CN": "10.0.0.1"}, []),
    ("cabf", {"CN": "*.example.com"}, ["example.com", "IP:8.8.8.8"]),  # a public address, as a string only
    ("cabf", {"CN": "api.example.com", "O": "Example Inc.", "C": "US"}, []),
    ("cybertrust", dict(DN, CN="*.example.co.jp"), []),
    ("cybertrust", dict(DN, OU="Technical Division"), []),
])
def test_acceptable_requests(profile, subject, sans):
    key = EC256 if profile != "cybertrust" else RSA2048
    assert check(profile, subject=subject, sans=sans, key=key)["errors"] == []


def test_ou_under_cybertrust_is_a_warning():
    report = check("cybertrust", subject=dict(DN, OU="Technical Division"))
    assert report["errors"] == []
    assert any("2022-06-23" in warning for warning in report["warnings"])


def test_every_violation_is_listed_at_once():
    report = check("cybertrust", subject={"C": "JPN", "O": "株式会社", "CN": "intranet", "emailAddress": "a@b.c"},
                   key=EC256, digest="sha1")
    assert len(report["errors"]) == 8


@pytest.mark.parametrize("common_name, expected", [
    ("www.example.co.jp", "example.co.jp"),
    ("www.example.com", "example.com"),
    ("WWW.Example.com", "example.com"),
    ("www.shop.example.jp", None),
    ("www.shop.example.co.jp", None),
    ("api.example.com", None),
])
def test_bare_domain_for_www(common_name, expected):
    assert bare_domain_for_www(common_name, resolve_profile("cybertrust")["public_suffixes"]) == expected


def test_www_with_deeper_subdomain_warns_instead_of_adding():
    report = check("cybertrust", subject=dict(DN, CN="www.shop.example.jp"))
    assert report["subject_alt_name"] == ["www.shop.example.jp"]
    assert any("subdomain other than www" in warning for warning in report["warnings"])


def test_cn_is_added_first_to_sans_once():
    report = check("cabf", subject={"CN": "a.example.com"}, sans=["b.example.com", "A.example.com"], key=EC256)
    assert report["subject_alt_name"] == ["b.example.com", "A.example.com"]
    report = check("cabf", subject={"CN": "a.example.com"}, sans=["b.example.com"], key=EC256)
    assert report["subject_alt_name"] == ["a.example.com", "b.example.com"]


@pytest.mark.parametrize("name, intranet", [
    ("server", True), ("a.local", True), ("a.lan", True), ("x.corp", True), ("db.localdomain", True),
    ("www.example.com", False), ("*.internal", True), ("corp.example.com", False), ("a.test", True),
])
def test_is_intranet_name(name, intranet):
    assert is_intranet_name(name, resolve_profile("cabf")["intranet_suffixes"]) is intranet


@pytest.mark.parametrize("name, ok", [
    ("www.example.com", True), ("*.example.com", True), ("example", False), ("a..b.com", False),
    ("a_b.example.com", False), ("x.123", False), ("a" * 64 + ".com", False),
])
def test_fqdn_problem(name, ok):
    assert (fqdn_problem(name, allow_wildcard=True) is None) is ok


def test_user_profile_extends_builtin():
    profile = resolve_profile({"extends": "cybertrust", "digests": ["sha256", "sha384"], "name": "ours"})
    assert profile["name"] == "ours" and profile["digests"] == ["sha256", "sha384"]
    assert profile["required_fields"] == ["C", "ST", "L", "O", "CN"]


def test_named_user_profiles_and_loops():
    users = {"a": {"extends": "b"}, "b": {"extends": "a"}, "ok": {"extends": "cabf", "min_rsa_size": 3072}}
    assert resolve_profile("ok", users)["min_rsa_size"] == 3072
    with pytest.raises(CertfleetError, match="loops"):
        resolve_profile("a", users)


@pytest.mark.parametrize("profile, message", [
    ("nope", "unknown profile 'nope'"),
    ({"extends": "nope"}, "extends unknown profile 'nope'"),
    ({"extends": "cabf", "min_rsa_sise": 4096}, "unknown rule(s) min_rsa_sise"),
])
def test_profile_errors(profile, message):
    with pytest.raises(CertfleetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_profile(profile)
