# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host:port parsing and port checks: the one implementation the scanner, the monitor and apache_ssl share."""

from __future__ import annotations

import re

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._common import network
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError


# The scanner's targets (tls_probe, cert_scan): a missing port is 443.
@pytest.mark.parametrize("value, expected", [
    ("www.example.test", ("www.example.test", 443)),
    ("www.example.test:8443", ("www.example.test", 8443)),
    ("192.0.2.1:25", ("192.0.2.1", 25)),
    ("[2001:db8::1]:8443", ("2001:db8::1", 8443)),
    ("[2001:db8::1]", ("2001:db8::1", 443)),
    ("2001:db8::1", ("2001:db8::1", 443)),
    ("  host.test:1  ", ("host.test", 1)),
])
def test_parse_host_port_with_default_port(value, expected):
    assert network.parse_host_port(value, default_port=443) == expected


@pytest.mark.parametrize("value, message", [
    ("host.test:0", "outside 1..65535"),
    ("host.test:65536", "outside 1..65535"),
    ("host.test:http", "expected host, host:port"),
    ("[2001:db8::1", "expected host, host:port"),
    (":443", "expected host, host:port"),
])
def test_parse_host_port_errors_name_the_forms(value, message):
    with pytest.raises(CertfleetError, match=message):
        network.parse_host_port(value, default_port=443)


# The monitor's endpoints: a missing port stays None so the definition's own port can apply.
@pytest.mark.parametrize("text, expected", [
    ("www.example.jp", ("www.example.jp", None)),
    ("www.example.jp:8443", ("www.example.jp", 8443)),
    ("192.0.2.1:443", ("192.0.2.1", 443)),
    ("[2001:db8::1]:8443", ("2001:db8::1", 8443)),
    ("[2001:db8::1]", ("2001:db8::1", None)),
    ("2001:db8::1", ("2001:db8::1", None)),
])
def test_parse_host_port_without_default(text, expected):
    assert network.parse_host_port(text, what="t") == expected


@pytest.mark.parametrize("text, message", [
    ("www.example.jp:http", "port 'http' is not a number"),
    ("www.example.jp:0", "port 0 must be between 1 and 65535"),
    ("www.example.jp:70000", "port 70000 must be between 1 and 65535"),
    ("[2001:db8::1]x", "is not [IPv6]:port"),
])
def test_parse_host_port_errors_name_the_port(text, message):
    with pytest.raises(CertfleetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        network.parse_host_port(text, what="t")


# New with the shared implementation.

@pytest.mark.parametrize("value, message", [
    ("a[b:443", "has a bracket outside"),
    ("host:", "port '' is not a number"),
    ("host:+1", "port '+1' is not a number"),
    ("[::1]:", "port '' is not a number"),
])
def test_parse_host_port_rejects(value, message):
    with pytest.raises(CertfleetError, match=re.escape(message)):
        network.parse_host_port(value, what="t")


def test_errors_name_what_or_the_text():
    with pytest.raises(CertfleetError, match=r"^endpoints\[0\]: port 0 must be between 1 and 65535"):
        network.parse_host_port("a:0", what="endpoints[0]")
    with pytest.raises(CertfleetError, match=r"^a:0: port 0 "):
        network.parse_host_port("a:0")


@pytest.mark.parametrize("value, expected", [(1, 1), ("443", 443), (65535, 65535)])
def test_check_port(value, expected):
    assert network.check_port(value, what="p") == expected


@pytest.mark.parametrize("value, messages", [
    (0, ["port 0 must be between 1 and 65535", "outside 1..65535"]),
    (70000, ["between 1 and 65535"]),
    ("https", ["port 'https' is not a number", "must be a port number"]),
    (None, ["port None is not a number"]),
])
def test_check_port_errors(value, messages):
    with pytest.raises(CertfleetError) as caught:
        network.check_port(value, what="site x")
    assert str(caught.value).startswith("site x: ")
    for message in messages:
        assert message in str(caught.value)


@pytest.mark.parametrize("value, expected", [
    ("192.0.2.1", True), ("2001:db8::1", True), ("fe80::1%eth0", True), ("www.example.jp", False), ("999.1.1.1", False),
])
def test_is_ip_address(value, expected):
    assert network.is_ip_address(value) is expected


@pytest.mark.parametrize("host, port, label", [("a.test", 443, "a.test:443"), ("::1", 8443, "[::1]:8443")])
def test_host_port_label(host, port, label):
    assert network.host_port_label(host, port) == label
