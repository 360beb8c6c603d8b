"""The backup and restore playbooks end to end with ansible-playbook: request (private CA) -> backup -> wipe ->
restore -> the same tree byte for byte -> request is unchanged and the restored CA still issues."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess

import yaml

from collection_link import REPO_ROOT
from playbook_helpers import recap

STORE_PASSPHRASE = "Store-Secret-Backup-4711"
BACKUP_PASSPHRASE = "Backup-Secret-Unique-2718"
PFX_PASSPHRASE = "Pfx-Secret-Unique-3141"


def make_inventory(tmp_path):
    inventory = tmp_path / "inventory"
    shutil.copytree(REPO_ROOT / "examples" / "inventory", inventory, ignore=shutil.ignore_patterns("cert_store", "vault.yml"))
    (inventory / "group_vars" / "all" / "secrets.yml").write_text(
        f"certfleet_store_passphrase: {STORE_PASSPHRASE}\ncertfleet_backup_passphrase: {BACKUP_PASSPHRASE}\n"
        f"certfleet_backup_pkcs12_passphrase: {PFX_PASSPHRASE}\n")
    (inventory / "group_vars" / "all" / "backup.yml").write_text(
        f"certfleet_backup_dir: {tmp_path / 'backups'}\ncertfleet_backup_keep: 2\n"
        f"certfleet_backup_pkcs12: [portal-example-intra]\ncertfleet_backup_pkcs12_encryption: compatibility\n"
        f"certfleet_backup_pkcs12_dir: {tmp_path / 'pfx'}\ncertfleet_request_summary: false\n")
    return inventory


def tree(root) -> dict:
    result = {".": ("dir", stat.S_IMODE(os.stat(root).st_mode))}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(directory, name)
            info = os.lstat(full)
            assert not stat.S_ISLNK(info.st_mode)
            relative = os.path.relpath(full, root)
            if stat.S_ISDIR(info.st_mode):
                result[relative] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                with open(full, "rb") as handle:
                    result[relative] = ("file", stat.S_IMODE(info.st_mode), handle.read())
    return result


def test_backup_wipe_restore_reproduces_the_store_and_it_still_issues(tmp_path, ansible_playbook):
    inventory = make_inventory(tmp_path)
    store = inventory / "cert_store"
    run = ansible_playbook(["-i", str(inventory), "certfleet.tls.request"], cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    backup = ansible_playbook(["-i", str(inventory), "certfleet.tls.backup", "-vvv"], cwd=tmp_path)
    assert backup.returncode == 0, backup.stdout[-3000:] + backup.stderr[-3000:]
    assert recap(backup.stdout)["changed"] == 1
    archives = sorted(os.listdir(tmp_path / "backups"))
    assert len(archives) == 1 and archives[0].startswith("certfleet-store-") and archives[0].endswith("Z.cfbackup")
    output = backup.stdout + backup.stderr
    key_lines = (store / "certs" / "portal-example-intra" / "key.pem").read_text().splitlines()[1:-1]
    for secret in (STORE_PASSPHRASE, BACKUP_PASSPHRASE, PFX_PASSPHRASE, *key_lines):
        assert secret not in output, f"secret leaked: {secret[:10]}"
    # The PFX a Windows administrator gets: 3DES / SHA-1 as asked, leaf + issuing CA, opens with its passphrase.
    pfx = tmp_path / "pfx" / "portal-example-intra.pfx"
    info = subprocess.run(["openssl", "pkcs12", "-info", "-legacy", "-in", str(pfx), "-passin", f"pass:{PFX_PASSPHRASE}",
                           "-nokeys"], capture_output=True, text=True, check=True)
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info.stderr and "MAC: sha1" in info.stderr
    assert info.stdout.count("BEGIN CERTIFICATE") == 2

    again = ansible_playbook(["-i", str(inventory), "certfleet.tls.backup"], cwd=tmp_path)
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0, "same content: no new archive"
    assert sorted(os.listdir(tmp_path / "backups")) == archives

    before = tree(store)
    shutil.rmtree(store)
    restore = ansible_playbook(["-i", str(inventory), "certfleet.tls.restore"], cwd=tmp_path)
    assert restore.returncode == 0, restore.stdout[-3000:] + restore.stderr[-3000:]
    assert recap(restore.stdout)["changed"] == 1
    assert tree(store) == before, "restored byte for byte, modes and directories included"
    assert sorted(os.listdir(inventory)) == ["cert_store", "group_vars", "hosts.yml"], "no staging directory left"

    restore_again = ansible_playbook(["-i", str(inventory), "certfleet.tls.restore"], cwd=tmp_path)
    assert restore_again.returncode == 0 and recap(restore_again.stdout)["changed"] == 0

    # The restored store is the store: nothing to redo, and the restored private CA issues a new definition.
    request = ansible_playbook(["-i", str(inventory), "certfleet.tls.request"], cwd=tmp_path)
    assert request.returncode == 0 and recap(request.stdout)["changed"] == 0, request.stdout[-3000:]
    certificates = inventory / "group_vars" / "all" / "certificates.yml"
    data = yaml.safe_load(certificates.read_text())
    data["certfleet_certificates"].append({"name": "docs-example-intra", "common_name": "docs.example.intra", "key": {"type": "ECC"},
                                           "issuer": {"provider": "private_ca", "ca": "example-intranet", "profile": "private"}})
    certificates.write_text(yaml.safe_dump(data))
    issued = ansible_playbook(["-i", str(inventory), "certfleet.tls.request"], cwd=tmp_path)
    assert issued.returncode == 0, issued.stdout[-3000:] + issued.stderr[-3000:]
    new = store / "certs" / "docs-example-intra"
    chain = new / "chain.pem"
    root = store / "ca" / "example-intranet" / "root.pem"
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(root), "-untrusted", str(chain), str(new / "cert.pem")],
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0 and ": OK" in verify.stdout, verify.stdout + verify.stderr
    assert tree(store)["certs/portal-example-intra/cert.pem"] == before["certs/portal-example-intra/cert.pem"]

    # A changed store makes a new archive; the non-empty store is then refused without force, and nothing changes.
    changed = ansible_playbook(["-i", str(inventory), "certfleet.tls.backup"], cwd=tmp_path)
    assert changed.returncode == 0 and recap(changed.stdout)["changed"] == 1
    assert len(os.listdir(tmp_path / "backups")) == 2
    current = tree(store)
    refused = ansible_playbook(["-i", str(inventory), "certfleet.tls.restore", "-e",
                                f"certfleet_restore_archive={tmp_path / 'backups' / archives[0]}"], cwd=tmp_path)
    assert refused.returncode == 2 and "is not empty" in refused.stdout and "force=true" in refused.stdout
    assert "Traceback" not in refused.stdout + refused.stderr
    assert tree(store) == current
    assert sorted(os.listdir(inventory)) == ["cert_store", "group_vars", "hosts.yml"]
    forced = ansible_playbook(["-i", str(inventory), "certfleet.tls.restore", "-e", "certfleet_restore_force=true", "-e",
                               f"certfleet_restore_archive={tmp_path / 'backups' / archives[0]}"], cwd=tmp_path)
    assert forced.returncode == 0, forced.stdout[-3000:]
    assert tree(store) == before
    kept = [name for name in os.listdir(inventory) if name.startswith("cert_store.replaced-")]
    assert len(kept) == 1 and tree(inventory / kept[0]) == current


def test_wrong_passphrase_and_tampered_archive_fail_cleanly(tmp_path, ansible_playbook):
    inventory = make_inventory(tmp_path)
    (inventory / "group_vars" / "all" / "backup.yml").write_text(
        f"certfleet_backup_dir: {tmp_path / 'backups'}\ncertfleet_request_summary: false\n")
    assert ansible_playbook(["-i", str(inventory), "certfleet.tls.request"], cwd=tmp_path).returncode == 0
    assert ansible_playbook(["-i", str(inventory), "certfleet.tls.backup"], cwd=tmp_path).returncode == 0
    shutil.rmtree(inventory / "cert_store")
    wrong = ansible_playbook(["-i", str(inventory), "certfleet.tls.restore", "-e", "certfleet_backup_passphrase=not-it"],
                             cwd=tmp_path)
    assert wrong.returncode == 2 and "wrong passphrase" in wrong.stdout and "Traceback" not in wrong.stdout + wrong.stderr
    archive = tmp_path / "backups" / os.listdir(tmp_path / "backups")[0]
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x04
    archive.write_bytes(bytes(data))
    tampered = ansible_playbook(["-i", str(inventory), "certfleet.tls.restore"], cwd=tmp_path)
    assert tampered.returncode == 2 and "fails authentication" in tampered.stdout
    assert sorted(os.listdir(inventory)) == ["group_vars", "hosts.yml"], "nothing written"
