"""Revocation known to a trusted CA set (its CRLs) is a critical check: scan, probe and the deploy check."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import apache
from ansible_collections.certfleet.tls.plugins.module_utils._scan import checks as ec
from ansible_collections.certfleet.tls.plugins.module_utils._scan import runner
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb


def _crl(issuer, serials=(), *, next_update_days=7, signer=None):
    now = pb.utcnow()
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
               .last_update(now - datetime.timedelta(days=1)).next_update(now + datetime.timedelta(days=next_update_days)))
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - datetime.timedelta(hours=1)).build())
    return builder.sign((signer or issuer).key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki():
    root = pb.make_root("Revocation Test Root")
    return root, pb.make_leaf("www.example.intra", issuer=root), pb.make_leaf("api.example.intra", issuer=root)


def _analyze(chain, store, **expect):
    return ec.ChainAnalyzer().analyze(chain, expect=ec.Expectations(trust=store, **expect))


def test_a_revoked_leaf_is_critical_and_not_trusted_even_when_only_the_fingerprint_is_checked(pki):
    root, leaf, _other = pki
    crl = _crl(root, [leaf.cert.serial_number]).public_bytes(serialization.Encoding.DER)
    store = ec.TrustStore.load(name="intra", system=False, certificates=[root.cert.public_bytes(serialization.Encoding.PEM)],
                               revocation_lists=[crl])
    for check_trust in (True, False):
        report = _analyze([leaf.cert], store, check_trust=check_trust)
        checks = {check.name: check for check in report.checks}
        assert checks["revocation"].status == "critical", checks["revocation"]
        assert "was revoked by" in checks["revocation"].message
        assert report.status == "critical"
        assert report.facts["revoked"] is True and report.facts["trusted"] is False


def test_a_leaf_not_on_the_crl_is_ok_and_a_stale_crl_warns(pki):
    root, leaf, other = pki
    store = ec.TrustStore([root.cert], name="intra", revocation_lists=[(_crl(root, [leaf.cert.serial_number]), "crl")])
    report = _analyze([other.cert], store)
    assert {check.name: check.status for check in report.checks}["revocation"] == "ok"
    assert report.facts["revoked"] is False and report.facts["trusted"] is True
    stale = ec.TrustStore([root.cert], name="intra", revocation_lists=[(_crl(root, [], next_update_days=-1), "crl")])
    assert {check.name: check.status for check in _analyze([other.cert], stale).checks}["revocation"] == "warning"


def test_without_a_crl_there_is_no_revocation_check(pki):
    root, leaf, _other = pki
    report = _analyze([leaf.cert], ec.TrustStore([root.cert], name="intra"))
    assert "revocation" not in {check.name for check in report.checks}
    assert report.facts["revoked"] is None


def test_a_crl_not_signed_by_the_anchor_it_names_is_refused(pki):
    root, _leaf, _other = pki
    forger = pb.make_root("Revocation Test Root")
    with pytest.raises(CertfleetError, match="not signed by that CA"):
        ec.TrustStore([root.cert], name="intra", revocation_lists=[(_crl(root, [1], signer=forger), "forged.crl")])
    with pytest.raises(CertfleetError, match="not a certificate revocation list"):
        ec.TrustStore.load(name="intra", system=False, certificates=[root.cert.public_bytes(serialization.Encoding.PEM)],
                           revocation_lists=[b"garbage"])


def test_scan_plan_passes_revocation_lists_of_a_set(pki, tmp_path):
    root, leaf, _other = pki
    path = tmp_path / "crl.der"
    path.write_bytes(_crl(root, [leaf.cert.serial_number]).public_bytes(serialization.Encoding.DER))
    plan = runner.ScanPlan(targets=[{"host": "127.0.0.1", "port": 443, "trusted_ca_set": "intra"}],
                           trusted_ca_sets={"intra": {"system": False, "certificates": [root.cert.public_bytes(serialization.Encoding.PEM).decode()],
                                                      "revocation_lists": [str(path)]}})
    store = plan.trust_store("intra")
    assert store.revoked(leaf.cert)[0] is True


def test_the_apache_plan_checks_lifecycle_managed_sites_against_the_store_crl(tmp_path):
    store = tmp_path / "store"
    definitions = [{"name": "portal", "issuer": {"provider": "private_ca", "ca": "intra"}}]
    platform = {"cert_dir": "/c", "key_dir": "/k", "key_mode": "0600", "key_group": "root", "document_root": "/d",
                "vhost_dir": "/v", "vhost_enabled_dir": "", "default_ports": []}
    sites = [{"name": "portal", "certificate": "portal", "server_name": "portal.example.intra"}]

    def plan():
        return apache.plan(sites, definitions=definitions, platform=platform, fullchain=True, store_path=str(store),
                           verify_host="web1")

    assert "revocation_lists" not in plan()["trusted_ca_sets"]["private_ca_intra"]
    crl = layout.ca_path(str(store), "intra", "crl")
    (tmp_path / "store" / "ca" / "intra").mkdir(parents=True)
    with open(crl, "wb") as handle:
        handle.write(b"\x30")
    assert plan()["trusted_ca_sets"]["private_ca_intra"]["revocation_lists"] == [crl]
    rows = apache.deploy_check([{"name": "portal", "outcome": "ok", "matches_expected": True, "chain_complete": True,
                                 "trusted": False, "revoked": True, "hostname_ok": True, "days_left": 80,
                                 "checks": {"revocation": {"status": "critical", "message": "revoked: portal was revoked"}}}])
    assert rows[0]["ok"] is False and rows[0]["problems"] == ["revoked: portal was revoked"]


def test_the_monitor_plan_gives_a_private_ca_set_the_store_crl(pki):
    from ansible_collections.certfleet.tls.plugins.module_utils._scan import monitor  # pylint: disable=import-outside-toplevel
    root, _leaf, _other = pki
    root_pem = root.cert.public_bytes(serialization.Encoding.PEM).decode()
    crl_pem = _crl(root, [5]).public_bytes(serialization.Encoding.PEM).decode()
    definition = {"name": "intra", "common_name": "intra.example.jp", "mode": "monitored_only",
                  "issuer": {"provider": "private_ca", "ca": "corp"}, "endpoints": ["10.0.0.3"]}
    files = {layout.ca_path("/store", "corp", "root"): root_pem, layout.ca_path("/store", "corp", "crl_pem"): crl_pem}
    plan = monitor.monitor_targets([definition], store_path="/store", read=files.get)
    assert plan["trusted_ca_sets"]["private_ca_corp"] == {"system": False, "certificates": [root_pem], "revocation_lists": [crl_pem]}
    store = runner.ScanPlan(targets=plan["targets"], trusted_ca_sets=plan["trusted_ca_sets"]).trust_store("private_ca_corp")
    assert len(store.revocation) == 1
