# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names that become paths in a deployment - certificates[].name, an Apache site's certificate (present or
absent), site names, server names, transaction ids - are checked whole before anything is read or removed
(issue 16, rows 9 and 10)."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.certfleet.tls.plugins.module_utils._deploy import apache as _apache
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import transaction as tx
from ansible_collections.certfleet.tls.plugins.module_utils._deploy.artifacts import StoreNotReady, certificate_files, store_files
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

PASS = "Deploy-Names-Pass-5"
PLATFORM = {"cert_dir": "/etc/ssl/certfleet", "key_dir": "/etc/ssl/private", "key_mode": "0600", "key_group": "root",
            "document_root": "/var/www/html", "vhost_dir": "/etc/apache2/sites-available",
            "vhost_enabled_dir": "/etc/apache2/sites-enabled", "default_ports": [80, 443]}
DEFINITIONS = [{"name": "portal", "common_name": "portal.example.intra", "issuer": {"provider": "manual"}}]


def plan(sites):
    return _apache.plan(sites, definitions=DEFINITIONS, platform=PLATFORM, fullchain=True, store_path="/store/",
                        verify_host="10.0.0.5")


@pytest.fixture
def store_with_ca(tmp_path):
    store = tmp_path / "store"
    _ca.run_private_ca(store_path=str(store), name="corp", passphrase=PASS, kind="root",
                       key_spec={"type": "ECC", "curve": "secp256r1"}, settings_options={})
    return store


@pytest.mark.parametrize("name", ["../ca/corp", "../../store/ca/corp", "www\n"])
def test_a_deploy_name_never_reads_outside_certs(store_with_ca, name):
    """``../../<store>/ca/<ca>`` once returned the CA's key, decrypted, as the site key."""
    entry = {"name": name, "key_path": "/etc/ssl/private/x.key", "certificate_path": "/etc/ssl/certfleet/x.pem"}
    with pytest.raises(CertfleetError, match=r"certificates\[\]: name .* must be 1-128 characters") as caught:
        certificate_files(str(store_with_ca), entry, passphrase=PASS)
    assert "PRIVATE KEY" not in str(caught.value) and PASS not in str(caught.value)
    with pytest.raises(StoreNotReady) as refused:
        store_files(str(store_with_ca), [entry], passphrase=PASS)
    assert "must be 1-128 characters" in refused.value.problems[0]
    key = (store_with_ca / "ca" / "corp" / "key.pem").read_bytes()
    assert serialization.load_pem_private_key(key, PASS.encode()) is not None  # the CA key is there to be stolen


@pytest.mark.parametrize("state", ["present", "absent"])
@pytest.mark.parametrize("certificate", ["../../../../root/.ssh/id", "../portal", "portal\n", "a/b"])
def test_a_site_certificate_that_is_not_a_store_name_is_refused(state, certificate):
    """An absent site removes certfleet-<certificate>.key: a ``../`` there would delete files anywhere."""
    with pytest.raises(CertfleetError, match=r"site x: certificate .* must be 1-128 characters"):
        plan([{"name": "x", "certificate": certificate, "state": state}])


def test_an_absent_site_with_a_plain_name_still_plans_its_removals():
    result = plan([{"name": "old", "certificate": "retired", "state": "absent"}])
    assert {"path": "/etc/ssl/private/certfleet-retired.key", "secret": True} in result["removals"]


@pytest.mark.parametrize("site, message", [
    ({"name": "portal\n", "certificate": "portal"}, "name must match"),
    ({"name": "x", "certificate": "portal", "server_name": "portal.example.intra\n"}, "server_name must be a DNS name"),
    ({"name": "x", "certificate": "portal", "server_name": "portal.example.intra", "server_aliases": ["www.example.intra\n"]},
     "must be a DNS name"),
])
def test_a_final_newline_is_refused_in_site_names(site, message):
    with pytest.raises(CertfleetError, match=message):
        plan([site])


def test_a_transaction_id_with_a_final_newline_is_refused(tmp_path):
    (tmp_path / "20261203T000000Z-deadbeef\n").mkdir()
    with pytest.raises(CertfleetError, match="is not a transaction id"):
        tx.rollback(str(tmp_path), "20261203T000000Z-deadbeef\n")
    assert tx.prune_transactions(str(tmp_path), keep=0) == []
