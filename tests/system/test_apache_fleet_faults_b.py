"""Fleet faults on the podman fleet (3 hosts, two SNI sites each): a revoked certificate served, sshd stopped
on one host in the middle of its batch, and a host frozen (podman pause) during its batch.

Uses the Fleet helper of test_apache_fleet.py with its own fleet cache (.cache/fleet-faults-b), so it never
shares hosts with another run. Every "served" claim is proved by a TLS handshake from here.
"""
from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

import test_apache_fleet as base
from collection_link import REPO_ROOT

from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

CACHE = REPO_ROOT / ".cache" / "fleet-faults-b"
CA = "example-intranet"


class FaultFleet(base.Fleet):
    """base.Fleet on its own cache, plus a playbook run that can be watched while it runs."""

    def __init__(self, root: Path, run_playbook, env: dict, binary: Path):
        super().__init__(root, run_playbook)
        self.cache = CACHE
        self.env = dict(os.environ, FLEET_CACHE=str(CACHE))
        self.ansible_env = env
        self.binary = binary

    def args(self, name: str, *extra: str) -> list[str]:
        return ["-i", str(self.inventory / "hosts.yml"), "-i", str(self.cache / "inventory-ssh.yml"), name, *extra]

    def start(self, name: str, *extra: str) -> subprocess.Popen:
        return subprocess.Popen([str(self.binary), *self.args(f"certfleet.tls.{name}", *extra)], cwd=self.root,
                                env=self.ansible_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)

    def events(self, definition: str, since: int) -> list[dict]:
        return self.history(definition)[since:]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("apache-fleet-faults-b")
    run, env, binary = base.prepare_run_root(root)
    the_fleet = FaultFleet(root, run, env, binary)

    def unpause():
        for host in base.HOSTS:
            the_fleet.fleet("podman", "unpause", host, check=False)

    with base.running_fleet(the_fleet, site=True, teardown=unpause):
        yield the_fleet


def _table_rows(stdout: str, site: str) -> dict[str, list[str]]:
    """{host: [columns]} of the fleet table's lines for one site."""
    rows = {}
    for line in stdout.splitlines():
        columns = [column.strip() for column in line.strip().strip('",').split(" | ")]
        if len(columns) >= 8 and columns[1] == site and columns[0].strip('"') in base.HOSTS:
            rows[columns[0].strip('"')] = columns
    return rows


def _summary(stdout: str, host: str) -> str:
    match = re.search(rf"^\s*\"{host}\s+(ok|FAILED|skipped|not run)\s+(.*?)\",?$", stdout, re.M)
    assert match, stdout[-4000:]
    return f"{match.group(1)} {match.group(2)}"


def _run_until(process: subprocess.Popen, marker: str, occurrence: int, action, limit: float) -> tuple[str, float]:
    """Read the run's output; at the occurrence-th line holding marker call action(); the output and the run's seconds.

    A run still going after limit seconds is killed (a watchdog: a hung run prints nothing).
    """
    started = time.monotonic()
    watchdog = threading.Timer(limit, process.kill)
    watchdog.start()
    seen, lines, done = 0, [], False
    try:
        for line in process.stdout:
            lines.append(line)
            if not done and marker in line:
                seen += 1
                if seen == occurrence:
                    action()
                    done = True
        process.wait()
    finally:
        watchdog.cancel()
    seconds = time.monotonic() - started
    if seconds >= limit:
        lines.append(f"\n[killed after {seconds:.0f} s]\n")
    assert done, "".join(lines)[-4000:]
    return "".join(lines), seconds


def test_verify_of_a_certificate_the_private_ca_revoked_fails_as_revoked(fleet):
    definition = "portal-example-intra"
    certificate = pb.x509.load_pem_x509_certificate((fleet.store / "certs" / definition / "cert.pem").read_bytes())
    revoke = fleet.root / "revoke.yml"
    revoke.write_text(yaml.safe_dump([{
        "name": "Revoke the portal certificate", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"name": "Revoke", "certfleet.tls.private_ca": {
            "store_path": "{{ lookup('certfleet.tls.store_path') }}", "name": CA,
            "passphrase": "{{ certfleet_store_passphrase }}", "revoke": [{"serial": f"{certificate.serial_number:x}",
                                                                          "reason": "key_compromise"}]}}]}]))
    done = fleet._run_playbook(["-i", str(fleet.inventory / "hosts.yml"), str(revoke)], fleet.root)  # pylint: disable=protected-access
    assert done.returncode == 0, done.stdout[-3000:]
    since = len(fleet.history(definition))

    verify = fleet.playbook("verify")
    assert verify.returncode != 0, verify.stdout[-4000:]
    rows = _table_rows(verify.stdout, "portal")
    assert sorted(rows) == list(base.HOSTS), verify.stdout[-4000:]
    for host, columns in rows.items():
        # served = intended (the store still holds it), but not trusted: revoked, a failed check
        assert columns[2] == "yes" and columns[5] == "NO", (host, columns)
        assert columns[7].startswith("FAILED: revoked:") and "was revoked by" in columns[7], (host, columns)
    for host, columns in _table_rows(verify.stdout, "api").items():
        assert columns[5] == "yes" and columns[7] == "ok", (host, columns)
    failed = [event for event in fleet.events(definition, since) if event["event"] == "verify_failed"]
    assert sorted(event["host"] for event in failed) == list(base.HOSTS)
    assert all("revoked" in event["message"] for event in failed)

    # a new certificate heals it
    fleet.rotate()
    healed = fleet.playbook("deploy")
    assert healed.returncode == 0, healed.stdout[-4000:]
    again = fleet.playbook("verify")
    assert again.returncode == 0, again.stdout[-4000:]


def test_sshd_stopped_in_the_middle_of_a_host_batch_fails_that_host_and_a_rerun_completes_it(fleet):
    fleet.rotate()
    wanted = {site: fleet.store_sha256(definition) for site, (definition, _n, _p) in base.SITES.items()}
    since = {definition: len(fleet.history(definition)) for definition in base.DEFINITIONS}

    def stop_sshd():
        # sshd and its open sessions (ansible's persistent connection) go: the host stops answering
        fleet.fleet("podman", "exec", "web2", "sh", "-c", "systemctl stop ssh.socket ssh.service; pkill sshd; true")

    process = fleet.start("deploy", "-e", '{"certfleet_deploy_serial": 1, "certfleet_deploy_connect_timeout": 5}')
    try:
        # the second batch (web2) has planned its sites: the role is under way on it
        stdout, _seconds = _run_until(process, "Plan the sites, certificates and checks of this host", 2, stop_sshd, 600)
    finally:
        sshd_state = fleet.fleet("podman", "exec", "web2", "systemctl", "is-active", "ssh.service", check=False).stdout.strip()
        fleet.fleet("podman", "exec", "web2", "systemctl", "start", "ssh.service", check=False)
    assert sshd_state != "active", sshd_state
    assert process.returncode != 0, stdout[-4000:]
    assert _summary(stdout, "web2").startswith("FAILED host unreachable"), stdout[-4000:]
    for host in ("web1", "web3"):
        assert _summary(stdout, host).startswith("ok"), stdout[-4000:]
        for site in base.SITES:
            assert fleet.served_sha256(host, site) == wanted[site], (host, site)
    for definition in base.DEFINITIONS:
        failed = [event for event in fleet.events(definition, since[definition]) if event["event"] == "deploy_failed"]
        # the role may record its own view (the check that failed); the playbook records the cause
        assert {event["host"] for event in failed} == {"web2"}, failed
        assert any("unreachable during its deploy" in event["message"] for event in failed), failed

    rerun = fleet.playbook("deploy")
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    for site in base.SITES:
        assert fleet.served_sha256("web2", site) == wanted[site]
    assert _summary(rerun.stdout, "web2").startswith("ok"), rerun.stdout[-4000:]


def test_a_frozen_host_fails_at_its_deadline_and_the_batch_goes_on(fleet, record_property):
    fleet.rotate()
    wanted = {site: fleet.store_sha256(definition) for site, (definition, _n, _p) in base.SITES.items()}
    since = {definition: len(fleet.history(definition)) for definition in base.DEFINITIONS}
    # well above a normal host's whole deploy (5-10 s), also on a loaded 2-core machine
    deadline = 40

    process = fleet.start("deploy", "-e", '{"certfleet_deploy_serial": 1, "certfleet_deploy_connect_timeout": 5, '
                                          f'"certfleet_deploy_host_timeout": {deadline}}}')
    try:
        stdout, seconds = _run_until(process, "Plan the sites, certificates and checks of this host", 2,
                                     lambda: fleet.fleet("podman", "pause", "web2"), 300)
    finally:
        frozen_state = fleet.fleet("podman", "inspect", "--format", "{{.State.Status}}", "web2", check=False).stdout.strip()
        fleet.fleet("podman", "unpause", "web2", check=False)
    record_property("frozen_host_run_seconds", round(seconds, 1))
    assert frozen_state == "paused", frozen_state
    assert "[killed after" not in stdout, stdout[-4000:]
    assert process.returncode != 0, stdout[-4000:]
    assert _summary(stdout, "web2").startswith(f"FAILED deadline of {deadline} s"), stdout[-4000:]
    # web1 (before) and web3 (after the frozen host's batch) got the new certificate
    assert _summary(stdout, "web3").startswith("ok"), stdout[-4000:]
    for host in ("web1", "web3"):
        for site in base.SITES:
            assert fleet.served_sha256(host, site) == wanted[site], (host, site)
    for definition in base.DEFINITIONS:
        failed = [event for event in fleet.events(definition, since[definition]) if event["event"] == "deploy_failed"]
        assert {event["host"] for event in failed} == {"web2"}, failed
        assert any(f"deadline of {deadline} s" in event["message"] for event in failed), failed

    rerun = fleet.playbook("deploy")
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    for site in base.SITES:
        assert fleet.served_sha256("web2", site) == wanted[site]
