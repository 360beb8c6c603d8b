#!/usr/bin/env python
"""Benchmark: encrypted backup and restore of a 1,000-definition store vs tar czf / tar xzf of the same tree.

The store is built through the store's own engines (store_request keys and CSRs, the built-in
private CA issuing every definition, ECDSA P-256 keys so that building it is fast). Then, in the
same run and on the same tree:

- certfleet backup: ``backup_store`` (scrypt N=2^17 key derivation, manifest with SHA-256 of every
  file, AES-256-GCM in 1 MiB chunks), in-process, and the ``certfleet.tls.backup`` playbook;
- certfleet restore: ``restore_store`` into a new directory (authenticate whole, extract beside,
  verify every SHA-256, rename into place), in-process, and the ``certfleet.tls.restore`` playbook;
- anchors: ``tar czf`` / ``tar xzf`` of the same tree (gzip, no encryption, no verification) and a
  plain ``cp -a``.

Prints seconds, archive sizes and ratios against the anchors.

    .cache/venv/bin/python benchmarks/bench_backup.py --count 1000
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO_ROOT / ".cache" / "collections"
STORE_PASS = "benchmark-store-passphrase"
BACKUP_PASS = "benchmark-backup-passphrase"
DEFAULTS = {"country_name": "JP", "state_or_province_name": "Tokyo", "locality_name": "Minato-ku",
            "organization_name": "Example Co.,Ltd."}


def link_collection() -> None:
    link = COLLECTIONS / "ansible_collections" / "certfleet" / "tls"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(REPO_ROOT, link)
    sys.path.insert(0, str(COLLECTIONS))


def build_store(store: Path, count: int) -> float:
    from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca
    from ansible_collections.certfleet.tls.plugins.module_utils._issuers import issue as _issue
    from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request

    definitions = [{"name": f"site{index:04d}", "common_name": f"site{index:04d}.example.intra", "key": {"type": "ECC"},
                    "issuer": {"provider": "private_ca", "ca": "intranet", "profile": "private"}} for index in range(count)]
    started = time.perf_counter()
    run_request(store_path=str(store), definitions=definitions, passphrase=STORE_PASS, defaults=DEFAULTS)
    _ca.run_private_ca(store_path=str(store), name="intranet", passphrase=STORE_PASS, kind="intermediate",
                       key_spec={"type": "ECC"}, settings_options={"allowed_domains": ["example.intra"]})
    _issue.run_issue(store_path=str(store), definitions=definitions, defaults=DEFAULTS, ca_passphrase=STORE_PASS)
    return time.perf_counter() - started


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def shell(args: list[str], *, cwd: Path | None = None, env: dict | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(args)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def tree_bytes(root: Path) -> tuple[int, int]:
    files = size = 0
    for directory, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(directory, name)).st_size
    return files, size


def same_tree(left: Path, right: Path) -> bool:
    return subprocess.run(["diff", "-r", "-q", str(left), str(right)], capture_output=True, check=False).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="number of certificate definitions")
    parser.add_argument("--no-playbooks", action="store_true", help="skip the ansible-playbook runs")
    options = parser.parse_args()
    link_collection()
    from ansible_collections.certfleet.tls.plugins.module_utils._store import backup as _backup

    work = Path(tempfile.mkdtemp(prefix="certfleet-bench-backup-"))
    try:
        inventory = work / "inventory"
        (inventory / "group_vars" / "all").mkdir(parents=True)
        (inventory / "hosts.yml").write_text("all:\n  hosts: {}\n")
        (inventory / "group_vars" / "all" / "vars.yml").write_text(
            f"certfleet_store_passphrase: {STORE_PASS}\ncertfleet_backup_passphrase: {BACKUP_PASS}\n"
            f"certfleet_backup_dir: {work / 'playbook-backups'}\n")
        store = inventory / "cert_store"
        build = build_store(store, options.count)
        files, size = tree_bytes(store)
        print(f"store: {options.count} definitions, {files} files, {size / 1e6:.2f} MB (built in {build:.1f} s)", flush=True)

        kdf_seconds, _keys = timed(_backup.derive_keys, BACKUP_PASS, _backup.KdfParams(salt=os.urandom(16)))
        archive = work / "store.cfbackup"
        backup_seconds, _result = timed(_backup.backup_store, str(store), BACKUP_PASS, path=str(archive))
        restored = work / "restored"
        restore_seconds, _result = timed(_backup.restore_store, str(archive), str(restored), BACKUP_PASS)
        if not same_tree(store, restored):
            sys.exit("the restored tree differs from the store")
        archive_size = archive.stat().st_size

        tarball = work / "store.tar.gz"
        tar_seconds = shell(["tar", "czf", str(tarball), "-C", str(inventory), "cert_store"])
        untar_dir = work / "untar"
        untar_dir.mkdir()
        untar_seconds = shell(["tar", "xzf", str(tarball), "-C", str(untar_dir)])
        copy_seconds = shell(["cp", "-a", str(store), str(work / "copy")])
        tar_size = tarball.stat().st_size

        print(f"scrypt key derivation (N=2^17, r=8, p=1): {kdf_seconds:.2f} s (once per backup, once per restore)")
        print(f"certfleet backup   {backup_seconds:7.2f} s   archive {archive_size / 1e6:7.2f} MB")
        print(f"certfleet restore  {restore_seconds:7.2f} s   (authenticate whole, extract beside, verify, rename)")
        print(f"tar czf            {tar_seconds:7.2f} s   archive {tar_size / 1e6:7.2f} MB   (anchor)")
        print(f"tar xzf            {untar_seconds:7.2f} s   (anchor)")
        print(f"cp -a              {copy_seconds:7.2f} s   (anchor)")
        print(f"ratio backup  certfleet / tar czf   = {backup_seconds / tar_seconds:.2f}  "
              f"(without the KDF: {(backup_seconds - kdf_seconds) / tar_seconds:.2f})")
        print(f"ratio restore certfleet / tar xzf   = {restore_seconds / untar_seconds:.2f}  "
              f"(without the KDF: {(restore_seconds - kdf_seconds) / untar_seconds:.2f})")
        print(f"ratio size    certfleet / tar.gz    = {archive_size / tar_size:.2f}   certfleet / tree = {archive_size / size:.3f}")

        if not options.no_playbooks:
            playbook = str(Path(sys.executable).parent / "ansible-playbook")
            env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1")
            # The inventory file, not its directory: given the directory, Ansible parses every file below it as an
            # inventory source, the store's 8,000 files included (a minute here), which is not the backup's cost.
            hosts = str(inventory / "hosts.yml")
            backup_play = shell([playbook, "-i", hosts, "certfleet.tls.backup"], cwd=work, env=env)
            unchanged_play = shell([playbook, "-i", hosts, "certfleet.tls.backup"], cwd=work, env=env)
            shutil.rmtree(store)
            restore_play = shell([playbook, "-i", hosts, "certfleet.tls.restore"], cwd=work, env=env)
            if not same_tree(restored, store):
                sys.exit("the playbook-restored tree differs")
            print(f"playbook certfleet.tls.backup   {backup_play:7.2f} s   (re-run, content unchanged: {unchanged_play:.2f} s)")
            print(f"playbook certfleet.tls.restore  {restore_play:7.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
