"""The store engine: three phases, idempotence without decryption, history, archive."""
from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._store import request as _store_request
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import read_history
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import PolicyViolations, run_request
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

DEFAULTS = {"country_name": "JP", "state_or_province_name": "Tokyo", "locality_name": "Minato-ku", "organization_name": "Example Co.,Ltd."}
DEFINITIONS = [
    {"name": "www", "common_name": "www.example.co.jp", "issuer": {"profile": "cybertrust"}},
    {"name": "api", "common_name": "api.example.co.jp", "key": {"type": "ECC"}, "issuer": {"profile": "cabf"}},
]


def request(store, definitions=None, passphrase="store-pass", **kwargs):
    return run_request(store_path=str(store), definitions=definitions if definitions is not None else DEFINITIONS,
                       passphrase=passphrase, defaults=DEFAULTS, **kwargs)


def test_first_run_then_idempotent(tmp_path):
    first = request(tmp_path)
    assert first["changed"]
    assert [c["actions"] for c in first["certificates"]] == [["key generated", "csr generated"]] * 2
    www = tmp_path / "certs" / "www"
    assert stat.S_IMODE(os.stat(www / "key.pem").st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in (www / "key.pem").read_bytes()
    assert [e["event"] for e in read_history(str(www))] == ["key_generated", "csr_generated"]
    state = json.loads((www / "state.json").read_text())
    assert state["status"] == "pending_issuance" and state["csr"]["subject_alt_name"] == ["www.example.co.jp", "example.co.jp"]

    second = request(tmp_path)
    assert not second["changed"]
    assert [c["csr"] for c in second["certificates"]] == [c["csr"] for c in first["certificates"]]
    assert len(read_history(str(www))) == 2


def test_rerun_does_not_decrypt_every_key(tmp_path, monkeypatch):
    request(tmp_path)
    calls = []
    real = _store_request.load_private_key
    monkeypatch.setattr(_store_request, "load_private_key", lambda *a, **k: calls.append(1) or real(*a, **k))
    request(tmp_path)
    assert len(calls) == 1, "only the passphrase check should decrypt a key"


def test_wrong_passphrase_is_caught_on_rerun(tmp_path):
    request(tmp_path)
    with pytest.raises(CertfleetError, match="www: key.pem \\(store passphrase\\): wrong passphrase"):
        request(tmp_path, passphrase="other")


def test_check_mode_writes_nothing(tmp_path):
    result = request(tmp_path / "store", check_mode=True)
    assert result["changed"] and not (tmp_path / "store").exists()


def test_tampered_csr_is_regenerated_and_archived(tmp_path):
    request(tmp_path)
    csr = tmp_path / "certs" / "www" / "csr.pem"
    csr.write_bytes(csr.read_bytes().replace(b"A", b"B", 3))
    result = request(tmp_path)
    assert result["certificates"][0]["actions"] == ["csr generated"]
    assert list((tmp_path / "certs" / "www" / "archive").glob("*/csr.pem"))


def test_san_change_rewrites_only_the_csr(tmp_path):
    first = request(tmp_path)
    changed = [dict(DEFINITIONS[0], subject_alt_name=["shop.example.co.jp"]), DEFINITIONS[1]]
    second = request(tmp_path, definitions=changed)
    assert second["certificates"][0]["actions"] == ["csr generated"]
    assert second["certificates"][0]["key_fingerprint"] == first["certificates"][0]["key_fingerprint"]
    assert not second["certificates"][1]["changed"]


def test_policy_failure_writes_nothing_for_anyone(tmp_path):
    bad = DEFINITIONS + [{"name": "bad", "common_name": "server01", "issuer": {"profile": "cabf"}}]
    with pytest.raises(PolicyViolations) as raised:
        request(tmp_path / "store", definitions=bad)
    assert set(raised.value.reports) == {"bad"}
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("definitions, message", [
    ([{"name": "a b"}], "name 'a b'"),
    ([{"name": "x", "common_name": "x.example.com"}, {"name": "x", "common_name": "y.example.com"}], "more than once"),
    ([{"name": "x", "key": {"type": "DSA"}}], "key.type 'DSA'"),
    ([{"name": "x", "issuer": {"provider": "verisign"}}], "issuer.provider 'verisign'"),
    (["just a string"], "must be a dict"),
])
def test_structural_errors(tmp_path, definitions, message):
    with pytest.raises(CertfleetError, match=message):
        request(tmp_path, definitions=definitions)


def test_passphrase_required(tmp_path):
    with pytest.raises(CertfleetError, match="store passphrase is required"):
        request(tmp_path, passphrase="")


def test_unknown_definition_keys_warn(tmp_path):
    result = request(tmp_path, definitions=[dict(DEFINITIONS[1], comon_name="typo")])
    assert result["warnings"] == ["api: unknown key 'comon_name' ignored"]


NEW_ONLY = [{"name": "shop", "common_name": "shop.example.co.jp", "key": {"type": "ECC"}, "issuer": {"profile": "cabf"}}]


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_run_with_only_new_definitions_checks_the_passphrase_on_an_existing_key(tmp_path, check_mode):
    request(tmp_path)
    with pytest.raises(CertfleetError, match="passphrase: the store passphrase does not open (api|www)/key.pem, an existing "
                                             "key of the store .*no new key was written"):
        request(tmp_path, definitions=NEW_ONLY, passphrase="store-pas", check_mode=check_mode)
    assert not (tmp_path / "certs" / "shop").exists()


def test_a_run_with_only_new_definitions_and_the_right_passphrase_writes_them(tmp_path):
    request(tmp_path)
    result = request(tmp_path, definitions=NEW_ONLY)
    assert result["certificates"][0]["actions"] == ["key generated", "csr generated"]
    assert (tmp_path / "certs" / "shop" / "key.pem").is_file()


def test_a_damaged_existing_key_does_not_block_new_definitions_but_a_good_one_is_still_checked(tmp_path):
    request(tmp_path)
    (tmp_path / "certs" / "api" / "key.pem").write_bytes(b"not a key\n")  # sorted first: passed over
    with pytest.raises(CertfleetError, match="does not open www/key.pem"):
        request(tmp_path, definitions=NEW_ONLY, passphrase="store-pas")
    assert request(tmp_path, definitions=NEW_ONLY)["changed"]


def test_a_new_store_takes_the_passphrase_of_its_first_run(tmp_path):
    assert request(tmp_path / "new", definitions=NEW_ONLY, passphrase="any-first-pass")["changed"]
