# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The store's layout and its one write path: install_issued (plan_issued + apply_change), load_current."""

from __future__ import annotations

import datetime
import json
import os

import pytest
from cryptography import x509

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store import store as _store
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

PASS = "Store-Unit-Pass-7"
DEFINITION = {"name": "www", "common_name": "www.example.test", "key": {"type": "ECC"}, "issuer": {"provider": "manual"}}


@pytest.fixture(scope="module")
def pki():
    root = pb.make_root("Store Test Root")
    return {"root": root, "intermediate": pb.make_intermediate("Store Test Issuing CA", issuer=root)}


@pytest.fixture
def store(tmp_path):
    run_request(store_path=str(tmp_path), definitions=[DEFINITION], passphrase=PASS)
    return tmp_path


def leaf_for(store, pki, *, days: int = 90):
    csr = x509.load_pem_x509_csr(layout_read(store, "csr"))
    intermediate = pki["intermediate"]
    return pb.issue(csr.subject, public_key=csr.public_key(), issuer_name=intermediate.subject, signing_key=intermediate.key,
                    ca=False, san=["www.example.test"], aki_key=intermediate.key.public_key(), days=days)


def serial_of(certificate) -> str:
    digits = format(certificate.serial_number, "X")
    return "0" * (len(digits) % 2) + digits


def layout_read(store, kind: str) -> bytes:
    with open(layout.certificate_path(str(store), "www", kind), "rb") as handle:
        return handle.read()


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "x" * 129, None, 3])
def test_layout_refuses_names_that_are_no_directory(name):
    with pytest.raises(CertfleetError, match="must be 1-128 characters"):
        layout.certificate_dir("/store", name)


def test_layout_paths():
    assert layout.certificate_path("/s", "www", "fullchain") == "/s/certs/www/fullchain.pem"
    assert layout.archive_dir("/s", "www", "0A") == "/s/certs/www/archive/0A"
    assert layout.incoming_dir("/s", "www") == "/s/certs/www/incoming"
    assert layout.ca_path("/s", "corp", "config") == "/s/ca/corp/ca.json"
    assert layout.ca_issued_file("0A") == "issued/0A.pem"
    assert layout.WRITE_ORDER == ("key", "csr", "cert", "chain", "fullchain", "state")
    with pytest.raises(CertfleetError, match="store file kind 'pfx'"):
        layout.filename("pfx")


def test_install_issued_writes_files_state_and_history(store, pki):
    leaf = leaf_for(store, pki)
    change = _store.install_issued(str(store), "www", certificate=leaf, chain=[pki["intermediate"].cert], source="manual",
                                   details={"order": "A-1"}, reason="dropped into incoming/")
    assert change.archive is None and sorted(change.writes) == ["cert", "chain", "fullchain", "state"]
    assert layout_read(store, "fullchain") == pb.Issued(leaf, None).pem + pki["intermediate"].pem
    state = json.loads(layout_read(store, "state"))
    record = state["certificate"]
    assert state["status"] == "issued" and state["issuer"]["provider"] == "manual"
    assert record["provider"] == "manual" and record["order"] == "A-1" and record["serial"] == serial_of(leaf)
    assert record["csr_sha256"] == _store.sha256_hex(layout_read(store, "csr"))
    assert _store.recorded_details(state) == {"order": "A-1"}
    events = _store.read_history(layout.certificate_dir(str(store), "www"))
    assert [e["event"] for e in events] == ["key_generated", "csr_generated", "issued"]
    assert events[-1]["order"] == "A-1" and events[-1]["reason"] == "dropped into incoming/"
    # Installing the same certificate again changes nothing and logs nothing.
    again = _store.install_issued(str(store), "www", certificate=leaf, chain=[pki["intermediate"].cert], source="manual",
                                  details={"order": "A-1"})
    assert again.writes == {} and len(_store.read_history(layout.certificate_dir(str(store), "www"))) == 3
    current = _store.load_current(str(store), "www", PASS)
    assert current.leaf == leaf and current.intermediates == [pki["intermediate"].cert]


def test_apply_change_writes_in_the_fixed_order_state_last(store, pki, monkeypatch):
    first = leaf_for(store, pki)
    _store.install_issued(str(store), "www", certificate=first, chain=[pki["intermediate"].cert], source="manual")
    written = []
    real = _store.write_file_atomic
    monkeypatch.setattr(_store, "write_file_atomic", lambda path, data, **kw: written.append(os.path.relpath(path, store)) or real(path, data, **kw))
    second = leaf_for(store, pki, days=60)
    _store.install_issued(str(store), "www", certificate=second, chain=[pki["intermediate"].cert], source="manual")
    label = serial_of(first)
    assert written == [f"certs/www/archive/{label}/{name}" for name in ("cert.pem", "chain.pem", "fullchain.pem")] + \
        ["certs/www/cert.pem", "certs/www/fullchain.pem", "certs/www/state.json"]
    events = _store.read_history(layout.certificate_dir(str(store), "www"))
    assert [e["event"] for e in events][-3:] == ["issued", "archived", "issued"]
    assert events[-2]["to"] == f"archive/{label}"


def test_a_kept_certificate_only_repairs_missing_files(store, pki):
    leaf = leaf_for(store, pki)
    _store.install_issued(str(store), "www", certificate=leaf, chain=[pki["intermediate"].cert], source="manual")
    os.unlink(layout.certificate_path(str(store), "www", "chain"))
    stored = _store.read_definition(str(store), "www")
    assert stored.current == leaf and stored.current_chain == []
    change = _store.plan_issued(stored, certificate=leaf, chain=[pki["intermediate"].cert], source="manual", event=None)
    assert list(change.writes) == ["chain"] and change.actions == ["chain.pem rewritten"] and change.events == []
    _store.apply_change(str(store), change)
    assert layout_read(store, "chain") == pki["intermediate"].pem


def test_read_definition_of_a_definition_not_in_the_store(tmp_path):
    stored = _store.read_definition(str(tmp_path), "nothing")
    assert stored.state == {} and stored.current is None and stored.current_chain == [] and set(stored.files.values()) == {None}
    assert not (tmp_path / "certs").exists()


def test_load_current_names_what_is_wrong(store, pki):
    with pytest.raises(CertfleetError, match="www: cert.pem is missing from the store"):
        _store.load_current(str(store), "www", PASS)
    leaf = leaf_for(store, pki)
    _store.install_issued(str(store), "www", certificate=leaf, chain=[pki["root"].cert], source="manual")
    with pytest.raises(CertfleetError, match="did not issue"):
        _store.load_current(str(store), "www", PASS)
    later = leaf.not_valid_after_utc + datetime.timedelta(days=1)
    _store.install_issued(str(store), "www", certificate=leaf, chain=[pki["intermediate"].cert], source="manual")
    with pytest.raises(CertfleetError, match="expired on"):
        _store.load_current(str(store), "www", PASS, now=later)
