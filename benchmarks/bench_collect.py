#!/usr/bin/env python
"""Benchmark: certfleet.tls.collect of N dropped certificates vs the same work with community.crypto in a loop.

Setup (not timed): a store with N manual definitions (store_request's engine), a test CA that signs
their CSRs, and the certificates dropped into incoming/ in mixed formats (PEM bundle with the intermediate
first, DER leaf beside a shared DER intermediate, PKCS#7, PKCS#12, odd file names).

Timed, in the same run:
  certfleet  ansible-playbook certfleet.tls.collect: every file matched by public key, checked (key, names,
             profile, validity, chain to the CA's root), installed through the store (state, history,
             archive), moved to incoming/processed/.
  community  a playbook looping over the same certificates with community.crypto.x509_certificate_info +
             community.crypto.certificate_complete_chain + ansible.builtin.copy (the full chain into the
             store). It reads the PEM form of each certificate (the loop has no PKCS#7 / PKCS#12 reader), does
             no matching by key and no store bookkeeping: less work than the anchor it is compared with.

    .cache/venv/bin/python benchmarks/bench_collect.py --count 500
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
PASSPHRASE = "benchmark-collect-passphrase"
PFX_PASSWORD = "benchmark-pfx"

COMMUNITY_PLAYBOOK = """
- name: community.crypto equivalent of certfleet.tls.collect
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Read every certificate
      community.crypto.x509_certificate_info:
        path: "{{ item.leaf }}"
      loop: "{{ bench_certificates }}"
      register: bench_info
    - name: Build every chain
      community.crypto.certificate_complete_chain:
        input_chain: "{{ lookup('ansible.builtin.file', item.leaf) }}"
        intermediate_certificates: ["{{ bench_intermediates }}"]
        root_certificates: ["{{ bench_root }}"]
      loop: "{{ bench_certificates }}"
      register: bench_chains
    - name: Install every full chain
      ansible.builtin.copy:
        content: "{{ item.complete_chain | join('') }}"
        dest: "{{ bench_store }}/{{ item.item.name }}.pem"
        mode: "0644"
      loop: "{{ bench_chains.results }}"
      loop_control:
        label: "{{ item.item.name }}"
"""


def setup(work: Path, count: int) -> dict:
    """Store, CA, drop-ins and the community loop's inputs; returns paths."""
    sys.path.insert(0, str(REPO_ROOT / ".cache" / "collections"))
    # pylint: disable=import-outside-toplevel
    from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request
    from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import commercial_pki as cp

    defaults = {"country_name": "JP", "state_or_province_name": "Tokyo", "locality_name": "Minato-ku",
                "organization_name": "Example Co.,Ltd."}
    definitions = [{"name": f"site{index:04d}", "common_name": f"site{index:04d}.example.co.jp",
                    "key": {"type": "ECC"}, "issuer": {"provider": "manual", "profile": "cabf"}} for index in range(count)]
    store = work / "store"
    run_request(store_path=str(store), definitions=definitions, passphrase=PASSPHRASE, defaults=defaults)
    ca = cp.commercial_ca()
    root = work / "root.pem"
    root.write_bytes(ca.root.pem)
    intermediates = work / "intermediates"
    intermediates.mkdir()
    (intermediates / "issuing.pem").write_bytes(ca.issuing.pem)
    leaves_dir = work / "leaves"
    leaves_dir.mkdir()
    incoming = store / "incoming"
    incoming.mkdir()
    (incoming / "intermediate (download).cer").write_bytes(cp.der(ca.issuing))
    community = []
    for index, definition in enumerate(definitions):
        name = definition["name"]
        leaf = ca.sign((store / "certs" / name / "csr.pem").read_bytes())
        kind = index % 5
        if kind == 0:
            (incoming / f"{name} mail.txt").write_bytes(cp.mail_bundle(ca.issuing, leaf))
        elif kind == 1:
            (incoming / f"ServerCertificate-{index}.cer").write_bytes(cp.der(leaf))
        elif kind == 2:
            (incoming / f"{name}.p7b").write_bytes(cp.p7b(leaf, ca.issuing))
        elif kind == 3:
            (incoming / f"order {index}.pfx").write_bytes(cp.pfx(leaf, ca.issuing, password=PFX_PASSWORD.encode()))
        else:
            (incoming / f"{name}").write_bytes(cp.pem(ca.issuing, leaf))
        path = leaves_dir / f"{name}.pem"
        path.write_bytes(cp.pem(leaf))
        community.append({"name": name, "leaf": str(path)})
    inventory = work / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text("all:\n  hosts: {}\n")
    import yaml  # pylint: disable=import-outside-toplevel
    (inventory / "group_vars" / "all" / "certificates.yml").write_text(yaml.safe_dump({
        "certfleet_certificate_defaults": defaults,
        "certfleet_certificates": definitions,
        "certfleet_collect_trust_anchors": [str(root)],
        "certfleet_collect_system_trust": False,
        "certfleet_collect_pkcs12_password": PFX_PASSWORD,
        "bench_certificates": community,
        "bench_intermediates": str(intermediates),
        "bench_root": str(root),
        "bench_store": str(work / "store-community"),
    }))
    (work / "store-community").mkdir()
    return {"store": store, "inventory": inventory}


def run(args: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(args)}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return elapsed, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="number of dropped certificates")
    options = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    collections = REPO_ROOT / ".cache" / "collections"
    link = collections / "ansible_collections" / "certfleet" / "tls"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(REPO_ROOT, link)
    site_packages = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=f"{collections}:{site_packages}", ANSIBLE_NOCOLOR="1")
    work = Path(tempfile.mkdtemp(prefix="certfleet-bench-collect-"))
    try:
        started = time.perf_counter()
        paths = setup(work, options.count)
        print(f"setup (store, CA, {options.count} drop-ins in 5 formats) {time.perf_counter() - started:.1f} s", flush=True)
        playbook = str(bin_dir / "ansible-playbook")
        ours, out = run([playbook, "-i", str(paths["inventory"]), "certfleet.tls.collect",
                         "-e", f"certfleet_store_path={paths['store']}"], work, env)
        collected = len(re.findall(r": collected for site\d{4}", out))
        if collected != options.count:
            sys.exit(f"certfleet collected {collected} of {options.count}\n{out[-3000:]}")
        print(f"certfleet  collect {ours:7.1f} s   ({collected} certificates, 1 intermediate file)", flush=True)
        (work / "community.yml").write_text(COMMUNITY_PLAYBOOK)
        theirs, _out = run([playbook, "-i", str(paths["inventory"]), str(work / "community.yml")], work, env)
        print(f"community  loop    {theirs:7.1f} s   (x509_certificate_info + certificate_complete_chain + copy)", flush=True)
        print(f"certificates: {options.count}")
        print(f"ratio certfleet/community = {ours / theirs:.3f}  (target <= 0.1)")
        print(f"per certificate certfleet {1000 * ours / options.count:.1f} ms, community {1000 * theirs / options.count:.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
