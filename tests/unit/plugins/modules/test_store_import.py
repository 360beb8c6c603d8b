"""store_import: files in every format, idempotence by public key, monitored-only, and bad inputs that change nothing."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from ansible_collections.certfleet.tls.plugins.modules import store_import
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import load_current
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.issue import run_issue
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

PASSPHRASE = "Store-Passphrase-0001"


@pytest.fixture(scope="module")
def pki():
    root = pb.make_root("Import Test Root", key_type="rsa2048")
    issuing = pb.make_intermediate("Import Test Issuing CA", issuer=root, key_type="rsa2048")
    leaves = {name: pb.make_leaf(name, issuer=issuing, key_type=key_type, san=[name, f"alt.{name}"])
              for name, key_type in (("www.example.co.jp", "rsa2048"), ("shop.example.co.jp", "ec256"),
                                     ("api.example.co.jp", "ec384"), ("jks.example.co.jp", "rsa2048"))}
    return {"root": root, "issuing": issuing, **leaves}


def _key_pem(issued, passphrase: str | None = None, fmt=serialization.PrivateFormat.PKCS8) -> bytes:
    encryption = serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    return issued.key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


def _snapshot(path) -> dict:
    tree = {}
    for root, _dirs, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as handle:
                tree[os.path.relpath(full, path)] = hashlib.sha256(handle.read()).hexdigest()
    return tree


@pytest.fixture
def inputs(tmp_path, pki):
    """One file per format: PEM cert + encrypted key, DER cert + P7B chain, PFX, JKS (made by keytool)."""
    directory = tmp_path / "incoming"
    directory.mkdir()
    www, shop, api, issuing = pki["www.example.co.jp"], pki["shop.example.co.jp"], pki["api.example.co.jp"], pki["issuing"]
    (directory / "www.crt").write_bytes(www.pem + issuing.pem)
    (directory / "www.key").write_bytes(_key_pem(www, "key-pass", serialization.PrivateFormat.TraditionalOpenSSL))
    (directory / "shop.der").write_bytes(shop.der)
    (directory / "shop-key.pem").write_bytes(_key_pem(shop))
    (directory / "intermediates.p7b").write_bytes(pb.p7b([issuing]))
    (directory / "api.pfx").write_bytes(pb.pfx(api, [issuing], password=b"pfx-pass"))
    jks_item = pki["jks.example.co.jp"]
    p12 = tmp_path / "jks-source.p12"
    p12.write_bytes(pb.pfx(jks_item, [issuing], password=b"store-pass", friendly_name=b"tomcat"))
    done = subprocess.run(["keytool", "-importkeystore", "-noprompt", "-srckeystore", str(p12), "-srcstoretype", "PKCS12",
                           "-srcstorepass", "store-pass", "-destkeystore", str(directory / "tomcat.jks"), "-deststoretype", "JKS",
                           "-deststorepass", "store-pass", "-destkeypass", "store-pass"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return directory


def _args(tmp_path, **extra) -> dict:
    args = {"store_path": str(tmp_path / "store"), "passphrase": PASSPHRASE, "passphrases": ["key-pass", "pfx-pass", "store-pass"],
            "snippet_path": str(tmp_path / "imported.yml")}
    args.update(extra)
    return args


def test_directory_in_every_format_is_imported_then_nothing_changes(run_module, tmp_path, inputs, pki):
    args = _args(tmp_path, directory=str(inputs))
    checked = run_module(store_import.main, dict(args, _ansible_check_mode=True, _ansible_diff=True))
    assert checked["changed"] and not (tmp_path / "store").exists() and not (tmp_path / "imported.yml").exists(), checked
    assert "BEGIN" not in json.dumps(checked["diff"]) and "PRIVATE" not in json.dumps(checked)
    assert sorted(item["action"] for item in checked["certificates"]) == ["imported"] * 4

    result = run_module(store_import.main, args)
    assert result["changed"], result
    names = {item["name"]: item for item in result["certificates"]}
    assert sorted(names) == ["api-example-co-jp", "jks-example-co-jp", "shop-example-co-jp", "www-example-co-jp"]
    for name, item in names.items():
        assert item["action"] == "imported" and item["chain"] == ["/CN=Import Test Issuing CA"], item
        current = load_current(str(tmp_path / "store"), name, PASSPHRASE)
        assert current.leaf == pki[item["subject"].split("=", 1)[1]].cert
        assert current.intermediates == [pki["issuing"].cert]
        assert b"ENCRYPTED PRIVATE KEY" in current.key_pem
        key_mode = os.stat(tmp_path / "store" / "certs" / name / "key.pem").st_mode & 0o777
        assert key_mode == 0o600
    snippet = (tmp_path / "imported.yml").read_text()
    data = yaml.safe_load(snippet.replace("!unsafe ", ""))
    by_name = {item["name"]: item for item in data["certfleet_certificates"]}
    assert by_name["api-example-co-jp"]["key"] == {"type": "ECC", "curve": "secp384r1"}
    assert by_name["www-example-co-jp"]["subject_alt_name"] == ["alt.www.example.co.jp"]
    assert 'common_name: "www.example.co.jp"' in snippet

    before = _snapshot(tmp_path / "store")
    again = run_module(store_import.main, args)
    assert not again["changed"], again
    assert [item["action"] for item in again["certificates"]] == ["unchanged"] * 4
    assert _snapshot(tmp_path / "store") == before

    # the request and issue steps find the imported definitions complete: nothing to request, nothing pending
    definitions = data["certfleet_certificates"]
    requested = run_request(store_path=str(tmp_path / "store"), definitions=definitions, passphrase=PASSPHRASE)
    assert not requested["changed"], [item["actions"] for item in requested["certificates"]]
    issued = run_issue(store_path=str(tmp_path / "store"), definitions=definitions, defaults={}, profiles={}, ca_passphrase=PASSPHRASE)
    assert issued["pending"] == [] and not issued["changed"], issued
    assert _snapshot(tmp_path / "store") == before


def test_the_same_certificate_from_two_files_and_a_renewal_for_the_same_key(run_module, tmp_path, pki):
    www, issuing = pki["www.example.co.jp"], pki["issuing"]
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "cert.pem").write_bytes(www.pem + issuing.pem)
    (first / "key.pem").write_bytes(_key_pem(www))
    (second / "server-copy.crt").write_bytes(www.der)
    result = run_module(store_import.main, _args(tmp_path, files=[str(first / "cert.pem"), str(first / "key.pem"),
                                                                  str(second / "server-copy.crt")]))
    assert [item["name"] for item in result["certificates"]] == ["www-example-co-jp"], result
    assert len(result["certificates"][0]["sources"]) == 2

    renewed = pb.make_leaf("www.example.co.jp", issuer=issuing, key=www.key, key_type="rsa2048", san=["www.example.co.jp"])
    (second / "renewed.pem").write_bytes(renewed.pem)
    again = run_module(store_import.main, _args(tmp_path, files=[str(second / "renewed.pem")]))
    assert [(item["name"], item["action"]) for item in again["certificates"]] == [("www-example-co-jp", "renewed")], again
    current = load_current(str(tmp_path / "store"), "www-example-co-jp", PASSPHRASE)
    assert current.leaf == renewed.cert and current.intermediates == [issuing.cert]
    archived = os.listdir(tmp_path / "store" / "certs" / "www-example-co-jp" / "archive")
    assert archived == [f"{www.cert.serial_number:X}" if len(f"{www.cert.serial_number:X}") % 2 == 0 else f"0{www.cert.serial_number:X}"]


def test_a_certificate_without_its_key_is_monitored_only(run_module, tmp_path, pki):
    path = tmp_path / "only-cert.pem"
    path.write_bytes(pki["shop.example.co.jp"].pem + pki["issuing"].pem)
    result = run_module(store_import.main, _args(tmp_path, files=[str(path)]))
    assert [(item["name"], item["action"], item["mode"]) for item in result["certificates"]] == [
        ("shop-example-co-jp", "monitored_only", "monitored_only")]
    assert not (tmp_path / "store" / "certs").exists()
    assert "no private key" in json.dumps(result["warnings"])


def test_host_facts_become_sites_and_replaced_vhosts(run_module, tmp_path, pki):
    www, issuing = pki["www.example.co.jp"], pki["issuing"]
    vhost = {"file": "/etc/apache2/sites-enabled/www.conf", "line": 1, "server_name": "www.example.co.jp",
             "server_aliases": ["alt.www.example.co.jp", "{{ lookup('pipe', 'id') }}"], "port": 443,
             "document_root": "/var/www/html", "certificate_files": ["/etc/ssl/certs/www.crt"], "certificates": [www.pem.decode()],
             "chain_file": "/etc/ssl/certs/chain.crt", "chain": issuing.pem.decode(), "file_vhosts": 1}
    hosts = [{"name": host, "address": f"10.0.0.{n}", "facts": {"vhosts": [vhost]}} for n, host in enumerate(("web1", "web2"), 1)]
    result = run_module(store_import.main, _args(tmp_path, hosts=hosts, private_keys=[_key_pem(www).decode()] * 2))
    assert [item["name"] for item in result["certificates"]] == ["www-example-co-jp"], result
    snippet = (tmp_path / "imported.yml").read_text()
    data = yaml.safe_load(snippet.replace("!unsafe ", ""))
    assert data["apache_ssl_sites"] == [{"name": "www.example.co.jp", "certificate": "www-example-co-jp", "server_name": "www.example.co.jp",
                                         "server_aliases": ["alt.www.example.co.jp"], "port": 443, "document_root": "/var/www/html"}]
    assert data["apache_ssl_replace_vhosts"] == ["/etc/apache2/sites-enabled/www.conf"]
    assert "lookup" not in snippet  # a ServerAlias that is no DNS name is left out

    # web2 serves a second site (its key given) and a third one without a key: different sites -> inventory format
    shop = dict(vhost, file="/etc/apache2/sites-enabled/shop.conf", server_name="shop.example.co.jp",
                certificates=[pki["shop.example.co.jp"].pem.decode()])
    api = dict(vhost, file="/etc/apache2/sites-enabled/api.conf", server_name="api.example.co.jp", port=8443,
               certificates=[pki["api.example.co.jp"].pem.decode()], key_errors=["/etc/ssl/private/api.key: permission denied"])
    hosts[1]["facts"]["vhosts"] = [vhost, shop, api]
    corrupt = dict(vhost, chain=issuing.pem.decode()[:300])
    broken = run_module(store_import.main, _args(tmp_path, hosts=[{"name": "web9", "facts": {"vhosts": [corrupt]}}], private_keys=[]))
    assert broken.get("failed") and "host web9: /etc/ssl/certs/chain.crt" in broken["msg"], broken
    keys = [_key_pem(www).decode(), _key_pem(pki["shop.example.co.jp"]).decode()]
    failed = run_module(store_import.main, _args(tmp_path, hosts=hosts, private_keys=keys))
    assert failed.get("failed") and "use snippet_format: inventory" in failed["msg"], failed
    result = run_module(store_import.main, _args(tmp_path, hosts=hosts, private_keys=keys, snippet_format="inventory"))
    assert "permission denied" in json.dumps(result["warnings"])
    inventory = yaml.safe_load((tmp_path / "imported.yml").read_text().replace("!unsafe ", ""))
    by_name = {item["name"]: item for item in inventory["all"]["vars"]["certfleet_certificates"]}
    assert by_name["api-example-co-jp"]["mode"] == "monitored_only"
    assert by_name["api-example-co-jp"]["endpoints"] == [{"host": "10.0.0.2", "port": 8443, "server_name": "api.example.co.jp"}]
    hosts_vars = inventory["all"]["children"]["webservers"]["hosts"]
    assert [site["certificate"] for site in hosts_vars["web1"]["apache_ssl_sites"]] == ["www-example-co-jp"]
    assert [site["certificate"] for site in hosts_vars["web2"]["apache_ssl_sites"]] == ["shop-example-co-jp", "www-example-co-jp"]
    assert hosts_vars["web2"]["apache_ssl_replace_vhosts"] == ["/etc/apache2/sites-enabled/shop.conf", "/etc/apache2/sites-enabled/www.conf"]


def _expired_leaf(issuing):
    end = pb.utcnow() - pb.datetime.timedelta(days=3)
    return pb.make_leaf("old.example.co.jp", issuer=issuing, not_before=end - pb.datetime.timedelta(days=90), not_after=end)


def _write(path, data: bytes):
    path.write_bytes(data)
    return str(path)


def _bad_inputs(tmp_path, pki):
    www, shop, issuing = pki["www.example.co.jp"], pki["shop.example.co.jp"], pki["issuing"]
    cert = _write(tmp_path / "www.pem", www.pem)
    return [
        ("wrong key passphrase", {"files": [cert, _write(tmp_path / "k1.key", _key_pem(www, "right"))], "passphrases": ["Not-This-One-77"]},
         "k1.key: wrong passphrase for the encrypted private key"),
        ("encrypted key, no passphrase", {"files": [cert, _write(tmp_path / "k2.key", _key_pem(www, "right"))], "passphrases": []},
         "k2.key: the private key is encrypted; give its passphrase"),
        ("key of another certificate", {"files": [cert, _write(tmp_path / "k3.key", _key_pem(shop))]},
         "k3.key: the private key matches none of the 1 server certificate(s)"),
        ("corrupt PEM", {"files": [_write(tmp_path / "bad.pem", www.pem.replace(b"M", b"!", 3))]}, "bad.pem: PEM block 1"),
        ("truncated DER", {"files": [_write(tmp_path / "cut.der", www.der[:200])]}, "cut.der: binary (DER) data that ends too early"),
        ("empty file", {"files": [_write(tmp_path / "empty.crt", b"")]}, "empty.crt: the file is empty"),
        ("wrong PFX password", {"files": [_write(tmp_path / "x.pfx", pb.pfx(www, [issuing], password=b"right"))], "passphrases": ["Not-This-One-77"]},
         "x.pfx: wrong password for the PKCS#12 (PFX) file"),
        ("PFX without password", {"files": [_write(tmp_path / "y.pfx", pb.pfx(www, [issuing], password=b"right"))], "passphrases": []},
         "y.pfx: the PKCS#12 (PFX) file is protected by a password"),
        ("only a CA certificate", {"files": [_write(tmp_path / "ca.pem", issuing.pem)]}, "no server certificate found in"),
        ("expired certificate", {"files": [_write(tmp_path / "old.pem", _expired_leaf(issuing).pem)]},
         "is expired on"),
        ("missing file", {"files": [str(tmp_path / "nothing.pem")]}, "nothing.pem: no such file"),
        ("not a certificate", {"files": [_write(tmp_path / "notes.txt", b"hello, this is not a certificate\n")]}, "notes.txt: no certificate found"),
        ("wrong store passphrase", {"files": [cert, _write(tmp_path / "k4.key", _key_pem(www))], "passphrase": "Not-The-Store-One"},
         "the store passphrase does not open"),
    ]


def test_bad_inputs_fail_naming_the_file_and_change_nothing(run_module, tmp_path, pki):
    seed = tmp_path / "seed.pem"
    seed.write_bytes(pki["api.example.co.jp"].pem + _key_pem(pki["api.example.co.jp"]))
    assert not run_module(store_import.main, _args(tmp_path, files=[str(seed)])).get("failed")
    before = _snapshot(tmp_path / "store")
    snippet_before = (tmp_path / "imported.yml").read_bytes()
    for label, extra, message in _bad_inputs(tmp_path, pki):
        result = run_module(store_import.main, _args(tmp_path, **extra))
        assert result.get("failed"), label
        assert message in result["msg"], (label, result["msg"])
        assert "Traceback" not in result["msg"]
        assert _snapshot(tmp_path / "store") == before, label
        assert (tmp_path / "imported.yml").read_bytes() == snippet_before, label


def test_jks_with_the_wrong_password_and_a_damaged_keystore(run_module, tmp_path, inputs):
    jks = str(inputs / "tomcat.jks")
    wrong = run_module(store_import.main, _args(tmp_path, files=[jks], passphrases=["Not-This-One-77"]))
    assert wrong.get("failed") and "tomcat.jks: wrong keystore password" in wrong["msg"], wrong
    damaged = tmp_path / "damaged.jks"
    damaged.write_bytes((inputs / "tomcat.jks").read_bytes()[:300])
    result = run_module(store_import.main, _args(tmp_path, files=[str(damaged)]))
    assert result.get("failed") and "damaged.jks" in result["msg"], result
    assert not (tmp_path / "store").exists()


def test_keytool_is_a_real_peer():
    assert shutil.which("keytool"), "keytool (OpenJDK) is required for the JKS tests: apt-get install -y default-jre-headless"


def test_hostile_values_from_a_host_never_reach_the_vhost_or_a_template(run_module, tmp_path, pki):
    www = pki["www.example.co.jp"]
    vhost = {"file": "/etc/apache2/sites-enabled/www.conf", "line": 1, "server_name": "www.example.co.jp",
             "server_aliases": ["{{ lookup('pipe', 'id') }}", "ok.example.co.jp"], "port": 443,
             "document_root": '/var/www"\nInclude /etc/shadow', "certificate_files": ["/c.pem"], "certificates": [www.pem.decode()],
             "file_vhosts": 1}
    hosts = [{"name": "web1", "address": "{{ evil }}", "facts": {"vhosts": [vhost]}}]
    result = run_module(store_import.main, _args(tmp_path, hosts=hosts, private_keys=[_key_pem(www).decode()]))
    assert not result.get("failed"), result
    text = (tmp_path / "imported.yml").read_text()
    data = yaml.safe_load(text.replace("!unsafe ", ""))
    site = data["apache_ssl_sites"][0]
    assert "document_root" not in site and site["server_aliases"] == ["ok.example.co.jp"]
    assert "Include /etc/shadow" not in text and "lookup" not in text
    assert "DocumentRoot" in json.dumps(result["warnings"])


def test_the_same_certificate_from_another_source_later_changes_nothing(run_module, tmp_path, pki):
    www = pki["www.example.co.jp"]
    first = tmp_path / "first.pem"
    first.write_bytes(www.pem + pki["issuing"].pem + _key_pem(www))
    assert run_module(store_import.main, _args(tmp_path, files=[str(first)]))["changed"]
    before = _snapshot(tmp_path / "store")
    other = tmp_path / "copy-on-another-server.der"
    other.write_bytes(www.der)
    again = run_module(store_import.main, _args(tmp_path, files=[str(other)]))
    assert [item["action"] for item in again["certificates"]] == ["unchanged"], again
    assert _snapshot(tmp_path / "store") == before


@pytest.mark.parametrize("directives, replaced", [
    ([], True), (["Listen 8443"], True), (["Listen 0.0.0.0:8443 https"], True),
    (["Listen 443 https"], False), (["SSLPassPhraseDialog builtin", "Listen 8443"], False),
])
def test_a_vhost_file_is_replaced_only_when_it_holds_nothing_else(run_module, tmp_path, pki, directives, replaced):
    www = pki["www.example.co.jp"]
    vhost = {"file": "/etc/httpd/conf.d/ssl.conf", "line": 5, "server_name": "www.example.co.jp", "port": 443,
             "certificate_files": ["/etc/pki/tls/certs/www.crt"], "certificates": [www.pem.decode()], "file_vhosts": 1,
             "file_directives": directives}
    result = run_module(store_import.main, _args(tmp_path, hosts=[{"name": "web1", "facts": {"vhosts": [vhost]}}],
                                                 private_keys=[_key_pem(www).decode()]))
    assert result["sites"]["web1"]["apache_ssl_replace_vhosts"] == (["/etc/httpd/conf.d/ssl.conf"] if replaced else [])
    if not replaced:  # (module warnings of earlier tests may linger in the in-process runner: only presence is checked)
        assert "ssl.conf holds other configuration" in json.dumps(result["warnings"])


def test_a_jceks_keystore_made_by_keytool(run_module, tmp_path, pki):
    item = pki["shop.example.co.jp"]
    p12 = tmp_path / "source.p12"
    p12.write_bytes(pb.pfx(item, [pki["issuing"]], password=b"store-pass", friendly_name=b"shop"))
    jceks = tmp_path / "shop.jceks"
    done = subprocess.run(["keytool", "-importkeystore", "-noprompt", "-srckeystore", str(p12), "-srcstoretype", "PKCS12",
                           "-srcstorepass", "store-pass", "-destkeystore", str(jceks), "-deststoretype", "JCEKS",
                           "-deststorepass", "store-pass", "-destkeypass", "store-pass"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result = run_module(store_import.main, _args(tmp_path, files=[str(jceks)], passphrases=["store-pass"]))
    assert [(item["name"], item["action"]) for item in result["certificates"]] == [("shop-example-co-jp", "imported")], result
    current = load_current(str(tmp_path / "store"), "shop-example-co-jp", PASSPHRASE)
    assert current.leaf == item.cert and current.intermediates == [pki["issuing"].cert]
