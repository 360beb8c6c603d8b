# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""certfleet.tls.iis_offline_package: built from a real store, opened with openssl enc, its PFX imported back with openssl."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import zipfile

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._deploy import iis, offline
from ansible_collections.certfleet.tls.plugins.modules import iis_offline_package
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils.pki_builder import make_intermediate, make_leaf, make_root, put_definition

PASS = "Offline-Store-Pass-1"
OPENSSL = shutil.which("openssl")


@pytest.fixture(scope="module")
def pki():
    root = make_root("Offline Module Root")
    intermediate = make_intermediate("Offline Module CA", issuer=root)
    return {"root": root, "int": intermediate,
            "legacy": make_leaf("legacy.example.com", issuer=intermediate, key_type="rsa2048"),
            "legacy-own": make_leaf("legacy.example.com", issuer=intermediate, key_type="rsa2048")}


@pytest.fixture
def store(tmp_path, pki):
    path = tmp_path / "store"
    put_definition(path, "legacy", pki["legacy"], pki["int"], passphrase=PASS)
    (path / "ca" / "lab").mkdir(parents=True)
    (path / "ca" / "lab" / "root.pem").write_bytes(pki["root"].pem)
    return path


DEFINITIONS = [{"name": "legacy", "common_name": "legacy.example.com", "issuer": {"provider": "private_ca", "ca": "lab"}}]


def _args(store, tmp_path, **extra):
    args = {"store_path": str(store), "store_passphrase": PASS, "certificate": "legacy", "host": "legacy01",
            "definitions": DEFINITIONS, "dest": str(tmp_path / "offline"), "sites": [{"name": "Default Web Site", "port": 443}]}
    args.update(extra)
    return args


def _run(*args, data=None, cwd=None):
    assert OPENSSL, "openssl is required for the offline package tests"
    done = subprocess.run([OPENSSL, *args], input=data, capture_output=True, check=False, cwd=cwd)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done


def test_package_built_opened_with_openssl_and_its_pfx_imported_back(run_module, store, tmp_path, pki):
    passphrase_file = tmp_path / "secrets" / "legacy01.passphrase"
    passphrase_file.parent.mkdir()
    result = run_module(iis_offline_package.main, _args(store, tmp_path, install_root=True, passphrase_file=str(passphrase_file)))
    assert not result.get("failed"), result
    assert result["changed"] and "passphrase" not in result and result["passphrase_file"] == str(passphrase_file)
    package = result["package_path"]
    assert stat.S_IMODE(os.stat(package).st_mode) == 0o600 and stat.S_IMODE(os.stat(passphrase_file).st_mode) == 0o600
    passphrase = passphrase_file.read_text().strip()
    assert passphrase not in json.dumps(result)
    # 1. open the envelope with openssl alone, as the person does
    opened = tmp_path / "opened.zip"
    _run("enc", "-d", "-aes-256-cbc", "-pbkdf2", "-md", "sha256", "-iter", str(offline.ITERATIONS), "-in", package,
         "-out", str(opened), "-pass", f"file:{passphrase_file}")
    with zipfile.ZipFile(opened) as archive:
        assert sorted(archive.namelist()) == sorted(result["manifest"]["files"])
        archive.extractall(tmp_path / "unpacked")
    folder = tmp_path / "unpacked" / "legacy-legacy01"
    pfx = folder / "legacy.pfx"
    # 2. the PFX is in compatibility encryption: 3DES for the certificate and key bags, SHA-1 MAC
    info = _run("pkcs12", "-info", "-noout", "-in", str(pfx), "-passin", f"pass:{passphrase}")
    text = (info.stdout + info.stderr).decode()
    assert text.count("pbeWithSHA1And3-KeyTripleDES-CBC") == 2 and "MAC: sha1" in text, text
    # 3. imported back: one certificate (the leaf) and its key, and the thumbprint INSTALL.txt tells to compare
    contents = _run("pkcs12", "-in", str(pfx), "-nodes", "-passin", f"pass:{passphrase}").stdout.decode()
    assert contents.count("BEGIN CERTIFICATE") == 1 and "BEGIN PRIVATE KEY" in contents
    key_modulus = _run("rsa", "-noout", "-modulus", data=contents.encode()).stdout
    cert_modulus = _run("x509", "-noout", "-modulus", data=contents.encode()).stdout
    assert key_modulus == cert_modulus
    sha1 = _run("x509", "-noout", "-fingerprint", "-sha1", data=contents.encode()).stdout.decode().strip().split("=")[1].replace(":", "")
    thumbprint = iis.certificate_thumbprint(pki["legacy"].cert)
    assert sha1 == thumbprint == result["thumbprint"]
    instructions = (folder / "INSTALL.txt").read_text(encoding="utf-8")
    assert f"SHA-1 thumbprint:    {thumbprint}" in instructions and "Directory Security > Server Certificate" in instructions
    # 4. the intermediate and the private CA's root, as .cer files Windows imports
    intermediate = _run("x509", "-noout", "-fingerprint", "-sha1", "-in", str(folder / "intermediates" / "01-Offline-Module-CA.cer"))
    assert iis.certificate_thumbprint(pki["int"].cert) in intermediate.stdout.decode().replace(":", "")
    root = _run("x509", "-noout", "-subject", "-in", str(folder / "root" / "Offline-Module-Root.cer"))
    assert "Offline Module Root" in root.stdout.decode()
    # 5. the sums, checked by a tool the person has
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS.txt"], cwd=folder, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.count(": OK") == 4, done.stdout + done.stderr
    # the package's own SHA-256, to compare after carrying it over
    assert _run("dgst", "-sha256", package).stdout.decode().strip().endswith(result["package_sha256"])


def test_second_run_keeps_the_package(run_module, store, tmp_path):
    first = run_module(iis_offline_package.main, _args(store, tmp_path))
    assert first["changed"] and len(first["passphrase"]) == 35
    second = run_module(iis_offline_package.main, _args(store, tmp_path))
    assert second["changed"] is False and "passphrase" not in second
    assert second["package_sha256"] == first["package_sha256"]
    forced = run_module(iis_offline_package.main, _args(store, tmp_path, force=True, passphrase="Given-Pass-2"))
    assert forced["changed"] and "passphrase" not in forced and "Given-Pass-2" not in json.dumps(forced)
    assert offline.unseal(open(forced["package_path"], "rb").read(), "Given-Pass-2").startswith(b"PK")


def test_check_mode_writes_nothing(run_module, store, tmp_path):
    args = _args(store, tmp_path, _ansible_check_mode=True, passphrase_file=str(tmp_path / "p"))
    result = run_module(iis_offline_package.main, args)
    assert result["changed"] and not os.path.exists(tmp_path / "offline") and not os.path.exists(tmp_path / "p")


def test_per_server_definition_packages_its_own_key(run_module, store, tmp_path, pki):
    definitions = [dict(DEFINITIONS[0], deploy={"key_policy": "per_server"})]
    result = run_module(iis_offline_package.main, _args(store, tmp_path, definitions=definitions))
    assert result["failed"] and "refusing to deploy the shared legacy" in result["msg"]
    put_definition(store, "legacy--legacy01", pki["legacy-own"], pki["int"], passphrase=PASS)
    result = run_module(iis_offline_package.main, _args(store, tmp_path, definitions=definitions))
    assert result["thumbprint"] == iis.certificate_thumbprint(pki["legacy-own"].cert)
    assert os.path.basename(result["package_path"]).startswith("legacy--legacy01.legacy01.")


@pytest.mark.parametrize("change, message", [
    ({"certificate": "../etc"}, "must be 1-128 characters"),
    ({"store_passphrase": "wrong"}, "legacy"),
    ({"sites": [{"port": 443}]}, "each site needs a name"),
    ({"pfx_encryption": "modern"}, "Windows Server 2003 cannot import an AES PFX"),
])
def test_bad_input_fails_clearly_and_writes_nothing(run_module, store, tmp_path, change, message):
    result = run_module(iis_offline_package.main, _args(store, tmp_path, **change))
    assert result["failed"] and message in result["msg"] and "Traceback" not in result["msg"]
    assert not os.path.exists(tmp_path / "offline")
