"""The commercial-CA round trip on the podman fleet: request -> the CA (a test PKI shaped like a commercial
CA's hierarchy, with a cross-signed root) signs the store's CSRs -> the files are dropped in as the CA sent
them -> collect -> deploy with apache_ssl -> every host serves the intended certificate with the full chain in
the right order, proved by TLS handshakes from here. Before the collect, deploy refuses the pending
definitions and deploys nothing of them, and verify warns about them.

Own fleet cache (.cache/fleet-commercial), so it never shares hosts with another run.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess

import pytest
import yaml
from cryptography import x509

import test_apache_fleet as base
from collection_link import REPO_ROOT
from playbook_helpers import recap

from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import commercial_pki as cp

CACHE = REPO_ROOT / ".cache" / "fleet-commercial"
HOSTS = ("web1", "web2")
PFX_PASSWORD = "Pfx-Round-Trip-1618"
# site -> (definition, server name)
SITES = {"www": ("www-example-co-jp", "www.example.co.jp"), "shop": ("shop-example-co-jp", "shop.example.co.jp")}


class CommercialFleet(base.Fleet):
    """base.Fleet on its own cache with two hosts."""

    def __init__(self, root, run_playbook):
        super().__init__(root, run_playbook)
        self.cache = CACHE
        self.env = dict(os.environ, FLEET_CACHE=str(CACHE))

    def up(self) -> None:
        self.fleet("up", str(len(HOSTS)))
        inventory = yaml.safe_load((self.cache / "inventory-ssh.yml").read_text())
        self.ips = {name: host["fleet_ip"] for name, host in inventory["all"]["children"]["fleet"]["hosts"].items()}

    def served_chain(self, host: str, server_name: str) -> list[x509.Certificate]:
        """Every certificate the site sends, in the order it sends them (openssl s_client -showcerts)."""
        done = subprocess.run(["openssl", "s_client", "-connect", f"{self.ips[host]}:443", "-servername", server_name,
                               "-showcerts"], input="", capture_output=True, text=True, timeout=30, check=False)
        blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", done.stdout, re.S)
        assert blocks, done.stdout[-2000:] + done.stderr[-2000:]
        return [x509.load_pem_x509_certificate(block.encode()) for block in blocks]


@pytest.fixture(scope="module")
def commercial():
    return cp.commercial_ca()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, commercial):
    root = tmp_path_factory.mktemp("commercial-round-trip")
    run, _env, _binary = base.prepare_run_root(root)
    the_fleet = CommercialFleet(root, run)
    inventory = the_fleet.inventory
    # The CA's old root is the trust anchor: the chain served is leaf, issuing CA, cross-signed root.
    anchor = root / "ca-old-root.pem"
    anchor.write_bytes(commercial.old_root.pem)
    definitions = yaml.safe_load((inventory / "group_vars" / "all" / "certificates.yml").read_text())["certfleet_certificates"]
    for definition in definitions:
        if definition["issuer"]["provider"] == "manual":
            definition["trusted_ca_set"] = "commercial"
    (inventory / "group_vars" / "all" / "zz-commercial.yml").write_text(yaml.safe_dump({
        "certfleet_certificates": definitions,
        "certfleet_trusted_ca_sets": {"commercial": {"system": False, "certificates": [str(anchor)]}},
        "certfleet_collect_trust_anchors": [str(anchor)],
        "certfleet_collect_system_trust": False,
        "certfleet_collect_prefer": "cross_root",
        "certfleet_collect_pkcs12_passwords": {"order-0001 (www).pfx": PFX_PASSWORD},
    }))
    (inventory / "group_vars" / "webservers" / "sites.yml").write_text(yaml.safe_dump({
        "apache_ssl_sites": [{"name": site, "certificate": definition} for site, (definition, _name) in SITES.items()],
        "apache_ssl_verify_host": "{{ fleet_ip | default(ansible_host) | default(inventory_hostname) }}",
    }))
    with base.running_fleet(the_fleet):
        yield the_fleet


def test_round_trip_request_collect_deploy_verify(fleet, commercial):
    store = fleet.store
    requested = fleet.playbook("request")
    assert requested.returncode == 0, requested.stdout[-4000:]
    assert "Common Name (CN)" in requested.stdout and "-----BEGIN CERTIFICATE REQUEST-----" in requested.stdout

    # Pending: deploy refuses, deploys nothing of it; verify warns.
    refused = fleet.playbook("deploy")
    assert refused.returncode != 0
    assert "certificate www-example-co-jp is pending issuance since" in refused.stdout, refused.stdout[-4000:]
    listing = fleet.fleet("podman", "exec", "web1", "sh", "-c", "ls /etc/ssl/certfleet /etc/ssl/private 2>/dev/null; "
                          "ls /etc/apache2/sites-enabled", check=False)
    assert "www-example-co-jp" not in listing.stdout and "certfleet-www" not in listing.stdout, listing.stdout
    warned = fleet.playbook("verify", "-e", "certfleet_pending_warn_days=0")
    assert "WARNING: certificates pending at their CA" in warned.stdout
    assert "www-example-co-jp: pending at its CA for 0 day(s)" in warned.stdout

    # The CA signs the CSRs; the person saves what it sent, as it sent it.
    www = commercial.sign((store / "certs" / "www-example-co-jp" / "csr.pem").read_bytes())
    shop = commercial.sign((store / "certs" / "shop-example-co-jp" / "csr.pem").read_bytes())
    incoming = store / "incoming"
    incoming.mkdir()
    pfx = cp.pfx(www, commercial.root_cross, commercial.issuing, password=PFX_PASSWORD.encode())
    (incoming / "order-0001 (www).pfx").write_bytes(pfx)
    (incoming / "ServerCertificate.cer").write_bytes(cp.der(shop))
    (incoming / "chain.p7b").write_bytes(cp.p7b(commercial.root_cross, commercial.issuing))

    checked = fleet.playbook("collect", "--check", "--diff")
    assert checked.returncode == 0 and recap(checked.stdout)["changed"] == 1, checked.stdout[-4000:]
    assert len(list(incoming.iterdir())) == 3
    collected = fleet.playbook("collect")
    assert collected.returncode == 0, collected.stdout[-4000:]
    assert sorted(path.name for path in incoming.iterdir()) == ["processed"]
    for definition in ("www-example-co-jp", "shop-example-co-jp"):
        events = [json.loads(line) for line in (store / "certs" / definition / "history.jsonl").read_text().splitlines()]
        assert events[-1]["event"] == "collected"

    deployed = fleet.playbook("deploy")
    assert deployed.returncode == 0, deployed.stdout[-4000:]
    for host in HOSTS:
        assert re.search(rf"{host}\s+ok\s+www, shop serve the store certificates", deployed.stdout), deployed.stdout[-3000:]

    expected_chain = [commercial.issuing.cert, commercial.root_cross.cert]
    for host in HOSTS:
        for site, (definition, name) in SITES.items():
            served = fleet.served_chain(host, name)
            leaf = www if site == "www" else shop
            assert served[0] == leaf, f"{host} {site}"
            assert served[1:] == expected_chain, f"{host} {site}: {[c.subject.rfc4514_string() for c in served]}"
            stored = (store / "certs" / definition / "fullchain.pem").read_bytes()
            assert b"".join(cp.pem(cert) for cert in served) == stored

    verified = fleet.playbook("verify")
    assert verified.returncode == 0, verified.stdout[-4000:]
    assert "WARNING: certificates pending" not in verified.stdout
    # The fleet table: served = intended, chain complete, trusted (by the CA's root), check ok, for every site.
    table = [line for line in verified.stdout.splitlines() if re.search(r"\| (www|shop)\s+\|", line)]
    assert len(table) == len(HOSTS) * len(SITES), verified.stdout[-4000:]
    sha = hashlib.sha256(cp.der(www)).hexdigest()
    for line in table:
        columns = [column.strip() for column in line.strip().strip('",').split(" | ")]
        assert columns[2] == "yes" and columns[4] == "yes" and columns[5] == "yes" and columns[-1] == "ok", line
        if columns[1] == "www":
            assert columns[3] == sha[:16] + "...", line
    again = fleet.playbook("deploy")
    assert again.returncode == 0
    for host in HOSTS:
        assert recap(again.stdout, host=host)["changed"] == 0, again.stdout[-3000:]
