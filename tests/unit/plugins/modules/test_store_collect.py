# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""store_collect and store_issue's collect option, through the modules' main(): check mode, diff, apply,
idempotence, failures with the file named, and no password in the result."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request
from ansible_collections.certfleet.tls.plugins.modules import store_collect, store_issue
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import commercial_pki as cp

STORE_PASS = "Collect-Module-Pass-5"
PFX_PASS = "Pfx-Password-Unique-3141"
DEFAULTS = {"country_name": "JP", "state_or_province_name": "Tokyo", "locality_name": "Minato-ku",
            "organization_name": "Example Co.,Ltd."}
DEFINITIONS = [
    {"name": "www", "common_name": "www.example.co.jp", "issuer": {"provider": "manual", "profile": "cybertrust"}},
    {"name": "portal", "common_name": "portal.example.intra", "key": {"type": "ECC"},
     "issuer": {"provider": "private_ca", "ca": "intranet"}},
]


@pytest.fixture(scope="module")
def pki():
    return cp.commercial_ca()


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "cert_store"
    run_request(store_path=str(path), definitions=DEFINITIONS, passphrase=STORE_PASS, defaults=DEFAULTS)
    return path


def args(store, pki, **extra):
    return dict({"store_path": str(store), "definitions": DEFINITIONS, "defaults": DEFAULTS,
                 "trust_anchors": [pki.root.pem.decode()], "system_trust": False}, **extra)


def drop(store, name, data):
    os.makedirs(layout.incoming_dir(str(store)), exist_ok=True)
    path = os.path.join(layout.incoming_dir(str(store)), name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def test_check_apply_check_apply(run_module, store, pki):
    leaf = pki.sign((store / "certs" / "www" / "csr.pem").read_bytes())
    path = drop(store, "order 4711.pfx", cp.pfx(leaf, pki.issuing, password=PFX_PASS.encode()))
    options = args(store, pki, pkcs12_passwords={"order 4711.pfx": PFX_PASS}, _ansible_diff=True)
    check = run_module(store_collect.main, dict(options, _ansible_check_mode=True))
    assert check["changed"] and check["collected"][0]["file"] == "incoming/order 4711.pfx"
    assert check["moved"] == [] and os.path.exists(path)
    assert "www: (no certificate)" in check["diff"]["before"] and "serial" in check["diff"]["after"]
    applied = run_module(store_collect.main, options)
    assert applied["changed"] and applied["certificates"][0]["name"] == "www"
    assert len(applied["moved"]) == 1 and applied["moved"][0].startswith(layout.processed_dir(str(store)))
    assert not os.path.exists(path)
    again_check = run_module(store_collect.main, dict(options, _ansible_check_mode=True))
    again = run_module(store_collect.main, options)
    assert not again_check["changed"] and not again["changed"]
    assert PFX_PASS not in json.dumps([check, applied, again])
    state = json.loads((store / "certs" / "www" / "state.json").read_text())
    assert state["status"] == "issued"


def test_failure_names_the_file_and_lists_every_problem(run_module, store, pki):
    drop(store, "empty.cer", b"")
    drop(store, "ca.crt", cp.pem(pki.issuing))
    result = run_module(store_collect.main, args(store, pki))
    assert result["failed"]
    assert any(error.startswith("incoming/empty.cer: the file is empty") for error in result["errors"])
    assert any(error.startswith("incoming/ca.crt: holds only CA certificate(s)") for error in result["errors"])
    assert "Traceback" not in json.dumps(result)


def test_pending_lists_the_form_and_the_csr(run_module, store, pki):
    result = run_module(store_collect.main, args(store, pki))
    assert not result["changed"] and result["collected"] == []
    pending = result["pending"][0]
    assert pending["name"] == "www" and [row["field"] for row in pending["form"]] == ["CN", "O", "L", "ST", "C"]
    assert pending["subject_alt_name"] == ["www.example.co.jp", "example.co.jp"]


def test_store_issue_collects_with_its_collect_option(run_module, store, pki):
    leaf = pki.sign((store / "certs" / "www" / "csr.pem").read_bytes())
    drop(store, "www.p7b", cp.p7b(leaf, pki.issuing))
    manual_only = [DEFINITIONS[0]]
    result = run_module(store_issue.main, {"store_path": str(store), "definitions": manual_only, "defaults": DEFAULTS,
                                           "collect": {"trust_anchors": [pki.root.pem.decode()], "system_trust": False}})
    assert result["changed"] and result["certificates"][0]["name"] == "www"
    assert result["collected"][0]["definition"] == "www" and result["pending"] == []
    events = [json.loads(line) for line in (store / "certs" / "www" / "history.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "collected" and events[-1]["provider"] == "manual"
