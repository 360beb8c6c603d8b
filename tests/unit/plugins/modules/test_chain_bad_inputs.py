# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input table for cert_chain, private_ca, private_ca_certificate and store_issue (the style of
test_bad_inputs.py): every case fails with a message naming the file or option and the rule,
without a traceback, and leaves the directory exactly as it was - no output is half written."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca
from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import create_csr_pem
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import generate_private_key
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request
from ansible_collections.certfleet.tls.plugins.modules import cert_chain
from ansible_collections.certfleet.tls.plugins.modules import private_ca as private_ca_module
from ansible_collections.certfleet.tls.plugins.modules import private_ca_certificate as issue_module
from ansible_collections.certfleet.tls.plugins.modules import store_issue as store_issue_module
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

PFX_PASS = "Pfx-Bad-Pass-1"
CA_PASS = "Ca-Bad-Pass-2"


def _loop_pki():
    """Two CAs that certify each other (A by B, B by A) and a leaf under A: a path that never ends."""
    key_a, key_b = pb.make_key(), pb.make_key()
    name_a, name_b = pb.name("Loop CA A"), pb.name("Loop CA B")
    a_by_b = pb.issue(name_a, public_key=key_a.public_key(), issuer_name=name_b, signing_key=key_b, aki_key=key_b.public_key())
    b_by_a = pb.issue(name_b, public_key=key_b.public_key(), issuer_name=name_a, signing_key=key_a, aki_key=key_a.public_key())
    leaf = pb.issue(pb.name("loop.example.test"), public_key=pb.make_key().public_key(), issuer_name=name_a, signing_key=key_a,
                    aki_key=key_a.public_key(), ca=False, san=["loop.example.test"])
    return leaf, [a_by_b, b_by_a]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every input file of the table, outside the directory each case snapshots."""
    pki = pb.standard_pki()
    directory = tmp_path_factory.mktemp("inputs")
    cybertrust_root = pb.make_root("Fake Root For Catalog")
    cybertrust_g3 = pb.make_intermediate("Cybertrust Japan Public CA G3", issuer=cybertrust_root)
    catalog_leaf = pb.make_leaf("www.example.co.jp", issuer=cybertrust_g3)
    not_a_ca = pb.make_leaf("not-a-ca.example.test", issuer=pki.root, ca=False, key_usage="leaf")
    under_not_a_ca = pb.make_leaf("victim.example.test", issuer=not_a_ca)
    loop_leaf, loop_cas = _loop_pki()
    contents = {
        "leaf.pem": pki.leaf.pem,
        "leaf.der": pki.leaf.der,
        "key.pem": pki.leaf.key_pem,
        "other-key.pem": pb.make_key().private_bytes(*_pkcs8()),
        "int1.pem": pki.int1.pem,
        "int2.pem": pki.int2.pem,
        "chain.pem": pki.int2.pem + pki.int1.pem,
        "root.pem": pki.root.pem,
        "unrelated-root.pem": pki.unrelated_root.pem,
        "enc-key.pem": pki.leaf.key.private_bytes(*_pkcs8(b"Right-Pass")),
        "expired-leaf.pem": pki.leaf_under_expired.pem,
        "expired-int.pem": pki.expired_int.pem,
        "catalog-leaf.pem": catalog_leaf.pem,
        "loop-leaf.pem": loop_leaf.public_bytes(_pem()),
        "loop-cas.pem": b"".join(c.public_bytes(_pem()) for c in loop_cas),
        "not-ca.pem": not_a_ca.pem,
        "under-not-ca.pem": under_not_a_ca.pem,
        "garbage.cer": b"\x00\x01\x02 this is not a certificate \xff\xfe",
        "notes.txt": b"Dear customer, your certificate is attached.\n",
        "truncated.pem": pki.int1.pem[:200],
        "truncated.der": pki.int1.der[:300],
        "site.pfx": pb.pfx(pki.leaf, [pki.int2, pki.int1], password=PFX_PASS.encode()),
        "bad.csr": b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        "outside.csr": create_csr_pem(generate_private_key(key_type="ECC"), subject={"CN": "www.example.com"},
                                      subject_alt_names=["www.example.com"]),
        "ok.csr": create_csr_pem(generate_private_key(key_type="ECC"), subject={"CN": "portal.example.intra"},
                                 subject_alt_names=["portal.example.intra"]),
        "rsa1024.csr": create_csr_pem(generate_private_key(size=1024), subject={"CN": "portal.example.intra"},
                                      subject_alt_names=[]),
    }
    (directory / "incoming").mkdir()
    (directory / "incoming" / "int1.cer").write_bytes(pki.int1.der)
    (directory / "incoming" / "readme.txt").write_bytes(b"not a certificate\n")
    paths = {"dir": str(directory), "incoming": str(directory / "incoming")}
    for name, data in contents.items():
        (directory / name).write_bytes(data)
        paths[name] = str(directory / name)
    return paths


def _pem():
    from cryptography.hazmat.primitives import serialization
    return serialization.Encoding.PEM


def _pkcs8(password: bytes | None = None):
    from cryptography.hazmat.primitives import serialization
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption


def chain_args(f, out, **overrides):
    """A good cert_chain call (leaf + intermediates, root trusted, every output) with some options changed."""
    args = {"certificate_path": f["leaf.pem"], "chain_paths": [f["chain.pem"]], "trust_bundle": [f["root.pem"]],
            "privatekey_path": f["key.pem"], "fullchain_path": str(out / "fullchain.pem"), "chain_path": str(out / "chain.pem"),
            "combined_path": str(out / "combined.pem"), "pkcs12_path": str(out / "site.pfx"), "pkcs12_passphrase": PFX_PASS}
    args.update(overrides)
    return {key: value for key, value in args.items() if value is not None}


def make_ca(out, kind="root"):
    _ca.run_private_ca(store_path=str(out / "store"), name="corp", passphrase=CA_PASS, kind=kind, key_spec={"type": "ECC"},
                       settings_options={"allowed_domains": ["example.intra"]})


def ca_args(out, **overrides):
    args = {"store_path": str(out / "store"), "name": "corp", "passphrase": CA_PASS, "key_type": "ECC"}
    args.update(overrides)
    return args


def with_ca(build, kind="root"):
    def setup(f, out):
        make_ca(out, kind=kind)
        return build(f, out)
    return setup


def issue_args(f, out, **overrides):
    args = {"store_path": str(out / "store"), "ca": "corp", "passphrase": CA_PASS, "csr_path": f["ok.csr"],
            "path": str(out / "portal.crt"), "fullchain_path": str(out / "portal.fullchain.crt")}
    args.update(overrides)
    return args


def with_store(definitions):
    def setup(f, out):
        run_request(store_path=str(out / "store"), definitions=definitions, passphrase=CA_PASS)
        make_ca(out)
        return {"store_path": str(out / "store"), "definitions": definitions, "ca_passphrase": CA_PASS}
    return setup


PORTAL = {"name": "portal", "common_name": "portal.example.intra", "key": {"type": "ECC"},
          "issuer": {"provider": "private_ca", "ca": "corp"}}

# (case id, module, setup(files, directory) -> args, words the message must contain)
CASES = [
    # --- cert_chain: the chain cannot be built -------------------------------------------------
    ("missing-issuer-named", cert_chain, lambda f, o: chain_args(f, o, chain_paths=[f["int2.pem"]]),
     ["cannot complete the chain", "no issuer found for", "Test Int2", "missing issuer certificate: /CN=Test Int1"]),
    ("missing-issuer-catalog-hint", cert_chain,
     lambda f, o: chain_args(f, o, certificate_path=f["catalog-leaf.pem"], chain_paths=[], privatekey_path=None,
                             combined_path=None, pkcs12_path=None),
     ["missing issuer certificate: /CN=Cybertrust Japan Public CA G3", "the CA product catalog lists 'Cybertrust Japan Public CA G3'",
      "SureServer", "download 'Cybertrust Japan Public CA G3' from the CA"]),
    ("key-mismatch", cert_chain, lambda f, o: chain_args(f, o, privatekey_path=f["other-key.pem"]),
     ["privatekey_path", "other-key.pem", "does not match the certificate", "public key is SHA-256"]),
    ("key-matches-none-in-pfx", cert_chain,
     lambda f, o: chain_args(f, o, certificate_path=f["site.pfx"], input_pkcs12_passphrase=PFX_PASS, privatekey_path=f["other-key.pem"]),
     ["none of the 3 certificate(s) matches the private key"]),
    ("expired-intermediate", cert_chain,
     lambda f, o: chain_args(f, o, certificate_path=f["expired-leaf.pem"], chain_paths=[f["expired-int.pem"]], privatekey_path=None,
                             combined_path=None, pkcs12_path=None),
     ["is not valid", "intermediate", "Test Expired Int", "expired on"]),
    ("issuer-loop", cert_chain,
     lambda f, o: chain_args(f, o, certificate_path=f["loop-leaf.pem"], chain_paths=[f["loop-cas.pem"]], trust_bundle=[],
                             privatekey_path=None, combined_path=None, pkcs12_path=None),
     ["issuer loop", "Loop CA A", "Loop CA B"]),
    ("issuer-not-a-ca", cert_chain,
     lambda f, o: chain_args(f, o, certificate_path=f["under-not-ca.pem"], chain_paths=[f["not-ca.pem"]], privatekey_path=None,
                             combined_path=None, pkcs12_path=None),
     ["not-a-ca.example.test", "is not a CA certificate (basicConstraints CA:FALSE)"]),
    ("untrusted-root", cert_chain,
     lambda f, o: chain_args(f, o, chain_paths=[f["chain.pem"], f["root.pem"]], trust_bundle=[f["unrelated-root.pem"]]),
     ["ends at the self-signed root", "Test Root", "which is not in the trust bundle"]),
    # --- cert_chain: unreadable inputs ----------------------------------------------------------
    ("garbage-file", cert_chain, lambda f, o: chain_args(f, o, chain_paths=[f["garbage.cer"]]),
     ["garbage.cer", "no certificate found (not PEM, DER, PKCS#7 or PKCS#12)"]),
    ("text-without-certificate", cert_chain, lambda f, o: chain_args(f, o, chain_paths=[f["notes.txt"]]),
     ["notes.txt", "no certificate found"]),
    ("garbage-in-directory", cert_chain, lambda f, o: chain_args(f, o, chain_paths=[f["incoming"]]),
     ["readme.txt", "no certificate found"]),
    ("truncated-pem", cert_chain, lambda f, o: chain_args(f, o, chain_paths=[f["truncated.pem"]]),
     ["truncated.pem", "BEGIN line without its matching END"]),
    ("truncated-der", cert_chain, lambda f, o: chain_args(f, o, chain_paths=[f["truncated.der"]]),
     ["truncated.der", "ends too early"]),
    ("wrong-pfx-password", cert_chain,
     lambda f, o: chain_args(f, o, certificate_path=f["site.pfx"], input_pkcs12_passphrase="Not-It", privatekey_path=None),
     ["site.pfx", "wrong password for the PKCS#12 (PFX) file"]),
    ("pfx-without-password", cert_chain, lambda f, o: chain_args(f, o, certificate_path=f["site.pfx"], privatekey_path=None),
     ["site.pfx", "protected by a password; give the PFX password"]),
    ("missing-chain-file", cert_chain, lambda f, o: chain_args(f, o, chain_paths=[f["dir"] + "/nope.pem"]),
     ["chain_paths", "nope.pem' does not exist"]),
    ("certificate-is-a-key", cert_chain, lambda f, o: chain_args(f, o, certificate_path=f["key.pem"]),
     ["key.pem", "holds no certificate"]),
    ("wrong-key-passphrase", cert_chain, lambda f, o: chain_args(f, o, privatekey_path=f["enc-key.pem"], privatekey_passphrase="Not-It"),
     ["enc-key.pem", "cannot read the private key (wrong passphrase)"]),
    ("encrypted-key-without-passphrase", cert_chain, lambda f, o: chain_args(f, o, privatekey_path=f["enc-key.pem"]),
     ["enc-key.pem", "the private key is encrypted; a passphrase is required"]),
    ("combined-without-key", cert_chain, lambda f, o: chain_args(f, o, privatekey_path=None, pkcs12_path=None),
     ["combined_path: needs the private key"]),
    ("pkcs12-without-passphrase", cert_chain, lambda f, o: chain_args(f, o, pkcs12_passphrase=None),
     ["pkcs12_path", "pkcs12_passphrase"]),
    ("output-directory-missing", cert_chain, lambda f, o: chain_args(f, o, chain_path=str(o / "no" / "dir" / "chain.pem")),
     ["chain_path", "does not exist"]),
    # --- private_ca -----------------------------------------------------------------------------
    ("ca-bad-name", private_ca_module, lambda f, o: ca_args(o, name="../escape"), ["name: '../escape' must be"]),
    ("ca-rsa-1024", private_ca_module, lambda f, o: ca_args(o, key_type="RSA", key_size=1024), ["key_size", "at least 2048 bits"]),
    ("ca-bad-crl-url", private_ca_module, lambda f, o: ca_args(o, crl_distribution_points=["ftp://pki/ca.crl"]),
     ["crl_distribution_points", "'ftp://pki/ca.crl'", "http://"]),
    ("ca-bad-network", private_ca_module, lambda f, o: ca_args(o, allowed_ip_networks=["10.0.0.0/33"]),
     ["allowed_ip_networks", "'10.0.0.0/33'", "CIDR"]),
    ("ca-bad-validity", private_ca_module, lambda f, o: ca_args(o, validity_days=0), ["validity_days: must be at least 1 day"]),
    ("ca-wrong-passphrase", private_ca_module, with_ca(lambda f, o: ca_args(o, passphrase="Not-It")),
     ["CA corp: key.pem (CA passphrase): wrong passphrase"]),
    ("ca-revoke-unknown-serial", private_ca_module, with_ca(lambda f, o: ca_args(o, revoke=[{"serial": "0A:BC"}])),
     ["revoke: serial 0ABC was not issued by CA corp"]),
    ("ca-import-into-root", private_ca_module, with_ca(lambda f, o: ca_args(o, signed_certificate_path=f["int1.pem"])),
     ["CA corp is a root CA; only a subordinate CA imports"]),
    ("ca-import-foreign-certificate", private_ca_module,
     with_ca(lambda f, o: ca_args(o, signed_certificate_path=f["int1.pem"]), kind="subordinate"),
     ["none of the certificates in", "int1.pem is for this CA's key"]),
    ("ca-import-missing-file", private_ca_module,
     with_ca(lambda f, o: ca_args(o, signed_certificate_path=f["dir"] + "/certnew.p7b"), kind="subordinate"),
     ["signed_certificate_path", "certnew.p7b' does not exist"]),
    # --- private_ca_certificate -----------------------------------------------------------------
    ("issue-ca-missing", issue_module, issue_args, ["CA corp: not found", "certfleet.tls.private_ca"]),
    ("issue-outside-domains", issue_module, with_ca(lambda f, o: issue_args(f, o, csr_path=f["outside.csr"])),
     ["breaks 1 rule(s) of the CA policy, nothing was issued", "'www.example.com' is outside the CA's allowed domains"]),
    ("issue-too-long", issue_module, with_ca(lambda f, o: issue_args(f, o, validity_days=800)),
     ["validity_days: 800 days is more than the CA's maximum of 397 days"]),
    ("issue-weak-key", issue_module, with_ca(lambda f, o: issue_args(f, o, csr_path=f["rsa1024.csr"])),
     ["RSA key of 1024 bits", "at least 2048"]),
    ("issue-garbage-csr", issue_module, with_ca(lambda f, o: issue_args(f, o, csr_path=f["bad.csr"])),
     ["csr_path", "malformed certificate signing request"]),
    ("issue-wrong-passphrase", issue_module, with_ca(lambda f, o: issue_args(f, o, passphrase="Not-It")),
     ["CA corp: key.pem (CA passphrase): wrong passphrase"]),
    ("issue-output-directory-missing", issue_module, with_ca(lambda f, o: issue_args(f, o, path=str(o / "none" / "x.crt"))),
     ["path: directory", "does not exist"]),
    # --- store_issue ----------------------------------------------------------------------------
    ("store-issue-no-ca-name", store_issue_module,
     lambda f, o: {"store_path": str(o / "store"), "ca_passphrase": CA_PASS,
                   "definitions": [dict(PORTAL, issuer={"provider": "private_ca"})]},
     ["portal: issuer.ca None must name a private CA"]),
    ("store-issue-ca-missing", store_issue_module,
     lambda f, o: {"store_path": str(o / "store"), "ca_passphrase": CA_PASS,
                   "definitions": [dict(PORTAL, issuer={"provider": "private_ca", "ca": "nope"})]},
     ["CA nope: not found"]),
    ("store-issue-policy", store_issue_module,
     with_store([dict(PORTAL, name="outside", common_name="www.example.com"), PORTAL]),
     ["1 definition(s) cannot be issued, nothing was written", "outside:", "outside the CA's allowed domains"]),
]


def snapshot(directory) -> dict:
    """Every file under a directory with its content hash and mode."""
    result = {}
    for root, _dirs, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                result[path] = (hashlib.sha256(handle.read()).hexdigest(), os.stat(path).st_mode)
    return result


@pytest.mark.parametrize("case_id, module, setup, expected", CASES, ids=[case[0] for case in CASES])
def test_bad_input_fails_cleanly(case_id, module, setup, expected, files, tmp_path, run_module):
    # Outputs that exist already must survive a failed run untouched.
    (tmp_path / "fullchain.pem").write_bytes(b"previous fullchain\n")
    (tmp_path / "portal.crt").write_bytes(b"previous certificate\n")
    args = setup(files, tmp_path)
    before = snapshot(tmp_path)
    result = run_module(module.main, args)
    assert result.get("failed") is True, f"{case_id} did not fail: {result}"
    for word in expected:
        assert word in result["msg"], f"{case_id}: {word!r} not in {result['msg']!r}"
    assert "Traceback" not in result["msg"]
    assert "exception" not in result, f"{case_id} reached the unexpected-error path: {result.get('exception')}"
    assert snapshot(tmp_path) == before, f"{case_id} created or changed files"


def test_table_covers_the_issue_list():
    """Issue #3 names: missing issuer, key mismatch, expired intermediate, loop, garbage file, wrong PFX password."""
    ids = {case[0] for case in CASES}
    assert {"missing-issuer-named", "key-mismatch", "expired-intermediate", "issuer-loop", "garbage-file", "wrong-pfx-password"} <= ids
    assert len(ids) == len(CASES) >= 30


def test_csr_asking_for_ca_true_is_issued_as_a_leaf(files, tmp_path, run_module):
    """Not a failure but the other side of the policy: CA:TRUE in a CSR is ignored with a warning."""
    make_ca(tmp_path)
    key = generate_private_key(key_type="ECC")
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sneaky.example.intra")]))
           .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
           .sign(key, hashes.SHA256()))
    args = issue_args(files, tmp_path, csr_content=_ca.pem(csr).decode())
    del args["csr_path"]
    result = run_module(issue_module.main, args)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"]
    cert = x509.load_pem_x509_certificate(result["certificate"].encode())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert any("basicConstraints (CA:TRUE)" in warning for warning in result["policy_warnings"])
