# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cert_monitor filters: monitor_hosts reads only what it needs from hostvars; errors without a traceback."""
from __future__ import annotations

from collections.abc import Mapping

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.certfleet.tls.plugins.filter.monitor import FilterModule

FILTERS = FilterModule().filters()


class FakeHostVars(Mapping):
    """hostvars of one host: records every variable read, as the real one templates each on access."""

    def __init__(self, variables: dict, reads: list) -> None:
        self._variables = variables
        self._reads = reads

    def __getitem__(self, key):
        self._reads.append(key)
        return self._variables[key]

    def __contains__(self, key):
        return key in self._variables  # as HostVarsVars: membership does not template

    def __iter__(self):
        return iter(self._variables)

    def __len__(self):
        return len(self._variables)


def test_monitor_hosts_reads_only_the_site_variables():
    reads: list = []
    sites = [{"name": "portal", "certificate": "www"}]
    hostvars = {
        "web1": FakeHostVars({"apache_ssl_sites": sites, "ansible_host": "192.0.2.11", "secret": "x",
                              "inventory_hostname": "web1"}, reads),
        "db1": FakeHostVars({"ansible_host": "192.0.2.20", "secret": "y"}, reads),
    }
    assert FILTERS["monitor_hosts"](["web1", "db1"], hostvars) == [
        {"name": "web1", "verify_host": "192.0.2.11", "sites": sites}]
    assert sorted(reads) == ["ansible_host", "ansible_host", "apache_ssl_sites"]


def test_monitor_hosts_only_for_the_names_given():
    hostvars = {"web1": {"apache_ssl_sites": [{"name": "a", "certificate": "www"}]},
                "web2": {"apache_ssl_sites": [{"name": "b", "certificate": "www"}]}}
    assert [host["name"] for host in FILTERS["monitor_hosts"](["web2"], hostvars)] == ["web2"]
    assert FILTERS["monitor_hosts"]([], hostvars) == []


def test_monitor_filters_raise_filter_errors():
    with pytest.raises(AnsibleFilterError, match="apache_ssl_sites must be a list"):
        FILTERS["monitor_targets"]([{"name": "www", "common_name": "www.example.jp"}], "/srv/store",
                                   hosts=FILTERS["monitor_hosts"](["web1"], {"web1": {"apache_ssl_sites": "portal"}}))
