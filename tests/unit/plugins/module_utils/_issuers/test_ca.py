# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The private CA engine: creation, policy, issuance, index state machine, CRL - checked with the openssl CLI."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import load_csr
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import generate_private_key
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import utc_now
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
needs_openssl = pytest.mark.skipif(not os.path.exists(OPENSSL), reason="openssl CLI not available")
PASS = "CA-Unit-Passphrase-9"
ECC = {"type": "ECC", "curve": "secp256r1"}
INTRA = {"allowed_domains": ["example.intra"], "crl_distribution_points": ["http://pki.example.intra/ca.crl"],
         "ca_issuers_urls": ["http://pki.example.intra/ca.cer"]}


def make_ca(store, name="corp", kind="root", settings=None, **kwargs):
    return _ca.run_private_ca(store_path=str(store), name=name, passphrase=PASS, kind=kind, key_spec=dict(ECC),
                              settings_options=settings if settings is not None else dict(INTRA), **kwargs)


def csr_for(*names, key=None, subject=None, extensions=(), digest=hashes.SHA256()):
    """A CSR for names[0] with every name as SAN (plain x509 builder, so tests can add odd extensions)."""
    key = key or generate_private_key(key_type="ECC")
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
    sans = [_ca.parse_general_name(name) for name in names]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, digest), key


def run_openssl(*args):
    return subprocess.run([OPENSSL, *args], capture_output=True, text=True, check=False)


def openssl_verify(tmp_path, leaf, *, root_file, chain=(), crl_file=None):
    """openssl verify -CAfile root [-untrusted chain] leaf; -untrusted only when there is a chain (an empty file is an error)."""
    leaf_file = tmp_path / f"leaf-{leaf.serial_number}.pem"
    leaf_file.write_bytes(_ca.pem(leaf))
    args = ["verify", "-purpose", "sslserver", "-CAfile", str(root_file)]
    if chain:
        chain_file = tmp_path / f"chain-{leaf.serial_number}.pem"
        chain_file.write_bytes(_ca.pem_list(chain))
        args += ["-untrusted", str(chain_file)]
    if crl_file:
        args += ["-crl_check", "-CRLfile", str(crl_file)]
    return run_openssl(*args, str(leaf_file))


# ---------------------------------------------------------------------------------------------
# serials and settings


@pytest.mark.parametrize("given, expected", [
    ("0a:1B:2c", "0A1B2C"), ("A1B2C", "0A1B2C"), ("0x10", "10"), (" 01 02 ", "0102"), (255, "FF"),
])
def test_parse_serial(given, expected):
    assert _ca.parse_serial(given) == expected


@pytest.mark.parametrize("given, message", [("xyz", "not a hexadecimal"), ("00", "must be positive"), (0, "must be positive")])
def test_parse_serial_errors(given, message):
    with pytest.raises(CertfleetError, match=message):
        _ca.parse_serial(given)


def test_serials_are_random_128_bit_and_unique():
    taken = set()
    for _round in range(200):
        serial = _ca.new_serial(taken)
        assert 0 < serial < 2 ** 128
        taken.add(_ca.format_serial(serial))
    assert len(taken) == 200
    assert max(len(s) for s in taken) >= 30, "128 random bits give ~32 hex digits"


@pytest.mark.parametrize("options, expected", [
    ({}, _ca.DEFAULT_SETTINGS),
    ({"allowed_domains": ["*.Example.Intra.", ".corp.example"]}, dict(_ca.DEFAULT_SETTINGS, allowed_domains=["corp.example", "example.intra"])),
    ({"allowed_ip_networks": ["10.1.2.3/8"]}, dict(_ca.DEFAULT_SETTINGS, allowed_ip_networks=["10.0.0.0/8"])),
    ({"max_validity_days": "90"}, dict(_ca.DEFAULT_SETTINGS, max_validity_days=90)),
])
def test_normalise_settings(options, expected):
    assert _ca.normalise_settings(options) == expected


@pytest.mark.parametrize("options, message", [
    ({"allowed_domains": ["bad name"]}, "allowed_domains"),
    ({"allowed_ip_networks": ["10.0.0.300/8"]}, "allowed_ip_networks"),
    ({"max_validity_days": 0}, "max_validity_days: must be at least 1"),
    ({"crl_next_update_days": "soon"}, "crl_next_update_days"),
    ({"crl_distribution_points": ["file:///etc/crl"]}, "crl_distribution_points"),
    ({"extended_key_usages": ["codeSigning"]}, "extended_key_usages"),
])
def test_normalise_settings_errors(options, message):
    with pytest.raises(CertfleetError, match=message):
        _ca.normalise_settings(options)


# ---------------------------------------------------------------------------------------------
# creation


@pytest.mark.parametrize("kind", ["root", "intermediate"])
def test_create_check_apply_check_apply(tmp_path, kind):
    check = make_ca(tmp_path, kind=kind, check_mode=True)
    assert check["changed"] and not (tmp_path / "ca").exists()
    first = make_ca(tmp_path, kind=kind)
    assert first["changed"] and first["status"] == "active" and first["kind"] == kind
    again_check = make_ca(tmp_path, kind=kind, check_mode=True)
    again = make_ca(tmp_path, kind=kind)
    assert not again_check["changed"] and not again["changed"], again["actions"]
    assert again["sha256"] == first["sha256"]
    directory = tmp_path / "ca" / "corp"
    expected = {".lock", "ca.json", "cert.pem", "chain.pem", "root.pem", "index.json", "crl.pem", "crl.der", "key.pem"}
    if kind == "intermediate":
        expected.add("root")
    assert set(os.listdir(directory)) == expected
    for key in directory.rglob("key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
        assert run_openssl("pkey", "-in", str(key), "-passin", f"pass:{PASS}", "-noout").returncode == 0
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_root_ca_certificate(tmp_path):
    result = make_ca(tmp_path, kind="root", name_constraints=True)
    cert = x509.load_pem_x509_certificate(result["certificate"].encode())
    assert _chain.is_self_signed(cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    names = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert names.critical and names.value.permitted_subtrees == [x509.DNSName("example.intra")]
    # Seed 003 §4.9: a unique default DN with the creation time stamp.
    assert result["subject"].startswith("/O=certfleet.tls Built-in Private CA/CN=corp Root CA 20")
    assert result["root_certificate"] == result["certificate"]


def test_intermediate_hierarchy(tmp_path):
    result = make_ca(tmp_path, kind="intermediate", subject={"O": "Example Co.,Ltd.", "C": "JP", "CN": "Example Issuing CA 1"})
    ca = _ca.load_store_ca(str(tmp_path), "corp")
    assert result["subject"] == "/C=JP/O=Example Co.,Ltd./CN=Example Issuing CA 1"
    assert _chain.is_issued_by(ca.certificate, ca.root) and _chain.is_self_signed(ca.root)
    assert ca.root.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 1
    assert ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert ca.certificate.not_valid_after_utc <= ca.root.not_valid_after_utc
    root_index = json.loads((tmp_path / "ca" / "corp" / "root" / "index.json").read_text())
    assert list(root_index["certificates"]) == [_ca.format_serial(ca.certificate.serial_number)]
    assert [c["subject"] for c in result["ca_chain"]][0] == result["subject"]


def test_existing_ca_is_never_replaced_but_settings_update(tmp_path):
    first = make_ca(tmp_path)
    changed = make_ca(tmp_path, kind="intermediate", settings={"max_validity_days": 90},
                      subject={"CN": "Another name"})
    assert changed["sha256"] == first["sha256"]
    assert changed["actions"] == ["settings updated (max_validity_days)"]
    assert any("kind=intermediate is only used when a CA is created" in w for w in changed["warnings"])
    assert any("CN='Another name' only applies to a new CA" in w for w in changed["warnings"])
    # Settings not given keep their values.
    assert changed["settings"]["allowed_domains"] == ["example.intra"] and changed["settings"]["max_validity_days"] == 90
    assert not make_ca(tmp_path, settings={})["changed"]


def test_wrong_passphrase_fails_naming_the_ca(tmp_path):
    make_ca(tmp_path)
    with pytest.raises(CertfleetError, match="CA corp: key.pem \\(CA passphrase\\): wrong passphrase"):
        _ca.run_private_ca(store_path=str(tmp_path), name="corp", passphrase="nope")


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "../x"}, "name: '../x' must be"),
    ({"passphrase": ""}, "passphrase: the CA passphrase is required"),
    ({"key_spec": {"type": "RSA", "size": 1024}}, "key_size: a CA key needs at least 2048 bits"),
    ({"revocations": [{"serial": "01"}]}, "does not exist yet"),
])
def test_create_errors(tmp_path, kwargs, message):
    args = dict(store_path=str(tmp_path), name="corp", passphrase=PASS, key_spec=ECC)
    args.update(kwargs)
    with pytest.raises(CertfleetError, match=message.replace("(", "\\(").replace(")", "\\)")):
        _ca.run_private_ca(**args)
    assert not (tmp_path / "ca").exists()


def test_damaged_files_are_named(tmp_path):
    make_ca(tmp_path)
    index = tmp_path / "ca" / "corp" / "index.json"
    index.write_text("{broken")
    with pytest.raises(CertfleetError, match="index.json: not valid JSON"):
        _ca.load_store_ca(str(tmp_path), "corp")
    (tmp_path / "ca" / "other").mkdir()
    (tmp_path / "ca" / "other" / "stray.txt").write_text("x")
    with pytest.raises(CertfleetError, match="has no ca.json"):
        _ca.load_ca(str(tmp_path / "ca" / "other"), name="other")
    with pytest.raises(CertfleetError, match="CA missing: not found .* create it with certfleet.tls.private_ca"):
        _ca.load_store_ca(str(tmp_path), "missing")


# ---------------------------------------------------------------------------------------------
# policy


@pytest.fixture
def root_ca(tmp_path):
    make_ca(tmp_path, settings=dict(INTRA, allowed_ip_networks=["10.0.0.0/8"]))
    return _ca.load_store_ca(str(tmp_path), "corp")


POLICY_CASES = [
    ("outside-domain", lambda: csr_for("www.example.com"), {}, ["'www.example.com' is outside the CA's allowed domains"]),
    ("lookalike-domain", lambda: csr_for("portal.badexample.intra"), {}, ["'portal.badexample.intra' is outside"]),
    ("ip-outside", lambda: csr_for("portal.example.intra", "IP:192.168.1.1"), {}, ["'192.168.1.1' is outside the CA's allowed networks"]),
    ("too-long", lambda: csr_for("portal.example.intra"), {"validity_days": 398}, ["398 days is more than the CA's maximum of 397"]),
    ("rsa-1024", lambda: csr_for("portal.example.intra", key=generate_private_key(size=1024)), {},
     ["RSA key of 1024 bits", "at least 2048"]),
    ("digest-rule", lambda: csr_for("portal.example.intra"), {"profile": {"extends": "private", "digests": ["sha384"]}},
     ["digest: sha256", "requires sha384"]),
    ("ecc-under-cybertrust", lambda: csr_for("portal.example.intra"), {"profile": "cabf"}, ["intranet-only or reserved name"]),
    ("no-names", lambda: (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "x")]))
                          .sign(generate_private_key(key_type="ECC"), hashes.SHA256()), None), {},
     ["common_name (CN): required", "names no DNS name or IP address"]),
]


@pytest.mark.parametrize("build, kwargs, fragments", [c[1:] for c in POLICY_CASES], ids=[c[0] for c in POLICY_CASES])
def test_policy_refusals_name_every_rule(root_ca, build, kwargs, fragments):
    csr, _key = build()
    plan = _ca.plan_issue(csr, ca_certificate=root_ca.certificate, settings=root_ca.settings, **kwargs)
    joined = " | ".join(plan["errors"])
    for fragment in fragments:
        assert fragment in joined, joined
    with pytest.raises(_ca.PolicyError) as caught:
        _ca.decide_issue(root_ca, csr, passphrase=PASS, **kwargs)
    assert "nothing was issued" in str(caught.value) and caught.value.errors == plan["errors"]


def test_policy_accepts_allowed_names_and_ips(root_ca):
    csr, _key = csr_for("portal.example.intra", "*.apps.example.intra", "example.intra", "IP:10.20.30.40")
    plan = _ca.plan_issue(csr, ca_certificate=root_ca.certificate, settings=root_ca.settings)
    assert plan["errors"] == []
    assert plan["subject_alt_name"] == ["portal.example.intra", "*.apps.example.intra", "example.intra", "IP:10.20.30.40"]


def test_validity_never_beyond_the_ca(tmp_path):
    make_ca(tmp_path, validity_days=100, settings={"max_validity_days": 397})
    ca = _ca.load_store_ca(str(tmp_path), "corp")
    csr, _key = csr_for("anything.example.com")
    decision = _ca.decide_issue(ca, csr, passphrase=PASS)
    assert decision["certificate"].not_valid_after_utc == ca.certificate.not_valid_after_utc
    assert any("shortened to the CA certificate's own expiry" in w for w in decision["plan"]["warnings"])


def test_expired_ca_refuses(root_ca):
    csr, _key = csr_for("portal.example.intra")
    later = root_ca.certificate.not_valid_after_utc + datetime.timedelta(days=1)
    plan = _ca.plan_issue(csr, ca_certificate=root_ca.certificate, settings=root_ca.settings, now=later)
    assert any("expired on" in e and "renew the CA first" in e for e in plan["errors"])


def test_only_san_is_taken_from_the_csr(root_ca):
    """A CSR asking for CA:TRUE, codeSigning, its own CRL DP gets none of it."""
    evil = [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False),
        (x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                       key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False), True),
        (x509.CRLDistributionPoints([x509.DistributionPoint([x509.UniformResourceIdentifier("http://evil/crl")], None, None, None)]), False),
    ]
    csr, _key = csr_for("portal.example.intra", extensions=evil)
    decision = _ca.decide_issue(root_ca, csr, passphrase=PASS)
    cert = decision["certificate"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign and not usage.key_encipherment  # ECDSA key
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [p.full_name[0].value for p in points] == ["http://pki.example.intra/ca.crl"]
    assert _chain.ca_issuers_urls(cert) == ["http://pki.example.intra/ca.cer"]
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    assert aki.key_identifier == root_ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    warning = " ".join(decision["plan"]["warnings"])
    assert "basicConstraints (CA:TRUE)" in warning and "extendedKeyUsage" in warning and "only subjectAltName" in warning


def test_rsa_leaf_gets_key_encipherment(root_ca):
    csr, _key = csr_for("portal.example.intra", key=generate_private_key())
    cert = _ca.decide_issue(root_ca, csr, passphrase=PASS)["certificate"]
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment


# ---------------------------------------------------------------------------------------------
# issuance: verify with openssl, idempotence, index


@needs_openssl
@pytest.mark.parametrize("kind", ["root", "intermediate"])
def test_issued_certificates_verify_with_openssl(tmp_path, kind):
    make_ca(tmp_path, kind=kind, name_constraints=True)
    ca = _ca.load_store_ca(str(tmp_path), "corp")
    csr, _key = csr_for("portal.example.intra", "wiki.example.intra")
    decision = _ca.decide_issue(ca, csr, passphrase=PASS)
    _ca.write_files(ca.directory, decision["ca_files"], name="corp")
    chain = _ca.served_chain(ca, decision["certificate"])
    assert chain.complete and [item.certificate for item in chain.intermediates] == ca.issuer_chain()
    verified = openssl_verify(tmp_path, decision["certificate"], root_file=tmp_path / "ca" / "corp" / "root.pem",
                              chain=[item.certificate for item in chain.intermediates],
                              crl_file=tmp_path / "ca" / "corp" / "crl.pem")
    assert verified.returncode == 0 and ": OK" in verified.stdout, verified.stderr
    # The name constraints in the CA certificate stop even a certificate the policy would refuse.
    key = ca.open_key(PASS)
    forged_csr, _forged_key = csr_for("www.example.com")
    plan = _ca.plan_issue(forged_csr, ca_certificate=ca.certificate, settings=dict(ca.settings, allowed_domains=[]))
    forged = _ca.sign_certificate(forged_csr, plan, ca_certificate=ca.certificate, ca_key=key, settings=ca.settings, serial=77)
    refused = openssl_verify(tmp_path, forged, root_file=tmp_path / "ca" / "corp" / "root.pem",
                             chain=[item.certificate for item in chain.intermediates])
    assert refused.returncode != 0 and "permitted subtree violation" in refused.stdout + refused.stderr


def test_keep_reuse_issue_and_renewal_window(root_ca):
    csr, key = csr_for("portal.example.intra")
    first = _ca.decide_issue(root_ca, csr, passphrase=PASS)
    assert first["action"] == "issue" and first["reason"] == "no certificate yet"
    _ca.write_files(root_ca.directory, first["ca_files"], name="corp")
    cert = first["certificate"]
    entry = root_ca.index["certificates"][_ca.format_serial(cert.serial_number)]
    assert entry["status"] == "valid" and entry["subject_alt_name"] == ["portal.example.intra"]
    assert _ca.decide_issue(root_ca, csr, existing=cert, passphrase=None)["action"] == "keep"
    reuse = _ca.decide_issue(root_ca, csr, passphrase=None)
    assert reuse["action"] == "reuse" and reuse["certificate"] == cert
    assert _ca.decide_issue(root_ca, csr, existing=cert, passphrase=PASS, force=True)["certificate"] != cert
    late = cert.not_valid_after_utc - datetime.timedelta(days=10)
    renewed = _ca.decide_issue(root_ca, csr, existing=cert, passphrase=PASS, now=late)
    assert renewed["action"] == "issue" and "within the renewal window of 30 days" in renewed["reason"]
    other_csr, _same_key = csr_for("portal.example.intra", "wiki.example.intra", key=key)
    assert "subject alternative names changed" in _ca.decide_issue(root_ca, other_csr, existing=cert, passphrase=PASS)["reason"]


def test_revoked_certificate_is_replaced(root_ca):
    csr, _key = csr_for("portal.example.intra")
    first = _ca.decide_issue(root_ca, csr, passphrase=PASS)
    cert = first["certificate"]
    _ca.revoke(root_ca.index, cert.serial_number, reason="superseded")
    again = _ca.decide_issue(root_ca, csr, existing=cert, passphrase=PASS)
    assert again["action"] == "issue" and again["reason"] == "the existing certificate is revoked"


def test_check_mode_issue_signs_nothing(root_ca):
    csr, _key = csr_for("portal.example.intra")
    decision = _ca.decide_issue(root_ca, csr, passphrase="not even checked", check_mode=True)
    assert decision["action"] == "issue" and decision["certificate"] is None and decision["ca_files"] == {}
    assert root_ca.index["certificates"] == {}


# ---------------------------------------------------------------------------------------------
# revocation state machine and CRL


def _index_with(*serials):
    index = _ca.empty_index()
    for serial in serials:
        index["certificates"][serial] = {"serial": serial, "status": "valid", "not_after": "2099-01-01T00:00:00Z"}
    return index


def test_revocation_state_machine():
    index = _index_with("0A", "0B")
    assert _ca.revoke(index, "0a", reason="certificate_hold")
    assert index["certificates"]["0A"]["status"] == "on_hold"
    assert not _ca.revoke(index, "0A", reason="certificate_hold")
    assert _ca.release_hold(index, "0A") and index["certificates"]["0A"]["status"] == "valid"
    assert "reason" not in index["certificates"]["0A"]
    assert not _ca.release_hold(index, "0A")
    assert _ca.revoke(index, "0A", reason="certificate_hold") and _ca.revoke(index, "0A", reason="key_compromise")
    assert index["certificates"]["0A"]["status"] == "revoked"
    assert not _ca.revoke(index, "0A", reason="key_compromise")
    with pytest.raises(CertfleetError, match="already revoked \\(key_compromise\\); a revocation is final"):
        _ca.revoke(index, "0A", reason="superseded")
    with pytest.raises(CertfleetError, match="revoked \\(key_compromise\\), not on hold"):
        _ca.release_hold(index, "0A")
    with pytest.raises(CertfleetError, match="serial 0C was not issued by the CA"):
        _ca.revoke(index, "0C")
    with pytest.raises(CertfleetError, match="reason 'stolen' must be one of"):
        _ca.revoke(index, "0B", reason="stolen")
    with pytest.raises(CertfleetError, match="invalidity_date"):
        _ca.revoke(index, "0B", invalidity_date="yesterday")
    assert _ca.index_summary(index) == {"issued": 2, "valid": 1, "expired": 0, "on_hold": 0, "revoked": 1}


@needs_openssl
def test_revoke_through_run_private_ca_updates_the_crl(tmp_path):
    make_ca(tmp_path, kind="intermediate")
    ca = _ca.load_store_ca(str(tmp_path), "corp")
    csr, _key = csr_for("portal.example.intra")
    decision = _ca.decide_issue(ca, csr, passphrase=PASS)
    _ca.write_files(ca.directory, decision["ca_files"], name="corp")
    serial = _ca.format_serial(decision["certificate"].serial_number)
    check = _ca.run_private_ca(store_path=str(tmp_path), name="corp", passphrase=PASS, check_mode=True,
                               revocations=[{"serial": serial, "reason": "key_compromise"}])
    assert check["changed"] and check["crl"]["revoked"] == []
    result = _ca.run_private_ca(store_path=str(tmp_path), name="corp", passphrase=PASS,
                                revocations=[{"serial": serial, "reason": "key_compromise"}])
    assert result["actions"] == [f"revoked {serial} (key_compromise)", "CRL 2 generated (the revocations changed)"]
    assert result["crl"]["number"] == 2 and result["crl"]["revoked"] == [serial]
    assert result["index"]["revoked"] == 1
    again = _ca.run_private_ca(store_path=str(tmp_path), name="corp", passphrase=PASS,
                               revocations=[{"serial": serial, "reason": "key_compromise"}])
    assert not again["changed"]
    directory = tmp_path / "ca" / "corp"
    crl_text = run_openssl("crl", "-in", str(directory / "crl.pem"), "-CAfile", str(directory / "cert.pem"), "-noout", "-text")
    assert "verify OK" in crl_text.stderr + crl_text.stdout and "Key Compromise" in crl_text.stdout
    der = run_openssl("crl", "-inform", "DER", "-in", str(directory / "crl.der"), "-noout", "-crlnumber")
    assert "crlNumber=0x02" in der.stdout
    verified = openssl_verify(tmp_path, decision["certificate"], root_file=directory / "root.pem", chain=[ca.certificate],
                              crl_file=directory / "crl.pem")
    assert verified.returncode != 0 and "certificate revoked" in verified.stdout + verified.stderr


def test_crl_refresh_reasons(root_ca):
    crl = root_ca.crl_pem
    now = utc_now()
    check = dict(ca_certificate=root_ca.certificate, index=root_ca.index, next_update_days=30)
    assert _ca.crl_refresh_reason(crl, now=now, **check) is None
    assert _ca.crl_refresh_reason(None, now=now, **check) == "no CRL yet"
    assert _ca.crl_refresh_reason(b"garbage", now=now, **check) == "the CRL file cannot be read"
    assert _ca.crl_refresh_reason(crl, now=now + datetime.timedelta(days=16), **check) == "the CRL is past half of its lifetime"
    other = pb.make_root("Other")
    foreign = _ca.build_crl(ca_certificate=other.cert, ca_key=other.key, index=_ca.empty_index(), number=1, now=now, next_update_days=30)
    assert _ca.crl_refresh_reason(_ca.pem(foreign), now=now, **check) == "the CRL was not signed by this CA certificate"
    index = _index_with("0A")
    _ca.revoke(index, "0A")
    assert _ca.crl_refresh_reason(crl, now=now, ca_certificate=root_ca.certificate, index=index, next_update_days=30) \
        == "the revocations changed"


def test_crl_refreshes_after_half_its_lifetime(tmp_path):
    make_ca(tmp_path, settings={"crl_next_update_days": 10}, kind="intermediate")
    later = utc_now() + datetime.timedelta(days=6)
    result = _ca.run_private_ca(store_path=str(tmp_path), name="corp", passphrase=PASS, now=later)
    assert result["actions"] == ["CRL 2 generated (the CRL is past half of its lifetime)",
                                 "root CRL 2 generated (the CRL is past half of its lifetime)"]
    assert not _ca.run_private_ca(store_path=str(tmp_path), name="corp", passphrase=PASS, now=later)["changed"]
    forced = _ca.run_private_ca(store_path=str(tmp_path), name="corp", passphrase=PASS, refresh_crl=True, now=later)
    assert forced["actions"] == ["CRL 3 generated (refresh_crl=true)"]


# ---------------------------------------------------------------------------------------------
# subordinate CA of an enterprise CA


def _enterprise_sign(csr_pem: bytes, issuer: pb.Issued, *, ca=True):
    csr = load_csr(csr_pem)
    return pb.issue(csr.subject, public_key=csr.public_key(), issuer_name=issuer.cert.subject, signing_key=issuer.key,
                    signing_key_type=issuer.key_type, aki_key=issuer.key.public_key(), ca=ca, path_length=0 if ca else None, days=1000)


@needs_openssl
def test_subordinate_ca_flow(tmp_path):
    created = make_ca(tmp_path, kind="subordinate", subject={"CN": "Example Sub CA", "O": "Example"})
    assert created["status"] == "pending_signature" and created["actions"] == ["CA key generated", "CA CSR generated for the parent CA"]
    assert created["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    waiting = make_ca(tmp_path)
    assert not waiting["changed"] and any("waiting for the parent CA's certificate" in w for w in waiting["warnings"])
    with pytest.raises(CertfleetError, match="subordinate CA is waiting for its certificate"):
        _ca.load_store_ca(str(tmp_path), "corp")
    csr_pem = (tmp_path / "ca" / "corp" / "csr.pem").read_bytes()
    assert load_csr(csr_pem).extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    enterprise_root = pb.make_root("Enterprise Root CA")
    enterprise_int = pb.make_intermediate("Enterprise Policy CA", issuer=enterprise_root, path_length=1)
    signed = _enterprise_sign(csr_pem, enterprise_int)
    # Windows AD CS hands back a .p7b with the whole chain, in no particular order.
    bundle = pb.p7b([enterprise_root.cert, signed, enterprise_int.cert])
    imported = _ca.run_private_ca(store_path=str(tmp_path), name="corp", passphrase=PASS,
                                  signed_certificates=[(bundle, "certnew.p7b")])
    assert imported["status"] == "active"
    assert imported["actions"] == ["CA certificate imported", "CRL 1 generated (no CRL yet)"]
    again = _ca.run_private_ca(store_path=str(tmp_path), name="corp", passphrase=PASS, signed_certificates=[(bundle, "certnew.p7b")])
    assert not again["changed"]
    ca = _ca.load_store_ca(str(tmp_path), "corp")
    assert ca.chain == [enterprise_int.cert] and ca.root == enterprise_root.cert
    csr, _key = csr_for("portal.example.intra")
    decision = _ca.decide_issue(ca, csr, passphrase=PASS)
    chain = _ca.served_chain(ca, decision["certificate"])
    assert [item.certificate for item in chain.intermediates] == [ca.certificate, enterprise_int.cert]
    verified = openssl_verify(tmp_path, decision["certificate"], root_file=tmp_path / "ca" / "corp" / "root.pem",
                              chain=[ca.certificate, enterprise_int.cert])
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_subordinate_import_errors(tmp_path):
    make_ca(tmp_path, kind="subordinate")
    csr_pem = (tmp_path / "ca" / "corp" / "csr.pem").read_bytes()
    enterprise = pb.make_root("Enterprise Root CA")
    not_ours = pb.make_intermediate("Someone Else", issuer=enterprise)
    not_ca = _enterprise_sign(csr_pem, enterprise, ca=False)
    for data, message in [(not_ours.pem, "none of the certificates in x.pem is for this CA's key"),
                          (_ca.pem(not_ca), "is not a CA certificate")]:
        with pytest.raises(CertfleetError, match=message):
            _ca.run_private_ca(store_path=str(tmp_path), name="corp", passphrase=PASS, signed_certificates=[(data, "x.pem")])
    assert json.loads((tmp_path / "ca" / "corp" / "ca.json").read_text())["status"] == "pending_signature"
    # Without the parent's root the import works with a warning.
    signed = _enterprise_sign(csr_pem, enterprise)
    result = _ca.run_private_ca(store_path=str(tmp_path), name="corp", passphrase=PASS, signed_certificates=[(_ca.pem(signed), "x.pem")])
    assert any("root certificate is not among the files given" in w for w in result["warnings"])
    make_ca(tmp_path, name="plain")
    with pytest.raises(CertfleetError, match="CA plain is a root CA; only a subordinate CA imports"):
        _ca.run_private_ca(store_path=str(tmp_path), name="plain", passphrase=PASS, signed_certificates=[(_ca.pem(signed), "x.pem")])


def test_describe_ca_has_no_key_material(tmp_path):
    result = make_ca(tmp_path, kind="intermediate")
    text = json.dumps(result)
    assert "PRIVATE KEY" not in text and PASS not in text
    key_lines = (tmp_path / "ca" / "corp" / "key.pem").read_text().splitlines()[1:-1]
    assert not any(line in text for line in key_lines)
