# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the scan runner's plan (targets and ranges to endpoints); scanning itself is exercised by the module tests."""

from __future__ import annotations

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._scan import runner
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb


_ROOT_PEM = pb.make_root("Plan Root").pem.decode()


def _plan(**kwargs):
    kwargs.setdefault("trusted_ca_sets", {"default": {"system": False, "certificates": [_ROOT_PEM]}})
    return runner.ScanPlan(**kwargs)


def test_plan_counts_and_order():
    plan = _plan(targets=["a.test", "b.test:8443", "[::1]:444", {"host": "192.0.2.9", "port": 25, "starttls": "smtp", "name": "mx"}],
                 ranges=[{"cidr": ["192.0.2.0/30", "192.0.2.8/32"], "ports": [443, "8000-8001"]}, "2001:db8::/127"],
                 defaults={"ports": [443]})
    endpoints = list(plan.endpoints())
    assert plan.total == len(endpoints) == 4 + 3 * 3 + 2
    assert [(e.host, e.port) for e in endpoints[:4]] == [("a.test", 443), ("b.test", 8443), ("::1", 444), ("192.0.2.9", 25)]
    assert [e.index for e in endpoints] == list(range(plan.total))
    assert endpoints[3].starttls == "smtp" and endpoints[3].data.extra["name"] == "mx"
    assert endpoints[0].data.expect.hostname == "a.test"
    assert endpoints[3].data.expect.hostname is None  # an IP target is not name-checked by default
    assert endpoints[4].data.expect.hostname is None
    assert endpoints[-1].host == "2001:db8::1"


def test_plan_is_lazy():
    plan = _plan(ranges=[{"cidr": "10.0.0.0/8", "ports": [443]}], max_endpoints=1 << 25)
    assert plan.total == (1 << 24) - 2
    first = next(iter(plan.endpoints()))
    assert (first.host, first.port) == ("10.0.0.1", 443)


def test_plan_modes_and_sets():
    plan = _plan(targets=[
        {"host": "a.test", "mode": "lifecycle_managed", "expected_fingerprint": "AB" * 32, "expected_subject": {"CN": "a"}},
        {"host": "b.test", "server_name": "www.b.test", "trusted_ca_set": "private", "expected_subject": {"CN": "www.b.test"}},
        {"host": "192.0.2.1", "check_hostname": True},
        {"host": "c.test", "sni": "www.c.test", "check_hostname": False},
    ], trusted_ca_sets={"default": {"system": False, "certificates": [_ROOT_PEM]},
                        "private": {"system": False, "certificates": [_ROOT_PEM]}})
    lifecycle, private, by_ip, no_check = [endpoint.data for endpoint in plan.endpoints()]
    assert lifecycle.expect.check_trust is False and lifecycle.expect.hostname is None and lifecycle.expect.subject == ()
    assert lifecycle.extra == {"name": None, "mode": "lifecycle_managed", "trusted_ca_set": "default"}
    assert private.expect.hostname == "www.b.test" and private.expect.trust.name == "private"
    assert private.expect.subject == (("CN", "www.b.test"),)
    assert by_ip.expect.hostname == "192.0.2.1"
    assert no_check.expect.hostname is None


@pytest.mark.parametrize("kwargs, message", [
    ({}, "nothing to scan"),
    ({"targets": [{"port": 443}]}, r"targets\[1\]: host is required"),
    ({"targets": [{"host": "a", "colour": "red"}]}, r"unknown key\(s\) colour"),
    ({"targets": [42]}, "expected a dict or a host:port string"),
    ({"targets": ["a.test:99999"]}, "outside 1..65535"),
    ({"targets": [{"host": "a.test", "starttls": "imap"}]}, "starttls must be one of"),
    ({"targets": [{"host": "a.test", "trusted_ca_set": "nope"}]}, "trusted CA set 'nope' is not defined"),
    ({"targets": [{"host": "a.test", "server_name": "192.0.2.1"}]}, "SNI carries host names only"),
    ({"ranges": [{"ports": [443]}]}, r"ranges\[1\]: cidr is required"),
    ({"ranges": ["10.0.0.0/33"]}, "is not an IP network"),
    ({"ranges": [{"cidr": "10.0.0.0/24", "ports": ["9-1"]}]}, "runs backwards"),
    ({"ranges": [{"cidr": "10.0.0.0/16"}], "max_endpoints": 1000}, "65534 endpoints planned, more than max_endpoints"),
    ({"targets": ["a.test"], "trusted_ca_sets": {"x": {"colour": 1}}}, "unknown key"),
])
def test_plan_errors(kwargs, message):
    with pytest.raises(CertfleetError, match=message):
        _plan(**kwargs)
