"""The role's filters: bad input becomes an AnsibleFilterError with the reason, never a traceback."""
from __future__ import annotations

import shutil

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.certfleet.tls.plugins.filter.apache_ssl import FilterModule
from ansible_collections.certfleet.tls.plugins.filter.decrypt_private_key import decrypt_private_key
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb
from collection_link import REPO_ROOT

FILTERS = FilterModule().filters()


def test_filters_wrap_certfleet_errors():
    with pytest.raises(AnsibleFilterError, match="cannot read Apache's version"):
        FILTERS["apache_version"]("no apache here")
    with pytest.raises(AnsibleFilterError, match="apache_ssl_sites must be a list"):
        FILTERS["apache_ssl_plan"]("x", {"document_root": "/"}, True, "/s", "h")


def test_filters_return_results():
    assert FILTERS["os_release"]("ID=debian\nVERSION_ID=12\n")["os_family"] == "Debian"
    assert FILTERS["deploy_check"]([{"name": "a", "outcome": "timeout"}])[0]["ok"] is False


def test_decrypt_private_key_round_trip_and_wrong_passphrase():
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"secret")).decode()
    plain = decrypt_private_key(encrypted, "secret")
    assert plain.startswith("-----BEGIN PRIVATE KEY-----")
    loaded = serialization.load_pem_private_key(plain.encode(), None)
    assert loaded.private_numbers() == key.private_numbers()
    with pytest.raises(AnsibleFilterError) as info:
        decrypt_private_key(encrypted, "wrong")
    assert "secret" not in str(info.value)
    with pytest.raises(AnsibleFilterError, match="expects PEM text"):
        decrypt_private_key(42)


# --- the Windows branch's decisions (tasks/windows.yml: plan with vars/Windows.yml, then apache_ssl_store_files) ---

WINDOWS_VARS = yaml.safe_load((REPO_ROOT / "roles" / "apache_ssl" / "vars" / "Windows.yml").read_text())
STORE_PASS = "Windows-Branch-Store-1"


def windows_plan(sites, *, fullchain: bool):
    """The platform dict windows.yml builds from vars/Windows.yml, through the real apache_ssl_plan filter."""
    platform = {"cert_dir": WINDOWS_VARS["__apache_ssl_cert_dir"], "key_dir": WINDOWS_VARS["__apache_ssl_key_dir"],
                "key_mode": "0600", "key_group": "", "document_root": WINDOWS_VARS["__apache_ssl_document_root"],
                "vhost_dir": WINDOWS_VARS["__apache_ssl_cert_dir"], "vhost_enabled_dir": "",
                "default_ports": WINDOWS_VARS["__apache_ssl_default_ports"]}
    return FILTERS["apache_ssl_plan"](sites, platform, fullchain, "/store", "10.0.0.9",
                                      definitions=[{"name": "shop", "common_name": "shop.example.co.jp"}])


@pytest.fixture(scope="module")
def windows_store(tmp_path_factory):
    root = pb.make_root("Windows Branch Root")
    issuing = pb.make_intermediate("Windows Branch Issuing CA", issuer=root)
    leaf = pb.make_leaf("shop.example.co.jp", issuer=issuing)
    store = tmp_path_factory.mktemp("windows_store")
    directory = store / "certs" / "shop"
    directory.mkdir(parents=True)
    (directory / "key.pem").write_bytes(leaf.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(STORE_PASS.encode())))
    (directory / "cert.pem").write_bytes(leaf.pem)
    (directory / "chain.pem").write_bytes(issuing.pem)
    return {"path": store, "leaf": leaf, "issuing": issuing, "directory": directory}


@pytest.mark.parametrize("fullchain", [True, False])
def test_windows_files_hold_a_decrypted_key_and_the_layout_of_the_apache_version(windows_store, fullchain):
    plan = windows_plan([{"name": "shop", "certificate": "shop"}], fullchain=fullchain)
    files = {item["dest"]: item["content"] for item in
             FILTERS["apache_ssl_store_files"](plan["certificates"], str(windows_store["path"]), STORE_PASS)}
    key_path = "C:\\Apache\\conf\\ssl\\certfleet-shop.key"
    # Seed 000 §7.3: Apache for Windows cannot ask for a passphrase, so the key must be unencrypted.
    assert files[key_path].startswith("-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(files[key_path].encode(), None)
    assert key.public_key().public_numbers() == windows_store["leaf"].key.public_key().public_numbers()
    leaf_pem, issuing_pem = windows_store["leaf"].pem.decode(), windows_store["issuing"].pem.decode()
    if fullchain:  # 2.4.8 and later: leaf + chain in SSLCertificateFile, no chain file
        assert sorted(files) == sorted([key_path, "C:\\Apache\\conf\\ssl\\certfleet-shop.fullchain.pem"])
        assert files["C:\\Apache\\conf\\ssl\\certfleet-shop.fullchain.pem"] == leaf_pem + issuing_pem
    else:  # older: the leaf alone, SSLCertificateChainFile with the intermediate
        assert files["C:\\Apache\\conf\\ssl\\certfleet-shop.pem"] == leaf_pem
        assert files["C:\\Apache\\conf\\ssl\\certfleet-shop.chain.pem"] == issuing_pem
    assert plan["listen_ports"] == []  # 443 is in the Windows httpd-ssl default ports
    assert plan["check_targets"][0]["host"] == "10.0.0.9"


def test_windows_files_refuse_a_broken_store_entry_before_anything_is_written(windows_store, tmp_path):
    plan = windows_plan([{"name": "shop", "certificate": "shop"}], fullchain=True)
    broken = tmp_path / "store"
    shutil.copytree(windows_store["path"], broken)
    other = pb.make_key()
    (broken / "certs" / "shop" / "key.pem").write_bytes(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(STORE_PASS.encode())))
    with pytest.raises(AnsibleFilterError, match="nothing was written: shop/key.pem does not match shop/cert.pem"):
        FILTERS["apache_ssl_store_files"](plan["certificates"], str(broken), STORE_PASS)
    with pytest.raises(AnsibleFilterError, match="shop/key.pem"):
        FILTERS["apache_ssl_store_files"](plan["certificates"], str(windows_store["path"]), "wrong passphrase")
    with pytest.raises(AnsibleFilterError, match="not in the store"):
        FILTERS["apache_ssl_store_files"](plan["certificates"], str(tmp_path / "empty"), STORE_PASS)
