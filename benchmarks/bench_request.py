#!/usr/bin/env python
"""Benchmark: certfleet.tls.request vs the community.crypto two-module playbook.

Both make an encrypted RSA-2048 key and a SHA-256 CSR per definition on the
controller. The anchor is community.crypto (openssl_privatekey + openssl_csr
looped over the definitions), measured in the same run. Prints wall times and
ratios for the first run (empty store) and the idempotent re-run.

    .cache/venv/bin/python benchmarks/bench_request.py --count 200
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PASSPHRASE = "benchmark-store-passphrase"

COMMUNITY_PLAYBOOK = """
- name: community.crypto equivalent of certfleet.tls.request
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Store directories
      ansible.builtin.file:
        path: "{{ store }}/{{ item.name }}"
        state: directory
        mode: "0750"
      loop: "{{ certfleet_certificates }}"
    - name: Keys
      community.crypto.openssl_privatekey:
        path: "{{ store }}/{{ item.name }}/key.pem"
        passphrase: "{{ certfleet_store_passphrase }}"
        cipher: auto
        size: 2048
      loop: "{{ certfleet_certificates }}"
    - name: CSRs
      community.crypto.openssl_csr:
        path: "{{ store }}/{{ item.name }}/csr.pem"
        privatekey_path: "{{ store }}/{{ item.name }}/key.pem"
        privatekey_passphrase: "{{ certfleet_store_passphrase }}"
        common_name: "{{ item.common_name }}"
        subject_alt_name: "{{ ['DNS:' ~ item.common_name] }}"
        country_name: "{{ certfleet_certificate_defaults.country_name }}"
        state_or_province_name: "{{ certfleet_certificate_defaults.state_or_province_name }}"
        locality_name: "{{ certfleet_certificate_defaults.locality_name }}"
        organization_name: "{{ certfleet_certificate_defaults.organization_name }}"
        digest: sha256
      loop: "{{ certfleet_certificates }}"
"""


def write_inventory(directory: Path, count: int) -> None:
    group_vars = directory / "group_vars" / "all"
    group_vars.mkdir(parents=True)
    (directory / "hosts.yml").write_text("all:\n  hosts: {}\n")
    lines = [
        f"certfleet_store_passphrase: {PASSPHRASE}",
        "certfleet_request_summary: false",
        "certfleet_certificate_defaults:",
        "  country_name: JP", "  state_or_province_name: Tokyo", "  locality_name: Minato-ku",
        "  organization_name: Example Co.,Ltd.",
        "certfleet_certificates:",
    ]
    for index in range(count):
        lines += [f"  - name: site{index:04d}", f"    common_name: site{index:04d}.example.co.jp",
                  "    issuer: {provider: manual, profile: cybertrust}"]
    (group_vars / "certificates.yml").write_text("\n".join(lines) + "\n")


def run(args: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(args)}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return elapsed, proc.stdout


def changed_count(output: str) -> int:
    match = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)", output)
    return int(match.group(1)) if match else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="number of certificate definitions")
    options = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    collections = REPO_ROOT / ".cache" / "collections"
    link = collections / "ansible_collections" / "certfleet" / "tls"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(REPO_ROOT, link)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1")
    work = Path(tempfile.mkdtemp(prefix="certfleet-bench-"))
    try:
        inventory = work / "inventory"
        write_inventory(inventory, options.count)
        (work / "community.yml").write_text(COMMUNITY_PLAYBOOK)
        playbook = str(bin_dir / "ansible-playbook")
        ours = [playbook, "-i", str(inventory), "certfleet.tls.request", "-e", f"certfleet_store_path={work / 'store-ours'}"]
        theirs = [playbook, "-i", str(inventory), str(work / "community.yml"), "-e", f"store={work / 'store-community'}"]
        figures = {}
        for label, command in (("certfleet", ours), ("community", theirs)):
            first, out1 = run(command, work, env)
            rerun, out2 = run(command, work, env)
            if changed_count(out2) != 0:
                sys.exit(f"{label}: the re-run reported changes")
            figures[label] = (first, rerun)
            print(f"{label:10s} first run {first:7.1f} s   idempotent re-run {rerun:7.1f} s", flush=True)
        ours_first, ours_rerun = figures["certfleet"]
        anchor_first, anchor_rerun = figures["community"]
        print(f"definitions: {options.count}")
        print(f"ratio first run  certfleet/community = {ours_first / anchor_first:.3f}  (target <= 0.5)")
        print(f"ratio re-run     certfleet/community = {ours_rerun / anchor_rerun:.3f}  (target <= 0.25)")
        print(f"per definition   certfleet {1000 * ours_first / options.count:.1f} ms / {1000 * ours_rerun / options.count:.1f} ms, "
              f"community {1000 * anchor_first / options.count:.1f} ms / {1000 * anchor_rerun / options.count:.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
