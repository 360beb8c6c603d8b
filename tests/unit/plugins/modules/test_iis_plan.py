# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""certfleet.tls.iis_plan run in-process against a real store; every PFX checked with openssl."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._deploy import iis
from ansible_collections.certfleet.tls.plugins.modules import iis_plan
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils.pki_builder import make_intermediate, make_leaf, make_root, put_definition

PASS = "Iis-Plan-Store-Pass-1"
OPENSSL = shutil.which("openssl")


@pytest.fixture(scope="module")
def pki():
    root = make_root("Plan Root")
    intermediate = make_intermediate("Plan Issuing CA", issuer=root)
    return {"root": root, "int": intermediate, "www": make_leaf("www.example.com", issuer=intermediate, key_type="rsa2048"),
            "api": make_leaf("api.example.com", issuer=intermediate),
            "www-web1": make_leaf("www.example.com", issuer=intermediate)}


@pytest.fixture
def store(tmp_path, pki):
    path = tmp_path / "store"
    for name in ("www", "api"):
        put_definition(path, name, pki[name], pki["int"], passphrase=PASS)
    (path / "ca" / "lab").mkdir(parents=True)
    (path / "ca" / "lab" / "root.pem").write_bytes(pki["root"].pem)
    return path


DEFINITIONS = [
    {"name": "www", "common_name": "www.example.com", "issuer": {"provider": "private_ca", "ca": "lab"}},
    {"name": "api", "common_name": "api.example.com", "issuer": {"provider": "private_ca", "ca": "lab"}},
]


def _facts(build=14393, *, my=(), ca=(), root=(), bindings=()):
    return {"os": {"version": f"10.0.{build}", "build": build, "caption": "Microsoft Windows Server"},
            "certificates": {"My": list(my), "CA": list(ca), "Root": list(root)},
            "sites": [{"name": "Default Web Site", "id": 1, "bindings": [
                {"protocol": "http", "ip": "*", "port": 80, "host": "", "ssl_flags": 0}] + list(bindings)},
                {"name": "Api", "id": 2, "bindings": []}],
            "sslcert": []}


def _args(store, tmp_path, **extra):
    args = {"store_path": str(store), "store_passphrase": PASS, "definitions": DEFINITIONS, "host": "web1",
            "sites": [{"name": "Default Web Site", "certificate": "www"}], "facts": _facts(),
            "work_dir": str(tmp_path / "work")}
    args.update(extra)
    return args


def _pkcs12_info(path, passphrase):
    done = subprocess.run([OPENSSL, "pkcs12", "-info", "-noout", "-in", str(path), "-passin", f"pass:{passphrase}"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def _pkcs12_contents(path, passphrase):
    done = subprocess.run([OPENSSL, "pkcs12", "-in", str(path), "-nodes", "-passin", f"pass:{passphrase}"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _sha1_of_first_certificate(pem_text):
    done = subprocess.run([OPENSSL, "x509", "-noout", "-fingerprint", "-sha1"], input=pem_text, capture_output=True, text=True,
                          check=True)
    return done.stdout.strip().split("=", 1)[1].replace(":", "")


def test_openssl_is_here():
    assert OPENSSL, "openssl is required for the PFX checks"


@pytest.mark.parametrize("build, option, algorithm, mac", [
    (14393, "auto", "pbeWithSHA1And3-KeyTripleDES-CBC", "MAC: sha1"),
    (17763, "auto", "PBES2, PBKDF2, AES-256-CBC", "MAC: sha256"),
    (20348, "compatible", "pbeWithSHA1And3-KeyTripleDES-CBC", "MAC: sha1"),
    (14393, "modern", "PBES2, PBKDF2, AES-256-CBC", "MAC: sha256"),
])
def test_first_deploy_writes_the_pfx_the_host_can_import(run_module, store, tmp_path, pki, build, option, algorithm, mac):
    result = run_module(iis_plan.main, _args(store, tmp_path, facts=_facts(build), pfx_encryption=option))
    assert not result.get("failed"), result
    plan = result["plan"]
    assert result["changed"] and plan["changed"] and result["plans"] == [plan]
    passphrase = result["pfx_passphrase"]
    assert len(passphrase) >= 40 and PASS not in json.dumps(result)
    path = plan["pfx_path"]
    assert os.path.dirname(path) == str(tmp_path / "work") and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    info = _pkcs12_info(path, passphrase)
    # both the certificate bag and the shrouded key bag use the algorithm promised, and the MAC
    assert info.count(algorithm) == 2 and mac in info, info
    contents = _pkcs12_contents(path, passphrase)
    # leaf and key only: no intermediate inside the PFX (they go to the CA store)
    assert contents.count("BEGIN CERTIFICATE") == 1 and "PRIVATE KEY" in contents
    # Windows pairs the key with the certificate through the localKeyID of both bags
    assert contents.count("localKeyID") == 2
    assert _sha1_of_first_certificate(contents) == plan["thumbprint"] == iis.certificate_thumbprint(pki["www"].cert)
    assert "friendlyName: www" in contents
    assert plan["pfx_encryption"] == ("modern" if "AES" in algorithm else "compatible")
    assert any("the import will fail" in line for line in plan["messages"]) is (build < 17763 and option == "modern")
    assert [binding["action"] for binding in plan["bindings"]] == ["add"]
    assert plan["intermediates"][0]["thumbprint"] == iis.certificate_thumbprint(pki["int"].cert)


def test_given_passphrase_is_used_and_never_returned(run_module, store, tmp_path):
    result = run_module(iis_plan.main, _args(store, tmp_path, pfx_passphrase="Role-Made-Pfx-Pass-9"))
    assert "pfx_passphrase" not in result and "Role-Made-Pfx-Pass-9" not in json.dumps(result)
    assert "MAC: sha1" in _pkcs12_info(result["plan"]["pfx_path"], "Role-Made-Pfx-Pass-9")


def test_second_run_with_everything_in_place_changes_nothing(run_module, store, tmp_path, pki):
    thumbprint = iis.certificate_thumbprint(pki["www"].cert)
    facts = _facts(17763, my=[{"thumbprint": thumbprint.lower(), "subject": "CN=www.example.com", "has_private_key": True,
                               "friendly_name": "www", "not_after": "2030-01-01T00:00:00Z"}],
                   ca=[{"thumbprint": iis.certificate_thumbprint(pki["int"].cert), "subject": "CN=Plan Issuing CA"}],
                   root=[{"thumbprint": iis.certificate_thumbprint(pki["root"].cert), "subject": "CN=Plan Root"}],
                   bindings=[{"protocol": "https", "ip": "*", "port": 443, "host": "www.example.com", "ssl_flags": 1 | 32,
                              "certificate_hash": thumbprint, "certificate_store": "My"}])
    result = run_module(iis_plan.main, _args(store, tmp_path, facts=facts, install_root=True))
    assert not result.get("failed"), result
    assert result["changed"] is False and result["plan"]["pfx_path"] is None
    assert [binding["action"] for binding in result["plan"]["bindings"]] == ["unchanged"]
    assert result["plan"]["bindings"][0]["ssl_flags"] == 33
    assert os.listdir(tmp_path / "work") == []


def test_check_mode_writes_nothing(run_module, store, tmp_path):
    result = run_module(iis_plan.main, _args(store, tmp_path, _ansible_check_mode=True))
    assert result["changed"] and result["plan"]["pfx_path"]
    assert not os.path.exists(tmp_path / "work")


def test_diff_has_no_key_material(run_module, store, tmp_path, pki):
    facts = _facts(bindings=[{"protocol": "https", "ip": "*", "port": 443, "host": "www.example.com", "ssl_flags": 1,
                              "certificate_hash": "AB" * 20, "certificate_store": "My"}])
    result = run_module(iis_plan.main, _args(store, tmp_path, facts=facts, _ansible_diff=True))
    diff = json.dumps(result["diff"])
    assert "AB" * 20 in json.dumps(result["diff"]["before"]) and iis.certificate_thumbprint(pki["www"].cert) in diff
    assert "BEGIN" not in diff and "PRIVATE" not in diff and result["pfx_passphrase"] not in diff
    assert result["plan"]["rollback"][0]["thumbprint"] == "AB" * 20


def test_private_ca_root_goes_to_root_only_when_asked(run_module, store, tmp_path, pki):
    result = run_module(iis_plan.main, _args(store, tmp_path))
    assert result["plan"]["root"] is None and any("not in Root" in line for line in result["plan"]["messages"])
    result = run_module(iis_plan.main, _args(store, tmp_path, install_root=True))
    assert result["plan"]["root"]["thumbprint"] == iis.certificate_thumbprint(pki["root"].cert)


def test_several_definitions_give_several_plans(run_module, store, tmp_path):
    sites = [{"name": "Default Web Site", "certificate": "www"}, {"name": "Api", "certificate": "api"}]
    result = run_module(iis_plan.main, _args(store, tmp_path, sites=sites))
    assert result["plan"] is None and [plan["name"] for plan in result["plans"]] == ["www", "api"]
    assert len({plan["pfx_path"] for plan in result["plans"]}) == 2
    one = run_module(iis_plan.main, _args(store, tmp_path, sites=sites, certificate="api"))
    assert one["plan"]["name"] == "api" and [plan["name"] for plan in one["plans"]] == ["api"]


def test_per_server_key_is_never_replaced_by_the_shared_one(run_module, store, tmp_path, pki):
    definitions = [dict(DEFINITIONS[0], deploy={"key_policy": "per_server"})]
    result = run_module(iis_plan.main, _args(store, tmp_path, definitions=definitions))
    assert result["failed"] and "refusing to deploy the shared www" in result["msg"] and "www--web1" in result["msg"]
    assert not os.path.exists(tmp_path / "work")
    result = run_module(iis_plan.main, _args(store, tmp_path, definitions=definitions, key_policy="shared"))
    assert result["failed"] and "refusing a shared-key deploy" in result["msg"]
    put_definition(store, "www--web1", pki["www-web1"], pki["int"], passphrase=PASS)
    result = run_module(iis_plan.main, _args(store, tmp_path, definitions=definitions))
    assert not result.get("failed"), result
    plan = result["plan"]
    assert (plan["name"], plan["definition"], plan["key_policy"]) == ("www--web1", "www", "per_server")
    assert plan["thumbprint"] == iis.certificate_thumbprint(pki["www-web1"].cert)
    assert "friendlyName: www--web1" in _pkcs12_contents(plan["pfx_path"], result["pfx_passphrase"])


@pytest.mark.parametrize("change, message", [
    ({"store_passphrase": "wrong"}, "www"),
    ({"sites": [{"name": "Nowhere", "certificate": "www"}]}, "no IIS site of that name"),
    ({"sites": [{"name": "Default Web Site", "certificate": "../x"}]}, "must be 1-128 characters"),
    ({"sites": [{"name": "Default Web Site", "certificate": "missing"}]}, "missing: not in the store"),
    ({"facts": {"certificates": {"My": [{"thumbprint": "x"}]}}}, r"web1: facts.certificates.My\[0\].thumbprint"),
    ({"root_certificates": ["/nonexistent/root.pem"]}, "root_certificates: /nonexistent/root.pem does not exist"),
    ({"keep_generations": -1}, "keep_generations must be 0 or more"),
    ({"certificate": "api"}, "no site uses certificate api"),
])
def test_bad_input_fails_clearly_and_writes_nothing(run_module, store, tmp_path, change, message):
    result = run_module(iis_plan.main, _args(store, tmp_path, **change))
    assert result["failed"] and "Traceback" not in result["msg"]
    assert __import__("re").search(message, result["msg"]), result["msg"]
    assert not os.path.exists(tmp_path / "work")


def test_shared_non_sni_ip_port_is_reported_not_changed(run_module, store, tmp_path):
    facts = _facts(17763)
    facts["sites"][0]["bindings"].append({"protocol": "https", "ip": "*", "port": 443, "host": "", "ssl_flags": 0,
                                          "certificate_hash": "CD" * 20, "certificate_store": "My"})
    facts["sites"][1]["bindings"].append({"protocol": "https", "ip": "*", "port": 443, "host": "", "ssl_flags": 0,
                                          "certificate_hash": "CD" * 20, "certificate_store": "My"})
    sites = [{"name": "Default Web Site", "certificate": "www", "host": "", "sni": False}]
    result = run_module(iis_plan.main, _args(store, tmp_path, sites=sites, facts=facts))
    plan = result["plan"]
    assert plan["bindings"] == [] and plan["rollback"] == []
    assert plan["collisions"][0]["ip_port"] == "0.0.0.0:443" and plan["collisions"][0]["sites"] == ["Default Web Site", "Api"]
    # both sites managed and moving to the same certificate: switched together
    sites.append({"name": "Api", "certificate": "www", "host": "", "sni": False})
    result = run_module(iis_plan.main, _args(store, tmp_path, sites=sites, facts=facts))
    assert [binding["action"] for binding in result["plan"]["bindings"]] == ["switch", "switch"]
    assert result["plan"]["collisions"] == []
    # managed, but to another certificate: a collision for each
    sites[1]["certificate"] = "api"
    result = run_module(iis_plan.main, _args(store, tmp_path, sites=sites, facts=facts))
    assert all(plan["bindings"] == [] and len(plan["collisions"]) == 1 for plan in result["plans"])
