# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unattended issuance from the store: three phases, idempotence, renewal window, archive, history."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca

from ansible_collections.certfleet.tls.plugins.module_utils._issuers import issue as _store_issue
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import read_history
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
STORE_PASS = "Store-Unit-Pass-3"
DEFAULTS = {"country_name": "JP", "state_or_province_name": "Tokyo", "locality_name": "Minato-ku", "organization_name": "Example Co.,Ltd."}
DEFINITIONS = [
    {"name": "portal", "common_name": "portal.example.intra", "subject_alt_name": ["wiki.example.intra"],
     "key": {"type": "ECC"}, "issuer": {"provider": "private_ca", "ca": "intranet", "profile": "private"}},
    {"name": "api", "common_name": "api.example.intra", "key": {"type": "ECC"}, "renew_before_days": 10,
     "issuer": {"provider": "private_ca", "ca": "intranet", "validity_days": 90}},
    {"name": "www", "common_name": "www.example.co.jp", "issuer": {"provider": "manual", "profile": "cybertrust"}},
]


def request(store, definitions=None):
    return run_request(store_path=str(store), definitions=definitions or DEFINITIONS, passphrase=STORE_PASS, defaults=DEFAULTS)


def issue(store, definitions=None, **kwargs):
    kwargs.setdefault("ca_passphrase", STORE_PASS)
    return _store_issue.run_issue(store_path=str(store), definitions=definitions or DEFINITIONS, defaults=DEFAULTS, **kwargs)


def make_ca(store, kind="intermediate", name="intranet"):
    return _ca.run_private_ca(store_path=str(store), name=name, passphrase=STORE_PASS, kind=kind, key_spec={"type": "ECC"},
                              settings_options={"allowed_domains": ["example.intra"]})


def snapshot(directory) -> dict:
    result = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                result[path] = handle.read()
    return result


@pytest.fixture
def store(tmp_path):
    request(tmp_path)
    make_ca(tmp_path)
    return tmp_path


def test_check_mode_before_anything_exists_writes_nothing(tmp_path):
    result = issue(tmp_path, check_mode=True)
    assert result["changed"]
    assert [c["actions"] for c in result["certificates"]] == [["certificate issued (after store_request generates the CSR)"]] * 2
    assert not tmp_path.joinpath("certs").exists() and not tmp_path.joinpath("ca").exists()
    request(tmp_path)
    result = issue(tmp_path, check_mode=True)
    assert result["certificates"][0]["actions"] == ["certificate issued (after CA intranet is created)"]


def test_check_apply_check_apply(store):
    before = snapshot(store)
    check = issue(store, check_mode=True)
    assert check["changed"] and snapshot(store) == before
    first = issue(store)
    assert first["changed"] and [c["name"] for c in first["certificates"]] == ["portal", "api"], "manual definitions are left alone"
    assert [c["status"] for c in first["certificates"]] == ["issued", "issued"]
    after = snapshot(store)
    assert not issue(store, check_mode=True)["changed"]
    second = issue(store)
    assert not second["changed"] and snapshot(store) == after
    assert [c["serial"] for c in second["certificates"]] == [c["serial"] for c in first["certificates"]]


def test_files_state_history_and_openssl_verify(store):
    result = issue(store)
    portal = store / "certs" / "portal"
    ca_dir = store / "ca" / "intranet"
    verified = subprocess.run([OPENSSL, "verify", "-purpose", "sslserver", "-CAfile", str(ca_dir / "root.pem"),
                               "-untrusted", str(portal / "chain.pem"), str(portal / "cert.pem")],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stderr
    assert (portal / "fullchain.pem").read_bytes() == (portal / "cert.pem").read_bytes() + (portal / "chain.pem").read_bytes()
    assert (portal / "chain.pem").read_bytes() == (ca_dir / "cert.pem").read_bytes()
    state = json.loads((portal / "state.json").read_text())
    entry = result["certificates"][0]
    assert state["status"] == "issued"
    assert {k: state["certificate"][k] for k in ("serial", "sha256", "sha1", "not_after", "ca")} == \
        {"serial": entry["serial"], "sha256": entry["sha256"], "sha1": entry["sha1"], "not_after": entry["not_after"], "ca": "intranet"}
    events = read_history(str(portal))
    assert [e["event"] for e in events] == ["key_generated", "csr_generated", "issued"]
    assert events[-1]["serial"] == entry["serial"] and events[-1]["ca"] == "intranet"
    index = json.loads((ca_dir / "index.json").read_text())
    assert index["certificates"][entry["serial"]]["requester"] == "portal"
    assert (ca_dir / "issued" / f"{entry['serial']}.pem").read_bytes() == (portal / "cert.pem").read_bytes()
    # issuer.validity_days asks for less than the CA's maximum.
    api = result["certificates"][1]
    days = (datetime.datetime.fromisoformat(api["not_after"].replace("Z", "+00:00")) - datetime.datetime.now(datetime.timezone.utc)).days
    assert 88 <= days <= 90
    # store_request keeps the issued status on its idempotent re-run.
    assert [c["status"] for c in request(store)["certificates"]] == ["issued", "issued", "pending_issuance"]


def _not_after(entry) -> datetime.datetime:
    return datetime.datetime.fromisoformat(entry["not_after"].replace("Z", "+00:00"))


def test_renewal_window_reissues_and_archives(store):
    portal_only = DEFINITIONS[:1]
    first = issue(store, portal_only)
    serial = first["certificates"][0]["serial"]
    not_after = _not_after(first["certificates"][0])
    assert not issue(store, portal_only, now=not_after - datetime.timedelta(days=31))["changed"]
    renewed = issue(store, portal_only, now=not_after - datetime.timedelta(days=29))
    portal = renewed["certificates"][0]
    assert portal["changed"] and portal["serial"] != serial
    assert "within the renewal window of 30 days" in portal["actions"][0]
    assert (store / "certs" / "portal" / "archive" / serial / "cert.pem").exists()
    events = [e["event"] for e in read_history(str(store / "certs" / "portal"))]
    assert events[-2:] == ["archived", "issued"]


def test_renew_before_days_of_the_definition(store):
    api_only = DEFINITIONS[1:2]
    first = issue(store, api_only)
    not_after = _not_after(first["certificates"][0])
    assert not issue(store, api_only, now=not_after - datetime.timedelta(days=11))["changed"]
    assert issue(store, api_only, now=not_after - datetime.timedelta(days=9))["changed"]


def test_new_csr_gets_a_new_certificate(store):
    first = issue(store)
    changed = [dict(DEFINITIONS[0], subject_alt_name=["wiki.example.intra", "docs.example.intra"])] + DEFINITIONS[1:]
    request(store, changed)
    second = issue(store, changed)
    assert second["certificates"][0]["serial"] != first["certificates"][0]["serial"]
    assert second["certificates"][0]["subject_alt_name"] == ["portal.example.intra", "wiki.example.intra", "docs.example.intra"]
    assert "subject alternative names changed" in second["certificates"][0]["actions"][0]
    assert not second["certificates"][1]["changed"]


def test_revoked_certificate_is_replaced(store):
    first = issue(store)
    serial = first["certificates"][0]["serial"]
    _ca.run_private_ca(store_path=str(store), name="intranet", passphrase=STORE_PASS,
                       revocations=[{"serial": serial, "reason": "key_compromise"}])
    second = issue(store)
    assert second["certificates"][0]["serial"] != serial
    assert "revoked" in second["certificates"][0]["actions"][0]


def test_deleted_cert_is_restored_from_the_ca(store):
    first = issue(store)
    (store / "certs" / "portal" / "cert.pem").unlink()
    second = issue(store)
    assert second["certificates"][0]["serial"] == first["certificates"][0]["serial"]
    assert second["certificates"][0]["actions"][0].startswith("certificate restored (no certificate yet; CA intranet already issued")
    assert [e["event"] for e in read_history(str(store / "certs" / "portal"))][-1] == "restored"


def test_root_ca_leaves_chain_empty(tmp_path):
    request(tmp_path)
    make_ca(tmp_path, kind="root")
    issue(tmp_path)
    portal = tmp_path / "certs" / "portal"
    assert (portal / "chain.pem").read_bytes() == b""
    assert (portal / "fullchain.pem").read_bytes() == (portal / "cert.pem").read_bytes()
    verified = subprocess.run([OPENSSL, "verify", "-CAfile", str(tmp_path / "ca" / "intranet" / "root.pem"), str(portal / "cert.pem")],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stderr


FAILURES = [
    ("policy", True, lambda defs: [dict(defs[0], subject_alt_name=["www.example.com"])] + defs[1:],
     ["1 definition(s) cannot be issued, nothing was written", "portal:", "'www.example.com' is outside the CA's allowed domains"]),
    ("no-ca-name", False, lambda defs: [dict(defs[0], issuer={"provider": "private_ca"})] + defs[1:],
     ["portal: issuer.ca None must name a private CA"]),
    ("bad-renew", False, lambda defs: [dict(defs[0], renew_before_days="soon")] + defs[1:], ["renew_before_days 'soon' is not a number"]),
    ("missing-ca", False, lambda defs: [dict(defs[0], issuer={"provider": "private_ca", "ca": "other"})] + defs[1:],
     ["CA other: not found", "create it with certfleet.tls.private_ca"]),
]


@pytest.mark.parametrize("new_csr, change, fragments", [c[1:] for c in FAILURES], ids=[c[0] for c in FAILURES])
def test_failures_write_nothing(store, new_csr, change, fragments):
    definitions = change([dict(d) for d in DEFINITIONS])
    if new_csr:
        request(store, definitions)  # the private profile accepts www.example.com; the CA's policy does not
    before = snapshot(store)
    with pytest.raises(CertfleetError) as caught:
        issue(store, definitions)
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert snapshot(store) == before


def test_no_csr_yet_fails_outside_check_mode(tmp_path):
    make_ca(tmp_path)
    with pytest.raises(_store_issue.IssueFailures) as caught:
        issue(tmp_path)
    assert set(caught.value.failures) == {"portal", "api"}
    assert "run certfleet.tls.store_request (the request playbook) first" in str(caught.value)


def test_passphrases(store):
    with pytest.raises(CertfleetError, match="CA intranet: key.pem \\(CA passphrase\\): wrong passphrase"):
        issue(store, ca_passphrase="wrong")
    with pytest.raises(CertfleetError, match="no passphrase for CA intranet"):
        issue(store, ca_passphrase=None)
    assert issue(store, ca_passphrase="wrong", ca_passphrases={"intranet": STORE_PASS})["changed"]


def test_pending_subordinate_ca_is_reported(tmp_path):
    request(tmp_path)
    _ca.run_private_ca(store_path=str(tmp_path), name="intranet", passphrase=STORE_PASS, kind="subordinate", key_spec={"type": "ECC"})
    with pytest.raises(CertfleetError, match="waiting for its certificate from the parent CA"):
        issue(tmp_path)
