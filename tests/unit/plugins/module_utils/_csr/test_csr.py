"""CSR building, comparison and description; checked against the openssl CLI."""
from __future__ import annotations

import subprocess

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import (
    create_csr_pem,
    csr_matches,
    describe_csr,
    load_csr,
    normalise_san_entries,
    plan_request,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import generate_private_key, key_info
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

KEY = generate_private_key()
OTHER_KEY = generate_private_key()
SUBJECT = {"C": "JP", "ST": "Tokyo", "L": "Minato-ku", "O": "Example Co.,Ltd.", "CN": "www.example.co.jp"}
SANS = ["www.example.co.jp", "example.co.jp", "IP:192.0.2.1"]


@pytest.fixture(scope="module")
def csr_pem():
    return create_csr_pem(KEY, subject=SUBJECT, subject_alt_names=SANS)


def test_openssl_verifies_and_reads_the_csr(csr_pem, tmp_path):
    path = tmp_path / "x.csr"
    path.write_bytes(csr_pem)
    run = subprocess.run(["openssl", "req", "-in", str(path), "-noout", "-verify", "-text", "-nameopt", "compat", "-subject"],
                         capture_output=True, text=True, check=True)
    assert "verify OK" in run.stdout + run.stderr
    assert "subject=/C=JP/ST=Tokyo/L=Minato-ku/O=Example Co.,Ltd./CN=www.example.co.jp" in run.stdout
    assert "DNS:www.example.co.jp, DNS:example.co.jp, IP Address:192.0.2.1" in run.stdout
    assert "sha256WithRSAEncryption" in run.stdout


def test_describe(csr_pem):
    info = describe_csr(load_csr(csr_pem))
    assert info["subject"] == SUBJECT
    assert info["subject_alt_name"] == SANS
    assert info["digest"] == "sha256" and info["signature_valid"] and info["attributes"] == []
    assert info["public_key"] == key_info(KEY)


@pytest.mark.parametrize("change, matches", [
    ({}, True),
    ({"private_key": OTHER_KEY}, False),
    ({"subject": dict(SUBJECT, O="Other")}, False),
    ({"subject": dict(SUBJECT, OU="IT")}, False),
    ({"subject_alt_names": SANS[:2]}, False),
    ({"subject_alt_names": list(reversed(SANS))}, False),
    ({"digest": "sha384"}, False),
])
def test_csr_matches(csr_pem, change, matches):
    wanted = {"private_key": KEY, "subject": SUBJECT, "subject_alt_names": SANS, "digest": "sha256"}
    wanted.update(change)
    assert csr_matches(csr_pem, **wanted) is matches


def test_csr_matches_rejects_garbage_and_missing():
    assert not csr_matches(None, private_key=KEY, subject=SUBJECT, subject_alt_names=[], digest="sha256")
    assert not csr_matches(b"junk", private_key=KEY, subject=SUBJECT, subject_alt_names=[], digest="sha256")


@pytest.mark.parametrize("entries, expected", [
    (["a.example.com", "DNS:b.example.com", "IP:2001:db8::1", "ip:192.0.2.5", "email:x@example.com", "URI:https://x"],
     ["a.example.com", "b.example.com", "IP:2001:db8::1", "IP:192.0.2.5", "email:x@example.com", "URI:https://x"]),
])
def test_normalise_san_entries(entries, expected):
    assert normalise_san_entries(entries) == expected


@pytest.mark.parametrize("entry, message", [
    ("IP:300.1.1.1", "not a valid IP address"),
    ("FOO:bar", "unsupported entry type 'FOO'"),
    ("DNS:", "empty entry"),
    ("bücher.example", "xn--"),
])
def test_bad_san_entries(entry, message):
    with pytest.raises(CertfleetError, match=message):
        normalise_san_entries([entry])


@pytest.mark.parametrize("data, message", [
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "no 'CERTIFICATE REQUEST' PEM block"),
    (b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "malformed certificate signing request"),
    (b"hello", "not a CSR"),
])
def test_load_csr_errors(data, message):
    with pytest.raises(CertfleetError, match=message):
        load_csr(data, source="input")


def test_plan_request_collects_san_errors_with_profile_errors():
    options = {"common_name": "intranet", "country_name": "JPN", "subject_alt_name": ["IP:999.0.0.1"],
               "profile": "cybertrust", "digest": "sha256"}
    report = plan_request(options, public_key_info=key_info(KEY))["policy"]
    assert any("999.0.0.1" in error for error in report["errors"])
    assert any("country_name (C)" in error for error in report["errors"])
    assert any("common_name (CN)" in error for error in report["errors"])


def test_ecdsa_csr_with_sha384(tmp_path):
    key = generate_private_key(key_type="ECC", curve="secp384r1")
    pem = create_csr_pem(key, subject={"CN": "api.example.com"}, subject_alt_names=["api.example.com"], digest="sha384")
    path = tmp_path / "ec.csr"
    path.write_bytes(pem)
    run = subprocess.run(["openssl", "req", "-in", str(path), "-noout", "-verify", "-text"], capture_output=True, text=True, check=True)
    assert "ecdsa-with-SHA384" in run.stdout and "verify OK" in run.stdout + run.stderr
