# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cert_scan run in-process against the loopback scan range: one call, every endpoint class, counts and streaming."""

from __future__ import annotations

import json
import time

import pytest

from ansible_collections.certfleet.tls.plugins.modules import cert_scan
from ansible_collections.certfleet.tls.tests.scan_range.pki import pem_of


def base_args(scan_range, **extra) -> dict:
    args = {"trusted_ca_sets": {"default": {"system": False, "certificates": [scan_range.trust_path]}}, "timeout": 1.5}
    args.update(extra)
    return args


def failing(report: dict) -> dict:
    return {name: check["status"] for name, check in report["checks"].items() if check["status"] != "ok"}


@pytest.mark.parametrize("workers", [1, 2])
def test_every_endpoint_class_in_one_call(run_module, scan_range, workers):
    names = list(scan_range.endpoints)
    result = run_module(cert_scan.main, base_args(scan_range, targets=[scan_range.scan_target(name) for name in names],
                                                  workers=workers, concurrency=16))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    endpoints = result["endpoints"]
    assert [item["index"] for item in endpoints] == list(range(len(names)))
    for item in endpoints:
        scenario = scan_range.scenario(item["name"])
        assert (item["outcome"], item["status"], failing(item)) == (scenario.outcome, scenario.status, scenario.failing), item["name"]
        assert item["mode"] == "monitored_only" and item["trusted_ca_set"] == "default"
    summary = result["summary"]
    expected_status = [scan_range.scenario(name).status for name in names]
    assert summary["total"] == len(names)
    assert (summary["ok"], summary["warning"], summary["critical"]) == tuple(expected_status.count(s) for s in ("ok", "warning", "critical"))
    assert summary["by_outcome"]["ok"] == sum(scan_range.scenario(name).outcome == "ok" for name in names)
    assert summary["by_outcome"]["refused"] == 1 and summary["by_outcome"]["timeout"] == 1
    assert summary["expired"] == 1 and summary["expiring"] == 2
    assert summary["by_check"]["trust"]["critical"] == 3
    assert summary["deadline_reached"] is False and summary["workers"] == workers


def test_chain_details_of_a_result(run_module, scan_range):
    result = run_module(cert_scan.main, base_args(scan_range, targets=[scan_range.scan_target("wrong_order")]))
    item = result["endpoints"][0]
    assert [entry["subject"] for entry in item["chain"]] == ["/CN=www.scan.test", "/CN=Scan Test Int A", "/CN=Scan Test Int B"]
    assert item["chain_order_ok"] is False and item["chain_complete"] is True and item["trusted"] is True
    assert item["problems"] == [f"chain_order: {item['checks']['chain_order']['message']}"]
    without = run_module(cert_scan.main, base_args(scan_range, targets=[scan_range.scan_target("wrong_order")], include_chain=False))
    assert without["endpoints"][0]["chain"] == []


def test_string_targets_and_ranges(run_module, scan_range):
    healthy_port = scan_range.endpoints["healthy"][1]
    closed_port = scan_range.endpoints["closed_port"][1]
    result = run_module(cert_scan.main, base_args(
        scan_range,
        targets=[scan_range.target("healthy")],
        ranges=[{"cidr": "127.0.0.1/32", "ports": [healthy_port, closed_port], "server_name": "www.scan.test"}],
    ))
    assert not result.get("failed"), result.get("msg")
    outcomes = [(item["host"], item["port"], item["outcome"]) for item in result["endpoints"]]
    assert outcomes == [("127.0.0.1", healthy_port, "ok"), ("127.0.0.1", healthy_port, "ok"), ("127.0.0.1", closed_port, "refused")]
    # The string target is an IP: no SNI and no name check; the range sends and checks its server_name.
    assert result["endpoints"][0]["server_name"] is None and result["endpoints"][0]["hostname_ok"] is None
    assert result["endpoints"][1]["server_name"] == "www.scan.test" and result["endpoints"][1]["hostname_ok"] is True


def test_lifecycle_managed_mode(run_module, scan_range, tmp_path):
    healthy = scan_range.scenario("healthy")
    fullchain = tmp_path / "fullchain.pem"
    fullchain.write_bytes(pem_of(healthy.chain))
    entries = [
        scan_range.scan_target("healthy", mode="lifecycle_managed", expected_certificate=str(fullchain), name="deployed"),
        scan_range.scan_target("missing_intermediate", mode="lifecycle_managed", expected_certificate=str(fullchain), name="no-int"),
        scan_range.scan_target("untrusted_private_ca", mode="lifecycle_managed", name="other",
                               expected_fingerprint="AB" * 32),
    ]
    result = run_module(cert_scan.main, base_args(scan_range, targets=entries))
    deployed, no_int, other = result["endpoints"]
    assert deployed["status"] == "ok" and deployed["matches_expected"] is True and deployed["trusted"] is None
    assert "trust" not in deployed["checks"] and "hostname" not in deployed["checks"]
    # Another leaf, served without the intermediate the store's chain has: both are reported.
    assert failing(no_int) == {"chain_complete": "critical", "fingerprint": "critical"}
    assert "/CN=Scan Test Int" in no_int["checks"]["chain_complete"]["message"]
    assert failing(other) == {"fingerprint": "critical"}  # an untrusted private CA is no concern here: not trust-checked


def test_named_trusted_ca_sets(run_module, scan_range):
    private_root = scan_range.pki.private_root.pem.decode()
    result = run_module(cert_scan.main, {
        "targets": [scan_range.scan_target("untrusted_private_ca", trusted_ca_set="internal"),
                    scan_range.scan_target("healthy", trusted_ca_set="internal")],
        "trusted_ca_sets": {"internal": {"system": False, "certificates": [private_root]}},
        "timeout": 2,
    })
    private, public = result["endpoints"]
    assert private["status"] == "ok" and private["trusted"] is True and private["trusted_ca_set"] == "internal"
    assert public["trusted"] is False


def test_expected_subject_and_defaults(run_module, scan_range):
    result = run_module(cert_scan.main, base_args(scan_range, targets=[scan_range.scan_target("healthy"), scan_range.scan_target("wrong_host")],
                                                  defaults={"expected_subject": {"CN": "www.scan.test"}}))
    healthy, wrong = result["endpoints"]
    assert healthy["checks"]["subject"]["status"] == "ok"
    assert wrong["checks"]["subject"]["status"] == "critical" and "other.scan.test" in wrong["checks"]["subject"]["message"]


def test_thresholds(run_module, scan_range):
    result = run_module(cert_scan.main, base_args(scan_range, targets=[scan_range.scan_target("expiring_20_days")],
                                                  warning_days=10, critical_days=5))
    assert result["endpoints"][0]["status"] == "ok"
    result = run_module(cert_scan.main, base_args(scan_range, targets=[scan_range.scan_target("expiring_20_days")],
                                                  warning_days=60, critical_days=25))
    assert result["endpoints"][0]["checks"]["expiry"]["status"] == "critical"


@pytest.mark.parametrize("workers", [1, 2])
def test_results_path_streams_json_lines(run_module, scan_range, tmp_path, workers):
    path = tmp_path / "scan.jsonl"
    names = [name for name in scan_range.endpoints if name != "silent_port"]
    result = run_module(cert_scan.main, base_args(scan_range, targets=[scan_range.scan_target(name) for name in names] * 3,
                                                  results_path=str(path), workers=workers))
    assert result["endpoints"] == [] and result["results_path"] == str(path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(item["index"] for item in lines) == list(range(3 * len(names)))
    assert result["summary"]["total"] == len(lines)
    assert {item["status"] for item in lines} == {"ok", "warning", "critical"}
    assert not list(tmp_path.glob(".cert_scan.*"))
    problems = run_module(cert_scan.main, base_args(scan_range, targets=[scan_range.scan_target(name) for name in names],
                                                    results_path=str(path), return_endpoints="problems"))
    assert problems["endpoints"] and all(item["status"] != "ok" for item in problems["endpoints"])


def test_deadline_bounds_the_task(run_module, scan_range):
    silent = scan_range.scan_target("silent_port")
    started = time.monotonic()
    result = run_module(cert_scan.main, base_args(scan_range, targets=[scan_range.scan_target("healthy")] + [silent] * 100,
                                                  timeout=30, deadline=1.5, concurrency=16))
    assert time.monotonic() - started < 1.5 + 2.0
    summary = result["summary"]
    assert summary["deadline_reached"] is True and summary["total"] == 101
    assert summary["by_outcome"]["ok"] == 1 and summary["by_outcome"]["deadline"] == 100


def test_check_mode_scans(run_module, scan_range):
    result = run_module(cert_scan.main, dict(base_args(scan_range, targets=[scan_range.scan_target("healthy")]), _ansible_check_mode=True))
    assert not result.get("failed") and result["endpoints"][0]["outcome"] == "ok"


@pytest.mark.parametrize("extra, message", [
    ({"targets": []}, "nothing to scan"),
    ({"targets": [{"port": 443}]}, "targets[1]: host is required"),
    ({"targets": [{"host": "a.test", "mode": "lifecycle_managed"}]}, "needs expected_certificate or expected_fingerprint"),
    ({"targets": [{"host": "a.test", "trusted_ca_set": "internal"}]}, "trusted CA set 'internal' is not defined"),
    ({"ranges": ["10.0.0.0/8"]}, "more than max_endpoints (65536)"),
    ({"ranges": [{"cidr": "300.0.0.0/24"}]}, "is not an IP network"),
    ({"targets": ["a.test"], "concurrency": 0}, "concurrency must be between"),
    ({"targets": ["a.test"], "workers": 0}, "workers must be between"),
    ({"targets": ["a.test"], "critical_days": 40}, "critical_days (40) must not be larger"),
    ({"targets": ["a.test"], "results_path": "/nonexistent/dir/scan.jsonl"}, "directory /nonexistent/dir does not exist"),
    ({"targets": [{"host": "a.test", "expected_fingerprint": "00"}]}, "targets[1]: expected fingerprint '00' is not"),
])
def test_bad_inputs(run_module, scan_range, extra, message):
    args = base_args(scan_range)
    args.update(extra)
    result = run_module(cert_scan.main, args)
    assert result["failed"] is True
    assert message in result["msg"]
    assert "exception" not in result
