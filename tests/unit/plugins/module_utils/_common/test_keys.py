"""Key generation, loading and the keep / convert / generate decision."""
from __future__ import annotations

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import (
    generate_private_key,
    inspect_private_key_pem,
    key_info,
    load_private_key,
    plan_private_key,
    serialize_private_key,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

RSA = generate_private_key()
ECC = generate_private_key(key_type="ECC", curve="secp384r1")
WANT_RSA = {"key_type": "RSA", "size": 2048, "curve": "secp256r1", "key_format": "pkcs8"}


def plan(existing, **overrides):
    options = dict(WANT_RSA, passphrase=None, current_passphrase=None, regenerate="full_idempotence")
    options.update(overrides)
    return plan_private_key(existing, **options)


@pytest.mark.parametrize("key_format, passphrase, armour", [
    ("pkcs8", None, {"format": "pkcs8", "encrypted": False}),
    ("pkcs8", "pw", {"format": "pkcs8", "encrypted": True}),
    ("pkcs1", None, {"format": "pkcs1", "encrypted": False}),
    ("pkcs1", "pw", {"format": "pkcs1", "encrypted": True}),
])
@pytest.mark.parametrize("key", [RSA, ECC], ids=["rsa", "ecc"])
def test_serialise_round_trip(key, key_format, passphrase, armour):
    pem = serialize_private_key(key, key_format=key_format, passphrase=passphrase)
    assert inspect_private_key_pem(pem) == armour
    assert key_info(load_private_key(pem, passphrase=passphrase)) == key_info(key)


@pytest.mark.parametrize("data, passphrase, message", [
    (serialize_private_key(RSA, passphrase="right"), "wrong", "wrong passphrase"),
    (serialize_private_key(RSA, passphrase="right"), None, "encrypted and no passphrase"),
    (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None, "malformed private key"),
    (b"plain text", None, "not a private key"),
])
def test_load_errors(data, passphrase, message):
    with pytest.raises(CertfleetError, match=message):
        load_private_key(data, source="somewhere", passphrase=passphrase)


def test_unencrypted_key_opens_even_when_a_passphrase_is_offered():
    assert key_info(load_private_key(serialize_private_key(RSA), passphrase="pw")) == key_info(RSA)


ENCRYPTED = serialize_private_key(RSA, passphrase="old")
PLAIN = serialize_private_key(RSA)
PKCS1 = serialize_private_key(RSA, key_format="pkcs1")


@pytest.mark.parametrize("existing, overrides, action, reason", [
    (None, {}, "generate", "does not exist"),
    (PLAIN, {}, "keep", "matches"),
    (ENCRYPTED, {"passphrase": "old"}, "keep", "matches"),
    (PLAIN, {"passphrase": "new"}, "convert", "encrypt"),
    (ENCRYPTED, {"current_passphrase": "old"}, "convert", "decrypt"),
    (ENCRYPTED, {"current_passphrase": "old", "passphrase": "new"}, "convert", "change passphrase"),
    (PKCS1, {}, "convert", "format pkcs1 -> pkcs8"),
    (PLAIN, {"size": 3072}, "generate", "size is 2048 bits, 3072 requested"),
    (PLAIN, {"key_type": "ECC"}, "generate", "type is RSA, ECC requested"),
    (PLAIN, {"regenerate": "always"}, "generate", "regenerate=always"),
    (PLAIN, {"size": 3072, "regenerate": "never"}, "keep", "matches"),
    (ENCRYPTED, {"passphrase": "other"}, "generate", "cannot be opened"),
    (b"garbage", {}, "generate", "cannot be opened"),
])
def test_plan(existing, overrides, action, reason):
    result = plan(existing, **overrides)
    assert result["action"] == action
    assert reason in result["reason"]
    if action in ("keep", "convert"):
        assert key_info(result["key"]) == key_info(RSA)


@pytest.mark.parametrize("existing, overrides, message", [
    (ENCRYPTED, {"passphrase": "other", "regenerate": "partial_idempotence"}, "wrong passphrase"),
    (ENCRYPTED, {"regenerate": "never"}, "no passphrase was given"),
    (ENCRYPTED, {"current_passphrase": "bad", "regenerate": "full_idempotence"}, "check current_passphrase"),
    (PLAIN, {"size": 4096, "regenerate": "fail"}, "regenerate=fail"),
    (b"garbage", {"regenerate": "fail"}, "not a private key"),
])
def test_plan_refusals(existing, overrides, message):
    with pytest.raises(CertfleetError, match=message):
        plan(existing, **overrides)


@pytest.mark.parametrize("options, message", [
    ({"key_type": "DSA"}, "type: 'DSA' is not supported"),
    ({"key_type": "ECC", "curve": "secp521r1"}, "curve: 'secp521r1'"),
    ({"key_type": "RSA", "size": 512}, "outside 1024..16384"),
])
def test_generate_errors(options, message):
    with pytest.raises(CertfleetError, match=message):
        generate_private_key(**options)
