# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""private_ca, private_ca_certificate and store_issue run in-process: check -> apply -> check -> apply,
diffs without key material, and every issued certificate verified with openssl."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import create_csr_pem
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import generate_private_key
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request
from ansible_collections.certfleet.tls.plugins.modules import private_ca, private_ca_certificate, store_issue

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
pytestmark = pytest.mark.skipif(not os.path.exists(OPENSSL), reason="openssl CLI not available")
CA_PASS = "Ca-Module-Pass-8"


def verify(root, leaf, chain=None):
    args = [OPENSSL, "verify", "-purpose", "sslserver", "-CAfile", str(root)]
    if chain is not None and os.path.getsize(chain):
        args += ["-untrusted", str(chain)]
    return subprocess.run(args + [str(leaf)], capture_output=True, text=True, check=False)


def ca_args(tmp_path, **overrides):
    args = {"store_path": str(tmp_path / "store"), "name": "intranet", "passphrase": CA_PASS, "kind": "intermediate",
            "key_type": "ECC", "organization_name": "Example Co.,Ltd.", "country_name": "JP",
            "allowed_domains": ["example.intra"], "allowed_ip_networks": ["10.0.0.0/8"], "name_constraints": True,
            "crl_distribution_points": ["http://pki.example.intra/intranet.crl"],
            "ca_issuers_urls": ["http://pki.example.intra/intranet.cer"], "_ansible_diff": True}
    args.update(overrides)
    return args


def assert_no_secrets(result, tmp_path):
    text = json.dumps(result)
    assert CA_PASS not in text and "PRIVATE KEY" not in text
    for key in (tmp_path / "store").rglob("key.pem"):
        assert not any(line in text for line in key.read_text().splitlines()[1:-1])


@pytest.mark.parametrize("kind", ["root", "intermediate"])
def test_private_ca_check_apply_check_apply(tmp_path, run_module, kind):
    args = ca_args(tmp_path, kind=kind)
    check1 = run_module(private_ca.main, dict(args, _ansible_check_mode=True))
    assert check1["changed"] and not (tmp_path / "store").exists()
    apply1 = run_module(private_ca.main, args)
    assert apply1["changed"] and apply1["status"] == "active"
    check2 = run_module(private_ca.main, dict(args, _ansible_check_mode=True))
    apply2 = run_module(private_ca.main, args)
    assert not check2["changed"] and not apply2["changed"]
    assert apply2["sha256"] == apply1["sha256"] and apply2["crl"] == apply1["crl"]
    assert apply1["diff"]["before"] == {"exists": False} and apply1["diff"]["after"]["status"] == "active"
    assert_no_secrets(apply1, tmp_path)
    crl = subprocess.run([OPENSSL, "crl", "-in", str(tmp_path / "store" / "ca" / "intranet" / "crl.pem"), "-noout", "-CAfile",
                          str(tmp_path / "store" / "ca" / "intranet" / "cert.pem")], capture_output=True, text=True, check=False)
    assert "verify OK" in crl.stdout + crl.stderr


def test_private_ca_settings_revoke_and_hold(tmp_path, run_module):
    run_module(private_ca.main, ca_args(tmp_path))
    changed = run_module(private_ca.main, {"store_path": str(tmp_path / "store"), "name": "intranet", "passphrase": CA_PASS,
                                           "max_validity_days": 90, "_ansible_diff": True})
    assert changed["actions"] == ["settings updated (max_validity_days)"]
    assert changed["diff"]["after"]["settings"]["max_validity_days"] == 90
    assert changed["settings"]["allowed_domains"] == ["example.intra"]
    csr = create_csr_pem(generate_private_key(key_type="ECC"), subject={"CN": "portal.example.intra"}, subject_alt_names=[])
    issued = run_module(private_ca_certificate.main, {"store_path": str(tmp_path / "store"), "ca": "intranet", "passphrase": CA_PASS,
                                                      "csr_content": csr.decode(), "path": str(tmp_path / "portal.crt")})
    serial = issued["serial"]
    base = {"store_path": str(tmp_path / "store"), "name": "intranet", "passphrase": CA_PASS}
    hold = run_module(private_ca.main, dict(base, revoke=[{"serial": serial, "reason": "certificate_hold"}]))
    assert hold["actions"][0] == f"revoked {serial} (certificate_hold)" and hold["crl"]["revoked"] == [serial]
    released = run_module(private_ca.main, dict(base, release_hold=[serial]))
    assert released["actions"][0] == f"released {serial} from hold" and released["crl"]["revoked"] == []
    revoked = run_module(private_ca.main, dict(base, revoke=[{"serial": serial, "reason": "key_compromise"}]))
    assert revoked["index"]["revoked"] == 1
    assert not run_module(private_ca.main, dict(base, revoke=[{"serial": serial, "reason": "key_compromise"}]))["changed"]
    final = run_module(private_ca.main, dict(base, revoke=[{"serial": serial, "reason": "superseded"}]))
    assert final["failed"] and "a revocation is final" in final["msg"]
    # The revoked certificate is replaced on the next issuance.
    again = run_module(private_ca_certificate.main, {"store_path": str(tmp_path / "store"), "ca": "intranet", "passphrase": CA_PASS,
                                                     "csr_content": csr.decode(), "path": str(tmp_path / "portal.crt")})
    assert again["action"] == "issue" and again["serial"] != serial and again["reason"] == "the existing certificate is revoked"


@pytest.mark.parametrize("kind", ["root", "intermediate"])
def test_private_ca_certificate_check_apply_check_apply(tmp_path, run_module, kind):
    run_module(private_ca.main, ca_args(tmp_path, kind=kind))
    key = generate_private_key()
    (tmp_path / "portal.csr").write_bytes(create_csr_pem(key, subject={"CN": "portal.example.intra", "O": "Example Co.,Ltd."},
                                                         subject_alt_names=["wiki.example.intra", "IP:10.1.2.3"]))
    args = {"store_path": str(tmp_path / "store"), "ca": "intranet", "passphrase": CA_PASS, "csr_path": str(tmp_path / "portal.csr"),
            "path": str(tmp_path / "out" / "portal.crt"), "chain_path": str(tmp_path / "out" / "portal.chain.crt"),
            "fullchain_path": str(tmp_path / "out" / "portal.fullchain.crt"), "validity_days": 90, "_ansible_diff": True}
    (tmp_path / "out").mkdir()
    check1 = run_module(private_ca_certificate.main, dict(args, _ansible_check_mode=True))
    assert check1["changed"] and check1["action"] == "issue" and check1["serial"] is None
    assert os.listdir(tmp_path / "out") == []
    assert json.loads((tmp_path / "store" / "ca" / "intranet" / "index.json").read_text())["certificates"] == {}
    apply1 = run_module(private_ca_certificate.main, args)
    assert apply1["changed"] and apply1["action"] == "issue", apply1.get("msg")
    assert apply1["subject_alt_name"] == ["portal.example.intra", "wiki.example.intra", "IP:10.1.2.3"]
    check2 = run_module(private_ca_certificate.main, dict(args, _ansible_check_mode=True))
    apply2 = run_module(private_ca_certificate.main, args)
    assert not check2["changed"] and not apply2["changed"] and apply2["action"] == "keep"
    assert apply2["serial"] == apply1["serial"] and apply1["diff"]["after"]["serial"] == apply1["serial"]
    assert stat.S_IMODE(os.stat(args["path"]).st_mode) == 0o644
    root = tmp_path / "store" / "ca" / "intranet" / "root.pem"
    result = verify(root, args["path"], args["chain_path"])
    assert result.returncode == 0, result.stdout + result.stderr
    full = (tmp_path / "out" / "portal.fullchain.crt").read_bytes()
    assert full == (tmp_path / "out" / "portal.crt").read_bytes() + (tmp_path / "out" / "portal.chain.crt").read_bytes()
    assert len(apply1["chain"]) == (2 if kind == "intermediate" else 1)
    assert_no_secrets(apply1, tmp_path)
    # The file gone: the CA's index gives the same certificate back instead of issuing another.
    os.unlink(args["path"])
    restored = run_module(private_ca_certificate.main, args)
    assert restored["action"] == "reuse" and restored["serial"] == apply1["serial"] and restored["changed"]
    forced = run_module(private_ca_certificate.main, dict(args, force=True, backup=True))
    assert forced["serial"] != apply1["serial"] and forced["backup_files"]["path"]


@pytest.mark.parametrize("kind", ["root", "intermediate"])
def test_store_issue_check_apply_check_apply(tmp_path, run_module, kind):
    store = tmp_path / "store"
    definitions = [
        {"name": "portal", "common_name": "portal.example.intra", "key": {"type": "ECC"},
         "issuer": {"provider": "private_ca", "ca": "intranet", "profile": "private"}},
        {"name": "www", "common_name": "www.example.co.jp", "issuer": {"provider": "manual", "profile": "cabf"}},
    ]
    args = {"store_path": str(store), "definitions": definitions, "ca_passphrase": CA_PASS, "_ansible_diff": True}
    early = run_module(store_issue.main, dict(args, _ansible_check_mode=True))
    assert early["changed"] and not store.exists()
    run_request(store_path=str(store), definitions=definitions, passphrase=CA_PASS)
    run_module(private_ca.main, ca_args(tmp_path, kind=kind))
    check1 = run_module(store_issue.main, dict(args, _ansible_check_mode=True))
    assert check1["changed"] and not (store / "certs" / "portal" / "cert.pem").exists()
    apply1 = run_module(store_issue.main, args)
    assert apply1["changed"] and [c["name"] for c in apply1["certificates"]] == ["portal"]
    assert apply1["diff"]["before"] == "portal: (no certificate)\n" and apply1["certificates"][0]["serial"] in apply1["diff"]["after"]
    check2 = run_module(store_issue.main, dict(args, _ansible_check_mode=True))
    apply2 = run_module(store_issue.main, args)
    assert not check2["changed"] and not apply2["changed"]
    portal = store / "certs" / "portal"
    result = verify(store / "ca" / "intranet" / "root.pem", portal / "cert.pem", portal / "chain.pem")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (store / "certs" / "www" / "cert.pem").exists()
    assert_no_secrets(apply1, tmp_path)


def test_store_issue_reports_manual_definitions_as_pending(tmp_path, run_module):
    store = tmp_path / "store"
    definitions = [
        {"name": "portal", "common_name": "portal.example.intra", "key": {"type": "ECC"},
         "issuer": {"provider": "private_ca", "ca": "intranet", "profile": "private"}},
        {"name": "www", "common_name": "www.example.co.jp", "issuer": {"provider": "manual", "profile": "cabf"}},
    ]
    run_request(store_path=str(store), definitions=definitions, passphrase=CA_PASS)
    run_module(private_ca.main, ca_args(tmp_path, kind="root"))
    result = run_module(store_issue.main, {"store_path": str(store), "definitions": definitions, "ca_passphrase": CA_PASS})
    [portal] = result["certificates"]
    assert portal["provider"] == "private_ca" and portal["files"]["cert"] == str(store / "certs" / "portal" / "cert.pem")
    [www] = result["pending"]
    assert www["name"] == "www" and www["provider"] == "manual" and www["reason"] == "no certificate yet"
    assert str(store / "certs" / "www" / "csr.pem") in www["instructions"][0]
    # Manual definitions are no warning (the module's warning list may hold other tests' in one worker).
    assert not any("www:" in str(warning) for warning in result.get("warnings", []))
