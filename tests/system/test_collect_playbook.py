"""The collect and request playbooks end to end with ansible-playbook: the pending summary shows the CA's form,
files dropped in collect (--check --diff first), re-runs change nothing, a bad file fails naming it and changes nothing."""
from __future__ import annotations

import datetime
import json
import os
import shutil
import stat

import pytest

from collection_link import REPO_ROOT
from playbook_helpers import recap

from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import commercial_pki as cp
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

STORE_PASSPHRASE = "Store-Secret-Collect-2718"


@pytest.fixture(scope="module")
def commercial():
    return cp.commercial_ca()


def make_inventory(tmp_path, commercial):
    inventory = tmp_path / "inventory"
    shutil.copytree(REPO_ROOT / "examples" / "inventory", inventory, ignore=shutil.ignore_patterns("cert_store", "vault.yml"))
    (inventory / "group_vars" / "all" / "secrets.yml").write_text(f"certfleet_store_passphrase: {STORE_PASSPHRASE}\n")
    root = tmp_path / "ca-root.pem"
    root.write_bytes(commercial.root_pem)
    (inventory / "group_vars" / "all" / "zz-collect.yml").write_text(
        f"certfleet_collect_trust_anchors: ['{root}']\ncertfleet_collect_system_trust: false\n")
    return inventory


def snapshot(directory) -> dict:
    result = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            if stat.S_ISDIR(info.st_mode):
                content = b"dir"
            else:
                with open(path, "rb") as handle:
                    content = handle.read()
            result[os.path.relpath(path, directory)] = (stat.S_IMODE(info.st_mode), content)
    return result


def test_pending_then_collect_with_check_diff_and_idempotence(tmp_path, ansible_playbook, commercial):
    inventory = make_inventory(tmp_path, commercial)
    store = inventory / "cert_store"
    first = ansible_playbook(["-i", str(inventory), "certfleet.tls.request"], cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    # The CA's form order for the Cybertrust profile: CN, O, (OU), L, ST, C.
    www = out[out.index("== www-example-co-jp"):out.index("== shop-example-co-jp")]
    labels = ("Common Name (CN)", "Organization Name (O)", "Locality Name (L)", "State or Province Name (ST)", "Country Name (C)")
    positions = [www.index(label) for label in labels]
    assert positions == sorted(positions), www
    assert "The CA registers these names (SANs): www.example.co.jp, example.co.jp" in www
    assert "pending: 0 day(s), since 20" in www and "-----BEGIN CERTIFICATE REQUEST-----" in www

    # monitor (like verify) warns about definitions pending longer than the threshold, before its scan.
    monitor = ansible_playbook(["-i", str(inventory), "certfleet.tls.monitor", "-e", "certfleet_pending_warn_days=0",
                                "-e", "cert_monitor_fail_on_critical=false"], cwd=tmp_path)
    assert "WARNING: certificates pending at their CA" in monitor.stdout, monitor.stdout[-3000:]
    assert "shop-example-co-jp: pending at its CA for 0 day(s)" in monitor.stdout
    quiet = ansible_playbook(["-i", str(inventory), "certfleet.tls.monitor", "-e", "cert_monitor_fail_on_critical=false"],
                             cwd=tmp_path)
    assert "WARNING: certificates pending" not in quiet.stdout

    www_leaf = commercial.sign((store / "certs" / "www-example-co-jp" / "csr.pem").read_bytes())
    shop_leaf = commercial.sign((store / "certs" / "shop-example-co-jp" / "csr.pem").read_bytes())
    incoming = store / "incoming"
    incoming.mkdir()
    (incoming / "SureServer certificate (mail).txt").write_bytes(cp.mail_bundle(commercial.issuing, www_leaf))
    (incoming / "cert.cer").write_bytes(cp.der(shop_leaf))
    (incoming / "intermediate.der").write_bytes(cp.der(commercial.issuing))
    before = snapshot(store)

    check = ansible_playbook(["-i", str(inventory), "certfleet.tls.collect", "--check", "--diff"], cwd=tmp_path)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    assert recap(check.stdout)["changed"] == 1
    assert "SureServer certificate (mail).txt: collected for www-example-co-jp" in check.stdout
    assert "+www-example-co-jp: serial" in check.stdout
    assert snapshot(store) == before

    applied = ansible_playbook(["-i", str(inventory), "certfleet.tls.collect"], cwd=tmp_path)
    assert applied.returncode == 0 and recap(applied.stdout)["changed"] == 1, applied.stdout[-3000:]
    assert "chain:       /CN=Test SureServer CA G4" in applied.stdout
    assert sorted(path.name for path in incoming.iterdir()) == ["processed"]
    for name, leaf in (("www-example-co-jp", www_leaf), ("shop-example-co-jp", shop_leaf)):
        state = json.loads((store / "certs" / name / "state.json").read_text())
        digits = format(leaf.serial_number, "X")
        assert state["status"] == "issued" and state["certificate"]["serial"] == "0" * (len(digits) % 2) + digits
        events = [json.loads(line) for line in (store / "certs" / name / "history.jsonl").read_text().splitlines()]
        assert events[-1]["event"] == "collected" and len(events[-1]["source_file_sha256"]) == 64

    again = ansible_playbook(["-i", str(inventory), "certfleet.tls.collect"], cwd=tmp_path)
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0
    assert "Nothing to collect" in again.stdout

    # A bad file: the run fails naming it, the store is unchanged, the file stays where it was.
    expired = commercial.sign((store / "certs" / "www-example-co-jp" / "csr.pem").read_bytes(),
                              not_before=pb.utcnow() - datetime.timedelta(days=800))
    (incoming / "old renewal.pem").write_bytes(cp.pem(expired, commercial.issuing))
    before = snapshot(store)
    failed = ansible_playbook(["-i", str(inventory), "certfleet.tls.collect"], cwd=tmp_path)
    assert failed.returncode == 2
    assert "incoming/old renewal.pem: the certificate" in failed.stdout and "expired on" in failed.stdout
    assert "Traceback" not in failed.stdout + failed.stderr
    assert snapshot(store) == before


def test_the_request_playbook_collects_too(tmp_path, ansible_playbook, commercial):
    inventory = make_inventory(tmp_path, commercial)
    store = inventory / "cert_store"
    assert ansible_playbook(["-i", str(inventory), "certfleet.tls.request"], cwd=tmp_path).returncode == 0
    leaf = commercial.sign((store / "certs" / "www-example-co-jp" / "csr.pem").read_bytes())
    folder = store / "certs" / "www-example-co-jp" / "incoming"
    folder.mkdir()
    (folder / "www.p7b").write_bytes(cp.p7b(leaf, commercial.issuing))
    shop = commercial.sign((store / "certs" / "shop-example-co-jp" / "csr.pem").read_bytes())
    (store / "incoming").mkdir()
    (store / "incoming" / "shop.pfx").write_bytes(cp.pfx(shop, commercial.issuing, password=b"Pfx-Request-Pass-9"))
    run = ansible_playbook(["-i", str(inventory), "certfleet.tls.request", "-e", "certfleet_collect_pkcs12_password=Pfx-Request-Pass-9"],
                           cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert recap(run.stdout)["changed"] == 1
    assert "== www-example-co-jp: issued" in run.stdout
    assert "== collected certs/www-example-co-jp/incoming/www.p7b -> www-example-co-jp: collected" in run.stdout
    assert "== collected incoming/shop.pfx -> shop-example-co-jp: collected" in run.stdout
    assert "== shop-example-co-jp: issued" in run.stdout
    again = ansible_playbook(["-i", str(inventory), "certfleet.tls.request"], cwd=tmp_path)
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0
