"""Bad input table: every case fails with a message naming the field and the rule,
without a traceback, and leaves the directory exactly as it was."""
from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.certfleet.tls.plugins.modules import csr as csr_module
from ansible_collections.certfleet.tls.plugins.modules import csr_info as csr_info_module
from ansible_collections.certfleet.tls.plugins.modules import private_key as private_key_module
from ansible_collections.certfleet.tls.plugins.modules import store_request as store_module
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import generate_private_key, serialize_private_key

PASSPHRASE = "Unit-Test-Passphrase-1"
GOOD_DN = {
    "country_name": "JP",
    "state_or_province_name": "Tokyo",
    "locality_name": "Minato-ku",
    "organization_name": "Example Co.,Ltd.",
    "common_name": "www.example.co.jp",
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Key files shared by the table: encrypted RSA-2048, RSA-1024, ECC, garbage."""
    directory = tmp_path_factory.mktemp("keys")
    files = {
        "rsa_encrypted": serialize_private_key(generate_private_key(), passphrase=PASSPHRASE),
        "rsa_1024": serialize_private_key(generate_private_key(size=1024)),
        "ecc": serialize_private_key(generate_private_key(key_type="ECC")),
        "garbage": b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
        "not_pem": b"hello, I am a text file\n",
    }
    paths = {}
    for name, content in files.items():
        path = directory / f"{name}.pem"
        path.write_bytes(content)
        paths[name] = str(path)
    return paths


def csr_args(keys, out, **overrides):
    args = dict(GOOD_DN, path=str(out / "server.csr"), privatekey_path=keys["rsa_encrypted"],
                privatekey_passphrase=PASSPHRASE, profile="cybertrust")
    args.update(overrides)
    return {key: value for key, value in args.items() if value is not None}


# (case id, module, args builder, words the message must contain)
CASES = [
    ("malformed-pem-key", csr_module, lambda k, o: csr_args(k, o, privatekey_path=k["garbage"], privatekey_passphrase=None),
     ["privatekey_path", "malformed private key"]),
    ("not-a-key", csr_module, lambda k, o: csr_args(k, o, privatekey_path=k["not_pem"], privatekey_passphrase=None),
     ["privatekey_path", "not a private key"]),
    ("wrong-passphrase", csr_module, lambda k, o: csr_args(k, o, privatekey_passphrase="Not-It-7"),
     ["privatekey_path", "wrong passphrase"]),
    ("encrypted-key-without-passphrase", csr_module, lambda k, o: csr_args(k, o, privatekey_passphrase=None),
     ["privatekey_path", "encrypted and no passphrase"]),
    ("ecc-under-rsa-profile", csr_module, lambda k, o: csr_args(k, o, privatekey_path=k["ecc"], privatekey_passphrase=None),
     ["privatekey", "ECC key", "accepts only RSA"]),
    ("rsa-1024", csr_module, lambda k, o: csr_args(k, o, privatekey_path=k["rsa_1024"], privatekey_passphrase=None),
     ["privatekey", "1024 bits", "at least 2048"]),
    ("country-three-letters", csr_module, lambda k, o: csr_args(k, o, country_name="JPN"),
     ["country_name (C)", "'JPN'", "two upper-case letters"]),
    ("country-lower-case", csr_module, lambda k, o: csr_args(k, o, country_name="jp"),
     ["country_name (C)", "'jp'", "two upper-case letters"]),
    ("missing-organization", csr_module, lambda k, o: csr_args(k, o, organization_name=None),
     ["organization_name (O)", "required by profile cybertrust"]),
    ("japanese-organization", csr_module, lambda k, o: csr_args(k, o, organization_name="株式会社サンプル"),
     ["organization_name (O)", "printable ASCII"]),
    ("ip-common-name", csr_module, lambda k, o: csr_args(k, o, common_name="203.0.113.10"),
     ["common_name (CN)", "IP address", "fully qualified domain name"]),
    ("intranet-common-name", csr_module, lambda k, o: csr_args(k, o, common_name="intranet"),
     ["common_name (CN)", "'intranet'", "not a fully qualified domain name"]),
    ("local-suffix-common-name", csr_module, lambda k, o: csr_args(k, o, common_name="web01.corp.local"),
     ["common_name (CN)", "intranet-only"]),
    ("email-set", csr_module, lambda k, o: csr_args(k, o, email_address="admin@example.co.jp"),
     ["email_address (emailAddress)", "must not be set"]),
    ("unknown-profile", csr_module, lambda k, o: csr_args(k, o, profile="verisign"),
     ["profile", "unknown profile 'verisign'", "cybertrust"]),
    ("sha1-digest", csr_module, lambda k, o: csr_args(k, o, digest="sha1"),
     ["digest", "sha1", "requires sha256"]),
    ("bad-san-ip", csr_module, lambda k, o: csr_args(k, o, profile="private", subject_alt_name=["IP:999.1.1.1"]),
     ["subject_alt_name", "'999.1.1.1'", "not a valid IP address"]),
    ("missing-directory", csr_module, lambda k, o: csr_args(k, o, path=str(o / "no" / "such" / "dir" / "x.csr")),
     ["path", "does not exist"]),
    ("parent-is-a-file", private_key_module, lambda k, o: {"path": str(o / "plain.txt" / "server.key")},
     ["path", "not a directory"]),
    ("key-wrong-current-passphrase", private_key_module,
     lambda k, o: {"path": str(o / "copy.key"), "current_passphrase": "Not-It-7"},
     ["path", "wrong passphrase", "left untouched"]),
    ("key-never-cannot-open", private_key_module,
     lambda k, o: {"path": str(o / "copy.key"), "regenerate": "never"},
     ["path", "encrypted and no passphrase", "left untouched"]),
    ("csr-info-garbage", csr_info_module, lambda k, o: {"content": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"},
     ["content", "malformed certificate signing request"]),
    ("store-bad-name", store_module,
     lambda k, o: {"store_path": str(o / "store"), "passphrase": PASSPHRASE, "definitions": [{"name": "../escape", "common_name": "a.example.com"}]},
     ["definitions", "'../escape'", "letters, digits"]),
    ("store-policy", store_module,
     lambda k, o: {"store_path": str(o / "store"), "passphrase": PASSPHRASE,
                   "definitions": [dict(GOOD_DN, name="ok"), dict(GOOD_DN, name="bad", country_name="JPN", issuer={"profile": "cybertrust"})]},
     ["bad:", "country_name (C)", "nothing was written"]),
]


def snapshot(directory) -> dict:
    """Every file under a directory with its content hash and mode."""
    result = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                result[path] = (hashlib.sha256(handle.read()).hexdigest(), os.stat(path).st_mode)
    return result


@pytest.mark.parametrize("case_id, module, build_args, expected", CASES, ids=[case[0] for case in CASES])
def test_bad_input_fails_cleanly(case_id, module, build_args, expected, keys, tmp_path, run_module):
    (tmp_path / "plain.txt").write_text("a file, not a directory\n")
    (tmp_path / "copy.key").write_bytes(open(keys["rsa_encrypted"], "rb").read())
    before = snapshot(tmp_path)
    result = run_module(module.main, build_args(keys, tmp_path))
    assert result.get("failed") is True, f"{case_id} did not fail: {result}"
    for word in expected:
        assert word in result["msg"], f"{case_id}: {word!r} not in {result['msg']!r}"
    assert "Traceback" not in result["msg"]
    assert "exception" not in result, f"{case_id} reached the unexpected-error path: {result.get('exception')}"
    assert snapshot(tmp_path) == before, f"{case_id} created or changed files"


def test_table_is_large_enough():
    """The issue asks for at least 15 distinct bad inputs."""
    assert len({case[0] for case in CASES}) >= 15
