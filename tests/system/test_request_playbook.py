"""The request playbook end to end with ansible-playbook: idempotence, and no secret in -vvv --diff output."""
from __future__ import annotations

import json
import shutil
import stat
import subprocess

from collection_link import REPO_ROOT
from playbook_helpers import recap

STORE_PASSPHRASE = "Store-Secret-Unique-4711"
KEY_PASSPHRASE = "Key-Secret-Unique-0815"


def make_inventory(tmp_path):
    inventory = tmp_path / "inventory"
    shutil.copytree(REPO_ROOT / "examples" / "inventory", inventory, ignore=shutil.ignore_patterns("cert_store", "vault.yml"))
    (inventory / "group_vars" / "all" / "secrets.yml").write_text(f"certfleet_store_passphrase: {STORE_PASSPHRASE}\n")
    return inventory


def test_request_playbook_is_idempotent_and_verifiable(tmp_path, ansible_playbook):
    inventory = make_inventory(tmp_path)
    first = ansible_playbook(["-i", str(inventory), "certfleet.tls.request"], cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    # store_request, plus the example's private-CA definition: private_ca (creates the CA) and store_issue.
    assert recap(first.stdout)["changed"] == 3
    assert "-----BEGIN CERTIFICATE REQUEST-----" in first.stdout, "the submission summary shows the CSR to paste"
    second = ansible_playbook(["-i", str(inventory), "certfleet.tls.request"], cwd=tmp_path)
    assert second.returncode == 0 and recap(second.stdout)["changed"] == 0
    certs = inventory / "cert_store" / "certs"
    for name in ("www-example-co-jp", "shop-example-co-jp"):
        key = certs / name / "key.pem"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        subprocess.run(["openssl", "pkey", "-in", str(key), "-passin", f"pass:{STORE_PASSPHRASE}", "-noout"], check=True)
        verify = subprocess.run(["openssl", "req", "-in", str(certs / name / "csr.pem"), "-noout", "-verify"],
                                capture_output=True, text=True, check=True)
        assert "verify OK" in verify.stdout + verify.stderr
        events = [json.loads(line)["event"] for line in (certs / name / "history.jsonl").read_text().splitlines()]
        assert events == ["key_generated", "csr_generated"]


def test_bad_definition_fails_without_traceback_and_writes_nothing(tmp_path, ansible_playbook):
    inventory = make_inventory(tmp_path)
    (inventory / "group_vars" / "all" / "zz-bad.yml").write_text(
        "certfleet_certificates:\n  - name: bad\n    common_name: intranet\n    country_name: JPN\n"
        "    issuer: {provider: manual, profile: cybertrust}\n")
    run = ansible_playbook(["-i", str(inventory), "certfleet.tls.request"], cwd=tmp_path)
    assert run.returncode == 2
    assert "country_name (C): 'JPN' must be exactly two upper-case letters" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert not (inventory / "cert_store" / "certs" / "bad").exists()


SECRETS_PLAYBOOK = """
- name: Exercise every secret-bearing option with -vvv and --diff
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Encrypted key
      certfleet.tls.private_key:
        path: "{{ playbook_dir }}/k.pem"
        passphrase: "KEYPASS"
    - name: Re-encrypt
      certfleet.tls.private_key:
        path: "{{ playbook_dir }}/k.pem"
        current_passphrase: "KEYPASS"
        passphrase: "KEYPASS-2"
        format: pkcs1
    - name: CSR from key content
      certfleet.tls.csr:
        path: "{{ playbook_dir }}/c.csr"
        privatekey_content: "{{ lookup('ansible.builtin.file', playbook_dir ~ '/k.pem') }}"
        privatekey_passphrase: "KEYPASS-2"
        common_name: www.example.com
      diff: true
    - name: Decrypt
      certfleet.tls.private_key:
        path: "{{ playbook_dir }}/k.pem"
        current_passphrase: "KEYPASS-2"
""".replace("KEYPASS", KEY_PASSPHRASE)


def test_no_secret_in_verbose_diff_output(tmp_path, ansible_playbook):
    inventory = make_inventory(tmp_path)
    request = ansible_playbook(["-i", str(inventory), "certfleet.tls.request", "-vvv", "--diff"], cwd=tmp_path)
    (tmp_path / "secrets.yml").write_text(SECRETS_PLAYBOOK)
    modules = ansible_playbook(["-i", str(inventory), "secrets.yml", "-vvv", "--diff"], cwd=tmp_path)
    assert request.returncode == 0 and modules.returncode == 0, modules.stdout[-3000:]
    output = request.stdout + request.stderr + modules.stdout + modules.stderr
    key_lines = [line for line in (tmp_path / "k.pem").read_text().splitlines() if "-----" not in line]
    store_key_lines = (inventory / "cert_store" / "certs" / "www-example-co-jp" / "key.pem").read_text().splitlines()[1:-1]
    for secret in [STORE_PASSPHRASE, KEY_PASSPHRASE, KEY_PASSPHRASE + "-2", "PRIVATE KEY", *key_lines, *store_key_lines]:
        assert secret not in output, f"secret material leaked: {secret[:12]}..."
    assert "changed: [localhost]" in modules.stdout, "the playbook really ran its tasks"
