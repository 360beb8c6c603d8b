#!/usr/bin/env python
"""Benchmark: certfleet.tls.store_import of N certificates from files vs a community.crypto loop.

N server certificates with their keys, under one issuing CA, are written in mixed formats (a fifth
each): PEM certificate + chain with a PEM key, DER certificate with a DER key, PKCS#7 (.p7b) with a
PEM key, PKCS#12 (.pfx), Java keystore (.jks). certfleet.tls.store_import imports the whole directory
into the store (keys re-encrypted, chains built, state, history, CSR, snippet) in one task.

The anchor, measured in the same run, is the same work done with community.crypto in a loop, per
certificate: x509_certificate_info (read it), certificate_complete_chain (order the chain to the root),
copy (full chain and key into a store directory). It is given PEM files (community.crypto reads
neither PKCS#12 nor JKS in these modules), which only makes it faster. Both run through
ansible-playbook; the idempotent re-run is timed for both too.

On a loaded machine the anchor takes ~10 s per certificate (five module runs each), so
``--anchor-sample N`` runs it on the first N certificates only and extrapolates linearly: the start-up
of ansible-playbook (an empty play, measured) plus N's per-certificate time multiplied out. Every loop
item is one independent module run, so the time is linear in the count.

    .cache/venv/bin/python benchmarks/bench_import.py --count 500
    .cache/venv/bin/python benchmarks/bench_import.py --count 500 --anchor-sample 50
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

REPO_ROOT = Path(__file__).resolve().parents[1]
PASSPHRASE = "benchmark-store-passphrase"
FILE_PASSWORD = "benchmark-file-password"

OURS_PLAYBOOK = """
- name: certfleet.tls.store_import of a directory
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Import every file of the directory
      certfleet.tls.store_import:
        store_path: "{{ store }}"
        passphrase: "%(passphrase)s"
        directory: "{{ source }}"
        passphrases: ["%(password)s"]
        snippet_path: "{{ snippet }}"
        catalog: false
""" % {"passphrase": PASSPHRASE, "password": FILE_PASSWORD}

COMMUNITY_PLAYBOOK = """
- name: community.crypto equivalent of certfleet.tls.store_import
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Store directories
      ansible.builtin.file:
        path: "{{ store }}/{{ item }}"
        state: directory
        mode: "0750"
      loop: "{{ names }}"
    - name: Read each certificate
      community.crypto.x509_certificate_info:
        path: "{{ source }}/{{ item }}.crt"
      loop: "{{ names }}"
      register: info
    - name: Complete each chain
      community.crypto.certificate_complete_chain:
        input_chain: "{{ lookup('ansible.builtin.file', source ~ '/' ~ item ~ '.crt') }}"
        intermediate_certificates: ["{{ source }}/issuing.pem"]
        root_certificates: ["{{ source }}/root.pem"]
      loop: "{{ names }}"
      register: chains
    - name: Copy the full chain into the store
      ansible.builtin.copy:
        content: "{{ item.complete_chain[:-1] | join('') }}"
        dest: "{{ store }}/{{ item.item }}/fullchain.pem"
        mode: "0644"
      loop: "{{ chains.results }}"
      loop_control:
        label: "{{ item.item }}"
    - name: Copy the key into the store
      ansible.builtin.copy:
        src: "{{ source }}/{{ item }}.key"
        dest: "{{ store }}/{{ item }}/key.pem"
        mode: "0600"
      loop: "{{ names }}"
"""


EMPTY_PLAYBOOK = """
- name: Empty play (ansible-playbook start-up)
  hosts: localhost
  connection: local
  gather_facts: false
  tasks: []
"""


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(subject: str, key, *, issuer_name: str, issuer_key, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer_name))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=300))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def write_sources(mixed: Path, plain: Path, count: int) -> list[str]:
    """N certificates in mixed formats (certfleet) and the same as PEM files (community.crypto)."""
    import jks  # pylint: disable=import-outside-toplevel  # pyjks writes the keystores, as keytool would

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _certificate("Bench Root CA", root_key, issuer_name="Bench Root CA", issuer_key=root_key, ca=True)
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    issuing = _certificate("Bench Issuing CA", issuing_key, issuer_name="Bench Root CA", issuer_key=root_key, ca=True)
    (plain / "root.pem").write_bytes(_pem(root))
    (plain / "issuing.pem").write_bytes(_pem(issuing))
    names = []
    no_encryption = serialization.NoEncryption()
    for index in range(count):
        name = f"site{index:04d}"
        names.append(name)
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = _certificate(f"{name}.example.co.jp", key, issuer_name="Bench Issuing CA", issuer_key=issuing_key, ca=False)
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, no_encryption)
        (plain / f"{name}.crt").write_bytes(_pem(leaf) + _pem(issuing))
        (plain / f"{name}.key").write_bytes(key_pem)
        kind = index % 5
        if kind == 0:
            (mixed / f"{name}.crt").write_bytes(_pem(leaf) + _pem(issuing))
            (mixed / f"{name}.key").write_bytes(key_pem)
        elif kind == 1:
            (mixed / f"{name}.cer").write_bytes(leaf.public_bytes(serialization.Encoding.DER))
            (mixed / f"{name}.der.key").write_bytes(key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                                      no_encryption))
            if index == 1:
                (mixed / "issuing.cer").write_bytes(issuing.public_bytes(serialization.Encoding.DER))
        elif kind == 2:
            (mixed / f"{name}.p7b").write_bytes(pkcs7.serialize_certificates([leaf, issuing], serialization.Encoding.DER))
            (mixed / f"{name}.pem.key").write_bytes(key_pem)
        elif kind == 3:
            (mixed / f"{name}.pfx").write_bytes(pkcs12.serialize_key_and_certificates(
                name.encode(), key, leaf, [issuing], serialization.BestAvailableEncryption(FILE_PASSWORD.encode())))
        else:
            der_key = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, no_encryption)
            entry = jks.PrivateKeyEntry.new(name, [leaf.public_bytes(serialization.Encoding.DER),
                                                   issuing.public_bytes(serialization.Encoding.DER)], der_key, "pkcs8")
            jks.KeyStore.new("jks", [entry]).save(str(mixed / f"{name}.jks"), FILE_PASSWORD)
    return names


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
    parser.add_argument("--count", type=int, default=500, help="number of certificates")
    parser.add_argument("--anchor-sample", type=int, default=0,
                        help="run the community.crypto anchor on this many certificates and extrapolate (default: all)")
    options = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    collections = REPO_ROOT / ".cache" / "collections"
    link = collections / "ansible_collections" / "certfleet" / "tls"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(REPO_ROOT, link)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_PIPELINING="1")
    work = Path(tempfile.mkdtemp(prefix="certfleet-bench-import-"))
    try:
        mixed, plain = work / "mixed", work / "plain"
        mixed.mkdir()
        plain.mkdir()
        started = time.perf_counter()
        names = write_sources(mixed, plain, options.count)
        print(f"wrote {options.count} certificates in 5 formats ({len(os.listdir(mixed))} files) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        (work / "ours.yml").write_text(OURS_PLAYBOOK)
        (work / "community.yml").write_text(COMMUNITY_PLAYBOOK)
        sample = options.anchor_sample if 0 < options.anchor_sample < options.count else options.count
        (work / "names.yml").write_text("names:\n" + "".join(f"  - {name}\n" for name in names[:sample]))
        (work / "empty.yml").write_text(EMPTY_PLAYBOOK)
        startup, _out = run([str(bin_dir / "ansible-playbook"), "-i", "localhost,", str(work / "empty.yml")], work, env)
        print(f"ansible-playbook start-up (empty play) {startup:.1f} s", flush=True)
        playbook = str(bin_dir / "ansible-playbook")
        ours = [playbook, "-i", "localhost,", str(work / "ours.yml"), "-e", f"store={work / 'store-ours'}", "-e", f"source={mixed}",
                "-e", f"snippet={work / 'imported.yml'}"]
        theirs = [playbook, "-i", "localhost,", str(work / "community.yml"), "-e", f"store={work / 'store-community'}",
                  "-e", f"source={plain}", "-e", "@" + str(work / "names.yml")]
        figures = {}
        for label, command in (("certfleet", ours), ("community", theirs)):
            first, _out1 = run(command, work, env)
            rerun, out2 = run(command, work, env)
            if changed_count(out2) != 0:
                sys.exit(f"{label}: the re-run reported changes")
            if label == "community" and sample < options.count:
                print(f"{label:10s} on {sample} certificates: first run {first:7.1f} s   idempotent re-run {rerun:7.1f} s", flush=True)
                first = startup + (first - startup) * options.count / sample
                rerun = startup + (rerun - startup) * options.count / sample
                label_note = f" (extrapolated from {sample})"
            else:
                label_note = ""
            figures[label] = (first, rerun)
            print(f"{label:10s} first run {first:7.1f} s   idempotent re-run {rerun:7.1f} s{label_note}", flush=True)
        stored = len(os.listdir(work / "store-ours" / "certs"))
        if stored != options.count:
            sys.exit(f"certfleet imported {stored} definitions, not {options.count}")
        ours_first, ours_rerun = figures["certfleet"]
        anchor_first, anchor_rerun = figures["community"]
        ratio_first, ratio_rerun = ours_first / anchor_first, ours_rerun / anchor_rerun
        print(f"certificates: {options.count} (certfleet: mixed PEM/DER/P7B/PFX/JKS; community.crypto: PEM)")
        print(f"ratio first run  certfleet/community = {ratio_first:.3f}  (target <= 0.1) {'MET' if ratio_first <= 0.1 else 'NOT MET'}")
        print(f"ratio re-run     certfleet/community = {ratio_rerun:.3f}  (target <= 0.1) {'MET' if ratio_rerun <= 0.1 else 'NOT MET'}")
        print(f"per certificate  certfleet {1000 * ours_first / options.count:.1f} ms / {1000 * ours_rerun / options.count:.1f} ms, "
              f"community {1000 * anchor_first / options.count:.1f} ms / {1000 * anchor_rerun / options.count:.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
