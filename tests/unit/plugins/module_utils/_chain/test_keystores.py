"""Java keystores through pyjks: key entries opened with their own password, trusted entries, damaged input."""
from __future__ import annotations

import jks
import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.certfleet.tls.plugins.module_utils._chain import keystores
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb


@pytest.fixture(scope="module")
def issued():
    root = pb.make_root("Keystore Root")
    return root, pb.make_leaf("ks.example.jp", issuer=root)


def _store(kind: str, entries, password: str = "store-pass") -> bytes:
    return jks.KeyStore.new(kind, entries).saves(password)


def _key_entry(leaf, root, key_password: str = "store-pass"):
    der_key = leaf.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    entry = jks.PrivateKeyEntry.new("server", [leaf.der, root.der], der_key, "pkcs8")
    entry.encrypt(key_password)
    return entry


def test_key_entry_and_trusted_certificate(issued):
    root, leaf = issued
    data = _store("jks", [_key_entry(leaf, root), jks.TrustedCertEntry.new("root", root.der)])
    assert keystores.is_java_keystore(data)
    entries = keystores.load_keystore(data, source="t.jks", password="store-pass")
    assert [(entry.alias, len(entry.certificates), entry.private_key is not None) for entry in entries] == [
        ("server", 2, True), ("root", 1, False)]
    assert entries[0].certificates[0] == leaf.cert


def test_a_key_password_other_than_the_store_password(issued):
    root, leaf = issued
    data = _store("jks", [_key_entry(leaf, root, key_password="key-pass")])
    with pytest.raises(CertfleetError, match="t.jks: alias server: the key password is wrong"):
        keystores.load_keystore(data, source="t.jks", password="store-pass")
    entries = keystores.load_keystore(data, source="t.jks", password="store-pass", key_passwords={"server": "key-pass"})
    assert entries[0].private_key.public_key().public_numbers() == leaf.key.public_key().public_numbers()


@pytest.mark.parametrize("data, password, message", [
    (None, "wrong-pass", "wrong keystore password"),
    (b"\xfe\xed\xfe\xed\x00\x00\x00\x02\x00\x00\x00\x05", "store-pass", "damaged"),
    (b"-----BEGIN CERTIFICATE-----", "store-pass", "not a JKS or JCEKS keystore"),
    (None, "", "needs its store password"),
])
def test_bad_keystores(issued, data, password, message):
    root, leaf = issued
    data = data if data is not None else _store("jks", [_key_entry(leaf, root)])
    with pytest.raises(CertfleetError, match=message):
        keystores.load_keystore(data, source="t.jks", password=password)
