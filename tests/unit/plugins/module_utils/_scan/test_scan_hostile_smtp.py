# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile SMTP peers: whatever they send, a STARTTLS probe ends within its timeout, bounded in memory, classified."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest

import ansible_collections
from ansible_collections.certfleet.tls.plugins.module_utils._scan import runner
from ansible_collections.certfleet.tls.plugins.module_utils._scan import tls as _tls
from ansible_collections.certfleet.tls.plugins.modules import tls_probe
from ansible_collections.certfleet.tls.tests.scan_range.hostile import HostileSMTP, run_module
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

TIMEOUT = 2.0
SLACK = 1.0
_ROOT_PEM = pb.make_root("Hostile Plan Root").pem.decode()


def _smtp(port: int) -> _tls.Endpoint:
    return _tls.Endpoint("127.0.0.1", port, starttls="smtp")


@pytest.mark.parametrize("mode, outcome, message", [
    ("ehlo_flood", "starttls_failure", r"SMTP reply (longer than 65536 bytes|of more than 256 lines) while sending EHLO"),
    ("greeting_flood", "starttls_failure", r"SMTP reply (longer than 65536 bytes|of more than 256 lines) while reading the SMTP greeting"),
    ("long_line", "starttls_failure", r"SMTP reply longer than 65536 bytes while sending EHLO"),
    ("trickle", "timeout", rf"timed out after {TIMEOUT:g} s while sending EHLO"),
])
def test_probe_ends_within_timeout(mode, outcome, message):
    with HostileSMTP(mode) as server:
        started = time.monotonic()
        result = _tls.probe(_smtp(server.port), timeout=TIMEOUT)
        elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + SLACK, f"{mode}: {elapsed:.1f} s"
    assert result.outcome == outcome
    assert result.message and re.search(message, result.message), result.message


@pytest.mark.parametrize("mode", ["ehlo_flood", "trickle"])
def test_tls_probe_module_ends_within_timeout(capsys, mode):
    with HostileSMTP(mode) as server:
        started = time.monotonic()
        args = {"host": "127.0.0.1", "port": server.port, "starttls": "smtp", "timeout": TIMEOUT, "system_trust": False}
        result = run_module(capsys, tls_probe.main, args)
        elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + SLACK
    assert result["failed"] is True and result["outcome"] == ("starttls_failure" if mode == "ehlo_flood" else "timeout")
    assert result["msg"].startswith(f"TLS check of 127.0.0.1:{server.port} failed: connect: ")
    assert "unexpected error" not in result["msg"]


def test_run_scan_reports_every_endpoint_within_timeout(scan_range):
    with HostileSMTP("ehlo_flood") as flood, HostileSMTP("trickle") as trickle:
        plan_targets = [{"host": "127.0.0.1", "port": flood.port, "starttls": "smtp", "name": "flood"},
                        {"host": "127.0.0.1", "port": trickle.port, "starttls": "smtp", "name": "trickle"},
                        scan_range.scan_target("healthy")]
        plan = runner.ScanPlan(targets=plan_targets, trusted_ca_sets={"default": {"system": False, "certificates": [_ROOT_PEM]}})
        started = time.monotonic()
        reports = {report["name"]: report for report in runner.run_scan(plan, timeout=TIMEOUT, concurrency=4)}
        elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + SLACK
    assert reports["flood"]["outcome"] == "starttls_failure" and "SMTP reply" in reports["flood"]["outcome_message"]
    assert reports["trickle"]["outcome"] == "timeout"
    assert reports["healthy"]["outcome"] == "ok"
    assert all(report["status"] == "critical" for name, report in reports.items() if name != "healthy")


def test_timeout_holds_when_reads_never_wait(monkeypatch):
    """A peer that keeps the socket full: sock_recv then returns without yielding, so wait_for alone never fires."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    calls = []

    async def always_ready(_loop, _sock, _size):
        calls.append(1)
        time.sleep(0.01)  # data "already there": no await, as asyncio does when recv succeeds at once
        if len(calls) == 1:
            return b"220 hostile.test ESMTP\r\n"
        if len(calls) > 1000:  # a guard for the test itself: the server would never stop
            return b""
        return b"250-more\r\n"

    monkeypatch.setattr(asyncio.BaseEventLoop, "sock_recv", always_ready)
    monkeypatch.setattr(_tls, "_MAX_SMTP_LINES", 1 << 30)
    try:
        started = time.monotonic()
        result = _tls.probe(_smtp(listener.getsockname()[1]), timeout=0.5)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert result.outcome == "timeout", result.message
    assert elapsed < 0.5 + 0.5


_RSS_SCRIPT = r"""
import json, resource, sys, time
from ansible_collections.certfleet.tls.plugins.module_utils._scan import runner, tls as _tls
from ansible_collections.certfleet.tls.plugins.module_utils._scan import checks  # noqa: F401 - loaded before the baseline
port, timeout, root = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
probe = _tls.probe(_tls.Endpoint("127.0.0.1", port, starttls="smtp"), timeout=timeout)
probe_elapsed = time.monotonic() - started
plan = runner.ScanPlan(targets=[{"host": "127.0.0.1", "port": port, "starttls": "smtp"}] * 8,
                       trusted_ca_sets={"default": {"system": False, "certificates": [root]}})
started = time.monotonic()
reports = list(runner.run_scan(plan, timeout=timeout, concurrency=8))
print(json.dumps({"before_kb": before, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "probe": [probe.outcome, probe.message, probe_elapsed],
                  "scan": [sorted({r["outcome"] for r in reports}), time.monotonic() - started]}))
"""


def test_peak_rss_under_ehlo_flood(record_property):
    """The scanning process (its own process, the flood server in this one): peak RSS stays near its baseline."""
    root = os.path.dirname(list(ansible_collections.__path__)[0])
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with HostileSMTP("ehlo_flood") as server:
        done = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(server.port), "3", _ROOT_PEM], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    growth_mb = (figures["peak_kb"] - figures["before_kb"]) / 1024
    record_property("figure", f"SMTP EHLO flood (timeout 3 s): tls probe {figures['probe'][2]:.2f} s, run_scan of 8 flooded "
                              f"endpoints {figures['scan'][1]:.2f} s, scanner peak RSS {figures['peak_kb'] / 1024:.1f} MB "
                              f"(+{growth_mb:.1f} MB over its {figures['before_kb'] / 1024:.1f} MB baseline)")
    assert figures["probe"][0] == "starttls_failure" and figures["probe"][2] < 3 + SLACK
    assert figures["scan"][0] == ["starttls_failure"] and figures["scan"][1] < 3 + SLACK
    assert growth_mb < 32
