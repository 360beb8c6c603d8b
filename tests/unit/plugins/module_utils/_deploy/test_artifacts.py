# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What leaves the store for a server: every broken store entry is refused with its reason."""

from __future__ import annotations

import datetime
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.certfleet.tls.plugins.module_utils._chain.chain import pkcs12_matches
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import artifacts
from ansible_collections.certfleet.tls.plugins.module_utils._deploy.artifacts import certificate_files
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import load_current
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


# --- the target-neutral artifacts of one checked generation -------------------------------------


@pytest.fixture(scope="module")
def two_level(tmp_path_factory):
    """A store entry whose chain has two intermediates (issuing CA, then policy CA), and its checked generation."""
    root = make_root("Shapes Root")
    policy = make_intermediate("Shapes Policy CA", issuer=root)
    issuing = make_intermediate("Shapes Issuing CA", issuer=policy)
    leaf = make_leaf("shapes.example.intra", issuer=issuing)
    store = _store(tmp_path_factory.mktemp("shapes"), key=leaf.key, cert=leaf.pem, chain=issuing.pem + policy.pem, name="shapes")
    return {"store": store, "leaf": leaf, "chain": [issuing, policy], "current": load_current(store, "shapes", PASS)}


def _pem_blocks(data: bytes) -> list[bytes]:
    return [b"-----BEGIN" + block for block in data.split(b"-----BEGIN")[1:]]


def test_leaf_chain_and_fullchain(two_level):
    current, leaf, (issuing, policy) = two_level["current"], two_level["leaf"], two_level["chain"]
    assert artifacts.certificate_pem(current) == leaf.pem
    assert artifacts.chain_pem(current) == issuing.pem + policy.pem
    assert artifacts.fullchain_pem(current) == leaf.pem + issuing.pem + policy.pem


def test_apache_fullchain_from_2_4_8_and_a_chain_file_before(two_level):
    current, leaf, (issuing, policy) = two_level["current"], two_level["leaf"], two_level["chain"]
    assert artifacts.apache_certificate_pem(current, fullchain=True) == (leaf.pem + issuing.pem + policy.pem, None)
    assert artifacts.apache_certificate_pem(current, fullchain=False) == (leaf.pem, issuing.pem + policy.pem)


def test_combined_pem_is_key_then_leaf_then_intermediates(two_level):
    current, leaf, (issuing, policy) = two_level["current"], two_level["leaf"], two_level["chain"]
    blocks = _pem_blocks(artifacts.combined_pem(current))
    assert blocks[0].startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(blocks[0], None)
    assert key.public_key().public_numbers() == leaf.key.public_key().public_numbers()
    assert blocks[1:] == [leaf.pem, issuing.pem, policy.pem]


def test_key_pem_decrypted_kept_or_reencrypted(two_level):
    current = two_level["current"]
    plain = artifacts.key_pem(current)
    assert plain.startswith(b"-----BEGIN PRIVATE KEY-----") and plain == artifacts.key_pem(current)
    assert artifacts.key_pem(current, passphrase=PASS, store_passphrase=PASS) == current.key_pem
    other = artifacts.key_pem(current, passphrase="Other-Pass-2", store_passphrase=PASS)
    assert b"ENCRYPTED PRIVATE KEY" in other and other != current.key_pem
    reopened = serialization.load_pem_private_key(other, b"Other-Pass-2")
    assert reopened.public_key().public_numbers() == two_level["leaf"].key.public_key().public_numbers()


@pytest.mark.parametrize("encryption, mac", [("modern", "sha256"), ("compatibility", "sha1")])
@pytest.mark.parametrize("include_chain", [True, False])
def test_pkcs12_loads_back_with_its_password(two_level, encryption, mac, include_chain):
    current, leaf, (issuing, policy) = two_level["current"], two_level["leaf"], two_level["chain"]
    data = artifacts.pkcs12(current, passphrase="Pfx-Pass-3", encryption=encryption, include_chain=include_chain)
    loaded = pkcs12.load_pkcs12(data, b"Pfx-Pass-3")
    assert loaded.key.public_key().public_numbers() == leaf.key.public_key().public_numbers()
    assert loaded.cert.certificate == leaf.cert and loaded.cert.friendly_name == b"shapes"
    wanted_chain = [issuing.cert, policy.cert] if include_chain else []
    assert [item.certificate for item in loaded.additional_certs] == wanted_chain
    # the MAC digest tells the two schemes apart: Windows Server 2016 and older need SHA-1 / 3DES
    assert pkcs12_matches(data, passphrase="Pfx-Pass-3", private_key=current.private_key,
                          certificates=[leaf.cert] + wanted_chain, encryption=encryption)
    other = {"sha256": "compatibility", "sha1": "modern"}[mac]
    assert not pkcs12_matches(data, passphrase="Pfx-Pass-3", private_key=current.private_key,
                              certificates=[leaf.cert] + wanted_chain, encryption=other)
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(data, b"wrong")


def test_pkcs12_needs_a_password_and_a_known_scheme(two_level):
    with pytest.raises(CertfleetError, match="non-empty passphrase"):
        artifacts.pkcs12(two_level["current"], passphrase="")
    with pytest.raises(CertfleetError, match="modern, compatibility"):
        artifacts.pkcs12(two_level["current"], passphrase="x", encryption="rc2")


def test_pkcs12_friendly_name_can_be_set_or_left_out(two_level):
    named = pkcs12.load_pkcs12(artifacts.pkcs12(two_level["current"], passphrase="p", friendly_name="www 2026"), b"p")
    assert named.cert.friendly_name == b"www 2026"
    unnamed = pkcs12.load_pkcs12(artifacts.pkcs12(two_level["current"], passphrase="p", friendly_name=""), b"p")
    assert unnamed.cert.friendly_name is None


def test_certificate_without_intermediates_has_an_empty_chain(tmp_path):
    root = make_root("Self Root")
    store = _store(tmp_path, key=root.key, cert=root.pem, chain=None, name="selfsigned")
    current = load_current(store, "selfsigned", PASS)
    assert artifacts.chain_pem(current) == b""
    assert artifacts.apache_certificate_pem(current, fullchain=False) == (root.pem, b"")
    entry = dict(ENTRY, name="selfsigned", chain_path="/etc/ssl/certfleet/self.chain.pem")
    files, facts = certificate_files(store, entry, passphrase=PASS)
    assert files[2]["content"] == "" and facts["intermediates"] == 0
    assert x509.load_pem_x509_certificate(files[1]["content"].encode()) == root.cert
