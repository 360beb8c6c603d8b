"""The request playbook issues the example's private-CA definition unattended (seed 003 §2.9), end to end."""
from __future__ import annotations

import json
import shutil
import subprocess

from collection_link import REPO_ROOT
from playbook_helpers import recap

STORE_PASSPHRASE = "Store-Secret-Issue-2718"


def make_inventory(tmp_path):
    inventory = tmp_path / "inventory"
    shutil.copytree(REPO_ROOT / "examples" / "inventory", inventory, ignore=shutil.ignore_patterns("cert_store", "vault.yml"))
    (inventory / "group_vars" / "all" / "secrets.yml").write_text(f"certfleet_store_passphrase: {STORE_PASSPHRASE}\n")
    return inventory


def test_private_ca_definition_is_issued_and_verifies(tmp_path, ansible_playbook):
    inventory = make_inventory(tmp_path)
    check = ansible_playbook(["-i", str(inventory), "certfleet.tls.request", "--check", "--diff"], cwd=tmp_path)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    assert not (inventory / "cert_store").exists(), "check mode wrote the store"

    first = ansible_playbook(["-i", str(inventory), "certfleet.tls.request"], cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "== portal-example-intra: issued" in first.stdout
    assert "== private CA example-intranet: active (root CA created, intermediate CA created, CRL 1 generated)" in first.stdout
    store = inventory / "cert_store"
    portal = store / "certs" / "portal-example-intra"
    ca = store / "ca" / "example-intranet"
    verified = subprocess.run(["openssl", "verify", "-purpose", "sslserver", "-CAfile", str(ca / "root.pem"),
                               "-untrusted", str(portal / "chain.pem"), str(portal / "cert.pem")],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    text = subprocess.run(["openssl", "x509", "-in", str(portal / "cert.pem"), "-noout", "-text"], capture_output=True, text=True,
                          check=True).stdout
    assert "DNS:portal.example.intra, DNS:wiki.example.intra" in text and "CA:FALSE" in text
    assert "http://pki.example.intra/example-intranet.crl" in text and "TLS Web Server Authentication" in text
    state = json.loads((portal / "state.json").read_text())
    assert state["status"] == "issued" and state["certificate"]["ca"] == "example-intranet"
    events = [json.loads(line)["event"] for line in (portal / "history.jsonl").read_text().splitlines()]
    assert events == ["key_generated", "csr_generated", "issued"]

    second = ansible_playbook(["-i", str(inventory), "certfleet.tls.request"], cwd=tmp_path)
    assert second.returncode == 0 and recap(second.stdout)["changed"] == 0, second.stdout[-3000:]
    assert (portal / "cert.pem").read_bytes() == (portal / "fullchain.pem").read_bytes()[:len((portal / "cert.pem").read_bytes())]


def test_no_ca_secret_in_verbose_diff_output(tmp_path, ansible_playbook):
    inventory = make_inventory(tmp_path)
    run = ansible_playbook(["-i", str(inventory), "certfleet.tls.request", "-vvv", "--diff"], cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:]
    output = run.stdout + run.stderr
    secrets = [STORE_PASSPHRASE, "PRIVATE KEY"]
    for key in (inventory / "cert_store").rglob("key.pem"):
        secrets.extend(key.read_text().splitlines()[1:-1])
    assert len(secrets) > 20
    for secret in secrets:
        assert secret not in output, f"secret material leaked: {secret[:12]}..."
