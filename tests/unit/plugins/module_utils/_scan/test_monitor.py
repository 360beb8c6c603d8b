# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_monitor: cert_scan plans from definitions, store events, the verdict and discovery files (pure functions)."""

from __future__ import annotations

import json

import pytest
import yaml

from ansible_collections.certfleet.tls.plugins.module_utils._scan import monitor as _monitor
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

STORE = "/srv/store"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def reader(files: dict):
    """read(path) over a dict of path -> text; missing files are None, as _read_text answers."""
    return files.get


def no_dns(_host):
    return set()


# --- endpoints -----------------------------------------------------------------------------------

@pytest.mark.parametrize("entry, default_sni, expected", [
    ("10.0.0.5", "www.example.jp", {"host": "10.0.0.5", "port": 443, "server_name": "www.example.jp", "starttls": "none"}),
    ("10.0.0.5:8443", None, {"host": "10.0.0.5", "port": 8443, "server_name": None, "starttls": "none"}),
    ("web1.example.jp", None, {"host": "web1.example.jp", "port": 443, "server_name": "web1.example.jp", "starttls": "none"}),
    ({"host": "mail.example.jp", "port": 25, "starttls": "smtp"}, "www.example.jp",
     {"host": "mail.example.jp", "port": 25, "server_name": "www.example.jp", "starttls": "smtp"}),
    ({"host": "[::1]:8443", "sni": "api.example.jp", "check_hostname": False}, None,
     {"host": "::1", "port": 8443, "server_name": "api.example.jp", "starttls": "none", "check_hostname": False}),
    ({"host": "10.0.0.5:9443"}, None, {"host": "10.0.0.5", "port": 9443, "server_name": None, "starttls": "none"}),
])
def test_parse_endpoint(entry, default_sni, expected):
    assert _monitor.parse_endpoint(entry, what="d", default_server_name=default_sni) == expected


@pytest.mark.parametrize("entry, message", [
    ({"host": "a.example.jp", "sni_name": "x"}, "unknown key"),
    ({"port": 443}, "host is required"),
    ({"host": "bad host!"}, "neither an IP address nor a DNS name"),
    ({"host": "a.example.jp", "server_name": "10.0.0.1"}, "server_name '10.0.0.1' must be a DNS name"),
    ({"host": "a.example.jp", "starttls": "imap"}, "starttls must be one of none, smtp"),
    (443, "an endpoint is a host:port string or a dict"),
])
def test_parse_endpoint_errors(entry, message):
    with pytest.raises(CertfleetError, match=message) as info:
        _monitor.parse_endpoint(entry, what="www: endpoints[0]")
    assert str(info.value).startswith("www: endpoints[0]")


# --- monitor_targets ---------------------------------------------------------------------------

LIFECYCLE = {"name": "www", "common_name": "www.example.jp", "endpoints": ["10.0.0.5:443"]}
MONITORED = {"name": "legacy", "common_name": "legacy.example.jp", "organization_name": "Legacy K.K.", "country_name": "JP",
             "mode": "monitored_only", "trusted_ca_set": "corporate", "endpoints": [{"host": "10.0.0.9", "port": 8443}]}
SETS = {"corporate": {"system": False, "certificates": ["/etc/pki/corp-root.pem"]}}


def plan_of(definitions, files=None, **kwargs):
    kwargs.setdefault("trusted_ca_sets", SETS)
    return _monitor.monitor_targets(definitions, store_path=STORE, read=reader(files or {}), **kwargs)


def test_lifecycle_managed_expects_the_store_fullchain_and_monitored_only_the_dn():
    plan = plan_of([LIFECYCLE, MONITORED], {f"{STORE}/certs/www/fullchain.pem": PEM})
    www, legacy = plan["targets"]
    assert www == {"name": "www", "mode": "lifecycle_managed", "trusted_ca_set": "default", "expected_certificate": PEM,
                   "host": "10.0.0.5", "port": 443, "starttls": "none", "server_name": "www.example.jp"}
    assert legacy["mode"] == "monitored_only" and "expected_certificate" not in legacy
    assert legacy["expected_subject"] == {"CN": "legacy.example.jp", "O": "Legacy K.K.", "C": "JP"}
    assert legacy["trusted_ca_set"] == "corporate" and legacy["server_name"] == "legacy.example.jp"
    assert plan["trusted_ca_sets"] == SETS
    assert [item["certificate"] for item in plan["endpoints"]] == ["www", "legacy"]
    assert plan["skipped"] == [] and plan["names"] == ["legacy", "www"]
    assert sorted(map(tuple, plan["covered"])) == [("10.0.0.5", 443), ("10.0.0.9", 8443)]


def test_not_issued_lifecycle_definition_is_skipped_with_the_reason():
    plan = plan_of([LIFECYCLE])
    assert plan["targets"] == []
    assert plan["skipped"] == [{"certificate": "www", "source": "inventory",
                                "reason": "not issued yet (no fullchain.pem in the store)"}]
    assert plan["covered"] == [["10.0.0.5", 443]]  # still known to discovery


def test_store_file_without_a_certificate_is_an_error():
    with pytest.raises(CertfleetError, match="www: /srv/store/certs/www/fullchain.pem holds no PEM certificate"):
        plan_of([LIFECYCLE], {f"{STORE}/certs/www/fullchain.pem": "garbage"})


def test_defaults_fill_the_dn_of_inventory_definitions_only():
    defaults = {"organization_name": "Example Co.,Ltd.", "country_name": "JP"}
    bare = {"name": "intranet", "common_name": "intra.example.jp", "mode": "monitored_only", "endpoints": ["10.0.0.7"]}
    found = {"name": "found", "common_name": "found.example.jp", "mode": "monitored_only", "endpoints": ["10.0.0.8"]}
    plan = plan_of([bare], defaults=defaults, discovered=[found])
    assert plan["targets"][0]["expected_subject"] == {"CN": "intra.example.jp", "O": "Example Co.,Ltd.", "C": "JP"}
    assert plan["targets"][1]["expected_subject"] == {"CN": "found.example.jp"}
    assert plan["endpoints"][1]["source"] == "discovered"


def test_sites_of_hosts_add_endpoints_to_lifecycle_definitions():
    hosts = [{"name": "web1", "verify_host": "192.0.2.11", "sites": [
        {"name": "portal", "certificate": "www", "port": 443},
        {"name": "api", "certificate": "api", "port": 8443, "server_name": "api.example.jp"},
        {"name": "other", "certificate": "not-a-definition"},
        {"name": "old-portal", "certificate": "www", "port": 9443, "state": "absent"}]}]  # being removed: not scanned
    definitions = [{"name": "www", "common_name": "www.example.jp"}, {"name": "api", "common_name": "api.example.jp"}]
    files = {f"{STORE}/certs/www/fullchain.pem": PEM, f"{STORE}/certs/api/fullchain.pem": PEM}
    plan = plan_of(definitions, files, hosts=hosts)
    assert [(t["name"], t["host"], t["port"], t["server_name"]) for t in plan["targets"]] == [
        ("www", "192.0.2.11", 443, "www.example.jp"), ("api", "192.0.2.11", 8443, "api.example.jp")]
    assert plan["endpoints"][0]["inventory_host"] == "web1" and plan["endpoints"][0]["site"] == "portal"
    assert plan["endpoints"][0]["source"] == "apache_ssl"


def test_monitor_hosts_keeps_hosts_with_sites_in_inventory_order():
    portal = [{"name": "portal", "certificate": "www"}]
    hosts = _monitor.monitor_hosts({
        "web2": {"apache_ssl_sites": portal, "ansible_host": "192.0.2.12"},
        "db1": {"ansible_host": "192.0.2.20"},
        "web1": {"apache_ssl_sites": portal, "apache_ssl_verify_host": "www-vip.example.jp", "ansible_host": "192.0.2.11"},
        "web3": {"apache_ssl_sites": portal},
        "web4": {"apache_ssl_sites": []},
    })
    assert hosts == [{"name": "web2", "verify_host": "192.0.2.12", "sites": portal},
                     {"name": "web1", "verify_host": "www-vip.example.jp", "sites": portal},
                     {"name": "web3", "verify_host": "web3", "sites": portal}]


def test_monitor_hosts_feed_monitor_targets():
    hosts = _monitor.monitor_hosts({"web1": {"apache_ssl_sites": [{"name": "portal", "certificate": "www", "port": 8443}],
                                             "ansible_host": "10.0.0.9"}})
    plan = plan_of([LIFECYCLE], {f"{STORE}/certs/www/fullchain.pem": PEM}, hosts=hosts)
    assert ("10.0.0.9", 8443, "web1", "portal") in [(e["host"], e["port"], e["inventory_host"], e["site"])
                                                    for e in plan["endpoints"]]


def test_monitor_hosts_leaves_bad_sites_to_monitor_targets():
    hosts = _monitor.monitor_hosts({"web1": {"apache_ssl_sites": "portal"}})
    with pytest.raises(CertfleetError, match="host web1: apache_ssl_sites must be a list"):
        plan_of([LIFECYCLE], {}, hosts=hosts)
    with pytest.raises(CertfleetError, match="expected a dict of inventory host name"):
        _monitor.monitor_hosts(["web1"])


def test_site_and_explicit_endpoint_for_the_same_definition_are_scanned_once():
    hosts = [{"name": "web1", "verify_host": "10.0.0.5", "sites": [{"name": "portal", "certificate": "www"}]}]
    plan = plan_of([LIFECYCLE], {f"{STORE}/certs/www/fullchain.pem": PEM}, hosts=hosts)
    assert len(plan["targets"]) == 1
    assert plan["endpoints"][0]["site"] == "portal" and plan["endpoints"][0]["inventory_host"] == "web1"


def test_one_endpoint_for_two_inventory_definitions_is_an_error():
    other = dict(MONITORED, name="other", endpoints=["10.0.0.5:443"], common_name="www.example.jp")
    with pytest.raises(CertfleetError, match="other: endpoint 10.0.0.5:443 .SNI www.example.jp. is also an endpoint of www"):
        plan_of([LIFECYCLE, other], {f"{STORE}/certs/www/fullchain.pem": PEM})


def test_discovered_definitions_yield_to_the_inventory():
    files = {f"{STORE}/certs/www/fullchain.pem": PEM}
    same_name = dict(MONITORED, name="www")
    same_endpoint = {"name": "dup", "mode": "monitored_only", "common_name": "www.example.jp", "endpoints": ["10.0.0.5"]}
    plan = plan_of([LIFECYCLE], files, discovered=[same_name, same_endpoint])
    assert [t["name"] for t in plan["targets"]] == ["www"]
    assert [(s["certificate"], s["reason"]) for s in plan["skipped"]] == [
        ("www", "also defined in the inventory"),
        ("dup", "10.0.0.5:443 (SNI www.example.jp) is already monitored for www")]


@pytest.mark.parametrize("kwargs, message", [
    ({"definitions": "www"}, "certfleet_certificates must be a list"),
    ({"discovered": {"a": 1}}, "must hold a YAML list of definitions"),
    ({"trusted_ca_sets": ["corporate"]}, "certfleet_trusted_ca_sets must be a dict"),
    ({"default_trusted_ca_set": "nope"}, "default trusted CA set 'nope' is not defined; defined: corporate, default"),
    ({"definitions": [dict(MONITORED, trusted_ca_set="nope")]}, "legacy: trusted_ca_set 'nope' is not defined"),
    ({"definitions": [dict(MONITORED, mode="watch")]}, "legacy: mode must be one of lifecycle_managed, monitored_only"),
    ({"definitions": [MONITORED, MONITORED]}, "legacy: defined twice in the inventory definitions"),
    ({"discovered": [dict(LIFECYCLE, name="x")]}, r"x \(discovered\): discovered definitions are monitored_only"),
    ({"definitions": [dict(MONITORED, endpoints="10.0.0.1")]}, "legacy: endpoints must be a list"),
])
def test_monitor_targets_errors(kwargs, message):
    definitions = kwargs.pop("definitions", [])
    with pytest.raises(CertfleetError, match=message):
        plan_of(definitions, **kwargs)


def test_excluded_and_endpointless_definitions_are_listed_as_skipped():
    nowhere = {"name": "nowhere", "mode": "monitored_only", "common_name": "n.example.jp"}
    plan = plan_of([MONITORED, nowhere], exclude=["legacy"])
    assert plan["targets"] == []
    assert [(s["certificate"], s["reason"].split(" (")[0]) for s in plan["skipped"]] == [
        ("legacy", "excluded"), ("nowhere", "no endpoints")]


def test_private_ca_definitions_trust_their_root_from_the_store():
    definition = {"name": "intra", "common_name": "intra.example.jp", "mode": "monitored_only",
                  "issuer": {"provider": "private_ca", "ca": "corp"}, "endpoints": ["10.0.0.3"]}
    plan = plan_of([definition], {f"{STORE}/ca/corp/root.pem": PEM})
    assert plan["targets"][0]["trusted_ca_set"] == "private_ca_corp"
    assert plan["trusted_ca_sets"]["private_ca_corp"] == {"system": False, "certificates": [PEM]}
    missing = plan_of([definition])
    assert missing["targets"][0]["trusted_ca_set"] == "default"
    assert "private CA corp has no root.pem" in missing["warnings"][0]


# --- results, events, verdict ----------------------------------------------------------------------

def scan_result(index, status, name="www", host="10.0.0.5", port=443, days_left=60, sha256="AA:BB", problems=None,
                outcome="ok", **extra):
    return dict({"index": index, "name": name, "host": host, "port": port, "status": status, "days_left": days_left,
                 "sha256": sha256, "outcome": outcome, "problems": problems or []}, **extra)


def test_parse_results_reads_json_lines_and_names_a_bad_line():
    text = json.dumps(scan_result(0, "ok")) + "\n\n" + json.dumps(scan_result(1, "warning")) + "\n"
    assert [item["index"] for item in _monitor.parse_results(text)] == [0, 1]
    assert _monitor.parse_results(text.encode()) == _monitor.parse_results(text)
    with pytest.raises(CertfleetError, match="scan results line 2: not JSON"):
        _monitor.parse_results('{"index": 0}\n{oops\n')


def lifecycle_plan():
    return plan_of([LIFECYCLE, MONITORED], {f"{STORE}/certs/www/fullchain.pem": PEM},
                   hosts=[{"name": "web1", "verify_host": "10.0.0.5", "sites": [{"name": "portal", "certificate": "www"}]}])


def test_monitor_events_for_lifecycle_endpoints_only():
    plan = lifecycle_plan()
    results = [scan_result(1, "critical", name="legacy"),
               scan_result(0, "critical", problems=["fingerprint: served certificate is not the store's"])]
    events = _monitor.monitor_events(results, plan, only_changes=False)
    assert events == [{"certificate": "www", "event": "monitor_failed", "host": "web1", "port": 443, "status": "critical",
                       "sha256": "AA:BB", "site": "portal",
                       "message": "critical at 10.0.0.5:443 (SNI www.example.jp): fingerprint: served certificate is not the store's"}]
    assert _monitor.monitor_events([scan_result(0, "warning")], plan, only_changes=False)[0]["event"] == "monitored"


def test_monitor_events_only_record_changes_against_the_history():
    plan = lifecycle_plan()
    path = f"{STORE}/certs/www/history.jsonl"
    last = {"event": "monitored", "host": "web1", "port": 443, "site": "portal", "status": "ok", "sha256": "AA:BB"}
    history = "\n".join([json.dumps({"event": "deployed", "host": "web1"}), "{torn", json.dumps(last)]) + "\n"
    same = _monitor.monitor_events([scan_result(0, "ok")], plan, store_path=STORE, read=reader({path: history}))
    assert same == []
    new_cert = _monitor.monitor_events([scan_result(0, "ok", sha256="CC:DD")], plan, store_path=STORE,
                                       read=reader({path: history}))
    assert [e["sha256"] for e in new_cert] == ["CC:DD"]
    worse = _monitor.monitor_events([scan_result(0, "warning")], plan, store_path=STORE, read=reader({path: history}))
    assert [e["status"] for e in worse] == ["warning"]
    first = _monitor.monitor_events([scan_result(0, "ok")], plan, store_path=STORE, read=reader({}))
    assert len(first) == 1
    with pytest.raises(CertfleetError, match="needs the store path"):
        _monitor.monitor_events([scan_result(0, "ok")], plan)


RESULTS = [
    scan_result(0, "ok", name="fine"),
    scan_result(1, "warning", name="soon", days_left=20, problems=["expiry: 20 days left"]),
    scan_result(2, "critical", name="down", days_left=None, outcome="refused", sha256=None, problems=[]),
    scan_result(3, "critical", name="expired", days_left=-3, problems=["expiry: expired 3 days ago"]),
    scan_result(4, "warning", name="order", days_left=80, problems=["chain_order: wrong order"]),
]
SUMMARY = {"total": 5, "ok": 1, "warning": 2, "critical": 2}


def test_worst_endpoints_order():
    assert [item["name"] for item in _monitor.worst_endpoints(RESULTS, limit=0)] == ["down", "expired", "soon", "order"]
    assert [item["name"] for item in _monitor.worst_endpoints(RESULTS, limit=1)] == ["down"]


@pytest.mark.parametrize("on_critical, on_warning, summary, failed, listed", [
    (True, False, SUMMARY, True, ["down", "expired"]),
    (True, True, SUMMARY, True, ["down", "expired", "soon", "order"]),
    (False, False, SUMMARY, False, ["down", "expired"]),
    (False, True, {"total": 5, "ok": 5, "warning": 0, "critical": 0}, False, ["down", "expired", "soon", "order"]),
    (True, False, {"total": 3, "ok": 1, "warning": 2, "critical": 0}, False, ["down", "expired"]),
])
def test_monitor_verdict(on_critical, on_warning, summary, failed, listed):
    verdict = _monitor.monitor_verdict(summary, RESULTS, fail_on_critical=on_critical, fail_on_warning=on_warning)
    assert verdict["failed"] is failed
    assert [line.split()[1] for line in verdict["lines"]] == listed
    assert verdict["message"].startswith(f"certificate compliance: {summary['critical']} critical, {summary['warning']} warning "
                                         f"of {summary['total']} endpoint(s)")


def test_monitor_verdict_lines_name_the_problem_or_the_outcome_and_cut_at_the_limit():
    verdict = _monitor.monitor_verdict(SUMMARY, RESULTS, fail_on_warning=True, limit=2)
    assert verdict["lines"] == ["CRITICAL down 10.0.0.5:443: refused",
                                "CRITICAL expired 10.0.0.5:443: expiry: expired 3 days ago",
                                "... and 2 more (see the reports)"]


# --- discovery ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("/C=JP/O=Example Co.,Ltd./CN=www.example.jp", {"C": "JP", "O": "Example Co.,Ltd.", "CN": "www.example.jp"}),
    ("/CN=a/b.example.jp", {"CN": "a/b.example.jp"}),
    ("/1.2.3.4=x/CN=y", {"1.2.3.4": "x", "CN": "y"}),
    ("", {}),
    (None, {}),
])
def test_parse_dn(text, expected):
    assert _monitor.parse_dn(text) == expected


def found(host, port, sha256, subject="/C=JP/O=Found K.K./CN=shop.example.jp", **extra):
    return dict({"host": host, "port": port, "outcome": "ok", "status": "ok", "sha256": sha256, "subject": subject,
                 "issuer": "/CN=Some CA", "not_after": "2027-03-01T00:00:00Z", "server_name": None}, **extra)


def test_discovered_definitions_group_by_certificate_and_skip_covered_and_failed():
    results = [
        found("10.0.0.21", 443, "S1"), found("10.0.0.20", 443, "S1"),
        found("10.0.0.20", 8443, "S2", subject="/CN=10.0.0.20"),
        found("10.0.0.5", 443, "S3"),  # covered by a definition
        {"host": "10.0.0.22", "port": 443, "outcome": "refused", "status": "critical"},
    ]
    definitions = _monitor.discovered_definitions(results, covered=[["10.0.0.5", 443]], resolve=no_dns)
    assert [d["name"] for d in definitions] == ["shop-example-jp", "10-0-0-20"]
    shop = definitions[0]
    assert shop["endpoints"] == [{"host": "10.0.0.20", "port": 443, "server_name": "shop.example.jp"},
                                 {"host": "10.0.0.21", "port": 443, "server_name": "shop.example.jp"}]
    assert (shop["common_name"], shop["organization_name"], shop["country_name"], shop["mode"]) == (
        "shop.example.jp", "Found K.K.", "JP", "monitored_only")
    assert "SHA-256 S1" in shop["description"]
    assert definitions[1]["endpoints"] == [{"host": "10.0.0.20", "port": 8443}]  # an IP CN is no SNI


def test_covered_names_match_the_addresses_they_resolve_to():
    def resolve(host):
        return {"10.0.0.5"} if host == "www.example.jp" else set()
    results = [found("10.0.0.5", 443, "S3")]
    assert _monitor.discovered_definitions(results, covered=[["www.example.jp", 443]], resolve=resolve) == []
    assert len(_monitor.discovered_definitions(results, covered=[["www.example.jp", 8443]], resolve=resolve)) == 1


def test_discovered_names_avoid_taken_names_and_each_other():
    results = [found("10.0.0.1", 443, "S1"), found("10.0.0.2", 443, "S2")]
    names = [d["name"] for d in _monitor.discovered_definitions(results, taken_names=["x"], resolve=no_dns)]
    assert names == ["shop-example-jp-10-0-0-1-443", "shop-example-jp-10-0-0-2-443"]
    taken = [d["name"] for d in _monitor.discovered_definitions(results[:1], taken_names=["shop-example-jp"],
                                                                resolve=no_dns)]
    assert taken == ["shop-example-jp-10-0-0-1-443"]


def test_discovered_yaml_is_valid_and_plans_as_monitored_only():
    definitions = _monitor.discovered_definitions([found("10.0.0.1", 443, "S1", subject='/CN=q"uote.example.jp')],
                                                  resolve=no_dns)
    text = _monitor.discovered_yaml(definitions, header="found by certfleet.tls.discover")
    assert text.startswith("---\n# found by certfleet.tls.discover\n- name: ")
    loaded = yaml.safe_load(text)
    assert loaded == definitions
    plan = plan_of([], discovered=loaded)
    assert plan["targets"][0]["mode"] == "monitored_only" and plan["targets"][0]["expected_subject"] == {"CN": 'q"uote.example.jp'}
    assert yaml.safe_load(_monitor.discovered_yaml([])) == []


def test_discovery_update_appends_and_a_second_run_adds_nothing():
    results = [found("10.0.0.1", 443, "S1")]
    first = _monitor.discovery_update(results, plan=plan_of([]), existing_text="", header="run 1", resolve=no_dns)
    assert first["changed"] is True and [d["name"] for d in first["added"]] == ["shop-example-jp"]
    existing = yaml.safe_load(first["text"])
    again = _monitor.discovery_update(results, plan=plan_of([], discovered=existing), existing_text=first["text"],
                                      header="run 2", resolve=no_dns)
    assert again == {"added": [], "text": first["text"], "changed": False}
    edited = first["text"] + "  # checked by ops\n"
    more = _monitor.discovery_update(results + [found("10.0.0.9", 443, "S9", subject="/CN=new.example.jp")],
                                     plan=plan_of([], discovered=existing), existing_text=edited, header="run 3",
                                     resolve=no_dns)
    assert [d["name"] for d in more["added"]] == ["new-example-jp"]
    assert more["text"].startswith(edited) and "# run 3\n" in more["text"]
    assert [d["name"] for d in yaml.safe_load(more["text"])] == ["shop-example-jp", "new-example-jp"]
    empty = _monitor.discovery_update([], plan=plan_of([]), existing_text="", header="none", resolve=no_dns)
    assert empty["changed"] is True and yaml.safe_load(empty["text"]) == []


# --- discovery output never becomes a template --------------------------------------------

def hostile_discovery(marker):
    """A discovered file whose CN, O and issuer (so the description) are Jinja that would create ``marker``."""
    template = "{{ lookup('pipe', 'touch %s') }}" % marker
    results = [found("10.0.0.1", 443, "S1", subject=f"/C=JP/O={{% if true %}}x{{% endif %}}{{# c #}}/CN={template}",
                     issuer=f"/CN={template}")]
    definitions = _monitor.discovered_definitions(results, resolve=no_dns)
    return template, definitions, _monitor.discovered_yaml(definitions, header="found by certfleet.tls.discover")


def test_discovered_yaml_marks_template_text_unsafe_and_escapes_what_yaml_cannot_hold():
    template, definitions, text = hostile_discovery("/nonexistent/x")
    assert definitions[0]["common_name"] == template
    lines = [line for line in text.splitlines() if "{{" in line or "{%" in line or "{#" in line]
    assert lines and all(": !unsafe " in line for line in lines), lines
    # every scalar that holds {{, {% or {# is !unsafe, anything else is left as it was
    assert '\n- name: "' in text and 'mode: "monitored_only"' in text

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    assert yaml.load(text, Loader=Loader) == definitions  # noqa: S506 - SafeLoader with one more tag
    # characters YAML cannot hold verbatim (C1 controls, line and paragraph separators, BOM) are escaped
    odd = "a\x85b\u2028c\u2029d\ufeffe\x7ff\x9fg"
    strange = _monitor.discovered_yaml([dict(definitions[0], common_name=odd, organization_name="{{x}}\u2028")])
    assert yaml.load(strange, Loader=Loader)[0]["common_name"] == odd  # noqa: S506
    assert yaml.load(strange, Loader=Loader)[0]["organization_name"] == "{{x}}\u2028"  # noqa: S506


def test_discovered_file_pasted_into_group_vars_and_read_back_by_the_role_runs_nothing(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    marker = tmp_path / "pwned"
    template, definitions, text = hostile_discovery(marker)
    update = _monitor.discovery_update([], plan=plan_of([]), existing_text=text, resolve=no_dns)
    assert update["text"] == text
    (tmp_path / "discovered.yml").write_text(text)
    # "ready to paste into certfleet_certificates": the list under the variable, in group_vars
    (tmp_path / "group_vars").mkdir()
    body = "".join(f"  {line}\n" for line in text.splitlines()[1:])
    (tmp_path / "group_vars" / "all.yml").write_text("---\ncertfleet_certificates:\n" + body)
    (tmp_path / "hosts").write_text("localhost ansible_connection=local\n")
    # the role reads the file back the way roles/cert_monitor does (file lookup | discovered_file), then
    # hands the values on through set_fact and module arguments
    (tmp_path / "play.yml").write_text("""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact:
        discovered: "{{ lookup('ansible.builtin.file', playbook_dir ~ '/discovered.yml') | certfleet.tls.discovered_file }}"
    - ansible.builtin.set_fact:
        again: "{{ discovered | map(attribute='common_name') | list }}"
        plan: "{{ [] | certfleet.tls.monitor_targets(playbook_dir ~ '/store', discovered=discovered) }}"
    - ansible.builtin.copy:
        dest: "{{ playbook_dir }}/out.json"
        content: "{{ {'pasted': certfleet_certificates, 'read': discovered, 'again': again,
                      'cn': certfleet_certificates[0].common_name ~ '',
                      'expected': plan.targets[0].expected_subject} | to_json }}"
""")
    from ansible_collections.certfleet.tls.tests.collection_link import collections_root

    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_root()), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"))
    binary = Path(sys.executable).parent / "ansible-playbook"
    done = subprocess.run([str(binary), "-i", "hosts", "play.yml", "-e", f"ansible_python_interpreter={sys.executable}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not marker.exists(), "a scanned value was templated and ran a command on the controller"
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["pasted"] == definitions and out["read"] == definitions
    assert out["again"] == [template] and out["cn"] == template
    assert out["expected"]["CN"] == template


def test_roles_read_the_discovered_file_with_the_unsafe_aware_filter_not_from_yaml():
    from pathlib import Path
    tasks = Path(__file__).resolve().parents[5] / "roles" / "cert_monitor" / "tasks"
    text = (tasks / "main.yml").read_text() + (tasks / "discover.yml").read_text()
    assert "from_yaml" not in text and text.count("certfleet.tls.discovered_file") == 2


@pytest.mark.parametrize("text, expected", [
    (None, []), ("", []), ("---\n[]\n", []), ("---\n# only a comment\n", []),
    ('- name: "a"\n  common_name: !unsafe "{{ x }}"\n', [{"name": "a", "common_name": "{{ x }}"}]),
])
def test_load_discovered(text, expected):
    assert _monitor.load_discovered(text) == expected


@pytest.mark.parametrize("text, message", [
    ("- a: [\n", "discovered-certificates file: not valid YAML at line 2"),
    ("a: 1\n", "must be a YAML list of certificate definitions"),
    ("- 1\n", "must be a YAML list of certificate definitions"),
    ("- !!python/object:os.system {}\n", "not valid YAML"),
])
def test_load_discovered_errors(text, message):
    with pytest.raises(CertfleetError, match=message):
        _monitor.load_discovered(text)


def test_discovered_definitions_take_the_subject_attributes_not_the_joined_string():
    # CN "evil.example/O=Trusted Corp, C=JP": the joined string reads as CN evil.example, O Trusted Corp
    results = [found("10.0.0.1", 443, "S1", subject="/C=JP/CN=evil.example/O=Trusted Corp",
                     subject_attributes={"C": "JP", "CN": "evil.example/O=Trusted Corp"})]
    [definition] = _monitor.discovered_definitions(results, resolve=no_dns)
    assert (definition["common_name"], definition["organization_name"], definition["country_name"]) == (
        "evil.example/O=Trusted Corp", None, "JP")
    assert definition["endpoints"] == [{"host": "10.0.0.1", "port": 443}]  # no usable SNI in that CN
    plan = plan_of([], discovered=[definition])
    assert plan["targets"][0]["expected_subject"] == {"CN": "evil.example/O=Trusted Corp", "C": "JP"}
    repeated = [found("10.0.0.2", 443, "S2", subject="/CN=a/CN=b", subject_attributes={"CN": ["a.example", "b"]})]
    assert _monitor.discovered_definitions(repeated, resolve=no_dns)[0]["common_name"] == "a.example"
