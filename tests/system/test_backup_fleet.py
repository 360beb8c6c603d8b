"""Backup and restore against the podman fleet (3 hosts, two SNI sites each): site -> backup -> new certificates
deployed -> store wiped -> restore -> deploy, and every host serves the backed-up certificates again.

Uses the Fleet helper of test_apache_fleet.py with its own fleet cache (.cache/fleet-backup), so it never shares
hosts with another run. Every "served" claim is proved by a TLS handshake from here.
"""
from __future__ import annotations

import os
import shutil
import stat

import pytest

import test_apache_fleet as base
from collection_link import REPO_ROOT
from playbook_helpers import recap

CACHE = REPO_ROOT / ".cache" / "fleet-backup"
BACKUP_PASSPHRASE = "Fleet-Backup-Secret-9090"


class BackupFleet(base.Fleet):
    """base.Fleet on its own cache."""

    def __init__(self, root, run_playbook):
        super().__init__(root, run_playbook)
        self.cache = CACHE
        self.env = dict(os.environ, FLEET_CACHE=str(CACHE))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("apache-fleet-backup")
    run, _env, _binary = base.prepare_run_root(root)
    (root / "inventory" / "group_vars" / "all" / "backup.yml").write_text(
        f"certfleet_backup_passphrase: {BACKUP_PASSPHRASE}\ncertfleet_backup_dir: {root / 'backups'}\ncertfleet_backup_keep: 3\n")
    the_fleet = BackupFleet(root, run)
    with base.running_fleet(the_fleet):
        yield the_fleet


def tree(root) -> dict:
    result = {".": ("dir", stat.S_IMODE(os.stat(root).st_mode))}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(directory, name)
            info = os.lstat(full)
            relative = os.path.relpath(full, root)
            if stat.S_ISDIR(info.st_mode):
                result[relative] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                with open(full, "rb") as handle:
                    result[relative] = ("file", stat.S_IMODE(info.st_mode), handle.read())
    return result


def test_backup_wipe_restore_deploy_serves_the_backed_up_certificates(fleet):
    first = fleet.playbook("site")
    assert first.returncode == 0, first.stdout[-4000:]
    backed_up = {site: fleet.store_sha256(definition) for site, (definition, _name, _port) in base.SITES.items()}
    assert fleet.served() == {(host, site): backed_up[site] for host in base.HOSTS for site in base.SITES}

    backup = fleet.playbook("backup")
    assert backup.returncode == 0 and recap(backup.stdout)["changed"] == 1, backup.stdout[-3000:]
    at_backup = tree(fleet.store)

    # Life goes on: new certificates issued and deployed everywhere.
    fleet.rotate()
    rotated = fleet.playbook("deploy")
    assert rotated.returncode == 0, rotated.stdout[-4000:]
    newer = {site: fleet.store_sha256(definition) for site, (definition, _name, _port) in base.SITES.items()}
    assert all(newer[site] != backed_up[site] for site in base.SITES)
    assert fleet.served() == {(host, site): newer[site] for host in base.HOSTS for site in base.SITES}

    # The controller's store is lost; the archive brings it back byte for byte.
    shutil.rmtree(fleet.store)
    restore = fleet.playbook("restore")
    assert restore.returncode == 0 and recap(restore.stdout)["changed"] == 1, restore.stdout[-3000:]
    assert tree(fleet.store) == at_backup
    since = len(fleet.history("portal-example-intra"))

    # Deploy from the restored store: every host serves the backed-up certificates again, with the full chain.
    deploy = fleet.playbook("deploy")
    assert deploy.returncode == 0, deploy.stdout[-4000:]
    verify = fleet.playbook("verify")
    assert verify.returncode == 0 and "served = intended" in verify.stdout, verify.stdout[-4000:]
    table = [line for line in verify.stdout.splitlines() if "| portal |" in line or "| api    |" in line]
    assert len(table) == 6 and all("| yes " in line for line in table), table
    assert fleet.served() == {(host, site): backed_up[site] for host in base.HOSTS for site in base.SITES}
    events = [event["event"] for event in fleet.history("portal-example-intra")[since:]]
    assert events.count("deployed") == 3, f"the deploy after the restore is recorded in the restored history: {events}"
    again = fleet.playbook("deploy")
    assert again.returncode == 0
    for host in base.HOSTS:
        assert recap(again.stdout, host=host)["changed"] == 0, again.stdout[-3000:]
