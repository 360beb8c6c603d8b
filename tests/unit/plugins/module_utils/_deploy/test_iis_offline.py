# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The offline package's envelope and contents (plugins/module_utils/_deploy/offline.py), against real openssl."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import zipfile

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import iis, offline
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import CurrentGeneration
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils.pki_builder import make_intermediate, make_leaf, make_root

OPENSSL = shutil.which("openssl")
FAST = 1000  # PBKDF2 rounds for the envelope tests; the package default (600000) is tested once


@pytest.fixture(scope="module")
def pki():
    root = make_root("Offline Root")
    intermediate = make_intermediate("Offline Issuing CA", issuer=root)
    return {"root": root, "int": intermediate,
            "rsa": make_leaf("legacy.example.com", issuer=intermediate, key_type="rsa2048"),
            "ec": make_leaf("modern.example.com", issuer=intermediate)}


def _current(issued, intermediate, name="legacy"):
    return CurrentGeneration(name=name, directory="/nowhere", private_key=issued.key, key_pem=b"", leaf=issued.cert,
                             intermediates=[intermediate.cert])


def _openssl(*args, data=None):
    assert OPENSSL, "openssl is required for the offline package tests"
    done = subprocess.run([OPENSSL, *args], input=data, capture_output=True, check=False)
    return done


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 4096])
def test_seal_opens_with_openssl_enc(size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    sealed = offline.seal(data, "pass-word", iterations=FAST)
    assert sealed.startswith(b"Salted__") and len(sealed) % 16 == 0
    done = _openssl("enc", "-d", "-aes-256-cbc", "-pbkdf2", "-md", "sha256", "-iter", str(FAST), "-pass", "pass:pass-word", data=sealed)
    assert done.returncode == 0, done.stderr
    assert done.stdout == data


def test_openssl_enc_output_unseals():
    data = b"PK\x03\x04" + b"z" * 100
    done = _openssl("enc", "-aes-256-cbc", "-pbkdf2", "-md", "sha256", "-iter", str(FAST), "-pass", "pass:k7mx2-q9cvb", data=data)
    assert done.returncode == 0, done.stderr
    assert offline.unseal(done.stdout, "k7mx2-q9cvb", iterations=FAST) == data


@pytest.mark.parametrize("data, passphrase, message", [
    (b"not a package at all, just text....", "x", "no openssl 'Salted__' header"),
    (None, "wrong", "does not open with this passphrase"),
    (b"Salted__" + b"\0" * 8 + b"\1" * 15, "x", "no openssl 'Salted__' header"),
])
def test_unseal_refuses(data, passphrase, message):
    data = data if data is not None else offline.seal(b"PK" + b"\0" * 40, "right", iterations=FAST)
    with pytest.raises(CertfleetError, match=message):
        offline.unseal(data, passphrase, iterations=FAST)


def test_passphrase_is_readable_and_random():
    first, second = offline.new_passphrase(), offline.new_passphrase()
    assert re.fullmatch(r"([a-hjkmnp-z2-9]{5}-){5}[a-hjkmnp-z2-9]{5}", first) and first != second


@pytest.mark.parametrize("raw, shown", [("AB12" * 10, "ab 12 " * 9 + "ab 12")])
def test_grouped_thumbprint(raw, shown):
    assert offline.grouped_thumbprint(raw) == shown


@pytest.mark.parametrize("iis_version, encryption, message", [
    ("6", "modern", "Windows Server 2003 cannot import an AES PFX"),
    ("5", "compatible", "iis_version must be one of"),
    ("6", "aes", "pfx_encryption must be one of"),
])
def test_package_options_refused(pki, iis_version, encryption, message):
    with pytest.raises(CertfleetError, match=message):
        offline.build_package(_current(pki["rsa"], pki["int"]), definition="legacy", host="h", passphrase="p",
                              pfx_encryption=encryption, iis_version=iis_version, iterations=FAST)


def test_ecdsa_key_refused_for_iis6_but_fine_for_iis10(pki):
    with pytest.raises(CertfleetError, match="cannot use an ECDSA key"):
        offline.build_package(_current(pki["ec"], pki["int"], "modern"), definition="modern", host="h", passphrase="p",
                              iterations=FAST)
    _sealed, manifest, warnings = offline.build_package(_current(pki["ec"], pki["int"], "modern"), definition="modern", host="h",
                                                        passphrase="p", iis_version="10", iterations=FAST)
    assert manifest["iis_version"] == "10" and not warnings


def test_install_root_needs_a_known_root(pki):
    with pytest.raises(CertfleetError, match="the chain's root is not known"):
        offline.build_package(_current(pki["rsa"], pki["int"]), definition="legacy", host="h", passphrase="p", install_root=True,
                              iterations=FAST)


@pytest.mark.parametrize("iis_version, expected, absent", [
    ("6", ["Directory Security > Server Certificate", "Replace the current certificate"], ["Bindings..."]),
    ("7", ["Bindings...", "IIS 7"], ["Directory Security", "Server Name Indication"]),
    ("10", ["Bindings...", "Require Server Name Indication"], ["Directory Security"]),
])
def test_instructions_per_iis_version(pki, iis_version, expected, absent):
    sealed, manifest, warnings = offline.build_package(
        _current(pki["rsa"], pki["int"]), definition="legacy", host="legacy01", passphrase="p-p", root=pki["root"].cert,
        install_root=True, iis_version=iis_version, sites=[{"name": "Default Web Site", "port": 443}], iterations=FAST)
    archive = zipfile.ZipFile(io.BytesIO(offline.unseal(sealed, "p-p", iterations=FAST)))
    text = archive.read("legacy-legacy01/INSTALL.txt").decode("utf-8")
    thumbprint = iis.certificate_thumbprint(pki["rsa"].cert)
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")       # Notepad on Windows Server 2003
    for needle in expected + ["Certificates > Computer account > Next > Local computer", "Personal", thumbprint,
                              offline.grouped_thumbprint(thumbprint), "Intermediate Certification Authorities",
                              "Trusted Root Certification Authorities", f"certutil -repairstore my {thumbprint}",
                              "Default Web Site", "certfleet.tls.verify", "Leave 'Mark this key as exportable' unticked"]:
        assert needle in text, needle
    for needle in absent:
        assert needle not in text, needle
    # SHA-256 signed certificate on IIS 6: the hotfix warning
    assert (iis_version == "6") == any("KB968730" in line for line in warnings)
    assert manifest["thumbprint"] == thumbprint and manifest["root_included"]
    assert sorted(archive.namelist()) == sorted(manifest["files"])
    assert "legacy-legacy01/root/Offline-Root.cer" in manifest["files"]
    assert "legacy-legacy01/intermediates/01-Offline-Issuing-CA.cer" in manifest["files"]


def test_sums_match_the_files(pki):
    sealed, _manifest, _warnings = offline.build_package(_current(pki["rsa"], pki["int"]), definition="legacy", host="h",
                                                         passphrase="p", iterations=FAST)
    archive = zipfile.ZipFile(io.BytesIO(offline.unseal(sealed, "p", iterations=FAST)))
    sums = archive.read("legacy-h/SHA256SUMS.txt").decode("ascii").split("\r\n")
    for line in filter(None, sums):
        digest, path = line.split("  ", 1)
        assert hashlib.sha256(archive.read(f"legacy-h/{path}")).hexdigest() == digest
    assert len(list(filter(None, sums))) == len(archive.namelist()) - 1


def test_bad_sites_for_the_text(pki):
    with pytest.raises(CertfleetError, match="each site needs a name"):
        offline.build_package(_current(pki["rsa"], pki["int"]), definition="legacy", host="h", passphrase="p", sites=[{"port": 1}],
                              iterations=FAST)
