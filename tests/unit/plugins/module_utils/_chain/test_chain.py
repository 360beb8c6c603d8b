# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for the chain engine, with real certificates (pki_builder) and the real openssl CLI."""

from __future__ import annotations

import datetime
import http.server
import os
import random
import shutil
import ssl
import subprocess
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError, certificate_fingerprint
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
needs_openssl = pytest.mark.skipif(not os.path.exists(OPENSSL), reason="openssl CLI not available")
SEEDS = (0, 1, 7, 42, 2026)


@pytest.fixture(scope="module")
def pki() -> pb.StandardPKI:
    return pb.standard_pki()


def fps(items) -> list[str]:
    return [certificate_fingerprint(i.certificate if isinstance(i, _chain.SourcedCertificate) else getattr(i, "cert", i)) for i in items]


def cn(item) -> str:
    cert = item.certificate if isinstance(item, _chain.SourcedCertificate) else getattr(item, "cert", item)
    return cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value


def run_openssl(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([OPENSSL, *args], capture_output=True, text=True, cwd=cwd, check=False)


# ---------------------------------------------------------------------------------------------
# loading


def _der_files(certs):
    return [(f"ca{i}.cer", c.der) for i, c in enumerate(certs)]


FORMATS = {
    "pem_junk": lambda certs: [("chain.txt", pb.pem_bundle(certs, junk=True))],
    "pem_crlf": lambda certs: [("chain.crt", pb.pem_bundle(certs, junk=True, crlf=True))],
    "pem_plain": lambda certs: [("chain.pem", pb.pem_bundle(certs, junk=False))],
    "der_files": _der_files,
    "p7b_der": lambda certs: [("chain.p7b", pb.p7b(certs))],
    "p7b_pem": lambda certs: [("chain.p7c", pb.p7b(certs, pem=True))],
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_load_every_format_finds_every_certificate(pki, fmt):
    certs = [pki.int2, pki.int1, pki.root]
    loaded = []
    for name, data in FORMATS[fmt](certs):
        bundle = _chain.load_certificates(data, source=name)
        assert bundle.private_key is None
        loaded.extend(bundle.certificates)
    assert sorted(fps(loaded)) == sorted(fps(certs))
    assert all(item.source for item in loaded)


def test_load_labels_name_the_source_and_position(pki):
    bundle = _chain.load_certificates(pb.pem_bundle([pki.int2, pki.int1]), source="mail.txt")
    assert [item.source for item in bundle.certificates] == ["mail.txt#1", "mail.txt#2"]
    single = _chain.load_certificates(pki.int2.der, source="int2.cer")
    assert [item.source for item in single.certificates] == ["int2.cer"]


@pytest.mark.parametrize("password", [b"secret", "secret"])
def test_load_pkcs12_returns_key_and_certificates(pki, password):
    data = pb.pfx(pki.leaf, [pki.int2, pki.int1], password=b"secret")
    bundle = _chain.load_certificates(data, source="site.pfx", password=password)
    assert fps(bundle.certificates) == fps([pki.leaf, pki.int2, pki.int1])
    assert _chain.key_matches_certificate(bundle.private_key, pki.leaf.cert)


def test_load_pkcs12_without_password_protection(pki):
    data = pkcs12.serialize_key_and_certificates(b"x", pki.leaf.key, pki.leaf.cert, None, serialization.NoEncryption())
    bundle = _chain.load_certificates(data, source="open.pfx")
    assert fps(bundle.certificates) == fps([pki.leaf])


def test_load_pem_with_key_block_returns_key(pki):
    data = pki.leaf.key_pem + pb.pem_bundle([pki.leaf, pki.int2])
    bundle = _chain.load_certificates(data, source="haproxy.pem")
    assert _chain.key_matches_certificate(bundle.private_key, pki.leaf.cert)
    assert len(bundle.certificates) == 2


def test_load_pem_with_encrypted_key_and_no_passphrase_warns(pki):
    key_pem = pki.leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"pw"))
    bundle = _chain.load_certificates(key_pem + pki.leaf.pem, source="both.pem")
    assert bundle.private_key is None
    assert any("encrypted private key ignored" in w for w in bundle.warnings)
    bundle = _chain.load_certificates(key_pem + pki.leaf.pem, source="both.pem", password="pw")
    assert bundle.private_key is not None


def test_library_warnings_become_bundle_warnings():
    key = pb.make_key()
    odd = pb.issue(pb.name("Negative Serial CA"), public_key=key.public_key(), issuer_name=pb.name("Negative Serial CA"),
                   signing_key=key, serial=0x7A7A7A)
    # CertificateBuilder refuses negative serials, so flip the sign bit in the DER (as some old roots have).
    der = odd.public_bytes(serialization.Encoding.DER)
    assert der.count(b"\x02\x03\x7a\x7a\x7a") == 1
    der = der.replace(b"\x02\x03\x7a\x7a\x7a", b"\x02\x03\xfa\x7a\x7a")
    bundle = _chain.load_certificates(der, source="odd.cer")
    assert len(bundle.certificates) == 1 and _chain.certificate_info(bundle.certificates[0])["serial"].startswith("-")
    assert len(bundle.warnings) == 1 and bundle.warnings[0].startswith("odd.cer (/CN=Negative Serial CA): Parsed a serial number")


def test_load_pem_ignores_other_blocks_with_a_warning(pki):
    data = b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n" + pki.int1.pem
    bundle = _chain.load_certificates(data, source="mixed.pem")
    assert fps(bundle.certificates) == fps([pki.int1])
    assert bundle.warnings == ["mixed.pem: PEM block 1 (CERTIFICATE REQUEST): not a certificate, ignored"]


@needs_openssl
def test_load_openssl_trusted_certificate_block(pki, tmp_path):
    (tmp_path / "root.pem").write_bytes(pki.root.pem)
    result = run_openssl("x509", "-in", "root.pem", "-trustout", "-addtrust", "serverAuth", "-out", "trusted.pem", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = (tmp_path / "trusted.pem").read_bytes()
    assert b"BEGIN TRUSTED CERTIFICATE" in data
    bundle = _chain.load_certificates(data, source="trusted.pem")
    assert fps(bundle.certificates) == fps([pki.root])


def _truncated_pem(pki):
    return pki.int1.pem[: len(pki.int1.pem) // 2]


def _bad_base64(pki):
    lines = pki.int1.pem.splitlines(keepends=True)
    lines[2] = b"!!!! not base64 !!!!\n"
    return b"".join(lines)


def _corrupt_pem_der(pki):
    # Valid base64, but the DER inside is cut short.
    import base64
    der = pki.int1.der[:-20]
    body = base64.encodebytes(der)
    return b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----\n"


LOAD_ERRORS = [
    ("garbage", lambda pki: b"this is not a certificate at all\n\x00\x01", None,
     "chain.txt: no certificate found (not PEM, DER, PKCS#7 or PKCS#12)"),
    ("empty", lambda pki: b"  \r\n", None, "chain.txt: the file is empty"),
    ("truncated PEM", _truncated_pem, None, "BEGIN line without its matching END line"),
    ("bad base64", _bad_base64, None, "chain.txt: PEM block 1 (CERTIFICATE): invalid base64"),
    ("corrupt DER inside PEM", _corrupt_pem_der, None, "PEM block 1 (CERTIFICATE) is not a valid X.509 certificate"),
    ("truncated DER", lambda pki: pki.int1.der[:-1], None, "chain.txt: binary (DER) data that ends too early"),
    ("corrupt DER", lambda pki: pki.int1.der[:8] + b"\x99" + pki.int1.der[9:], None,
     "chain.txt is not a valid X.509 certificate"),
    ("truncated PFX", lambda pki: pb.pfx(pki.leaf, [pki.int2])[:-30], "secret", "chain.txt: binary (DER) data that ends too early"),
    ("only a CSR", lambda pki: b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", None,
     "chain.txt: no certificate found (PEM text without a CERTIFICATE or PKCS7 block)"),
    ("DER private key", lambda pki: pki.leaf.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()), None,
     "chain.txt: holds a DER private key, not a certificate"),
    ("corrupt PKCS7 PEM", lambda pki: b"-----BEGIN PKCS7-----\nMIIBAAAA\n-----END PKCS7-----\n", None,
     "chain.txt: PEM block 1 (PKCS7) is not a valid PKCS#7 certificate bundle"),
    ("wrong PFX password", lambda pki: pb.pfx(pki.leaf, [pki.int2], password=b"right"), "wrong",
     "chain.txt: wrong password for the PKCS#12 (PFX) file"),
    ("PFX without password", lambda pki: pb.pfx(pki.leaf, [pki.int2], password=b"right"), None,
     "chain.txt: the PKCS#12 (PFX) file is protected by a password; give the PFX password"),
]


@pytest.mark.parametrize("data_factory, password, message", [e[1:] for e in LOAD_ERRORS], ids=[e[0] for e in LOAD_ERRORS])
def test_load_errors_are_specific(pki, data_factory, password, message):
    with pytest.raises(CertfleetError) as exc_info:
        _chain.load_certificates(data_factory(pki), source="chain.txt", password=password)
    assert message in str(exc_info.value)


def _key_variants(pki):
    key = pki.leaf.key
    rsa_key = pb.make_key("rsa2048")
    return {
        "pkcs8 pem": (pki.leaf.key_pem, None, key),
        "pkcs8 pem crlf": (pki.leaf.key_pem.replace(b"\n", b"\r\n"), None, key),
        "traditional rsa": (rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                                  serialization.NoEncryption()), None, rsa_key),
        "encrypted pem": (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"pw")), "pw", key),
        "der": (key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), None, key),
        "unencrypted with needless passphrase": (pki.leaf.key_pem, "unused", key),
        "pfx": (pb.pfx(pki.leaf, [], password=b"pw"), b"pw", key),
    }


def test_extract_private_key_variants(pki):
    for label, (data, passphrase, expected) in _key_variants(pki).items():
        key = _chain.extract_private_key(data, source=label, passphrase=passphrase)
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        assert (key.public_key().public_bytes(serialization.Encoding.DER, spki)
                == expected.public_key().public_bytes(serialization.Encoding.DER, spki)), label


@pytest.mark.parametrize("passphrase, message", [
    (None, "server.key: the private key is encrypted; a passphrase is required"),
    ("bad", "server.key: cannot read the private key (wrong passphrase)"),
])
def test_extract_private_key_errors(pki, passphrase, message):
    data = pki.leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(CertfleetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _chain.extract_private_key(data, source="server.key", passphrase=passphrase)


def test_extract_private_key_rejects_certificate(pki):
    with pytest.raises(CertfleetError, match="no private key found"):
        _chain.extract_private_key(pki.leaf.pem, source="cert.pem")
    with pytest.raises(CertfleetError, match="not a private key"):
        _chain.extract_private_key(b"\x01\x02garbage", source="x.key")


# ---------------------------------------------------------------------------------------------
# shuffled piles in every format give the same order


def _pile_for_format(pki, fmt, seed):
    rng = random.Random(seed)
    certs = pki.pile + [pki.int2, pki.root]  # duplicates on purpose
    rng.shuffle(certs)
    if fmt == "pkcs12":
        data = pb.pfx(pki.leaf, certs, password=b"pfx-pass")
        bundle = _chain.load_certificates(data, source="site.pfx", password=b"pfx-pass")
        leaf = _chain.select_leaf(bundle.certificates, private_key=bundle.private_key)
        return leaf, bundle.certificates
    items = []
    for name, data in FORMATS[fmt](certs):
        items.extend(_chain.load_certificates(data, source=name).certificates)
    rng.shuffle(items)
    leaf = _chain.load_certificates(pki.leaf.der, source="server.cer").certificates[0]
    return leaf, items


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fmt", sorted(FORMATS) + ["pkcs12"])
def test_shuffled_piles_give_the_same_chain(pki, fmt, seed):
    leaf, pile = _pile_for_format(pki, fmt, seed)
    result = _chain.build_chain(leaf, pile, trust_anchors=[pki.root.cert])
    assert fps(result.sourced) == fps([pki.leaf, pki.int2, pki.int1])
    assert _chain.fullchain_pem(result) == pki.leaf.pem + pki.int2.pem + pki.int1.pem
    assert _chain.chain_pem(result) == pki.int2.pem + pki.int1.pem
    assert result.complete and result.root is not None and cn(result.root) == "Test Root"
    unrelated = sorted(w for w in result.warnings if w.startswith("ignored unrelated"))
    assert len(unrelated) == 2 and "Unrelated Int" in unrelated[0] + unrelated[1] and "Unrelated Root" in unrelated[0] + unrelated[1]
    reasons = {entry["reason"] for entry in result.unused}
    assert any(reason.startswith("duplicate of") for reason in reasons)


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_root_order_is_stable_across_shuffles(pki, seed):
    leaf, pile = _pile_for_format(pki, "pem_junk", seed)
    result = _chain.build_chain(leaf, pile, trust_anchors=[pki.root.cert], prefer="cross_root")
    assert fps(result.sourced) == fps([pki.leaf, pki.int2, pki.int1, pki.root_x])


# ---------------------------------------------------------------------------------------------
# prefer: shortest vs cross_root


PREFER_CASES = [
    # (id, pile attribute names, anchor attribute names, prefer, expected intermediates, expected root)
    ("shortest to the new root", ["int2", "int1", "int1_x", "root", "old_root", "root_x"], ["root"], "shortest",
     ["int2", "int1"], "root"),
    ("cross root through root_x", ["int2", "int1", "int1_x", "root", "old_root", "root_x"], ["root"], "cross_root",
     ["int2", "int1", "root_x"], "old_root"),
    ("cross root without the old root in the pile", ["int2", "int1", "root_x"], ["root"], "cross_root",
     ["int2", "int1", "root_x"], None),
    ("tie: shortest picks the newest root", ["int2", "int1", "int1_x"], ["root", "old_root"], "shortest",
     ["int2", "int1"], "root"),
    ("tie: cross_root picks the oldest root", ["int2", "int1", "int1_x"], ["root", "old_root"], "cross_root",
     ["int2", "int1_x"], "old_root"),
    ("only the old root trusted", ["int2", "int1", "int1_x", "root"], ["old_root"], "shortest",
     ["int2", "int1_x"], "old_root"),
    ("no trust bundle: self-signed roots in the pile", ["int2", "int1", "int1_x", "root", "old_root"], [], "shortest",
     ["int2", "int1"], "root"),
    ("no trust bundle, cross_root", ["int2", "int1", "int1_x", "root", "old_root", "root_x"], [], "cross_root",
     ["int2", "int1", "root_x"], "old_root"),
    ("cross certificate of the anchor, shortest ignores it", ["int2", "int1", "root_x"], ["root"], "shortest",
     ["int2", "int1"], "root"),
]


@pytest.mark.parametrize("pile, anchors, prefer, intermediates, root", [c[1:] for c in PREFER_CASES], ids=[c[0] for c in PREFER_CASES])
def test_prefer(pki, pile, anchors, prefer, intermediates, root):
    result = _chain.build_chain(pki.leaf.cert, [getattr(pki, n).cert for n in pile],
                                trust_anchors=[getattr(pki, n).cert for n in anchors], prefer=prefer)
    assert fps(result.intermediates) == fps([getattr(pki, n) for n in intermediates])
    if root is None:
        assert result.root is None
    else:
        assert fps([result.root]) == fps([getattr(pki, root)])


def test_include_root_appends_the_root(pki):
    result = _chain.build_chain(pki.leaf.cert, [pki.int1.cert, pki.int2.cert, pki.root.cert], include_root=True)
    assert fps(result.sourced) == fps([pki.leaf, pki.int2, pki.int1, pki.root])
    assert _chain.chain_pem(result).endswith(pki.root.pem)


def test_include_root_without_root_warns(pki):
    result = _chain.build_chain(pki.leaf.cert, [pki.int1.cert, pki.int2.cert, pki.root_x.cert], trust_anchors=[pki.root.cert],
                                prefer="cross_root", include_root=True)
    assert result.root is None
    assert "include_root is set but the root certificate of this path is not available" in result.warnings


def test_invalid_prefer(pki):
    with pytest.raises(CertfleetError, match="prefer must be one of shortest, cross_root"):
        _chain.build_chain(pki.leaf.cert, [], prefer="longest")


# ---------------------------------------------------------------------------------------------
# wrong piles


def _loop_pki(_pki):
    key_a, key_b = pb.make_key(), pb.make_key()
    name_a, name_b = pb.name("Loop CA A"), pb.name("Loop CA B")
    cert_a = pb.issue(name_a, public_key=key_a.public_key(), issuer_name=name_b, signing_key=key_b, aki_key=key_b.public_key())
    cert_b = pb.issue(name_b, public_key=key_b.public_key(), issuer_name=name_a, signing_key=key_a, aki_key=key_a.public_key())
    a = pb.Issued(cert_a, key_a, label="A")
    leaf = pb.make_leaf("loop.example.test", issuer=a)
    return leaf.cert, [cert_a, cert_b], []


def _missing_issuer(pki):
    return pki.leaf.cert, [pki.int2.cert, pki.unrelated_int.cert], [pki.root.cert]


def _expired_intermediate(pki):
    return pki.leaf_under_expired.cert, [pki.expired_int.cert, pki.root.cert], []


def _not_yet_valid_intermediate(pki):
    start = pb.utcnow() + datetime.timedelta(days=5)
    future = pb.make_intermediate("Future Int", issuer=pki.root, not_before=start, days=100)
    leaf = pb.make_leaf("future.example.test", issuer=future)
    return leaf.cert, [future.cert], [pki.root.cert]


def _not_a_ca(pki):
    fake = pb.make_intermediate("Not A CA", issuer=pki.root, ca=False)
    leaf = pb.make_leaf("fake.example.test", issuer=fake)
    return leaf.cert, [fake.cert], [pki.root.cert]


def _no_basic_constraints(pki):
    fake = pb.make_intermediate("No BC", issuer=pki.root, ca=None, key_usage="ca")
    leaf = pb.make_leaf("nobc.example.test", issuer=fake)
    return leaf.cert, [fake.cert], [pki.root.cert]


def _path_length(pki):
    limited = pb.make_intermediate("Limited Int1", issuer=pki.root, path_length=0)
    below = pb.make_intermediate("Below Int2", issuer=limited)
    leaf = pb.make_leaf("deep.example.test", issuer=below)
    return leaf.cert, [below.cert, limited.cert], [pki.root.cert]


def _no_key_cert_sign(pki):
    weak = pb.make_intermediate("No CertSign", issuer=pki.root, key_usage="no_cert_sign")
    leaf = pb.make_leaf("weak.example.test", issuer=weak)
    return leaf.cert, [weak.cert], [pki.root.cert]


def _untrusted_root(pki):
    return pki.leaf.cert, [pki.int2.cert, pki.int1.cert, pki.root.cert], [pki.unrelated_root.cert]


def _impostor(pki):
    impostor = pb.make_intermediate("Test Int1", issuer=pki.root)  # right name, other key
    return pki.leaf.cert, [pki.int2.cert, impostor.cert], [pki.root.cert]


CHAIN_ERRORS = [
    ("missing issuer", _missing_issuer,
     ["no issuer found for input#1 (/CN=Test Int2)", "missing issuer certificate: /CN=Test Int1"]),
    ("expired intermediate", _expired_intermediate,
     ["intermediate input#1 (/CN=Test Expired Int) expired on"]),
    ("not yet valid intermediate", _not_yet_valid_intermediate, ["intermediate input#1 (/CN=Future Int) is not yet valid"]),
    ("loop", _loop_pki, ["issuer loop:", "/CN=Loop CA A", "/CN=Loop CA B"]),
    ("not a CA", _not_a_ca, ["input#1 (/CN=Not A CA) is not a CA certificate (basicConstraints CA:FALSE)"]),
    ("no basicConstraints", _no_basic_constraints, ["/CN=No BC) is not a CA certificate (no basicConstraints CA:TRUE)"]),
    ("pathLenConstraint", _path_length, ["/CN=Limited Int1) has pathLenConstraint 0 but 1 intermediate(s) below it"]),
    ("keyUsage without keyCertSign", _no_key_cert_sign, ["/CN=No CertSign) has a keyUsage without keyCertSign"]),
    ("untrusted root", _untrusted_root, ["ends at the self-signed root input#3 (/CN=Test Root), which is not in the trust bundle"]),
    ("impostor issuer", _impostor, ["missing issuer certificate: /CN=Test Int1", "its key does not verify the signature"]),
]


@pytest.mark.parametrize("factory, fragments", [e[1:] for e in CHAIN_ERRORS], ids=[e[0] for e in CHAIN_ERRORS])
def test_wrong_piles_fail_with_specific_errors(pki, factory, fragments):
    leaf, pile, anchors = factory(pki)
    with pytest.raises(CertfleetError) as exc_info:
        _chain.build_chain(leaf, pile, trust_anchors=anchors)
    for fragment in fragments:
        assert fragment in str(exc_info.value)


def test_expired_intermediate_is_skipped_when_a_renewed_one_exists(pki):
    # Same subject and key as int2, but expired: the valid one must win.
    old_int2 = pb.make_cross_signed(pki.int2, issuer=pki.int1, not_before=pb.utcnow() - datetime.timedelta(days=500), days=100)
    result = _chain.build_chain(pki.leaf.cert, [old_int2.cert, pki.int2.cert, pki.int1.cert], trust_anchors=[pki.root.cert])
    assert fps(result.intermediates) == fps([pki.int2, pki.int1])


def test_cross_root_falls_back_with_a_warning_when_the_cross_certificate_expired(pki):
    expired_x = pb.make_cross_signed(pki.root, issuer=pki.old_root, not_before=pb.utcnow() - datetime.timedelta(days=900), days=100)
    result = _chain.build_chain(pki.leaf.cert, [pki.int2.cert, pki.int1.cert, expired_x.cert, pki.old_root.cert],
                                trust_anchors=[pki.root.cert], prefer="cross_root")
    assert fps(result.intermediates) == fps([pki.int2, pki.int1])
    assert any(w.startswith("the path preferred by prefer=cross_root was not used: intermediate input#3 (/CN=Test Root) expired on")
               for w in result.warnings), result.warnings


SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.mark.skipif(not os.path.exists(SYSTEM_BUNDLE), reason="no system CA bundle")
def test_system_bundle_loads_and_serves_as_trust_anchors(pki):
    with open(SYSTEM_BUNDLE, "rb") as handle:
        bundle = _chain.load_certificates(handle.read(), source=SYSTEM_BUNDLE)
    assert len(bundle.certificates) > 50
    assert all("PEM block" in w for w in bundle.warnings)  # e.g. cryptography's serial number notices, as warnings
    started = time.monotonic()
    result = _chain.build_chain(pki.leaf.cert, [pki.int2.cert, pki.int1.cert],
                                trust_anchors=bundle.certificates + [_chain.SourcedCertificate(pki.root.cert, "site-roots.pem")])
    assert time.monotonic() - started < 5
    assert result.root.source == "site-roots.pem"
    with pytest.raises(CertfleetError, match="missing issuer certificate: /CN=Test Root"):
        _chain.build_chain(pki.leaf.cert, [pki.int2.cert, pki.int1.cert], trust_anchors=bundle.certificates)


def test_allow_incomplete_returns_partial_chain_with_warning(pki):
    result = _chain.build_chain(pki.leaf.cert, [pki.int2.cert], trust_anchors=[pki.root.cert], allow_incomplete=True)
    assert not result.complete
    assert fps(result.sourced) == fps([pki.leaf, pki.int2])
    assert any("missing issuer certificate: /CN=Test Int1" in w for w in result.warnings)


def test_aia_url_is_named_when_fetching_is_off(pki):
    with_aia = pb.make_intermediate("AIA Int", issuer=pki.int1, aia_ca_issuers="http://ca.example.test/int1.cer")
    leaf = pb.make_leaf("aia.example.test", issuer=with_aia)
    with pytest.raises(CertfleetError, match=r"AIA caIssuers URL is http://ca\.example\.test/int1\.cer \(AIA fetching is off\)"):
        _chain.build_chain(leaf.cert, [with_aia.cert], trust_anchors=[pki.root.cert])


# ---------------------------------------------------------------------------------------------
# warnings


def test_intermediate_expiring_before_leaf_warns(pki):
    short = pb.make_intermediate("Short Int", issuer=pki.root, days=30)
    leaf = pb.make_leaf("long.example.test", issuer=short, days=365)
    result = _chain.build_chain(leaf.cert, [short.cert], trust_anchors=[pki.root.cert])
    assert any("intermediate input#1 (/CN=Short Int) expires on" in w and "before the leaf" in w for w in result.warnings)


def test_expired_trust_anchor_is_rejected_and_expired_leaf_only_warns(pki):
    old = pb.make_expired("Expired Root")
    inter = pb.make_intermediate("Int Under Expired Root", issuer=old, not_before=pb.utcnow() - datetime.timedelta(days=200),
                                 not_after=pb.utcnow() + datetime.timedelta(days=100))
    leaf = pb.make_leaf("x.example.test", issuer=inter, not_before=pb.utcnow() - datetime.timedelta(days=20),
                        not_after=pb.utcnow() - datetime.timedelta(days=1))
    # Decision (docs/chains.md): an expired trust anchor fails the path, as OpenSSL, Go and webpki do.
    with pytest.raises(CertfleetError, match=r"root .*Expired Root.* expired on"):
        _chain.build_chain(leaf.cert, [inter.cert, old.cert])
    with pytest.raises(CertfleetError, match=r"expired on"):
        _chain.build_chain(leaf.cert, [inter.cert], trust_anchors=[old.cert])
    # A root that is not trusted anyway (allow_incomplete without that anchor) still only warns.
    other = pb.make_root("Unrelated Anchor")
    result = _chain.build_chain(leaf.cert, [inter.cert, old.cert], trust_anchors=[other.cert], allow_incomplete=True)
    assert not result.complete
    # The leaf's own validity is the caller's check (cert_chain builds chains for renewals too): a warning.
    good_root = pb.make_root("Valid Root")
    good_inter = pb.make_intermediate("Int Under Valid Root", issuer=good_root)
    old_leaf = pb.make_leaf("y.example.test", issuer=good_inter, not_before=pb.utcnow() - datetime.timedelta(days=20),
                            not_after=pb.utcnow() - datetime.timedelta(days=1))
    result = _chain.build_chain(old_leaf.cert, [good_inter.cert, good_root.cert])
    assert any(w.startswith("the leaf certificate leaf") and "expired on" in w for w in result.warnings)


def test_self_signed_leaf(pki):
    single = pb.make_root("selfsigned.example.test")
    result = _chain.build_chain(single.cert, [pki.int1.cert])
    assert result.intermediates == [] and result.root is None
    assert any("is self-signed" in w for w in result.warnings)


def test_leaf_copy_in_pile_is_dropped(pki):
    result = _chain.build_chain(pki.leaf.cert, [pki.leaf.cert, pki.int2.cert, pki.int1.cert, pki.root.cert])
    assert fps(result.sourced) == fps([pki.leaf, pki.int2, pki.int1])
    assert {"copy of the leaf"} == {u["reason"] for u in result.unused if u["subject"] == "/CN=www.example.test"}


def test_now_parameter_controls_the_clock(pki):
    later = pb.utcnow() + datetime.timedelta(days=4000)
    with pytest.raises(CertfleetError, match="expired on"):
        _chain.build_chain(pki.leaf.cert, [pki.int2.cert, pki.int1.cert], trust_anchors=[pki.root.cert], now=later)


# ---------------------------------------------------------------------------------------------
# signature algorithms, verified by openssl


@pytest.fixture(scope="module", params=pb.KEY_TYPES)
def typed_pki(request) -> pb.StandardPKI:
    return pb.standard_pki(key_type=request.param)


def test_signature_algorithms_build(typed_pki):
    result = _chain.build_chain(typed_pki.leaf.cert, typed_pki.pile_certs, trust_anchors=[typed_pki.root.cert])
    assert fps(result.intermediates) == fps([typed_pki.int2, typed_pki.int1])
    assert _chain.verify_signature(typed_pki.int2.cert, typed_pki.int1.cert.public_key())
    assert not _chain.verify_signature(typed_pki.int2.cert, typed_pki.root.cert.public_key())
    assert _chain.is_issued_by(typed_pki.int1_x.cert, typed_pki.old_root.cert)
    assert not _chain.is_issued_by(typed_pki.int1_x.cert, typed_pki.root.cert)


@needs_openssl
@pytest.mark.parametrize("prefer, anchor", [("shortest", "root"), ("cross_root", "old_root")])
def test_openssl_verifies_the_chain(typed_pki, tmp_path, prefer, anchor):
    result = _chain.build_chain(typed_pki.leaf.cert, typed_pki.pile_certs, trust_anchors=[typed_pki.root.cert], prefer=prefer)
    (tmp_path / "root.pem").write_bytes(getattr(typed_pki, anchor).pem)
    (tmp_path / "chain.pem").write_bytes(_chain.chain_pem(result))
    (tmp_path / "fullchain.pem").write_bytes(_chain.fullchain_pem(result))
    (tmp_path / "leaf.pem").write_bytes(typed_pki.leaf.pem)
    for untrusted in ("chain.pem", "fullchain.pem"):
        verdict = run_openssl("verify", "-CAfile", "root.pem", "-untrusted", untrusted, "leaf.pem", cwd=tmp_path)
        assert verdict.returncode == 0 and "leaf.pem: OK" in verdict.stdout, verdict.stdout + verdict.stderr
    # Without the chain OpenSSL must fail: proves the chain file is what makes it verify.
    verdict = run_openssl("verify", "-CAfile", "root.pem", "leaf.pem", cwd=tmp_path)
    assert verdict.returncode != 0


# ---------------------------------------------------------------------------------------------
# key <-> certificate


def test_key_match_and_mismatch(pki):
    _chain.check_key_matches(pki.leaf.key, pki.leaf.cert)
    with pytest.raises(CertfleetError) as exc_info:
        _chain.check_key_matches(pki.int2.key, pki.leaf.cert, key_source="server.key", cert_source="server.crt")
    message = str(exc_info.value)
    assert message.startswith("server.key does not match server.crt (/CN=www.example.test)")
    assert "SHA-256" in message


def test_select_leaf(pki):
    pile = _chain.load_certificates(pb.pem_bundle([pki.int1, pki.leaf, pki.int2, pki.root]), source="all.pem").certificates
    assert fps([_chain.select_leaf(pile)]) == fps([pki.leaf])
    assert fps([_chain.select_leaf(pile, private_key=pki.leaf.key)]) == fps([pki.leaf])
    with pytest.raises(CertfleetError, match="none of the 4 certificate"):
        _chain.select_leaf(pile, private_key=pki.unrelated_int.key)
    with pytest.raises(CertfleetError, match="several server certificates"):
        _chain.select_leaf(pile + [_chain.SourcedCertificate(pki.leaf_under_expired.cert, "other.pem")])
    with pytest.raises(CertfleetError, match="every certificate given is a CA"):
        _chain.select_leaf([pki.int1.cert])


# ---------------------------------------------------------------------------------------------
# outputs


def test_outputs_are_deterministic(pki):
    results = []
    for seed in SEEDS:
        leaf, pile = _pile_for_format(pki, "der_files", seed)
        result = _chain.build_chain(leaf, pile, trust_anchors=[pki.root.cert])
        results.append((_chain.fullchain_pem(result), _chain.chain_pem(result), _chain.combined_pem(pki.leaf.key, result)))
    assert len(set(results)) == 1
    fullchain, chain, combined = results[0]
    assert combined == pki.leaf.key_pem + fullchain
    assert fullchain == pki.leaf.pem + chain
    assert fullchain.count(b"-----BEGIN CERTIFICATE-----") == 3 and b"\r" not in fullchain


def test_combined_pem_refuses_wrong_key(pki):
    with pytest.raises(CertfleetError, match="does not match the leaf certificate"):
        _chain.combined_pem(pki.int1.key, [pki.leaf.cert, pki.int2.cert])


def test_outputs_accept_plain_lists(pki):
    assert _chain.fullchain_pem([pki.leaf.cert, pki.int2.cert]) == pki.leaf.pem + pki.int2.pem
    assert _chain.chain_pem([pki.leaf.cert]) == b""
    with pytest.raises(CertfleetError, match="no certificates to write"):
        _chain.fullchain_pem([])


def test_chain_info(pki):
    result = _chain.build_chain(pki.leaf.cert, [pki.int1.cert, pki.int2.cert, pki.root.cert], include_root=True)
    info = _chain.chain_info(result)
    assert [i["subject"] for i in info] == ["/CN=www.example.test", "/CN=Test Int2", "/CN=Test Int1", "/CN=Test Root"]
    assert [i["issuer"] for i in info] == ["/CN=Test Int2", "/CN=Test Int1", "/CN=Test Root", "/CN=Test Root"]
    assert [i["is_ca"] for i in info] == [False, True, True, True]
    assert [i["self_signed"] for i in info] == [False, False, False, True]
    first = info[0]
    assert first["sha256"] == certificate_fingerprint(pki.leaf.cert) and len(first["sha1"]) == 59
    assert int(first["serial"], 16) == pki.leaf.cert.serial_number and len(first["serial"]) % 2 == 0
    assert first["not_after"] == pki.leaf.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first["not_before"].endswith("Z") and "T" in first["not_before"]
    assert first["source"] == "leaf"
    assert "source" not in _chain.certificate_info(pki.leaf.cert)


# ---------------------------------------------------------------------------------------------
# PKCS#12


@needs_openssl
@pytest.mark.parametrize("encryption, expected", [
    ("modern", ["MAC: sha256", "PBES2, PBKDF2, AES-256-CBC"]),
    ("compatibility", ["MAC: sha1", "pbeWithSHA1And3-KeyTripleDES-CBC"]),
])
def test_pkcs12_read_by_openssl_without_legacy(pki, tmp_path, encryption, expected):
    result = _chain.build_chain(pki.leaf.cert, [pki.int1.cert, pki.int2.cert], trust_anchors=[pki.root.cert])
    data = _chain.pkcs12_bytes(pki.leaf.key, result, passphrase="p@ss word", encryption=encryption, friendly_name="www.example.test")
    (tmp_path / "site.pfx").write_bytes(data)
    info = run_openssl("pkcs12", "-info", "-noout", "-in", "site.pfx", "-passin", "pass:p@ss word", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    for fragment in expected:
        assert fragment in info.stderr + info.stdout
    # Both schemes open on OpenSSL 3.0 without -legacy: 3DES lives in the default provider,
    # only RC2/RC4-based PKCS#12 (OpenSSL 1.x's old default) needs the legacy provider.
    dump = run_openssl("pkcs12", "-in", "site.pfx", "-nodes", "-passin", "pass:p@ss word", cwd=tmp_path)
    assert dump.returncode == 0, dump.stderr
    assert "friendlyName: www.example.test" in dump.stdout
    assert dump.stdout.count("BEGIN CERTIFICATE") == 3 and "BEGIN PRIVATE KEY" in dump.stdout
    wrong = run_openssl("pkcs12", "-info", "-noout", "-in", "site.pfx", "-passin", "pass:nope", cwd=tmp_path)
    assert wrong.returncode != 0


def test_pkcs12_roundtrip_and_matches(pki):
    certs = [pki.leaf.cert, pki.int2.cert, pki.int1.cert]
    data = _chain.pkcs12_bytes(pki.leaf.key, certs, passphrase=b"pw", encryption="compatibility", friendly_name="site")
    assert data != _chain.pkcs12_bytes(pki.leaf.key, certs, passphrase=b"pw", encryption="compatibility", friendly_name="site")
    bundle = _chain.load_certificates(data, source="site.pfx", password="pw")
    assert fps(bundle.certificates) == fps(certs)
    cases = [
        ({}, True),
        ({"encryption": "compatibility"}, True),
        ({"encryption": "modern"}, False),
        ({"friendly_name": "site"}, True),
        ({"friendly_name": "other"}, False),
        ({"passphrase": "wrong"}, False),
        ({"private_key": pki.int1.key}, False),
        ({"certificates": certs[:2]}, False),
        ({"certificates": [certs[0], certs[2], certs[1]]}, False),
    ]
    for overrides, expected in cases:
        kwargs = {"passphrase": "pw", "private_key": pki.leaf.key, "certificates": certs, **overrides}
        assert _chain.pkcs12_matches(data, **kwargs) is expected, overrides
    assert _chain.pkcs12_matches(b"not a pfx", passphrase="pw", private_key=pki.leaf.key, certificates=certs) is False
    modern = _chain.pkcs12_bytes(pki.leaf.key, certs, passphrase=b"pw")
    assert _chain.pkcs12_matches(modern, passphrase=b"pw", private_key=pki.leaf.key, certificates=certs, encryption="modern")
    assert not _chain.pkcs12_matches(modern, passphrase=b"pw", private_key=pki.leaf.key, certificates=certs, encryption="compatibility")


def test_pkcs12_errors(pki):
    with pytest.raises(CertfleetError, match="non-empty passphrase"):
        _chain.pkcs12_bytes(pki.leaf.key, [pki.leaf.cert], passphrase="")
    with pytest.raises(CertfleetError, match="encryption must be one of modern, compatibility"):
        _chain.pkcs12_bytes(pki.leaf.key, [pki.leaf.cert], passphrase="x", encryption="rc2")
    with pytest.raises(CertfleetError, match="does not match"):
        _chain.pkcs12_bytes(pki.int2.key, [pki.leaf.cert], passphrase="x")


# ---------------------------------------------------------------------------------------------
# AIA over a real HTTP server


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802 - http.server API
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        body, options = route
        if options.get("delay"):
            time.sleep(options["delay"])
        self.send_response(options.get("status", 200))
        self.send_header("Content-Type", options.get("type", "application/pkix-cert"))
        if options.get("length", True):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        return


@pytest.fixture
def http_server():
    routes: dict = {}
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield base, routes
    server.shutdown()
    server.server_close()


def test_http_fetch_der_and_pkcs7(pki, http_server):
    base, routes = http_server
    routes["/int1.cer"] = (pki.int1.der, {})
    routes["/bundle.p7c"] = (pb.p7b([pki.int1, pki.root]), {"type": "application/pkcs7-mime"})
    assert fps(_chain.fetch_ca_issuers(f"{base}/int1.cer")) == fps([pki.int1])
    fetched = _chain.fetch_ca_issuers(f"{base}/bundle.p7c")
    assert sorted(fps(fetched)) == sorted(fps([pki.int1, pki.root]))
    assert all(item.source == f"{base}/bundle.p7c" or item.source.startswith(f"{base}/bundle.p7c#") for item in fetched)


def test_build_chain_fetches_missing_issuers_by_aia(pki, http_server):
    base, routes = http_server
    int2 = pb.make_intermediate("AIA Int2", issuer=pki.int1, aia_ca_issuers=f"{base}/int1.p7c")
    leaf = pb.make_leaf("aia.example.test", issuer=int2, aia_ca_issuers=f"{base}/int2.cer")
    routes["/int2.cer"] = (int2.der, {})
    routes["/int1.p7c"] = (pb.p7b([pki.int1]), {})
    calls = []

    def hook(url: str) -> bytes:
        calls.append(url)
        return _chain.http_fetch(url, timeout=5, max_bytes=65536)

    result = _chain.build_chain(leaf.cert, [], trust_anchors=[pki.root.cert], fetch_issuer=hook)
    assert fps(result.intermediates) == fps([int2, pki.int1])
    assert [item.source for item in result.intermediates] == [f"{base}/int2.cer", f"{base}/int1.p7c"]
    assert calls == result.fetched == [f"{base}/int2.cer", f"{base}/int1.p7c"]


def test_aia_fetch_failure_is_reported_not_raised(pki, http_server):
    base, _routes = http_server
    leaf = pb.make_leaf("aia404.example.test", issuer=pki.int2, aia_ca_issuers=f"{base}/missing.cer")
    with pytest.raises(CertfleetError) as exc_info:
        _chain.build_chain(leaf.cert, [], trust_anchors=[pki.root.cert],
                           fetch_issuer=lambda url: _chain.http_fetch(url, timeout=5))
    assert "missing issuer certificate: /CN=Test Int2" in str(exc_info.value)
    assert f"AIA fetch failed: {base}/missing.cer: HTTP error 404" in str(exc_info.value)


def test_aia_hook_exception_never_escapes(pki):
    leaf = pb.make_leaf("hook.example.test", issuer=pki.int2, aia_ca_issuers="http://ca.example.test/x.cer")

    def broken(url: str) -> bytes:
        raise RuntimeError("boom")

    with pytest.raises(CertfleetError, match="AIA fetch of http://ca.example.test/x.cer failed: boom"):
        _chain.build_chain(leaf.cert, [], trust_anchors=[pki.root.cert], fetch_issuer=broken)


def test_http_fetch_timeout(http_server):
    base, routes = http_server
    routes["/slow.cer"] = (b"x", {"delay": 2})
    started = time.monotonic()
    with pytest.raises(CertfleetError, match=r"slow\.cer: timed out after 0\.3 s"):
        _chain.http_fetch(f"{base}/slow.cer", timeout=0.3)
    assert time.monotonic() - started < 1.9


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "streamed"])
def test_http_fetch_size_cap(http_server, with_length):
    base, routes = http_server
    routes["/big.cer"] = (b"\x30" * 5000, {"length": with_length})
    with pytest.raises(CertfleetError, match="larger than the limit of 1000 bytes"):
        _chain.http_fetch(f"{base}/big.cer", max_bytes=1000)
    assert len(_chain.http_fetch(f"{base}/big.cer", max_bytes=5000)) == 5000


@pytest.mark.parametrize("url, message", [
    ("ldap://ldap.example.test/cn=CA", "only http and https URLs are fetched (not ldap)"),
    ("file:///etc/passwd", "only http and https URLs are fetched (not file)"),
    ("http://127.0.0.1:1/x.cer", "cannot fetch"),
])
def test_http_fetch_rejects_and_reports(url, message):
    with pytest.raises(CertfleetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _chain.http_fetch(url, timeout=2)


def test_https_fetch_verifies_the_server_certificate(pki, tmp_path):
    server_leaf = pb.make_leaf("localhost", issuer=pki.int2, san=["localhost"])
    (tmp_path / "cert.pem").write_bytes(server_leaf.pem + pki.int2.pem + pki.int1.pem)
    (tmp_path / "key.pem").write_bytes(server_leaf.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    handler = type("Handler", (_Handler,), {"routes": {"/int1.cer": (pki.int1.der, {})}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(CertfleetError, match="TLS certificate verification failed"):
            _chain.http_fetch(f"https://localhost:{server.server_address[1]}/int1.cer", timeout=5)
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------
# catalog hints in chain errors


def _cybertrust_like_pki(not_before=None):
    root = pb.make_root("Baltimore CyberTrust Root")
    g3 = pb.make_intermediate("Cybertrust Japan Public CA G3", issuer=root)
    leaf = pb.make_leaf("www.example.jp", issuer=g3, **({"not_before": not_before} if not_before else {}))
    return root, g3, leaf


def test_missing_intermediate_names_the_catalog_product(pki):
    root, _g3, leaf = _cybertrust_like_pki()
    with pytest.raises(CertfleetError) as exc_info:
        _chain.build_chain(leaf.cert, [pki.int1.cert], trust_anchors=[root.cert])
    message = str(exc_info.value)
    assert "missing issuer certificate: /CN=Cybertrust Japan Public CA G3" in message
    assert "download 'Cybertrust Japan Public CA G3' from the CA" in message
    assert "SureServer[SHA-2]" in message and "SureServer[2048bit]" in message


def test_catalog_hint_can_be_disabled(pki):
    root, _g3, leaf = _cybertrust_like_pki()
    with pytest.raises(CertfleetError) as exc_info:
        _chain.build_chain(leaf.cert, [], trust_anchors=[root.cert], catalog=[])
    assert "catalog" not in str(exc_info.value)


def test_chain_result_is_plain_data(pki):
    result = _chain.build_chain(pki.leaf.cert, [pki.int2.cert, pki.int1.cert, pki.root.cert])
    assert result.prefer == "shortest" and result.fetched == [] and result.include_root is False
    assert [type(c) for c in result.certificates] == [type(pki.leaf.cert)] * 3


# ---------------------------------------------------------------------------------------------
# AIA fetch against hostile loopback servers: one total deadline, no redirects


class _TricklingServer:
    """A raw loopback TCP server that answers every connection with ``head`` and then ``drip`` one byte a second."""

    def __init__(self, head: bytes, drip: bytes = b"", interval: float = 1.0) -> None:
        import socket
        self.head, self.drip, self.interval = head, drip, interval
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _addr = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn) -> None:
        try:
            conn.recv(4096)
            conn.sendall(self.head)
            for byte in self.drip:
                if self.stop.wait(self.interval):
                    break
                conn.sendall(bytes([byte]))
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.mark.parametrize("where", ["body", "headers"])
def test_http_fetch_one_total_deadline_against_a_one_byte_per_second_server(where):
    # 1 byte/s never trips a per-read socket timeout; the fetch as a whole must still end at aia_timeout.
    if where == "body":
        server = _TricklingServer(b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n", b"\x30" * 60)
    else:
        server = _TricklingServer(b"HTTP/1.1 200 OK\r\n", b"X-Slow: " + b"a" * 60 + b"\r\n\r\n")
    try:
        started = time.monotonic()
        with pytest.raises(CertfleetError, match=r"timed out after 3(\.0)? s"):
            _chain.http_fetch(f"http://127.0.0.1:{server.port}/int.cer", timeout=3)
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert 2.5 < elapsed < 4.0, elapsed


@pytest.mark.parametrize("target", ["same-host", "other-path"])
@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_http_fetch_does_not_follow_redirects(pki, code, target):
    routes = {"/secret.cer": (pki.int1.der, {})}
    hits = []
    location = "BASE/secret.cer" if target == "same-host" else "/secret.cer"

    class Redirecting(_Handler):
        def do_GET(self):  # noqa: N802 - http.server API
            hits.append(self.path)
            if self.path == "/int.cer":
                self.send_response(code)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

    Redirecting.routes = routes
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/int.cer"
    location = location.replace("BASE", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        with pytest.raises(CertfleetError, match=rf"int\.cer: HTTP {code} redirect to .* not followed"):
            _chain.http_fetch(url, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert hits == ["/int.cer"]  # the redirect target was never requested
