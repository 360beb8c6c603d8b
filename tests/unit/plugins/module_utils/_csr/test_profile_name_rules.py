# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile names against the profile rules: one classifier for SAN/CN types, host name syntax for every
DNS name in every profile, globally routable addresses only for public profiles, no control characters
in any DN attribute (issue 16, rows 4, 5, 9 and 13)."""
from __future__ import annotations

import pytest
from cryptography import x509

from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import classify_name, parse_general_name
from ansible_collections.certfleet.tls.plugins.module_utils._csr.profiles import (
    check_request,
    fqdn_problem,
    hostname_problem,
    resolve_profile,
)

RSA2048 = {"type": "RSA", "size": 2048, "curve": None}
PUBLIC_DN = {"C": "JP", "ST": "Tokyo", "L": "Minato-ku", "O": "Example Co.Ltd.", "CN": "www.example.com"}


def check(profile, subject, sans=()):
    resolved = resolve_profile(profile) if isinstance(profile, str) else resolve_profile(profile)
    return check_request(resolved, subject=dict(subject), subject_alt_names=list(sans), key_info=RSA2048, digest="sha256")


# ---------------------------------------------------------------------------------------------
# row 4: one classifier, prefixes case-insensitive, used for checking and for signing


@pytest.mark.parametrize("entry, expected", [
    ("www.example.intra", ("DNS", "www.example.intra")),
    ("DNS:www.example.intra", ("DNS", "www.example.intra")),
    ("dns:www.example.intra", ("DNS", "www.example.intra")),
    ("IP:10.0.0.1", ("IP", "10.0.0.1")),
    ("ip:8.8.8.8", ("IP", "8.8.8.8")),
    ("Ip:1.1.1.1", ("IP", "1.1.1.1")),
    ("iP: 2001:db8::1", ("IP", "2001:db8::1")),
    ("2001:db8::1", ("IP", "2001:db8::1")),
    ("Email:a@example.intra", ("EMAIL", "a@example.intra")),
    ("uri:https://example.intra/", ("URI", "https://example.intra/")),
    ("othername:x", ("OTHERNAME", "x")),
])
def test_classify_name_prefixes_are_case_insensitive(entry, expected):
    assert classify_name(entry) == expected


@pytest.mark.parametrize("entry", ["ip:8.8.8.8", "Ip:1.1.1.1", "IP:10.0.0.1", "iP:2001:db8::1"])
def test_signing_types_a_name_as_the_check_does(entry):
    kind, value = classify_name(entry)
    general_name = parse_general_name(entry)
    assert kind == "IP" and isinstance(general_name, x509.IPAddress) and str(general_name.value) == value


def test_a_common_name_never_carries_a_type_prefix():
    assert classify_name("Ip:1.1.1.1", common_name=True) == ("DNS", "Ip:1.1.1.1")
    assert classify_name("10.0.0.1", common_name=True) == ("IP", "10.0.0.1")
    report = check("private", {"CN": "Ip:1.1.1.1"})
    assert any("common_name (CN): 'Ip:1.1.1.1' has an invalid DNS label" in error for error in report["errors"]), report
    # The copy into the SANs keeps the type the CN was checked as: never an IP SAN.
    assert report["subject_alt_name"] == ["DNS:Ip:1.1.1.1"]
    assert isinstance(parse_general_name(report["subject_alt_name"][0]), x509.DNSName)


@pytest.mark.parametrize("entry", ["ip:10.1.2.3", "Ip:10.1.2.3", "IP:10.1.2.3"])
def test_lower_case_ip_prefix_meets_the_public_ip_rules(entry):
    report = check("cabf", {"CN": "www.example.com"}, [entry])
    assert any("'10.1.2.3' is a private or reserved IP address" in error for error in report["errors"]), report


# ---------------------------------------------------------------------------------------------
# row 5: every DNS name is a host name, in every profile, CN included


HOSTILE_DNS = [
    ("evil.com\x00.example.intra", "invalid DNS label 'com\\x00'"),
    ("evil.com/x .example.intra", "invalid DNS label 'com/x '"),
    ("*.*.example.intra", "wildcard that is not the whole leftmost label"),
    ("a.*.example.intra", "wildcard that is not the whole leftmost label"),
    ("w*w.example.intra", "wildcard that is not the whole leftmost label"),
    ("evil com.example.intra", "invalid DNS label 'evil com'"),
    ("a..example.intra", "invalid DNS label ''"),
    ("www\n", "invalid DNS label 'www\\n'"),
    ("x" * 64 + ".example.intra", "invalid DNS label"),
    ("a." * 127 + "intra", "longer than 253 characters"),
    ("*", "bare wildcard"),
]


@pytest.mark.parametrize("profile", ["private", "cabf", "cybertrust", {"extends": "private", "cn_in_san": False}])
@pytest.mark.parametrize("name, message", HOSTILE_DNS, ids=[repr(c[0])[:30] for c in HOSTILE_DNS])
def test_every_dns_name_is_a_host_name_in_every_profile(profile, name, message):
    as_san = check(profile, dict(PUBLIC_DN), [name])
    assert any(error.startswith("subject_alt_name:") and message in error for error in as_san["errors"]), as_san["errors"]
    as_cn = check(profile, dict(PUBLIC_DN, CN=name))
    assert any(error.startswith("common_name (CN):") for error in as_cn["errors"]), as_cn["errors"]


def test_private_cn_is_checked_even_when_not_copied_into_the_sans():
    profile = {"extends": "private", "cn_in_san": False}
    for cn, message in [("evil.com\x00.example.intra", "invalid DNS label 'com\\x00'"), ("evil.com/x .example.intra", "invalid DNS label"),
                        ("*.*.example.intra", "wildcard that is not the whole leftmost label")]:
        report = check(profile, {"CN": cn}, ["www.example.intra"])
        assert any(error.startswith(f"common_name (CN): {cn!r}") and message in error for error in report["errors"]), report
    assert report["subject_alt_name"] == ["www.example.intra"]


@pytest.mark.parametrize("name", ["portal", "www.example.intra", "*.apps.example.intra", "xn--bcher-kva.example"])
def test_private_profile_keeps_accepting_host_names(name):
    assert check("private", {"CN": name}, [name])["errors"] == []


@pytest.mark.parametrize("name, problem", [
    ("www.example.com", None), ("*.example.com", None), ("www.example.com.", None),
    ("www\n", "invalid DNS label"), ("*.*.example.com", "not the whole leftmost label"), ("", "is empty"),
])
def test_hostname_problem(name, problem):
    found = hostname_problem(name)
    assert (found is None) if problem is None else (problem in found)


# ---------------------------------------------------------------------------------------------
# row 9: a final newline never passes a check


@pytest.mark.parametrize("name", ["www.example.com\n", "portal\n", "-a\n.example.com"])
def test_final_newline_is_refused(name):
    assert fqdn_problem(name, allow_wildcard=True) is not None
    assert check("private", {"CN": "portal.example.intra"}, [name])["errors"]


def test_country_pattern_is_matched_whole():
    report = check("cabf", dict(PUBLIC_DN, C="JP\n"))
    assert any("country_name (C)" in error for error in report["errors"]), report


# ---------------------------------------------------------------------------------------------
# row 13: public profiles accept only globally routable addresses; no control characters anywhere


@pytest.mark.parametrize("address", [
    "100.64.0.1",        # RFC 6598 shared address space (carrier-grade NAT)
    "100.127.255.254",
    "10.0.0.1", "192.168.1.1", "172.16.0.1", "127.0.0.1", "169.254.1.1", "192.0.2.1", "198.18.0.1", "0.0.0.0",
    "224.0.0.1", "255.255.255.255",
    "2002:a00:1::",      # 6to4 of 10.0.0.1
    "2002:6440:1::",     # 6to4 of 100.64.0.1
    "::ffff:10.0.0.1",   # IPv4-mapped
    "64:ff9b::a00:1",    # NAT64 well-known prefix, 10.0.0.1
    "64:ff9b:1::a00:1",  # NAT64 local-use prefix
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    "::a00:1",           # IPv4-compatible
    "fc00::1", "fe80::1", "::1", "2001:db8::1", "ff02::1",
])
def test_public_profile_refuses_non_global_addresses(address):
    report = check({"extends": "cabf", "allow_ip_names": True}, PUBLIC_DN, [f"IP:{address}"])
    assert any("is a private or reserved IP address" in error and "not globally routable" in error
               for error in report["errors"]), report["errors"]


@pytest.mark.parametrize("address", ["8.8.8.8", "203.0.114.5", "2606:4700:4700::1111", "2002:808:808::"])
def test_public_profile_accepts_global_addresses(address):
    report = check({"extends": "cabf", "allow_ip_names": True}, PUBLIC_DN, [f"IP:{address}"])
    assert report["errors"] == []


@pytest.mark.parametrize("profile", ["cabf", "cybertrust", "private"])
@pytest.mark.parametrize("field", ["C", "ST", "L", "O", "OU", "CN"])
@pytest.mark.parametrize("bad", ["\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u202e"])
def test_no_control_characters_in_any_dn_attribute(profile, field, bad):
    value = {"C": "J" + bad, "CN": "www.example.com" + bad}.get(field, "Example" + bad + "Corp")
    report = check(profile, dict(PUBLIC_DN, **{field: value}))
    assert any(error.startswith(f"{'country_name' if field == 'C' else ''}") and repr(bad)[1:-1] in error
               and "control, line-separator or bidirectional characters" in error for error in report["errors"]), report["errors"]


def test_cabf_refuses_nul_inside_o():
    report = check("cabf", dict(PUBLIC_DN, O="Trusted\x00Corp"))
    assert any(error.startswith("organization_name (O): control") for error in report["errors"]), report["errors"]
    # A non-ASCII registered name stays allowed under cabf (UTF8String), only control characters go.
    assert check("cabf", dict(PUBLIC_DN, O="株式会社 Example"))["errors"] == []
