"""tls_probe and cert_scan through real ansible-playbook runs against the loopback scan range."""
from __future__ import annotations

import json

import yaml

from playbook_helpers import recap

from ansible_collections.certfleet.tls.tests.scan_range.pki import pem_of


def write_playbook(tmp_path, tasks: list) -> str:
    path = tmp_path / "playbook.yml"
    path.write_text(yaml.safe_dump([{"name": "Scan test", "hosts": "localhost", "connection": "local",
                                     "gather_facts": False, "tasks": tasks}], sort_keys=False))
    return str(path)


def test_deploy_check_and_scan(tmp_path, ansible_playbook, scan_range):
    healthy = scan_range.scenario("healthy")
    fullchain = tmp_path / "fullchain.pem"
    fullchain.write_bytes(pem_of(healthy.chain))
    results = tmp_path / "scan.jsonl"
    host, port = scan_range.endpoints["healthy"]
    targets = scan_range.scan_targets()
    probe = {"host": host, "port": port, "server_name": healthy.server_name, "expected_certificate": str(fullchain),
             "trust_bundle": [scan_range.trust_path], "system_trust": False}
    playbook = write_playbook(tmp_path, [
        {"name": "Deploy check (check mode)", "certfleet.tls.tls_probe": probe, "check_mode": True, "register": "check"},
        {"name": "Deploy check", "certfleet.tls.tls_probe": probe, "register": "deployed"},
        {"name": "Deploy check of a closed port", "certfleet.tls.tls_probe": {
            "host": "127.0.0.1", "port": scan_range.endpoints["closed_port"][1], "timeout": 2},
         "register": "closed", "ignore_errors": True},
        {"name": "Scan everything", "certfleet.tls.cert_scan": {
            "targets": targets, "timeout": 1.5, "workers": 2, "results_path": str(results), "return_endpoints": "problems",
            "trusted_ca_sets": {"default": {"system": False, "certificates": [scan_range.trust_path]}}},
         "register": "scan"},
        {"name": "Keep the results", "ansible.builtin.copy": {
            "content": "{{ {'check': check, 'deployed': deployed, 'closed': closed, 'scan': scan} | to_json }}",
            "dest": str(tmp_path / "registered.json"), "mode": "0600"}},
    ])
    run = ansible_playbook([playbook, "-v"], cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "Traceback" not in output
    assert recap(run.stdout)["failed"] == 0
    registered = json.loads((tmp_path / "registered.json").read_text())
    assert registered["check"]["matches_expected"] is True and registered["check"]["changed"] is False
    assert registered["deployed"]["status"] == "ok" and registered["deployed"]["chain_complete"] is True
    closed = registered["closed"]
    assert closed["failed"] is True and closed["outcome"] == "refused" and "connection refused" in closed["msg"]
    summary = registered["scan"]["summary"]
    assert summary["total"] == len(targets) and summary["workers"] == 2
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(lines) == len(targets)
    for item in lines:
        scenario = scan_range.scenario(item["name"])
        assert (item["outcome"], item["status"]) == (scenario.outcome, scenario.status), item["name"]
    assert {item["name"] for item in registered["scan"]["endpoints"]} == {item["name"] for item in lines if item["status"] != "ok"}
