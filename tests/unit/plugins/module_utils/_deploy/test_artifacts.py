# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What leaves the store for a server: every broken store entry is refused with its reason."""

from __future__ import annotations

import datetime
import os

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.certfleet.tls.plugins.module_utils._deploy.artifacts import certificate_files
from ansible_collections.certfleet.tls.plugins.module_utils._store.events import record_events
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import read_history
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils.pki_builder import (
    make_expired,
    make_intermediate,
    make_key,
    make_leaf,
    make_root,
    utcnow,
)

PASS = "Deploy-Unit-Pass-1"


@pytest.fixture(scope="module")
def pki():
    root = make_root("Deploy Root")
    intermediate = make_intermediate("Deploy Issuing CA", issuer=root)
    other_root = make_root("Other Root")
    other_intermediate = make_intermediate("Other Issuing CA", issuer=other_root)
    leaf = make_leaf("www.example.intra", issuer=intermediate)
    return {"root": root, "int": intermediate, "other_int": other_intermediate, "leaf": leaf}


def _encrypted(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(PASS.encode()))


def _store(tmp_path, *, key, cert: bytes, chain: bytes | None, name="www") -> str:
    directory = tmp_path / "store" / "certs" / name
    directory.mkdir(parents=True)
    (directory / "key.pem").write_bytes(_encrypted(key))
    (directory / "cert.pem").write_bytes(cert)
    if chain is not None:
        (directory / "chain.pem").write_bytes(chain)
    return str(tmp_path / "store")


ENTRY = {"name": "www", "key_path": "/etc/ssl/private/www.key", "certificate_path": "/etc/ssl/certfleet/www.pem"}


def test_fullchain_layout(tmp_path, pki):
    store = _store(tmp_path, key=pki["leaf"].key, cert=pki["leaf"].pem, chain=pki["int"].pem)
    files, facts = certificate_files(store, ENTRY, passphrase=PASS)
    key_file, cert_file = files
    assert key_file["secret"] and key_file["mode"] == "0600" and key_file["owner"] == "root"
    assert key_file["content"].startswith("-----BEGIN PRIVATE KEY-----")
    assert serialization.load_pem_private_key(key_file["content"].encode(), None).public_key().public_numbers() == \
        pki["leaf"].key.public_key().public_numbers()
    assert cert_file["content"].encode() == pki["leaf"].pem + pki["int"].pem
    assert not cert_file["secret"]
    assert facts["intermediates"] == 1 and facts["sha256"].count(":") == 31
    # deterministic: the same store gives the same bytes (idempotent re-runs)
    assert certificate_files(store, ENTRY, passphrase=PASS)[0] == files


def test_separate_chain_file_before_apache_2_4_8(tmp_path, pki):
    store = _store(tmp_path, key=pki["leaf"].key, cert=pki["leaf"].pem, chain=pki["int"].pem)
    entry = dict(ENTRY, chain_path="/etc/ssl/certfleet/www.chain.pem", key_mode="0640", key_group="ssl-cert")
    files, _facts = certificate_files(store, entry, passphrase=PASS)
    assert [f["path"] for f in files] == [entry["key_path"], entry["certificate_path"], entry["chain_path"]]
    assert files[1]["content"].encode() == pki["leaf"].pem
    assert files[2]["content"].encode() == pki["int"].pem
    assert files[0]["mode"] == "0640" and files[0]["group"] == "ssl-cert"


def test_key_kept_encrypted_with_the_store_passphrase_is_byte_identical(tmp_path, pki):
    store = _store(tmp_path, key=pki["leaf"].key, cert=pki["leaf"].pem, chain=pki["int"].pem)
    files, facts = certificate_files(store, dict(ENTRY, key_passphrase=PASS), passphrase=PASS)
    with open(os.path.join(store, "certs", "www", "key.pem"), encoding="ascii") as handle:
        assert files[0]["content"] == handle.read()
    assert facts["key_encrypted"] is True
    other, _facts = certificate_files(store, dict(ENTRY, key_passphrase="another-pass"), passphrase=PASS)
    assert "ENCRYPTED PRIVATE KEY" in other[0]["content"]
    serialization.load_pem_private_key(other[0]["content"].encode(), b"another-pass")


@pytest.mark.parametrize("case, message", [
    ("wrong_issuer", "did not issue /CN=www.example.intra, whose issuer is /CN=Deploy Issuing CA: a chain for the wrong issuer"),
    ("key_mismatch", "www/key.pem does not match www/cert.pem"),
    ("wrong_passphrase", "wrong passphrase"),
    ("expired_intermediate", "expired on"),
    ("two_leaves", "cert.pem must hold exactly one certificate"),
    ("garbage_cert", "no certificate found"),
    ("no_cert", "cert.pem is missing from the store"),
])
def test_broken_store_entries_are_refused(tmp_path, pki, case, message):
    leaf, intermediate = pki["leaf"], pki["int"]
    key, cert, chain, passphrase = leaf.key, leaf.pem, intermediate.pem, PASS
    if case == "wrong_issuer":
        chain = pki["other_int"].pem
    elif case == "key_mismatch":
        key = make_key()
    elif case == "wrong_passphrase":
        passphrase = "not-the-passphrase"
    elif case == "expired_intermediate":
        expired = make_expired("Expired Issuing CA", issuer=pki["root"])
        leaf = make_leaf("old.example.intra", issuer=expired,
                         not_before=utcnow() - datetime.timedelta(days=30), days=60)
        key, cert, chain = leaf.key, leaf.pem, expired.pem
    elif case == "two_leaves":
        cert = leaf.pem + pki["int"].pem
    elif case == "garbage_cert":
        cert = b"this is not a certificate\n"
    store = _store(tmp_path, key=key, cert=cert, chain=chain)
    if case == "no_cert":
        os.unlink(os.path.join(store, "certs", "www", "cert.pem"))
    with pytest.raises(CertfleetError, match=message) as info:
        certificate_files(store, ENTRY, passphrase=passphrase)
    assert PASS not in str(info.value)


def test_unknown_definition_and_keys(tmp_path, pki):
    store = _store(tmp_path, key=pki["leaf"].key, cert=pki["leaf"].pem, chain=pki["int"].pem)
    with pytest.raises(CertfleetError, match="not in the store"):
        certificate_files(store, dict(ENTRY, name="nope"), passphrase=PASS)
    with pytest.raises(CertfleetError, match="unknown keys colour"):
        certificate_files(store, dict(ENTRY, colour="red"), passphrase=PASS)
    with pytest.raises(CertfleetError, match="key_path is required"):
        certificate_files(store, {"name": "www", "certificate_path": "/x"}, passphrase=PASS)


def test_events_are_appended_per_definition(tmp_path, pki):
    store = _store(tmp_path, key=pki["leaf"].key, cert=pki["leaf"].pem, chain=pki["int"].pem)
    events = [{"certificate": "www", "event": "deployed", "host": "web1", "sha256": "AB", "port": "443"},
              {"certificate": "www", "event": "verified", "host": "web1", "site": "portal", "message": None}]
    written = record_events(store, events, now="2026-12-03T10:00:00Z")
    assert written[0]["port"] == 443 and "message" not in written[1]
    history = read_history(os.path.join(store, "certs", "www"))
    assert [(e["event"], e["time"]) for e in history] == [("deployed", "2026-12-03T10:00:00Z"), ("verified", "2026-12-03T10:00:00Z")]
    # check mode writes nothing
    record_events(store, events, write=False)
    assert len(read_history(os.path.join(store, "certs", "www"))) == 2


@pytest.mark.parametrize("event, message", [
    ({"certificate": "www", "event": "installed"}, "event must be one of"),
    ({"certificate": "../etc", "event": "deployed"}, "certificate must be a definition name"),
    ({"certificate": "missing", "event": "deployed"}, "not in the store"),
    ({"certificate": "www", "event": "deployed", "port": "https"}, "port must be int"),
    ({"certificate": "www", "event": "deployed", "colour": 1}, "unknown keys colour"),
    ("deployed", "must be a dict"),
])
def test_bad_events_write_nothing(tmp_path, pki, event, message):
    store = _store(tmp_path, key=pki["leaf"].key, cert=pki["leaf"].pem, chain=pki["int"].pem)
    with pytest.raises(CertfleetError, match=message):
        record_events(store, [{"certificate": "www", "event": "verified"}, event])
    assert read_history(os.path.join(store, "certs", "www")) == []
