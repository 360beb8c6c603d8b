"""The role-neutral deployment filters: certfleet_deploy_result, its events and the fleet table."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.certfleet.tls.plugins.filter.apache_ssl import FilterModule as ApacheFilters
from ansible_collections.certfleet.tls.plugins.filter.deploy import FilterModule

FILTERS = FilterModule().filters()
APACHE = ApacheFilters().filters()

ROW = {"site": "portal", "host": "10.0.0.5", "port": 443, "server_name": "portal.example.intra", "ok": True, "problems": [],
       "sha256": "AB:CD", "matches_expected": True, "chain_complete": True, "trusted": True, "days_left": 90}


def test_result_events_and_table_from_the_filters():
    result = FILTERS["deploy_result"]([ROW], "apache_ssl", sites=[{"name": "portal", "certificate": "portal-intra"}],
                                      deployed=True, transaction="T9", certificates=[{"name": "portal-intra", "sha256": "AB:CD"}])
    assert result["ok"] and result["sites"][0]["certificate"] == "portal-intra"
    events = FILTERS["deploy_events"](result, "web1", record_verified=True)
    assert [event["event"] for event in events] == ["deployed", "verified"]
    hostvars = {"web1": {"certfleet_deploy_result": result}, "web2": {}}
    table = FILTERS["deploy_table"](["web1", "web2"], hostvars).split("\n")
    assert table[1].startswith("web1 | portal | yes") and table[-1] == "" and len(table) == 3


def test_empty_failure_and_transaction_are_none():
    result = FILTERS["deploy_result"](None, "apache_ssl", failure="", transaction="")
    assert result["ok"] is True and result["failure"] is None and result["transaction"] is None


def test_failed_events_filter():
    events = FILTERS["deploy_failed_events"]([{"name": "api", "certificate": "api-intra", "port": "8443"}], "web3",
                                             "host unreachable: x", ports=False)
    assert events == [{"certificate": "api-intra", "event": "deploy_failed", "host": "web3", "site": "api",
                       "message": "host unreachable: x"}]


def test_filters_turn_errors_into_filter_errors():
    with pytest.raises(AnsibleFilterError, match="target"):
        FILTERS["deploy_result"]([], "")
    with pytest.raises(AnsibleFilterError, match="helper's path"):
        APACHE["apache_ssl_deploy_files"]({"sites": [], "passphrase_helper": True, "removals": []}, "/etc/certfleet.conf")


def test_apache_failure_filter():
    assert APACHE["apache_ssl_failure"]("Reload Apache (graceful)", {"msg": "failed to reload"}, "") == \
        "Reload Apache (graceful): failed to reload"
