"""The role-neutral deployment result, its history events and the fleet table."""
from __future__ import annotations

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import results as _results

SITES = [{"name": "portal", "certificate": "portal-example-intra"}, {"name": "api", "certificate": "api-example-intra"}]
SHA = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB"


def row(site="portal", **overrides):
    result = {"site": site, "host": "10.0.0.5", "port": 443 if site == "portal" else 8443,
              "server_name": f"{site}.example.intra", "ok": True, "problems": [], "sha256": SHA, "matches_expected": True,
              "chain_complete": True, "trusted": True, "days_left": 364}
    result.update(overrides)
    return result


def test_result_of_a_deployment_whose_sites_are_right():
    result = _results.deploy_result([row(), row("api")], target="apache_ssl", sites=SITES, deployed=True,
                                    transaction="20261203T101500Z-1a2b3c4d",
                                    certificates=[{"name": "portal-example-intra", "sha256": SHA}])
    assert result["target"] == "apache_ssl" and result["ok"] is True and result["failure"] is None
    assert result["deployed"] is True and result["checked"] is True
    assert result["transaction"] == "20261203T101500Z-1a2b3c4d"
    assert [site["certificate"] for site in result["sites"]] == ["portal-example-intra", "api-example-intra"]
    assert list(result["sites"][0]) == list(_results.ROW_KEYS)


def test_a_wrong_site_makes_the_result_a_failure_naming_it():
    result = _results.deploy_result([row(), row("api", ok=False, problems=["not trusted", "3 days left (< 10)"])],
                                    target="apache_ssl", sites=SITES)
    assert result["ok"] is False
    assert result["failure"] == "deploy check failed: api: not trusted; 3 days left (< 10)"


def test_a_given_failure_wins_and_no_check_means_no_rows():
    result = _results.deploy_result(None, target="apache_ssl", failure="Reload Apache: AH00526: Syntax error")
    assert (result["ok"], result["checked"], result["sites"], result["deployed"]) == (False, False, [], False)
    assert result["failure"] == "Reload Apache: AH00526: Syntax error"
    unchecked = _results.deploy_result(None, target="apache_ssl", sites=SITES, deployed=True)
    assert unchecked["ok"] is True and unchecked["checked"] is False


def test_a_check_of_no_site_is_a_check():
    result = _results.deploy_result([], target="apache_ssl")
    assert result["checked"] is True and result["ok"] is True and result["sites"] == []


def test_result_needs_a_target():
    with pytest.raises(CertfleetError, match="target"):
        _results.deploy_result([], target="")


def test_events_of_a_deployment_record_every_site():
    result = _results.deploy_result([row(), row("api", ok=False, problems=["chain incomplete"], sha256=None)],
                                    target="apache_ssl", sites=SITES, deployed=True, transaction="T1",
                                    certificates=[{"name": "portal-example-intra", "sha256": SHA},
                                                  {"name": "api-example-intra", "sha256": "EF"}])
    events = _results.deploy_events(result, host="web1", record_verified=True)
    assert events == [
        {"certificate": "portal-example-intra", "event": "deployed", "host": "web1", "sha256": SHA, "message": "transaction T1"},
        {"certificate": "api-example-intra", "event": "deployed", "host": "web1", "sha256": "EF", "message": "transaction T1"},
        {"certificate": "portal-example-intra", "event": "verified", "host": "web1", "site": "portal", "port": 443,
         "sha256": SHA, "message": "served by 10.0.0.5:443 for portal.example.intra"},
        {"certificate": "api-example-intra", "event": "verify_failed", "host": "web1", "site": "api", "port": 8443,
         "sha256": None, "message": "served by 10.0.0.5:8443 for api.example.intra: chain incomplete"},
    ]


def test_an_unchanged_rerun_records_only_what_is_wrong():
    right = _results.deploy_result([row(), row("api")], target="apache_ssl", sites=SITES)
    assert _results.deploy_events(right, host="web1", record_verified=False) == []
    wrong = _results.deploy_result([row(), row("api", ok=False, problems=["x"])], target="apache_ssl", sites=SITES)
    assert [event["event"] for event in _results.deploy_events(wrong, host="web1", record_verified=False)] == ["verify_failed"]


def test_failed_events_leave_out_absent_sites_and_ports_when_asked():
    sites = [{"name": "portal", "certificate": "p", "port": 443}, {"name": "api", "certificate": "a", "state": "absent"},
             {"name": "shop", "certificate": "s"}]
    assert _results.deploy_failed_events(sites, host="web2", message="boom") == [
        {"certificate": "p", "event": "deploy_failed", "host": "web2", "site": "portal", "port": 443, "message": "boom"},
        {"certificate": "s", "event": "deploy_failed", "host": "web2", "site": "shop", "message": "boom"},
    ]
    assert all("port" not in event for event in _results.deploy_failed_events(sites, host="web2", message="m", ports=False))
    assert _results.deploy_failed_events(None, host="web2", message="m") == []


def test_table_lines_up_the_columns_of_every_host():
    failing = row("api", ok=False, problems=["a", "b"], sha256=None, matches_expected=False, chain_complete=None,
                  trusted=False, days_left=None)
    results = [["web1", _results.deploy_result([row(), failing], target="apache_ssl", sites=SITES)], ["web22", None]]
    assert _results.deploy_table(results).splitlines() == [
        "host | site   | served = intended | served SHA-256      | chain complete | trusted | days left | check",
        "web1 | portal | yes               | abcdef0123456789... | yes            | yes     | 364       | ok",
        "web1 | api    | NO                | -                   | -              | NO      | -         | FAILED: a; b",
    ]
    assert _results.deploy_table(results).endswith("FAILED: a; b\n")


def test_table_without_rows_says_so():
    assert _results.deploy_table([["web1", None]]) == (
        "host | site | served = intended | served SHA-256 | chain complete | trusted | days left | check\n"
        "no site was checked (no host with apache_ssl_sites, or all unreachable)\n")


def test_host_failure_names_the_cause_first():
    assert _results.host_failure("refused", unreachable_before=True) == "host unreachable: refused"
    assert _results.host_failure("Timed out", deadline_over=True, gone=True, deadline=20) == (
        "deadline of 20 s (certfleet_deploy_host_timeout) exceeded: Timed out")
    assert _results.host_failure("check failed", gone=True) == "host unreachable during its deploy: check failed"
    assert _results.host_failure("check failed") == "check failed"
    assert _results.host_failure(None, gone=True) == "host unreachable during its deploy: no answer"


BROKEN = ("AH00526: Syntax error on line 1 of /etc/apache2/conf-enabled/broken.conf:\n"
          "Invalid command 'Garbage', perhaps misspelled or defined by a module not included in the server configuration\n")


@pytest.mark.parametrize(("registered", "problems", "notes"), [
    (None, [], []),
    ({"skipped": True, "changed": False}, [], []),
    ({"rc": 0, "stdout": "", "stderr": "Syntax OK\n"}, [], []),
    ({"unreachable": True, "msg": "ssh: connect to host 10.0.0.5 port 22: Connection refused"}, [],
     ["configuration not tested (apachectl -t): host unreachable"]),
    ({"rc": 1, "stdout": "", "stderr": BROKEN},
     ["configuration test fails (apachectl -t): AH00526: Syntax error on line 1 of /etc/apache2/conf-enabled/broken.conf: / "
      "Invalid command 'Garbage', perhaps misspelled or defined by a module not included in the server configuration"], []),
    ({"rc": 127, "stdout": "", "stderr": ""}, ["configuration test fails (apachectl -t): exit code 127"], []),
])
def test_configuration_test_findings(registered, problems, notes):
    assert _results.configtest_findings(registered) == {"problems": problems, "notes": notes}


def test_configuration_test_output_is_bounded_and_keeps_the_last_lines():
    flood = "".join(f"line {number} {'x' * 300}\n" for number in range(10_000))
    problems = _results.configtest_findings({"rc": 1, "stderr": flood})["problems"]
    assert len(problems) == 1 and len(problems[0]) < 700
    assert "line 9995" in problems[0] and "line 9994" not in problems[0]


def test_a_host_problem_fails_the_result_first_and_is_recorded_and_shown():
    findings = _results.configtest_findings({"rc": 1, "stderr": BROKEN})
    result = _results.deploy_result([row(), row("api", ok=False, problems=["not trusted"])], target="apache_ssl",
                                    sites=SITES, host_problems=findings["problems"])
    assert result["ok"] is False and result["host_problems"] == findings["problems"]
    assert result["failure"] == findings["problems"][0] + " | deploy check failed: api: not trusted"
    events = _results.deploy_events(result, host="web1", record_verified=True)
    host_events = [event for event in events if "site" not in event]
    assert sorted(event["certificate"] for event in host_events) == ["api-example-intra", "portal-example-intra"]
    assert all(event["event"] == "verify_failed" and event["message"] == findings["problems"][0] for event in host_events)
    table = _results.deploy_table([["web1", result]]).splitlines()
    assert table[-1] == "web1: FAILED: " + findings["problems"][0]


def test_a_note_is_shown_but_does_not_fail_the_result():
    result = _results.deploy_result([row()], target="apache_ssl", sites=SITES,
                                    host_notes=["configuration not tested (apachectl -t): host unreachable"])
    assert result["ok"] is True and result["failure"] is None and result["host_problems"] == []
    assert _results.deploy_table([["web2", result]]).splitlines()[-1] == \
        "web2: configuration not tested (apachectl -t): host unreachable"
    assert _results.deploy_events(result, host="web2", record_verified=False) == []
