# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Collecting what a commercial CA sent: every format in, matched by key, checked; every bad input refused
with a message naming the file, the store unchanged and the file left where it was."""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import ipaddress
import json
import os
import shutil
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import apache as _apache
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import collect as _collect
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import issue as _issue
from ansible_collections.certfleet.tls.plugins.module_utils._scan import monitor as _monitor
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store import store as _store
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import commercial_pki as cp
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

STORE_PASS = "Collect-Unit-Pass-7"
DEFAULTS = {"country_name": "JP", "state_or_province_name": "Tokyo", "locality_name": "Minato-ku",
            "organization_name": "Example Co.,Ltd."}
DEFINITIONS = [
    # Cybertrust profile: RSA key, the bare domain registered too.
    {"name": "www", "common_name": "www.example.co.jp", "issuer": {"provider": "manual", "profile": "cybertrust"}},
    {"name": "shop", "common_name": "shop.example.co.jp", "subject_alt_name": ["cart.example.co.jp"],
     "key": {"type": "ECC"}, "issuer": {"provider": "manual", "profile": "cabf"}},
]


@pytest.fixture(scope="module")
def pki():
    return cp.commercial_ca()


@pytest.fixture(scope="module")
def template_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("template") / "cert_store"
    run_request(store_path=str(store), definitions=DEFINITIONS, passphrase=STORE_PASS, defaults=DEFAULTS)
    return store


@pytest.fixture
def store(template_store, tmp_path):
    target = tmp_path / "cert_store"
    shutil.copytree(template_store, target, symlinks=True)
    return target


def csr(store, name) -> bytes:
    return (store / "certs" / name / "csr.pem").read_bytes()


def drop(store, file_name: str, data: bytes, *, definition: str | None = None):
    folder = layout.incoming_dir(str(store), definition)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, file_name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def collect(store, *, check_mode=False, **options):
    options.setdefault("system_trust", False)
    options.setdefault("trust_anchors", [])
    return _issue.run_collect(store_path=str(store), definitions=DEFINITIONS, defaults=DEFAULTS, collect=options,
                              check_mode=check_mode)


def anchors(pki):
    return [pki.root.pem.decode()]


def snapshot(directory) -> dict:
    """Every path below the store with its mode and content (directories and links too)."""
    result = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                content = "link:" + os.readlink(path)
            elif stat.S_ISDIR(info.st_mode):
                content = "dir"
            else:
                with open(path, "rb") as handle:
                    content = handle.read()
            result[os.path.relpath(path, directory)] = (stat.S_IMODE(info.st_mode), content)
    return result


def history(store, name):
    return [json.loads(line) for line in (store / "certs" / name / "history.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------------------------
# good inputs: every format a CA sends, any file name, any order


GOOD = {
    "pem leaf, intermediate from the pile": lambda pki, leaf: ([("www.crt", cp.pem(leaf))], {"intermediates": [pki.issuing.pem.decode()]}),
    "mail bundle, intermediate first, CRLF": lambda pki, leaf: ([("certificate mail.txt", cp.mail_bundle(pki.issuing, leaf))], {}),
    "pem bundle with cross-root, shuffled": lambda pki, leaf: ([("bundle", cp.pem(pki.root_cross, leaf, pki.issuing))], {}),
    "der leaf and der intermediate, two files": lambda pki, leaf: ([("server.cer", cp.der(leaf)), ("ca.der", cp.der(pki.issuing))], {}),
    "p7b der": lambda pki, leaf: ([("cert.p7b", cp.p7b(pki.issuing, leaf))], {}),
    "p7c pem": lambda pki, leaf: ([("cert.p7c", cp.p7b(leaf, pki.issuing, as_pem=True))], {}),
    "pkcs12, one password": lambda pki, leaf: ([("server.pfx", cp.pfx(leaf, pki.issuing))], {"pkcs12_password": "pfx-Secret-1"}),
    "pkcs12, password by file": lambda pki, leaf: ([("証明書 (1).p12", cp.pfx(leaf, pki.issuing, password=b"per-file"))],
                                                   {"pkcs12_passwords": {"証明書 (1).p12": "per-file"}}),
    "pkcs12 without a password": lambda pki, leaf: ([("nopass.pfx", cp.pfx(leaf, pki.issuing, password=None))], {}),
    "odd name, no extension": lambda pki, leaf: ([("-- do not open --", cp.pem(leaf, pki.issuing))], {}),
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_every_format_is_collected_by_key(store, pki, case):
    leaf = pki.sign(csr(store, "www"))
    files, options = GOOD[case](pki, leaf)
    paths = [drop(store, name, data) for name, data in files]
    result = collect(store, trust_anchors=anchors(pki), **options)
    assert [item["name"] for item in result["certificates"]] == ["www"]
    assert result["certificates"][0]["changed"] and result["certificates"][0]["status"] == "issued"
    current = _store.load_current(str(store), "www", STORE_PASS)
    assert current.leaf == leaf
    assert [cert.subject for cert in current.intermediates] == [pki.issuing.cert.subject]
    events = history(store, "www")
    assert events[-1]["event"] == "collected"
    assert events[-1]["source_file_sha256"] in {_store.sha256_hex(data) for _name, data in files}
    state = json.loads((store / "certs" / "www" / "state.json").read_text())
    assert state["status"] == "issued" and state["certificate"]["provider"] == "manual"
    for path in paths:
        assert not os.path.exists(path)
    processed = os.listdir(layout.processed_dir(str(store)))
    assert len(processed) == len(files)
    assert {entry["action"] for entry in result["collected"]} <= {"collected", "used for the chain"}
    # Nothing left to do: a second run changes nothing.
    again = collect(store, trust_anchors=anchors(pki), **options)
    assert not again["changed"] and again["collected"] == []


def test_cross_root_kept_when_preferred_and_reaching_the_old_root(store, pki):
    leaf = pki.sign(csr(store, "www"))
    drop(store, "www.pem", cp.pem(leaf, pki.issuing, pki.root_cross))
    collect(store, trust_anchors=[pki.old_root.pem.decode()], prefer="cross_root")
    current = _store.load_current(str(store), "www", STORE_PASS)
    assert list(current.intermediates) == [pki.issuing.cert, pki.root_cross.cert]


def test_definition_folder_and_two_definitions_in_one_run(store, pki):
    www, shop = pki.sign(csr(store, "www")), pki.sign(csr(store, "shop"))
    drop(store, "a.pem", cp.pem(www, pki.issuing), definition="www")
    drop(store, "b.p7b", cp.p7b(shop, pki.issuing))
    result = collect(store, trust_anchors=anchors(pki))
    assert sorted(item["name"] for item in result["certificates"]) == ["shop", "www"]
    assert os.listdir(layout.processed_dir(str(store), "www"))
    assert _store.load_current(str(store), "shop", STORE_PASS).leaf == shop


def test_renewal_archives_the_previous_generation(store, pki):
    first = pki.sign(csr(store, "www"), not_before=pb.utcnow() - datetime.timedelta(days=10))
    drop(store, "first.pem", cp.pem(first, pki.issuing))
    collect(store, trust_anchors=anchors(pki))
    second = pki.sign(csr(store, "www"))
    drop(store, "second.pem", cp.pem(second, pki.issuing))
    collect(store, trust_anchors=anchors(pki))
    assert _store.load_current(str(store), "www", STORE_PASS).leaf == second
    serial = _collect._chain.certificate_info(first)["serial"]
    assert (store / "certs" / "www" / "archive" / serial / "cert.pem").is_file()
    assert [event["event"] for event in history(store, "www")][-3:] == ["collected", "archived", "collected"]


def test_same_certificate_twice_is_one_install(store, pki):
    leaf = pki.sign(csr(store, "www"))
    drop(store, "one.pem", cp.pem(leaf, pki.issuing))
    drop(store, "two.der", cp.der(leaf))
    result = collect(store, trust_anchors=anchors(pki))
    assert len(result["collected"]) == 2 and len(result["certificates"]) == 1


def test_dropping_the_current_certificate_again_only_moves_the_file(store, pki):
    leaf = pki.sign(csr(store, "www"))
    drop(store, "one.pem", cp.pem(leaf, pki.issuing))
    collect(store, trust_anchors=anchors(pki))
    before = history(store, "www")
    drop(store, "again.pem", cp.pem(leaf, pki.issuing))
    result = collect(store, trust_anchors=anchors(pki))
    assert result["collected"][0]["action"] == "already in the store"
    assert history(store, "www") == before
    assert not os.listdir(layout.incoming_dir(str(store))) == ["again.pem"]


def test_check_mode_shows_and_writes_nothing(store, pki):
    leaf = pki.sign(csr(store, "www"))
    path = drop(store, "www.pem", cp.pem(leaf, pki.issuing))
    before = snapshot(store)
    result = collect(store, check_mode=True, trust_anchors=anchors(pki))
    assert result["changed"] and result["collected"][0]["definition"] == "www"
    assert result["certificates"][0]["serial"] == _collect._chain.certificate_info(leaf)["serial"]
    assert snapshot(store) == before and os.path.exists(path)


def test_system_trust_is_used_and_a_test_root_is_not_in_it(store, pki):
    leaf = pki.sign(csr(store, "www"))
    drop(store, "www.pem", cp.pem(leaf, pki.issuing, pki.root))
    with pytest.raises(CertfleetError, match="reaches no trust anchor"):
        collect(store, system_trust=True)


def test_aia_fetches_the_missing_intermediate(store, pki):
    leaf = pki.sign(csr(store, "www"))
    drop(store, "leaf-only.pem", cp.pem(leaf))
    drop(store, "shop-only.der", cp.der(pki.sign(csr(store, "shop"))))
    fetched = []

    def fetch(url):
        fetched.append(url)
        return cp.der(pki.issuing)

    settings = _collect.settings_from_options({"trust_anchors": anchors(pki), "system_trust": False, "aia": True})
    provider = _issue.ManualProvider(settings, fetch=fetch)
    result = _issue.run_issue(store_path=str(store), definitions=DEFINITIONS, defaults=DEFAULTS, ca_passphrase=None,
                              providers={"manual": provider})
    assert fetched == ["http://127.0.0.1:9/issuing.crt"], "one fetch per URL and run"
    assert sorted(item["name"] for item in result["certificates"]) == ["shop", "www"]


def test_pending_details_give_the_form_in_the_cas_order(store):
    result = _issue.run_issue(store_path=str(store), definitions=DEFINITIONS, defaults=DEFAULTS, ca_passphrase=None)
    pending = {item["name"]: item for item in result["pending"]}
    www = pending["www"]
    assert [row["field"] for row in www["form"]] == ["CN", "O", "L", "ST", "C"]
    assert www["form"][0] == {"field": "CN", "label": "Common Name", "value": "www.example.co.jp"}
    assert www["subject_alt_name"] == ["www.example.co.jp", "example.co.jp"]
    assert www["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert www["pending_days"] == 0 and www["pending_since"].endswith("Z")
    # cabf keeps the default order, the order of openssl req's prompts.
    assert [row["field"] for row in pending["shop"]["form"]] == ["C", "ST", "L", "O", "CN"]


def test_pending_days_count_from_the_csr(store):
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=20)
    result = _issue.run_issue(store_path=str(store), definitions=DEFINITIONS, defaults=DEFAULTS, ca_passphrase=None,
                              now=later)
    assert {item["pending_days"] for item in result["pending"]} == {20}
    status = _store.pending_status(str(store), "www", now=later)
    assert status["days"] == 20 and status["deployable"] is False


# --------------------------------------------------------------------------------------------
# bad inputs: a specific error naming the file, the store unchanged, the file where it was


def _other_key_same_names(store, pki):
    return [("www.pem", cp.pem(pki.sign(csr(store, "www"), key=ec.generate_private_key(ec.SECP256R1())), pki.issuing))], {}


def _two_leaves_one_file(store, pki):
    return [("both.pem", cp.pem(pki.sign(csr(store, "www")), pki.sign(csr(store, "shop")), pki.issuing))], {}


def _two_certificates_one_definition(store, pki):
    return [("first.pem", cp.pem(pki.sign(csr(store, "www")), pki.issuing)),
            ("second.pem", cp.pem(pki.sign(csr(store, "www")), pki.issuing))], {}


def _unknown_ca(store, pki):
    other_root = pb.make_root("Some Other Root")
    other = pb.make_intermediate("Some Other CA", issuer=other_root)
    return [("www.pem", cp.pem(pki.sign(csr(store, "www"), issuer=other), other.cert))], {}


def _expired_intermediate(store, pki):
    old = pb.make_expired("Test Expired CA", issuer=pki.root)
    return [("www.pem", cp.pem(pki.sign(csr(store, "www"), issuer=old, not_before=pb.utcnow() - datetime.timedelta(days=400)),
                               old.cert))], {}


def _big(store, pki):
    return [("huge.pem", b"A" * 2048)], {"max_file_size": 1024}


def _many(store, pki):
    leaf = cp.pem(pki.sign(csr(store, "www")), pki.issuing)
    return [(f"copy{number}.pem", leaf) for number in range(4)], {"max_files": 3}


def _seventeen(store, pki):
    return [("pile.pem", cp.pem(pki.sign(csr(store, "www")), *[pb.make_root(f"R{number}").cert for number in range(16)]))], {}


def _unrelated(store, pki):
    other = pb.make_leaf("unrelated.example.org", issuer=pki.issuing)
    return [("unrelated.pem", cp.pem(other, pki.issuing))], {}


def _csr_instead(store, pki):
    return [("www.csr", csr(store, "www"))], {}


def _ca_with_the_key(store, pki):
    return [("www.pem", cp.pem(pki.sign(csr(store, "www"), ca=True), pki.issuing))], {}


def _intranet_ip(store, pki):
    names = [x509.DNSName("www.example.co.jp"), x509.DNSName("example.co.jp"), x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]
    leaf = pki.sign(csr(store, "www"), names=names)
    return [("www.pem", cp.pem(leaf, pki.issuing))], {}


def _no_o(store, pki):
    request = x509.load_pem_x509_csr(csr(store, "www"))
    subject = x509.Name([attribute for attribute in request.subject if attribute.oid != x509.NameOID.ORGANIZATION_NAME])
    return [("www.pem", cp.pem(pki.sign(csr(store, "www"), subject=subject), pki.issuing))], {}


BAD = {
    # corrupt or empty files
    "empty file": (lambda s, p: ([("empty.pem", b"")], {}), "empty.pem: the file is empty"),
    "blank lines only": (lambda s, p: ([("blank.cer", b"\n\r\n  \n")], {}), "blank.cer: the file is empty"),
    "text, no certificate": (lambda s, p: ([("mail.txt", b"Dear customer,\nyour certificate is attached.\n")], {}),
                             "mail.txt: no certificate found"),
    "truncated pem": (lambda s, p: ([("cut.pem", cp.pem(p.issuing)[:300])], {}), "cut.pem: a PEM block has a BEGIN line"),
    "damaged base64": (lambda s, p: ([("bad64.pem", cp.pem(p.issuing).replace(b"M", b"!", 3))], {}),
                       "bad64.pem: PEM block 1 (CERTIFICATE): invalid base64"),
    "truncated der": (lambda s, p: ([("cut.der", cp.der(p.issuing)[:200])], {}), "cut.der: binary (DER) data that ends too early"),
    "random bytes": (lambda s, p: ([("noise.bin", bytes(range(256)) * 4)], {}), "noise.bin: no certificate found"),
    "a private key instead": (lambda s, p: ([("key.der", pb.make_key().private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))], {}),
        "key.der: holds a DER private key, not a certificate"),
    "the CSR dropped instead": (_csr_instead, "www.csr: no certificate found"),
    # PKCS#12 passwords
    "pkcs12 wrong password": (lambda s, p: ([("www.pfx", cp.pfx(p.sign(csr(s, "www")), p.issuing))], {"pkcs12_password": "nope"}),
                              "www.pfx: wrong password for the PKCS#12"),
    "pkcs12 password missing": (lambda s, p: ([("www.pfx", cp.pfx(p.sign(csr(s, "www")), p.issuing))], {}),
                                "www.pfx: the PKCS#12 (PFX) file is protected by a password"),
    "pkcs12 wrong per-file password": (
        lambda s, p: ([("a.pfx", cp.pfx(p.sign(csr(s, "www")), p.issuing))], {"pkcs12_passwords": {"a.pfx": "x"}, "pkcs12_password": "pfx-Secret-1"}),
        "a.pfx: wrong password"),
    # matching by key
    "another key, definition folder": (
        lambda s, p: ([("www.pem", cp.pem(p.sign(csr(s, "www"), key=pb.make_key()), p.issuing), "www")], {}),
        "certs/www/incoming/www.pem: the certificate"),
    "another definition's folder": (
        lambda s, p: ([("www.pem", cp.pem(p.sign(csr(s, "shop")), p.issuing), "www")], {}),
        "certs/www/incoming/www.pem: holds the certificate for shop's key, but lies in www's incoming/ folder"),
    "another key, same names": (_other_key_same_names, "is for another key"),
    "matches no pending definition": (_unrelated, "unrelated.pem: the certificate /CN=unrelated.example.org"),
    # checks against the definition
    "expired": (lambda s, p: ([("old.pem", cp.pem(p.sign(csr(s, "www"), not_before=pb.utcnow() - datetime.timedelta(days=500)),
                                                  p.issuing))], {}), "old.pem: the certificate"),
    "not yet valid": (lambda s, p: ([("future.pem", cp.pem(p.sign(csr(s, "www"), not_before=pb.utcnow() + datetime.timedelta(days=3)),
                                                           p.issuing))], {}), "is not valid before"),
    "missing requested name": (lambda s, p: ([("www.pem", cp.pem(p.sign(csr(s, "www"), names=["www.example.co.jp"]), p.issuing))], {}),
                               "lacks requested name(s) example.co.jp"),
    "no subjectAltName": (lambda s, p: ([("www.pem", cp.pem(p.sign(csr(s, "www"), san=False), p.issuing))], {}),
                          "has no subjectAltName"),
    "garbage inside a pem block": (lambda s, p: ([("junk.pem", b"-----BEGIN CERTIFICATE-----\nTUlJ" + b"QUFB" * 200
                                                   + b"\n-----END CERTIFICATE-----\n")], {}),
                                   "junk.pem: PEM block 1 (CERTIFICATE) is not a valid X.509 certificate"),
    "profile: IP address for cybertrust": (_intranet_ip, "breaks CA profile cybertrust"),
    "profile: required O missing": (_no_o, "organization_name (O): required by profile cybertrust"),
    # CA certificates dropped by mistake
    "intermediate alone": (lambda s, p: ([("intermediate.crt", cp.pem(p.issuing))], {}),
                           "intermediate.crt: holds only CA certificate(s) (/CN=Test SureServer CA G4)"),
    "root alone": (lambda s, p: ([("root.cer", cp.der(p.root))], {}), "root.cer: holds only CA certificate(s)"),
    "ca certificate for the definition's key": (_ca_with_the_key, "holds only CA certificate(s)"),
    # chains
    "chain from an unknown CA": (_unknown_ca, "www.pem: the chain of /C=JP"),
    "intermediate missing": (lambda s, p: ([("leaf.pem", cp.pem(p.sign(csr(s, "www"))))], {}), "leaf.pem: the chain of"),
    "expired intermediate": (_expired_intermediate, "www.pem:"),
    # conflicts and bounds
    "two certificates for one definition": (_two_certificates_one_definition, "www: 2 different certificates for one definition"),
    "two server certificates in one file": (_two_leaves_one_file, "both.pem: holds 2 server certificates"),
    "file too large": (_big, "huge.pem: 2048 bytes is more than a certificate file holds"),
    "too many files": (_many, "more than 3 files in the drop-in folders"),
    "seventeen certificates in one file": (_seventeen, "pile.pem: holds 17 certificates"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_naming_the_file_and_changes_nothing(store, pki, case):
    make, expected = BAD[case]
    files, options = make(store, pki)
    paths = [drop(store, *entry[:2], definition=entry[2] if len(entry) > 2 else None) for entry in files]
    before = snapshot(store)
    with pytest.raises(CertfleetError) as caught:
        collect(store, trust_anchors=anchors(pki), **options)
    message = str(caught.value)
    if case == "another key, definition folder":
        assert "is for another key" in message and "www's CSR" in message
    assert expected in message, message
    assert "Traceback" not in message
    assert snapshot(store) == before
    for path in paths:
        assert os.path.exists(path)


def test_at_least_25_bad_inputs():
    assert len(BAD) >= 25


def test_a_symbolic_link_is_refused(store, pki, tmp_path):
    outside = tmp_path / "outside.pem"
    outside.write_bytes(cp.pem(pki.sign(csr(store, "www")), pki.issuing))
    os.makedirs(layout.incoming_dir(str(store)))
    os.symlink(outside, layout.incoming_dir(str(store)) + "/link.pem")
    before = snapshot(store)
    with pytest.raises(CertfleetError, match="link.pem: is a symbolic link"):
        collect(store, trust_anchors=anchors(pki))
    assert snapshot(store) == before


def test_a_linked_incoming_folder_is_refused(store, pki, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "www.pem").write_bytes(cp.pem(pki.sign(csr(store, "www")), pki.issuing))
    os.symlink(outside, layout.incoming_dir(str(store)))
    before = snapshot(store)
    with pytest.raises(CertfleetError, match="symbolic link"):
        collect(store, trust_anchors=anchors(pki))
    assert snapshot(store) == before and (outside / "www.pem").exists()


def test_good_and_bad_together_collect_nothing(store, pki):
    drop(store, "good.pem", cp.pem(pki.sign(csr(store, "www")), pki.issuing))
    drop(store, "bad.pem", b"garbage")
    before = snapshot(store)
    with pytest.raises(_collect.CollectFailures) as caught:
        collect(store, trust_anchors=anchors(pki))
    assert len(caught.value.errors) == 1 and caught.value.errors[0].startswith("incoming/bad.pem")
    assert snapshot(store) == before


def test_older_certificate_does_not_replace_a_newer_one(store, pki):
    older = pki.sign(csr(store, "www"), not_before=pb.utcnow() - datetime.timedelta(days=30))
    newer = pki.sign(csr(store, "www"))
    drop(store, "new.pem", cp.pem(newer, pki.issuing))
    collect(store, trust_anchors=anchors(pki))
    drop(store, "old.pem", cp.pem(older, pki.issuing))
    with pytest.raises(CertfleetError, match="old.pem: .* is older than the one the store holds"):
        collect(store, trust_anchors=anchors(pki))


def test_hidden_files_and_folders_are_passed_over(store, pki):
    drop(store, ".DS_Store", b"junk")
    os.makedirs(os.path.join(layout.incoming_dir(str(store)), "mail"))
    result = collect(store, trust_anchors=anchors(pki))
    assert not result["changed"]
    assert any(".DS_Store: hidden file passed over" in warning for warning in result["warnings"])


@pytest.mark.parametrize("options, message", [
    ({"prefer": "longest"}, "prefer must be one of"),
    ({"max_files": 0}, "max_files must be a number"),
    ({"max_file_size": True}, "max_file_size must be a number"),
    ({"pkcs12_passwords": ["a"]}, "pkcs12_passwords must map"),
    ({"trust_anchors": ["/nonexistent/root.pem"]}, "trust_anchors: cannot read '/nonexistent/root.pem'"),
    ({"intermediates": [""]}, "intermediates[1]: a file path or PEM text is required"),
])
def test_bad_options(options, message):
    with pytest.raises(CertfleetError) as caught:
        _collect.settings_from_options(options)
    assert message in str(caught.value)


def test_form_fields_follow_the_profile():
    subject = {"C": "JP", "ST": "Tokyo", "L": "Minato-ku", "O": "Example", "OU": "IT", "CN": "www.example.co.jp"}
    rows = _collect.form_fields({"form_fields": ["CN", "O", "OU", "L", "ST", "C"]}, subject)
    assert [row["field"] for row in rows] == ["CN", "O", "OU", "L", "ST", "C"]
    assert [row["label"] for row in rows][:2] == ["Common Name", "Organization Name"]


@pytest.mark.parametrize("entry, expected", [
    ("WWW.Example.CO.JP.", "www.example.co.jp"),
    ("DNS:www.example.jp", "www.example.jp"),
    ("IP:2001:db8:0:0::1", "IP:2001:db8::1"),
    ("IP:not-an-ip", "IP:not-an-ip"),
])
def test_normalise_name(entry, expected):
    assert _collect.normalise_name(entry) == expected


# --------------------------------------------------------------------------------------------
# pending: deploy refuses it, verify / monitor list it when it waits too long

DEBIAN = {"cert_dir": "/etc/ssl/certfleet", "key_dir": "/etc/ssl/private", "key_mode": "0600", "key_group": "root",
          "document_root": "/var/www/html", "vhost_dir": "/etc/apache2/sites-available",
          "vhost_enabled_dir": "/etc/apache2/sites-enabled", "default_ports": [80, 443]}


def _plan(store, sites):
    return _apache.plan(sites, definitions=DEFINITIONS, platform=DEBIAN, fullchain=True, store_path=str(store),
                        verify_host="127.0.0.1")


def test_deploy_refuses_a_pending_definition(store, pki):
    with pytest.raises(CertfleetError) as caught:
        _plan(store, [{"name": "www", "certificate": "www"}])
    message = str(caught.value)
    assert message.startswith("site www: certificate www is pending issuance since ")
    assert "nothing of it is deployed" in message and "certfleet.tls.collect" in message
    drop(store, "www.pem", cp.pem(pki.sign(csr(store, "www")), pki.issuing))
    collect(store, trust_anchors=anchors(pki))
    assert [site["certificate"] for site in _plan(store, [{"name": "www", "certificate": "www"}])["sites"]] == ["www"]


def test_a_new_csr_for_a_deployed_key_stays_deployable(store, pki):
    drop(store, "www.pem", cp.pem(pki.sign(csr(store, "www")), pki.issuing))
    collect(store, trust_anchors=anchors(pki))
    more = [dict(DEFINITIONS[0], subject_alt_name=["www2.example.co.jp"]), DEFINITIONS[1]]
    run_request(store_path=str(store), definitions=more, passphrase=STORE_PASS, defaults=DEFAULTS)
    status = _store.pending_status(str(store), "www")
    assert status is not None and status["deployable"] is True
    _store.refuse_pending(str(store), "www", what="site www")  # the current certificate is still served


def test_stale_pending_lists_what_waits_longer_than_the_threshold(store):
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=15)
    found = _monitor.stale_pending(DEFINITIONS, store_path=str(store), older_than_days=14, now=later)
    assert [item["name"] for item in found] == ["shop", "www"]
    assert "pending at its CA for 15 day(s)" in found[0]["message"]
    assert _monitor.stale_pending(DEFINITIONS, store_path=str(store), older_than_days=16, now=later) == []
    with pytest.raises(CertfleetError, match="must be a number of days"):
        _monitor.stale_pending(DEFINITIONS, store_path=str(store), older_than_days="soon")


def test_pending_since_restarts_with_each_csr():
    events = [{"event": "csr_generated", "time": "2026-01-01T00:00:00Z"}, {"event": "collected", "time": "2026-01-05T00:00:00Z"},
              {"event": "csr_generated", "time": "2026-02-01T00:00:00Z"}]
    assert _store.pending_since(events) == "2026-02-01T00:00:00Z"
    assert _store.pending_since(events[:2]) is None


def test_the_chain_of_one_ca_is_built_once_per_run(store, pki, monkeypatch):
    calls = []
    real = _collect._chain.build_chain

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(_collect._chain, "build_chain", counting)
    drop(store, "www.pem", cp.pem(pki.sign(csr(store, "www")), pki.issuing))
    drop(store, "shop.pem", cp.pem(pki.sign(csr(store, "shop")), pki.issuing))
    result = collect(store, trust_anchors=anchors(pki))
    assert len(result["certificates"]) == 2 and len(calls) == 1
    for name in ("www", "shop"):
        assert _store.load_current(str(store), name, STORE_PASS).intermediates == [pki.issuing.cert]


def test_a_reused_chain_still_needs_the_issuers_signature(store, pki):
    cache = _collect.ChainCache()
    first = pki.sign(csr(store, "www"))
    result = _collect._chain.build_chain(first, [pki.issuing.cert], trust_anchors=[pki.root.cert])
    cache.put(first, result)
    forged = pb.make_leaf("www.example.co.jp", issuer=pb.make_intermediate(cp.ISSUING_NAME, issuer=pb.make_root("Evil")))
    assert cache.get(pki.sign(csr(store, "shop"))) is not None
    assert cache.get(forged.cert) is None


def _pfx_with_rounds(leaf, cas, rounds: int) -> bytes:
    encryption = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(rounds)
                  .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256()).build(b"pw"))
    return pkcs12.serialize_key_and_certificates(b"x", None, leaf, [item.cert for item in cas], encryption)


def test_pkcs12_work_reads_the_rounds_without_opening(pki):
    leaf = pb.make_leaf("www.example.co.jp", issuer=pki.issuing).cert
    assert _collect.pkcs12_work(_pfx_with_rounds(leaf, [pki.issuing], 3000)) == 3000
    assert _collect.pkcs12_work(cp.pfx(leaf, pki.issuing)) > 0
    assert _collect.pkcs12_work(cp.der(leaf)) == 0
    assert _collect.pkcs12_work(b"\x30\x84\xff\xff\xff\xff") == 0


def test_a_pkcs12_asking_for_too_many_rounds_is_not_opened(store, pki, monkeypatch):
    monkeypatch.setattr(_collect, "MAX_PKCS12_ITERATIONS", 5000)
    drop(store, "slow.pfx", _pfx_with_rounds(pki.sign(csr(store, "www")), [pki.issuing], 6000))
    before = snapshot(store)
    with pytest.raises(CertfleetError, match="slow.pfx: the PKCS#12 file asks for 6000 key derivation rounds"):
        collect(store, trust_anchors=anchors(pki), pkcs12_password="pw")
    assert snapshot(store) == before
    monkeypatch.setattr(_collect, "MAX_PKCS12_ITERATIONS", 10000)
    assert collect(store, trust_anchors=anchors(pki), pkcs12_password="pw")["certificates"][0]["name"] == "www"


def test_a_second_collecting_run_waits_boundedly_for_the_first(store, pki):
    drop(store, "www.pem", cp.pem(pki.sign(csr(store, "www")), pki.issuing))
    settings = _collect.settings_from_options({"trust_anchors": anchors(pki), "system_trust": False})
    provider = _issue.ManualProvider(dataclasses.replace(settings, lock_wait=0.5))
    held = os.open(str(store), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        before = snapshot(store)
        with pytest.raises(CertfleetError, match="another run is collecting into the store"):
            _issue.run_issue(store_path=str(store), definitions=DEFINITIONS, defaults=DEFAULTS, ca_passphrase=None,
                             providers={"manual": provider})
        assert snapshot(store) == before
    finally:
        os.close(held)
    assert collect(store, trust_anchors=anchors(pki))["certificates"][0]["name"] == "www"
