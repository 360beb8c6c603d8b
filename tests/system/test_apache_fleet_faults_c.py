"""What must keep holding on the podman fleet (3 hosts, two SNI sites each), with a new certificate in play:
a configuration broken by hand elsewhere on a host (refused before any reload, the previous certificate still
served; ``verify`` reports it too), and a full disk on a host (a clear error, nothing half-written, the next run
completes it).

Uses the Fleet helper of test_apache_fleet.py with its own fleet cache (.cache/fleet-faults-c), so it never
shares hosts with another run. Every "served" claim is proved by a TLS handshake from here.
"""
from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path

import pytest

import test_apache_fleet as base
from collection_link import REPO_ROOT

CACHE = REPO_ROOT / ".cache" / "fleet-faults-c"
BROKEN_CONF = "/etc/apache2/conf-enabled/zz-by-hand.conf"
CERT_DIR = "/etc/ssl/certfleet"
GRACEFUL = "AH00493"  # Apache's error log line of a graceful restart (SIGUSR1): counts reloads


class HandFleet(base.Fleet):
    """base.Fleet on its own cache, plus commands on one host as its administrator would type them."""

    def __init__(self, root: Path, run_playbook):
        super().__init__(root, run_playbook)
        self.cache = CACHE
        self.env = dict(os.environ, FLEET_CACHE=str(CACHE))

    def shell(self, host: str, script: str, *, privileged: bool = False, check: bool = True) -> str:
        extra = ["--privileged"] if privileged else []
        return self.fleet("podman", "exec", *extra, host, "sh", "-c", script, check=check).stdout

    def reloads(self, host: str) -> int:
        return int(self.shell(host, f"grep -c {GRACEFUL} /var/log/apache2/error.log || true").strip() or 0)

    def files(self, host: str, directory: str) -> str:
        """Name, size and SHA-256 of every file in a host's directory (hidden ones included), sorted."""
        return self.shell(host, f"cd {directory} && find . -maxdepth 1 -type f -exec sha256sum {{}} + | sort -k2")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("apache-fleet-faults-c")
    run, _env, _binary = base.prepare_run_root(root)
    with base.running_fleet(HandFleet(root, run), site=True) as the_fleet:
        yield the_fleet


def _assert_serves_the_store_everywhere(fleet: HandFleet) -> None:
    for (host, site), served in fleet.served().items():
        assert served == fleet.store_sha256(base.SITES[site][0]), f"{host} {site} does not serve the store's certificate"


def test_verify_reports_a_configuration_broken_by_hand_and_passes_once_it_is_repaired(fleet):
    fleet.shell("web2", f"echo 'Garbage by hand' > {BROKEN_CONF}")
    try:
        since = {definition: len(fleet.history(definition)) for definition in base.DEFINITIONS}
        broken = fleet.playbook("verify")
    finally:
        fleet.shell("web2", f"rm -f {BROKEN_CONF}")
    assert broken.returncode != 0, broken.stdout[-4000:]
    out = broken.stdout
    # the sites still serve the right certificate (Apache has not reloaded the broken file)...
    _assert_serves_the_store_everywhere(fleet)
    # ...yet the host fails, with Apache's words naming the file, in the table and in the run's failure
    assert "web2: FAILED: configuration test fails (apachectl -t):" in out, out[-4000:]
    assert "zz-by-hand.conf" in out and "Invalid command 'Garbage'" in out
    assert "web1: FAILED" not in out and "web3: FAILED" not in out
    for definition in base.DEFINITIONS:
        failed = [event for event in fleet.history(definition)[since[definition]:] if event["event"] == "verify_failed"]
        assert [event["host"] for event in failed] == ["web2"], failed
        assert "zz-by-hand.conf" in failed[0]["message"]

    repaired = fleet.playbook("verify")
    assert repaired.returncode == 0, repaired.stdout[-4000:]
    assert "FAILED" not in repaired.stdout

    # apache_ssl_verify_configtest: false leaves only the handshakes (a controller that may not log in)
    fleet.shell("web2", f"echo 'Garbage by hand' > {BROKEN_CONF}")
    try:
        handshakes_only = fleet.playbook("verify", "-e", '{"apache_ssl_verify_configtest": false}')
    finally:
        fleet.shell("web2", f"rm -f {BROKEN_CONF}")
    assert handshakes_only.returncode == 0, handshakes_only.stdout[-4000:]


def test_a_configuration_broken_elsewhere_is_refused_before_any_reload_and_the_old_certificate_stays(fleet):
    fleet.rotate()
    before = fleet.served()
    files_before = fleet.files("web2", CERT_DIR)
    reloads_before = fleet.reloads("web2")
    fleet.shell("web2", f"echo 'Garbage by hand' > {BROKEN_CONF}")
    try:
        run = fleet.playbook("deploy", "-e", '{"certfleet_deploy_serial": 1}')
        assert run.returncode != 0, run.stdout[-4000:]
        assert "Invalid command 'Garbage'" in run.stdout and "zz-by-hand.conf" in run.stdout, run.stdout[-4000:]
        # refused before any reload: Apache on web2 was never told to reload, and it serves what it served
        assert fleet.reloads("web2") == reloads_before
        assert fleet.apache_active("web2")
        for site in base.SITES:
            assert fleet.served_sha256("web2", site) == before[("web2", site)], "web2 changed with a broken configuration"
        # the new files were rolled back: the host's certificate directory is as it was, no temporary file left
        assert fleet.files("web2", CERT_DIR) == files_before
        failed = [event for event in fleet.history("portal-example-intra") if event["event"] == "deploy_failed"]
        assert failed and failed[-1]["host"] == "web2" and "Garbage" in failed[-1]["message"]
    finally:
        fleet.shell("web2", f"rm -f {BROKEN_CONF}")
    # repaired by hand: the next run completes the rollout
    rerun = fleet.playbook("deploy")
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    _assert_serves_the_store_everywhere(fleet)


def test_a_full_disk_fails_with_a_clear_error_writes_nothing_half_and_the_next_run_completes(fleet):
    fleet.rotate()
    before = fleet.served()
    files_before = fleet.files("web3", CERT_DIR)
    # A small file system over the certificate directory holding today's files, then filled to the last block.
    fleet.shell("web3", f"""set -e
        mkdir -p /root/certs-before && cp -a {CERT_DIR}/. /root/certs-before/
        mount -t tmpfs -o size=256k,mode=0755 certfleet-full {CERT_DIR}
        cp -a /root/certs-before/. {CERT_DIR}/
        dd if=/dev/zero of={CERT_DIR}/.filler bs=4k 2>/dev/null || true
        sync""", privileged=True)
    try:
        assert "No space left" in fleet.shell("web3", f"dd if=/dev/zero of={CERT_DIR}/probe bs=4k count=1 2>&1; rm -f {CERT_DIR}/probe")
        files_full = fleet.files("web3", CERT_DIR)
        run = fleet.playbook("deploy", "-e", '{"certfleet_deploy_serial": 1}')
        assert run.returncode != 0, run.stdout[-4000:]
        assert "no space left to write" in run.stdout, run.stdout[-4000:]
        # nothing half-written: the directory holds exactly what it held (no temporary file, no truncated file)
        assert fleet.files("web3", CERT_DIR) == files_full
        assert fleet.apache_active("web3")
        for site in base.SITES:
            assert fleet.served_sha256("web3", site) == before[("web3", site)]
        failed = [event for event in fleet.history("portal-example-intra") if event["event"] == "deploy_failed"]
        assert failed and failed[-1]["host"] == "web3" and "no space left" in failed[-1]["message"]
    finally:
        fleet.shell("web3", f"umount {CERT_DIR}", privileged=True, check=False)
    assert fleet.files("web3", CERT_DIR) == files_before
    rerun = fleet.playbook("deploy")
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    _assert_serves_the_store_everywhere(fleet)


def test_a_lock_held_from_another_controller_is_waited_for_and_refused_until_it_is_stale(fleet):
    """Whether a run on another controller is gone cannot be told from here: its lock is respected (the run
    waits apache_ssl_lock_wait, then refuses naming the holder), and taken over only once it is older than
    the stale limit (an hour)."""
    fleet.rotate()
    before = fleet.served_sha256("web1", "portal")
    lock = "/var/lib/certfleet/transactions/deploy.lock"
    holder = {"host_pid": 4242, "owner": {"controller": "ops-2.example", "pid": 31337, "started": 1},
              "token": "0123456789abcdef", "transaction": "20261206T120000Z-feedface"}
    only_web1 = '{"certfleet_deploy_hosts": "web1", "apache_ssl_lock_wait": 3}'

    def hold(since: float) -> None:
        text = shlex.quote(json.dumps(dict(holder, since=since)))
        fleet.shell("web1", f"mkdir -p -m 0700 /var/lib/certfleet/transactions && printf '%s\\n' {text} > {lock}")

    hold(time.time())
    refused = fleet.playbook("deploy", "-e", only_web1)
    assert refused.returncode != 0, refused.stdout[-4000:]
    assert ("the deploy lock of this host is held by transaction 20261206T120000Z-feedface of ansible-playbook pid 31337 "
            "on ops-2.example") in refused.stdout, refused.stdout[-4000:]
    assert "nothing was written" in refused.stdout
    assert fleet.served_sha256("web1", "portal") == before
    assert "ops-2.example" in fleet.shell("web1", f"cat {lock}")

    # two hours old: stale, taken over, deployed, released
    hold(time.time() - 7200)
    taken = fleet.playbook("deploy", "-e", only_web1)
    assert taken.returncode == 0, taken.stdout[-4000:]
    assert fleet.served_sha256("web1", "portal") == fleet.store_sha256("portal-example-intra")
    assert fleet.shell("web1", f"ls {lock} 2>/dev/null || true").strip() == ""
