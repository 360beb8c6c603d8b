# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host names, fingerprints and IP literals are matched whole: "$" no longer lets a final newline through
(issue 16, row 9)."""
from __future__ import annotations

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._scan import checks as _checks
from ansible_collections.certfleet.tls.plugins.module_utils._scan import monitor as _monitor
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError


@pytest.mark.parametrize("host", ["www.example.intra\n", "www\n", "www\r"])
def test_a_host_or_server_name_with_a_final_newline_is_refused(host):
    with pytest.raises(CertfleetError, match="is neither an IP address nor a DNS name"):
        _monitor._check_host(host, what="endpoints[0]")  # pylint: disable=protected-access
    with pytest.raises(CertfleetError, match="must be a DNS name"):
        _monitor.parse_endpoint({"host": "10.0.0.5", "port": 443, "server_name": host}, what="endpoints[0]")
    assert _monitor._usable_sni(host) is False  # pylint: disable=protected-access


def test_plain_hosts_still_parse():
    assert _monitor.parse_endpoint({"host": "www.example.intra"}, what="endpoints[0]")["host"] == "www.example.intra"


def test_an_ipv4_literal_with_a_final_newline_is_not_an_ip():
    assert _checks._ip_literal("10.0.0.1\n") is None  # pylint: disable=protected-access
    assert str(_checks._ip_literal("10.0.0.1")) == "10.0.0.1"  # pylint: disable=protected-access
