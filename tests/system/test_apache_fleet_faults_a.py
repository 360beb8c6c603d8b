"""Fleet faults of a deployment interrupted or doubled, on the podman fleet (3 hosts, two SNI sites each).

- ansible-playbook killed (SIGKILL, with its workers) right after deploy_files wrote web1, before the reload:
  the re-run finishes the host (the unfinished transaction is rolled back and deployed again, tested,
  reloaded and checked) and web1 serves the new certificate;
- the same kill with a change Apache rejects: no run reports web1 ok while `apache2ctl -t` fails there;
- with nothing to deploy, a configuration broken by hand fails the host (never rc=0);
- two deploy runs at once on the same host with different certificates: the second waits for the
  host's deploy lock (held from the first write to the check) and then deploys over the first, or,
  with a short lock_wait, refuses naming the holder and writes nothing.

The configuration test on web1 is slowed by a wrapper around apache2ctl (`-t` only) that first leaves a
marker: the marker is the moment "files written, not reloaded" that the test waits for.
Own fleet cache (.cache/fleet-faults-a); the Fleet helper comes from test_apache_fleet.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from collection_link import REPO_ROOT
from playbook_helpers import recap
from test_apache_fleet import HOSTS, SITES, Fleet, prepare_run_root, running_fleet

CACHE = REPO_ROOT / ".cache" / "fleet-faults-a"
MARKER = "/run/certfleet-configtest-started"
CTL = "/usr/sbin/apache2ctl"
TRANSACTIONS = "/var/lib/certfleet/transactions"
FULLCHAIN = "/etc/ssl/certfleet/certfleet-portal-example-intra.fullchain.pem"
WRAPPER = f"""#!/bin/sh
if [ "$1" = "-t" ]; then
    touch {MARKER}
    sleep "$(cat /run/certfleet-configtest-delay 2>/dev/null || echo 0)"
fi
exec {CTL}.real "$@"
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("apache-fleet-faults-a")
    run, env, binary = prepare_run_root(root, collections_path=os.environ.get("CERTFLEET_TEST_COLLECTIONS_PATH"))
    inventory = root / "inventory"

    the_fleet = Fleet(root, run)
    the_fleet.cache = CACHE
    the_fleet.env = dict(os.environ, FLEET_CACHE=str(CACHE))

    def start(args):
        """ansible-playbook in the background, its own session (to kill it with its workers), output to a file."""
        output = open(root / f"run-{time.monotonic_ns()}.log", "w+", encoding="utf-8")  # pylint: disable=consider-using-with
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            [str(binary), "-i", str(inventory / "hosts.yml"), "-i", str(CACHE / "inventory-ssh.yml"), *args], cwd=root, env=env,
            stdout=output, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        process.output = output
        return process

    the_fleet.start = start
    with running_fleet(the_fleet, site=True):
        for host in HOSTS:
            on(the_fleet, host, f"mv {CTL} {CTL}.real && cat > {CTL} <<'EOF'\n{WRAPPER}EOF\nchmod 755 {CTL}")
        yield the_fleet


def on(fleet: Fleet, host: str, script: str, check: bool = True) -> subprocess.CompletedProcess:
    return fleet.fleet("podman", "exec", host, "sh", "-c", script, check=check)


def slow_configtest(fleet: Fleet, host: str, seconds: int) -> None:
    on(fleet, host, f"rm -f {MARKER}; echo {seconds} > /run/certfleet-configtest-delay")


def wait_for_marker(fleet: Fleet, host: str, process: subprocess.Popen, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while on(fleet, host, f"test -e {MARKER}", check=False).returncode != 0:
        assert process.poll() is None, f"the run ended before {host}'s configuration test: {output_of(process)[-4000:]}"
        assert time.monotonic() < deadline, f"{host} never reached its configuration test"
        time.sleep(0.3)


def output_of(process: subprocess.Popen) -> str:
    process.output.flush()
    process.output.seek(0)
    return process.output.read()


def kill_run(process: subprocess.Popen) -> None:
    """SIGKILL ansible-playbook and its workers (its whole session)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def configtest_passes(fleet: Fleet, host: str) -> bool:
    return on(fleet, host, f"{CTL}.real -t", check=False).returncode == 0


def host_sha256(fleet: Fleet, host: str, path: str = FULLCHAIN) -> str:
    """SHA-256 (DER) of the first certificate of a PEM file on the host."""
    pem = on(fleet, host, f"cat {path}").stdout.encode()
    return hashlib.sha256(x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)).hexdigest()


def manifests(fleet: Fleet, host: str) -> dict:
    listing = on(fleet, host, f"for m in {TRANSACTIONS}/*/manifest.json; do [ -e \"$m\" ] && cat \"$m\"; echo; done; true").stdout
    found = {}
    decoder = json.JSONDecoder()
    text = listing.strip()
    while text:
        manifest, end = decoder.raw_decode(text)
        found[manifest["id"]] = manifest
        text = text[end:].strip()
    return found


def lock_record(fleet: Fleet, host: str) -> dict | None:
    done = on(fleet, host, f"cat {TRANSACTIONS}/deploy.lock", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def failed(stdout: str, host: str) -> bool:
    """FAILED in the run's summary table, or (a canary failure stops the rollout before the table) in the recap."""
    return f"{host}  FAILED" in stdout or recap(stdout, host=host)["failed"] > 0


def web1_ok_only_if_configtest_passes(fleet: Fleet, stdout: str) -> None:
    """The "must be" of the second fault: web1 is never ok while its configuration fails apache2ctl -t."""
    if not failed(stdout, "web1"):
        assert configtest_passes(fleet, "web1"), "web1 reported ok with a configuration that fails apache2ctl -t"


def test_killed_after_writing_before_the_reload_is_finished_by_the_rerun(fleet):
    fleet.rotate()
    wanted = {site: fleet.store_sha256(definition) for site, (definition, _n, _p) in SITES.items()}
    old = fleet.served_sha256("web1", "portal")
    assert old != wanted["portal"]
    slow_configtest(fleet, "web1", 60)
    run = fleet.start(["certfleet.tls.deploy", "-e", '{"certfleet_deploy_hosts": "web1"}'])
    try:
        wait_for_marker(fleet, "web1", run)
        # the moment of the fault: new files on disk, old certificate served
        assert host_sha256(fleet, "web1") == wanted["portal"]
        assert fleet.served_sha256("web1", "portal") == old
    finally:
        kill_run(run)
    slow_configtest(fleet, "web1", 0)
    at_kill = manifests(fleet, "web1")
    held = lock_record(fleet, "web1")

    rerun = fleet.playbook("deploy")
    assert rerun.returncode == 0, rerun.stdout[-5000:]
    for host in HOSTS:
        for site in SITES:
            assert fleet.served_sha256(host, site) == wanted[site], f"{host} {site}"
    killed = at_kill[max(at_kill)]
    assert killed["state"] == "applied", "the killed run's transaction must be left unfinished, not committed"
    assert held and held["transaction"] == killed["id"], "the killed run held web1's deploy lock"
    unfinished = [killed]
    assert configtest_passes(fleet, "web1")
    after = manifests(fleet, "web1")
    assert after[unfinished[0]["id"]]["state"] == "rolled_back" and after[unfinished[0]["id"]]["abandoned"] == "applied"
    newest = after[max(after)]
    assert newest["state"] == "committed", newest
    assert lock_record(fleet, "web1") is None
    again = fleet.playbook("deploy")
    assert again.returncode == 0 and recap(again.stdout, host="web1")["changed"] == 0, again.stdout[-3000:]


def test_files_on_disk_never_loaded_are_tested_and_reloaded_although_nothing_is_written(fleet):
    """The same kill, left by a version whose manifests said "applied" for finished transactions (no lock, not
    recovered): the check fails with nothing to write, so the role tests, reloads and checks again."""
    fleet.rotate()
    wanted = fleet.store_sha256("portal-example-intra")
    slow_configtest(fleet, "web1", 60)
    run = fleet.start(["certfleet.tls.deploy", "-e", '{"certfleet_deploy_hosts": "web1"}'])
    try:
        wait_for_marker(fleet, "web1", run)
    finally:
        kill_run(run)
    slow_configtest(fleet, "web1", 0)
    legacy = ("import glob, json\n"
              f"for path in glob.glob('{TRANSACTIONS}/*/manifest.json'):\n"
              "    manifest = json.load(open(path))\n"
              "    manifest.pop('version', None)\n"
              "    json.dump(manifest, open(path, 'w'))\n")
    on(fleet, "web1", f"rm -f {TRANSACTIONS}/deploy.lock")
    fleet.fleet("podman", "exec", "web1", "python3", "-c", legacy)
    assert fleet.served_sha256("web1", "portal") != wanted and host_sha256(fleet, "web1") == wanted
    rerun = fleet.playbook("deploy", "-e", '{"certfleet_deploy_hosts": "web1"}')
    assert rerun.returncode == 0, rerun.stdout[-5000:]
    assert re.search(r"Reload Apache when a site is wrong although nothing was written\] \**\nchanged: \[web1\]", rerun.stdout), \
        rerun.stdout[-5000:]
    assert fleet.served_sha256("web1", "portal") == wanted


def test_killed_with_a_change_apache_rejects_is_never_ok_with_a_failing_configtest(fleet):
    fleet.rotate()
    before = fleet.served_sha256("web1", "portal")
    sites = yaml.safe_load((fleet.inventory / "group_vars" / "webservers" / "sites.yml").read_text())["apache_ssl_sites"]
    sites[0]["extra_directives"] = ["CertfleetBogusDirective on"]
    fleet.host_vars("web1", {"apache_ssl_sites": sites})
    try:
        slow_configtest(fleet, "web1", 60)
        run = fleet.start(["certfleet.tls.deploy", "-e", '{"certfleet_deploy_hosts": "web1"}'])
        try:
            wait_for_marker(fleet, "web1", run)
            assert not configtest_passes(fleet, "web1"), "the rejected change is on disk at the kill"
        finally:
            kill_run(run)
        slow_configtest(fleet, "web1", 0)
        # the re-run with the same change: web1 fails, its previous configuration back on disk
        rerun = fleet.playbook("deploy")
        assert rerun.returncode != 0, rerun.stdout[-4000:]
        assert failed(rerun.stdout, "web1"), rerun.stdout[-4000:]
        assert "Invalid command 'CertfleetBogusDirective'" in rerun.stdout, rerun.stdout[-4000:]
        web1_ok_only_if_configtest_passes(fleet, rerun.stdout)
        assert configtest_passes(fleet, "web1")
        assert fleet.served_sha256("web1", "portal") == before
        # a restart now keeps Apache up: nothing broken was left on disk
        fleet.fleet("podman", "exec", "web1", "systemctl", "restart", "apache2")
        assert fleet.apache_active("web1")
    finally:
        fleet.host_vars("web1", None)
    fixed = fleet.playbook("deploy")
    assert fixed.returncode == 0, fixed.stdout[-4000:]
    web1_ok_only_if_configtest_passes(fleet, fixed.stdout)
    for host in HOSTS:
        for site, (definition, _name, _port) in SITES.items():
            assert fleet.served_sha256(host, site) == fleet.store_sha256(definition), f"{host} {site}"


def test_with_nothing_to_deploy_a_configuration_broken_by_hand_fails_the_host(fleet):
    settled = fleet.playbook("deploy")
    assert settled.returncode == 0, settled.stdout[-3000:]
    served = fleet.served()
    on(fleet, "web2", "echo 'CertfleetBrokenByHand on' > /etc/apache2/conf-enabled/zz-by-hand.conf")
    try:
        run = fleet.playbook("deploy")
        assert run.returncode != 0, "a host whose configuration fails apache2ctl -t was reported ok"
        assert "web2  FAILED    Test the whole Apache configuration before any reload" in run.stdout, run.stdout[-6000:]
        assert "web1  FAILED" not in run.stdout and recap(run.stdout, host="web1")["changed"] == 0
        assert "Invalid command 'CertfleetBrokenByHand'" in run.stdout, run.stdout[-4000:]
        assert fleet.served() == served, "nothing may be reloaded on a broken configuration"
    finally:
        on(fleet, "web2", "rm -f /etc/apache2/conf-enabled/zz-by-hand.conf")
    assert fleet.playbook("deploy").returncode == 0


def _second_store(fleet: Fleet) -> Path:
    """A copy of the store with new certificates; then the inventory's store gets newer ones (none served yet)."""
    fleet.rotate()
    copy = fleet.root / "store-b"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(fleet.store, copy)
    fleet.rotate()
    return copy


def test_two_runs_at_once_on_one_host_are_serialised_by_the_host_lock(fleet):
    store_b = _second_store(fleet)
    cert_a, cert_b = fleet.store_sha256("portal-example-intra"), fleet.store_sha256("portal-example-intra", store_b)
    before = fleet.served_sha256("web1", "portal")
    assert len({cert_a, cert_b, before}) == 3
    slow_configtest(fleet, "web1", 8)
    run_a = fleet.start(["certfleet.tls.deploy", "-e", '{"certfleet_deploy_hosts": "web1"}'])
    try:
        wait_for_marker(fleet, "web1", run_a)
        holder = lock_record(fleet, "web1")
        assert holder and holder["owner"]["pid"] == run_a.pid
        run_b = fleet.playbook("deploy", "-e", json.dumps({"certfleet_deploy_hosts": "web1", "certfleet_store_path": str(store_b)}))
        run_a.wait(timeout=600)
        out_a = output_of(run_a)
    finally:
        if run_a.poll() is None:
            kill_run(run_a)
    slow_configtest(fleet, "web1", 0)
    assert run_a.returncode == 0, out_a[-4000:]
    assert run_b.returncode == 0, run_b.stdout[-4000:]
    # B ran after A had committed: B's backup of the certificate is A's, so a rollback of B restores A's
    after = manifests(fleet, "web1")
    ordered = sorted(after)
    id_a, id_b = ordered[-2], ordered[-1]
    assert after[id_a]["state"] == "committed" and after[id_b]["state"] == "committed"
    entry = next(e for e in after[id_b]["entries"] if e["path"] == FULLCHAIN)
    assert host_sha256(fleet, "web1", f"{TRANSACTIONS}/{id_b}/{entry['backup']}") == cert_a
    assert fleet.served_sha256("web1", "portal") == cert_b == host_sha256(fleet, "web1")
    assert lock_record(fleet, "web1") is None


def test_a_second_run_with_a_short_lock_wait_refuses_naming_the_holder(fleet):
    store_b = _second_store(fleet)
    cert_a = fleet.store_sha256("portal-example-intra")
    slow_configtest(fleet, "web1", 15)
    run_a = fleet.start(["certfleet.tls.deploy", "-e", '{"certfleet_deploy_hosts": "web1"}'])
    try:
        wait_for_marker(fleet, "web1", run_a)
        holder = lock_record(fleet, "web1")
        run_b = fleet.playbook("deploy", "-e", json.dumps({"certfleet_deploy_hosts": "web1", "certfleet_store_path": str(store_b),
                                                           "apache_ssl_lock_wait": 3}))
        run_a.wait(timeout=600)
        out_a = output_of(run_a)
    finally:
        if run_a.poll() is None:
            kill_run(run_a)
    slow_configtest(fleet, "web1", 0)
    assert run_a.returncode == 0, out_a[-4000:]
    assert run_b.returncode != 0
    expected = f"the deploy lock of this host is held by transaction {holder['transaction']} of ansible-playbook pid {run_a.pid}"
    assert expected in run_b.stdout, run_b.stdout[-4000:]
    assert "waited 3 s (lock_wait)" in run_b.stdout and "nothing was written" in run_b.stdout
    assert fleet.served_sha256("web1", "portal") == cert_a == host_sha256(fleet, "web1")
    assert lock_record(fleet, "web1") is None
