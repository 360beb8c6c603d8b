# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""store_backup and store_restore through their main(): check mode, apply, idempotence, errors without traceback."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.certfleet.tls.plugins.modules import store_backup, store_restore
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import issue as _issue
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request

STORE_PASS = "Store-Module-Pass-5"
BACKUP_PASS = "Backup-Module-Pass-6"
PFX_PASS = "Pfx-Module-Pass-7"
DEFAULTS = {"country_name": "JP", "state_or_province_name": "Tokyo", "locality_name": "Minato-ku", "organization_name": "Example Co.,Ltd."}
DEFINITIONS = [
    {"name": "portal", "common_name": "portal.example.intra", "key": {"type": "ECC"},
     "issuer": {"provider": "private_ca", "ca": "intranet", "profile": "private"}},
    {"name": "www", "common_name": "www.example.co.jp", "issuer": {"provider": "manual", "profile": "cybertrust"}},
]


def files_of(root) -> dict:
    result = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(directory, name)
            info = os.lstat(full)
            content = open(full, "rb").read() if stat.S_ISREG(info.st_mode) else None  # pylint: disable=consider-using-with
            result[os.path.relpath(full, root)] = (stat.S_IMODE(info.st_mode), content)
    return result


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("module_store") / "cert_store"
    run_request(store_path=str(path), definitions=DEFINITIONS, passphrase=STORE_PASS, defaults=DEFAULTS)
    _ca.run_private_ca(store_path=str(path), name="intranet", passphrase=STORE_PASS, kind="root", key_spec={"type": "ECC"},
                       settings_options={"allowed_domains": ["example.intra"]})
    _issue.run_issue(store_path=str(path), definitions=DEFINITIONS, defaults=DEFAULTS, ca_passphrase=STORE_PASS)
    return path


def test_backup_check_apply_check_apply_then_restore(run_module, store, tmp_path):
    args = {"store_path": str(store), "passphrase": BACKUP_PASS, "directory": str(tmp_path / "backups"), "keep": 2}
    check = run_module(store_backup.main, dict(args, _ansible_check_mode=True))
    assert check["changed"] and check["written"] and not (tmp_path / "backups").exists()
    assert check["definitions"] == ["portal", "www"] and check["cas"] == ["intranet"] and check["scope"] == "store"
    assert check["archive"].startswith(str(tmp_path / "backups" / "certfleet-store-")) and check["archive"].endswith(".cfbackup")
    first = run_module(store_backup.main, args)
    assert first["changed"] and first["archive_size"] > 0 and first["size"] > 0, first
    assert first["content_sha256"] == check["content_sha256"]
    assert stat.S_IMODE(os.stat(first["archive"]).st_mode) == 0o600
    second_check = run_module(store_backup.main, dict(args, _ansible_check_mode=True))
    second = run_module(store_backup.main, args)
    assert not second_check["changed"] and not second["changed"] and second["archive"] == first["archive"]
    assert "already holds this content" in second["msg"]
    assert len(os.listdir(tmp_path / "backups")) == 1

    target = tmp_path / "restored"
    restore_args = {"src": str(tmp_path / "backups"), "store_path": str(target), "passphrase": BACKUP_PASS}
    restore_check = run_module(store_restore.main, dict(restore_args, _ansible_check_mode=True))
    assert restore_check["changed"] and not target.exists()
    restored = run_module(store_restore.main, restore_args)
    assert restored["changed"] and restored["archive"] == first["archive"] and restored["replaced"] is None
    assert files_of(target) == files_of(store)
    again = run_module(store_restore.main, restore_args)
    assert not again["changed"]


def test_no_secret_in_results(run_module, store, tmp_path):
    result = run_module(store_backup.main, {
        "store_path": str(store), "passphrase": BACKUP_PASS, "path": str(tmp_path / "a.cfbackup"),
        "pkcs12": ["portal"], "pkcs12_path": str(tmp_path / "pfx"), "pkcs12_passphrase": PFX_PASS, "store_passphrase": STORE_PASS})
    assert result["changed"] and result["pkcs12"] == [
        {"name": "portal", "path": str(tmp_path / "pfx" / "portal.pfx"), "changed": True, "encryption": "modern"}]
    text = json.dumps(result)
    for secret in (BACKUP_PASS, PFX_PASS, STORE_PASS, "PRIVATE KEY"):
        assert secret not in text
    failed = run_module(store_restore.main, {"src": str(tmp_path / "a.cfbackup"), "store_path": str(tmp_path / "r"),
                                             "passphrase": "wrong-" + BACKUP_PASS})
    assert failed["failed"] and "wrong passphrase" in failed["msg"] and "exception" not in failed
    assert BACKUP_PASS not in json.dumps(failed) and not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, message", [
    ({"path": "ARCHIVE", "directory": "DIR"}, "mutually exclusive"),
    ({}, "one of the following is required: path, directory"),
    ({"path": "ARCHIVE", "keep": 3}, "keep rotates the archives of a directory"),
    ({"directory": "DIR", "keep": -1}, "keep must be a whole number"),
    ({"path": "ARCHIVE", "definitions": ["nope"]}, "definition 'nope' is not in the store"),
    ({"path": "ARCHIVE", "pkcs12": ["portal"]}, "pkcs12 needs pkcs12_path, pkcs12_passphrase, store_passphrase"),
    ({"directory": "STORE/backups"}, "inside the store"),
])
def test_backup_errors(run_module, store, tmp_path, args, message):
    replace = {"ARCHIVE": str(tmp_path / "a.cfbackup"), "DIR": str(tmp_path / "d"), "STORE": str(store)}
    args = {key: ([replace.get(item, item) for item in value] if isinstance(value, list) else
                  replace.get(value.split("/")[0], value) + value[len(value.split("/")[0]):] if isinstance(value, str) else value)
            for key, value in args.items()}
    result = run_module(store_backup.main, dict({"store_path": str(store), "passphrase": BACKUP_PASS}, **args))
    assert result.get("failed") and message in result["msg"], result
    assert "exception" not in result
    assert not (tmp_path / "a.cfbackup").exists() and not (tmp_path / "d").exists()


def test_restore_refuses_a_non_empty_target_without_force(run_module, store, tmp_path):
    archive = tmp_path / "a.cfbackup"
    run_module(store_backup.main, {"store_path": str(store), "passphrase": BACKUP_PASS, "path": str(archive)})
    target = tmp_path / "existing"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    refused = run_module(store_restore.main, {"src": str(archive), "store_path": str(target), "passphrase": BACKUP_PASS})
    assert refused["failed"] and "is not empty (1 entries: notes.txt)" in refused["msg"]
    assert sorted(os.listdir(tmp_path)) == ["a.cfbackup", "existing"] and os.listdir(target) == ["notes.txt"]
    forced = run_module(store_restore.main, {"src": str(archive), "store_path": str(target), "passphrase": BACKUP_PASS,
                                             "force": True})
    assert forced["changed"] and forced["replaced"].startswith(str(target) + ".replaced-")
    assert open(os.path.join(forced["replaced"], "notes.txt"), encoding="utf-8").read() == "mine"
    assert files_of(target) == files_of(store)
    damaged = bytearray(archive.read_bytes())
    damaged[-5] ^= 0xFF
    archive.write_bytes(bytes(damaged))
    tampered = run_module(store_restore.main, {"src": str(archive), "store_path": str(tmp_path / "new"), "passphrase": BACKUP_PASS})
    assert tampered["failed"] and "fails authentication" in tampered["msg"] and not (tmp_path / "new").exists()
    missing = run_module(store_restore.main, {"src": str(tmp_path / "none"), "store_path": str(tmp_path / "new"),
                                              "passphrase": BACKUP_PASS})
    assert missing["failed"] and "does not exist" in missing["msg"]
