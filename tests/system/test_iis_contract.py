"""iis_ssl through the real deploy / verify playbooks against fake Windows hosts (tests/iis/harness.py).

What is real: ansible-playbook, the playbooks, the role, the store and its private CA, the planner
(the collection's iis_plan, or the stand-in while it is absent - the run prints which), the PFX files
(openssl reads them to decide what a Windows Server 2016 host would refuse), and the deploy check:
cert_scan makes real TLS handshakes with loopback listeners that serve what the fake http.sys table
binds. What is fake: Windows - the win_iis_* modules and ansible.windows.win_copy are Python fakes of
the documented behaviour of the PowerShell modules, keeping stores, keys, bindings and http.sys in JSON.

The fleet: iis2019 (build 17763) and iis2016 (build 14393), each with an SNI binding that already has
an old certificate and IIS 10 flags (4 | 8 beside SNI), and a new SNI binding for the API; iis2016 has
an old root with the private CA's name. One test adds an unreachable Apache host and an unreachable IIS
host (ssh to a closed loopback port) to run the site playbook on a mixed inventory. Tests run in order
on one fleet (about 10 minutes on 2 shared cores).
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from playbook_helpers import recap

from ansible_collections.certfleet.tls.tests.iis import harness
from ansible_collections.certfleet.tls.tests.iis.fake_https import FakeHttpSys

PORTAL, API = "portal.example.intra", "api.example.intra"
FLAGS = 1 | 4 | 8  # SNI, disable HTTP/2, disable OCSP stapling


def _self_signed(cn: str, subject: x509.Name | None = None, ca: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    name = subject or x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=90))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    certificate = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return certificate, key_pem


def _windows_entry(certificate, has_key: bool) -> dict:
    return {"thumbprint": harness.thumbprint(certificate.public_bytes(serialization.Encoding.PEM)),
            "subject": certificate.subject.rfc4514_string().replace(",", ", "),
            "issuer": certificate.issuer.rfc4514_string().replace(",", ", "),
            "not_after": certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"), "friendly_name": "",
            "pem": certificate.public_bytes(serialization.Encoding.PEM).decode(), "has_key": has_key}


class IisFleet:
    """The fake hosts, their inventory, the overlay and the playbook runner."""

    def __init__(self, root: Path):
        self.root = root
        self.inventory = root / "inventory"
        self.store = self.inventory / "cert_store"
        self.collections, self.planner = harness.build_overlay(root)
        self.https = FakeHttpSys()
        self.port = harness.free_port("127.0.0.51")
        self.api_port = harness.free_port("127.0.0.51")
        self.hosts = {"iis2019": harness.FakeHost(root, "iis2019", "127.0.0.51", harness.OS_2019),
                      "iis2016": harness.FakeHost(root, "iis2016", "127.0.0.52", harness.OS_2016)}
        self.env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_COLLECTIONS_PATH=self.collections,
                        ANSIBLE_LOCAL_TEMP=str(root / "ansible-tmp"), ANSIBLE_HOME=str(root / "ansible-home"),
                        ANSIBLE_FORKS="4", TMPDIR=str(root / "controller-tmp"))
        (root / "controller-tmp").mkdir()
        self.extra_hosts: dict = {}

    def host_vars(self, name: str) -> dict:
        host = self.hosts[name]
        return {"ansible_connection": "local", "ansible_python_interpreter": str(host.python), "iis_ssl_verify_host": host.address,
                "iis_ssl_sites": [{"name": "Default Web Site", "certificate": "portal-example-intra", "host": PORTAL, "port": self.port},
                                  {"name": "Api", "certificate": "api-example-intra", "host": API, "port": self.api_port}]}

    def write_inventory(self, **overrides) -> None:
        hosts = {name: dict(self.host_vars(name), **overrides.get(name, {})) for name in self.hosts}
        hosts.update(self.extra_hosts)
        if (self.inventory / "hosts.yml").exists():
            (self.inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"webservers": {"hosts": hosts}}}}))
        else:
            harness.inventory(self.inventory, hosts)

    def playbook(self, name: str, *extra: str) -> subprocess.CompletedProcess:
        binary = Path(sys.executable).parent / "ansible-playbook"
        return subprocess.run([str(binary), "-i", str(self.inventory / "hosts.yml"), f"certfleet.tls.{name}", *extra], cwd=self.root,
                              env=self.env, capture_output=True, text=True, timeout=600, check=False)

    def root_pem(self) -> Path:
        return self.store / "ca" / "example-intranet" / "root.pem"

    def store_thumbprint(self, definition: str) -> str:
        return harness.thumbprint((self.store / "certs" / definition / "cert.pem").read_bytes())

    def served(self, host: str, server_name: str, port: int) -> str:
        return self.hosts[host].served(server_name, port, self.root_pem())

    def history(self, definition: str) -> list[dict]:
        path = self.store / "certs" / definition / "history.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def rotate(self) -> None:
        definitions = [dict(item, renew_before_days=5000) for item in harness.DEFINITIONS]
        (self.root / "renew-now.yml").write_text(yaml.safe_dump({"certfleet_certificates": definitions}))
        run = self.playbook("request", "-e", "@" + str(self.root / "renew-now.yml"))
        assert run.returncode == 0, run.stdout[-3000:]

    def seed(self) -> None:
        """Before the first deploy: IIS sites with an old certificate on the portal's binding (flags 13)."""
        for name, host in self.hosts.items():
            old, old_key = _self_signed(PORTAL)
            entry = _windows_entry(old, True)
            host.update(self._seed_state(name, entry, old_key))
            self.https.listen(host.address, self.port, host.state_file)
            self.https.listen(host.address, self.api_port, host.state_file)

    def _seed_state(self, name: str, entry: dict, old_key: str):
        def apply(state):
            state["stores"]["My"].append(entry)
            state["keys"][entry["thumbprint"]] = {"pem": old_key, "storage": "machine", "exportable": False, "acl": []}
            state["sites"] = [
                {"name": "Default Web Site", "id": 1, "bindings": [
                    {"protocol": "http", "ip": "*", "port": 80, "host": "", "ssl_flags": 0, "certificate_hash": None, "certificate_store": None},
                    {"protocol": "https", "ip": "*", "port": self.port, "host": PORTAL, "ssl_flags": FLAGS,
                     "certificate_hash": entry["thumbprint"], "certificate_store": "My"}]},
                {"name": "Api", "id": 2, "bindings": [
                    {"protocol": "http", "ip": "*", "port": 8080, "host": "", "ssl_flags": 0, "certificate_hash": None, "certificate_store": None}]},
            ]
            state["sslcert"] = [{"ip_port": None, "host_port": f"{PORTAL}:{self.port}", "thumbprint": entry["thumbprint"], "store": "My"}]
            if name == "iis2016":
                root = x509.load_pem_x509_certificate(self.root_pem().read_bytes())
                same_name, _key = _self_signed("", subject=root.subject, ca=True)
                state["stores"]["Root"].append(_windows_entry(same_name, False))
        return apply


@pytest.fixture(scope="module")
def iis(tmp_path_factory):
    fleet = IisFleet(tmp_path_factory.mktemp("iis-fleet"))
    fleet.write_inventory()
    issued = fleet.playbook("request")
    assert issued.returncode == 0, issued.stdout[-3000:]
    fleet.seed()
    print(f"\niis_plan used by the contract tests: {fleet.planner}")
    try:
        yield fleet
    finally:
        fleet.https.close()


def test_check_mode_changes_nothing_and_shows_the_diff(iis):
    before = {name: host.state_file.read_bytes() for name, host in iis.hosts.items()}
    run = iis.playbook("deploy", "--check", "--diff")
    assert run.returncode == 0, run.stdout[-5000:]
    assert {name: host.state_file.read_bytes() for name, host in iis.hosts.items()} == before
    # the diff names the binding and the thumbprints, never key material
    assert f"Default Web Site https/*:{iis.port}:{PORTAL}" in run.stdout, run.stdout[-5000:]
    assert "PRIVATE KEY" not in run.stdout
    for host in iis.hosts.values():
        assert host.files() == []


def test_first_deploy_switches_bindings_keeps_flags_and_serves_the_store(iis):
    run = iis.playbook("deploy", "-vvv")
    assert run.returncode == 0, run.stdout[-6000:]
    # the per-run PFX passphrase the import received appears nowhere in ansible-playbook's output, even at -vvv
    passphrases = {phrase for host in iis.hosts.values() for phrase in host.read().get("pfx_passphrases", [])}
    assert len(passphrases) == 2 and all(len(phrase) >= 32 for phrase in passphrases), "one passphrase per host run"
    assert not [phrase for phrase in passphrases if phrase in run.stdout + run.stderr]
    portal, api = iis.store_thumbprint("portal-example-intra"), iis.store_thumbprint("api-example-intra")
    for name, host in iis.hosts.items():
        # real handshakes, chains verified against the store's root
        assert iis.served(name, PORTAL, iis.port) == portal
        assert iis.served(name, API, iis.api_port) == api
        assert host.binding("Default Web Site", PORTAL, iis.port)["ssl_flags"] == FLAGS, "IIS 10 flags were cleared"
        assert host.binding("Api", API, iis.api_port)["ssl_flags"] == 1
        state = host.read()
        # machine key storage, not exportable, the intermediates (if any) in CA, never in My with the leaf
        assert state["keys"][portal]["storage"] == "machine" and state["keys"][portal]["exportable"] is False
        my_subjects = [entry["subject"] for entry in state["stores"]["My"]]
        assert not any("example-intranet" in subject.lower() for subject in my_subjects), my_subjects
        assert host.files() == [], f"{name}: the copied PFX stayed on the host"
        if name == "iis2019":
            assert state["stores"]["Root"] == [], "the root went into Root although iis_ssl_install_root is false"
    # the 2016 host got a 3DES/SHA-1 PFX: the fake refuses anything else there (openssl pkcs12 -info), as Windows Server 2016 does
    assert recap(run.stdout, host="iis2016")["failed"] == 0
    # the same-name root on the 2016 host is reported, not removed (iis_ssl_remove_conflicting_roots false)
    assert len(iis.hosts["iis2016"].read()["stores"]["Root"]) == 1
    assert "same-name root left in LocalMachine" in run.stdout or "same name as the chain" in run.stdout, run.stdout[-5000:]
    # the controller's PFX files are gone too
    assert not list((iis.root / "controller-tmp").rglob("*.pfx"))
    events = [event["event"] for event in iis.history("portal-example-intra")]
    assert events.count("deployed") == 2 and events.count("verified") >= 2, events


def test_second_deploy_changes_nothing(iis):
    run = iis.playbook("deploy")
    assert run.returncode == 0, run.stdout[-4000:]
    for name in iis.hosts:
        assert recap(run.stdout, host=name)["changed"] == 0, run.stdout[-4000:]


def test_verify_prints_the_fleet_table(iis):
    run = iis.playbook("verify")
    assert run.returncode == 0, run.stdout[-4000:]
    rows = [line for line in run.stdout.splitlines() if "| Default Web Site |" in line or "| Api " in line]
    assert len(rows) == 4 and all("| yes " in row for row in rows), rows


def test_aes_pfx_forced_on_2016_fails_clearly_and_changes_no_binding(iis):
    iis.rotate()
    before = iis.served("iis2016", PORTAL, iis.port)
    iis.write_inventory(iis2016={"iis_ssl_pfx_encryption": "modern"}, iis2019={"iis_ssl_sites": []})
    run = iis.playbook("deploy")
    assert run.returncode != 0
    assert "cannot read AES-256" in run.stdout and "The specified network password is not correct" in run.stdout, run.stdout[-5000:]
    assert iis.served("iis2016", PORTAL, iis.port) == before
    assert iis.hosts["iis2016"].files() == []
    assert iis.history("portal-example-intra")[-1]["event"] == "deploy_failed"


def test_lost_key_association_is_repaired(iis):
    iis.hosts["iis2016"].faults(lose_key_association=["*"])
    iis.write_inventory(iis2019={"iis_ssl_sites": []})
    run = iis.playbook("deploy")
    assert run.returncode == 0, run.stdout[-5000:]
    state = iis.hosts["iis2016"].read()
    assert any("certutil -repairstore my" in line for line in state["log"]), state["log"][-5:]
    assert iis.served("iis2016", PORTAL, iis.port) == iis.store_thumbprint("portal-example-intra")


def test_repair_that_fails_stops_before_any_binding(iis):
    host = iis.hosts["iis2019"]
    host.faults(lose_key_association=["*"], repair_fails=True)
    before = iis.served("iis2019", PORTAL, iis.port)
    iis.write_inventory(iis2016={"iis_ssl_sites": []})
    run = iis.playbook("deploy")
    assert run.returncode != 0
    assert "HasPrivateKey false" in run.stdout and "A specified logon session does not exist" in run.stdout, run.stdout[-5000:]
    assert iis.served("iis2019", PORTAL, iis.port) == before
    host.faults()


def test_binding_update_failing_rolls_back_the_switched_binding(iis):
    host = iis.hosts["iis2019"]
    # the state is still the repaired-less import from the previous test: remove the unusable certificate
    portal = iis.store_thumbprint("portal-example-intra")
    host.update(lambda state: state["stores"].update(My=[e for e in state["stores"]["My"] if e["has_key"]]))
    before = iis.served("iis2019", PORTAL, iis.port)
    assert before != portal
    host.faults(binding_update_fails={"host": API})
    iis.write_inventory(iis2016={"iis_ssl_sites": []})
    run = iis.playbook("deploy")
    assert run.returncode != 0
    assert "Updating the binding" in run.stdout and "previous certificates restored on 1 binding(s)" in run.stdout, run.stdout[-6000:]
    assert iis.served("iis2019", PORTAL, iis.port) == before
    assert host.binding("Default Web Site", PORTAL, iis.port)["ssl_flags"] == FLAGS
    host.faults()


def test_site_playbook_on_a_mixed_inventory_with_unreachable_apache_and_iis_hosts(iis):
    """site (request + deploy) on IIS hosts beside an Apache host: the Apache host and a third IIS host cannot be
    reached; they fail in the summary and the history, the IIS hosts are deployed; verify prints one table for all."""
    closed = harness.free_port("127.0.0.1")
    unreachable = {"ansible_host": "127.0.0.1", "ansible_port": closed, "ansible_connection": "ssh", "ansible_user": "nobody",
                   "certfleet_deploy_connect_timeout": 3}
    iis.extra_hosts = {
        "iisdown": dict(unreachable, iis_ssl_verify_host="127.0.0.1",
                        iis_ssl_sites=[{"name": "Default Web Site", "certificate": "portal-example-intra", "host": PORTAL, "port": closed}]),
        "apachedown": dict(unreachable, apache_ssl_verify_host="127.0.0.1",
                           apache_ssl_sites=[{"name": "portal", "certificate": "portal-example-intra", "port": closed}]),
    }
    iis.write_inventory()
    run = iis.playbook("site", "-e", '{"certfleet_deploy_serial": [4], "certfleet_deploy_max_fail_percentage": 100}')
    # site stops after the deploy play's failure; the fleet table comes from verify on the same inventory
    table = iis.playbook("verify")
    iis.extra_hosts = {}
    iis.write_inventory()
    assert run.returncode != 0 and table.returncode != 0
    summary = [line for line in run.stdout.splitlines() if "FAILED" in line and "host unreachable" in line]
    assert any("iisdown" in line for line in summary) and any("apachedown" in line for line in summary), run.stdout[-6000:]
    for name in iis.hosts:
        assert iis.served(name, PORTAL, iis.port) == iis.store_thumbprint("portal-example-intra")
    # the fleet table of the verify play: the IIS hosts' bindings served = intended, the unreachable ones not
    rows = [line for line in table.stdout.splitlines() if line.lstrip('" ').startswith(("iis2019 ", "iis2016 ", "iisdown ", "apachedown "))
            and "|" in line]
    assert sum("| yes " in row for row in rows) == 4 and sum("FAILED" in row for row in rows) == 2, rows
    for host in ("iisdown", "apachedown"):
        failed = [event for event in iis.history("portal-example-intra") if event.get("host") == host]
        assert failed and failed[0]["event"] == "deploy_failed", failed


def test_wrong_certificate_served_rolls_back_and_fails_with_the_reason(iis):
    iis.rotate()
    host = iis.hosts["iis2019"]
    before = iis.served("iis2019", PORTAL, iis.port)
    # http.sys keeps serving the old certificate whatever the configuration says: the deploy check sees it
    host.faults(http_sys_stale=True)
    iis.write_inventory(iis2016={"iis_ssl_sites": []})
    run = iis.playbook("deploy", "-e", '{"iis_ssl_verify_retries": 1}')
    assert run.returncode != 0
    assert "http.sys serves" in run.stdout or "not the certificate in the store" in run.stdout, run.stdout[-6000:]
    assert "previous certificates restored" in run.stdout, run.stdout[-6000:]
    host.faults()
    assert iis.served("iis2019", PORTAL, iis.port) == before
    assert host.binding("Default Web Site", PORTAL, iis.port)["certificate_hash"] == before


def test_deploy_check_seeing_the_old_certificate_rolls_back_and_fails_with_the_reason(iis):
    host = iis.hosts["iis2019"]
    before = iis.served("iis2019", PORTAL, iis.port)
    assert before != iis.store_thumbprint("portal-example-intra")
    host.faults(tls_serves=before)
    iis.write_inventory(iis2016={"iis_ssl_sites": []})
    run = iis.playbook("deploy", "-e", '{"iis_ssl_verify_retries": 1}')
    host.faults()
    assert run.returncode != 0
    assert "deploy check failed: Default Web Site" in run.stdout and "not the certificate in the store" in run.stdout, run.stdout[-6000:]
    assert "previous certificates restored on 2 binding(s)" in run.stdout, run.stdout[-6000:]
    assert host.binding("Default Web Site", PORTAL, iis.port)["certificate_hash"] == before
    assert host.binding("Default Web Site", PORTAL, iis.port)["ssl_flags"] == FLAGS
    events = iis.history("portal-example-intra")
    assert {"verify_failed", "deploy_failed"} <= {event["event"] for event in events[-4:]}, events[-4:]


def test_rotation_deploys_and_removes_generations_beyond_the_kept_ones(iis):
    iis.write_inventory()
    run = iis.playbook("deploy")
    assert run.returncode == 0, run.stdout[-6000:]
    portal = iis.store_thumbprint("portal-example-intra")
    for name, host in iis.hosts.items():
        assert iis.served(name, PORTAL, iis.port) == portal
        generations = [entry["thumbprint"] for entry in host.read()["stores"]["My"] if entry.get("friendly_name") == "portal-example-intra"]
        # keep_generations 1: the deployed one and one before it (three portal generations were deployed on each host);
        # the certificate that was there before certfleet (another friendly name) is not certfleet's to remove
        assert portal in generations and len(generations) == 2, generations
        assert any(entry["friendly_name"] == "" for entry in host.read()["stores"]["My"])


def test_non_sni_binding_shared_by_two_sites_is_reported_and_left_alone(iis):
    host = iis.hosts["iis2016"]
    shared_port = harness.free_port(host.address)
    seed = next(entry for entry in host.read()["stores"]["My"] if entry.get("friendly_name") == "")

    def two_sites_on_one_ip_port(state):
        for name, site_id in (("Shop", 3), ("Legacy", 4)):
            state["sites"].append({"name": name, "id": site_id, "bindings": [
                {"protocol": "https", "ip": "*", "port": shared_port, "host": "", "ssl_flags": 0,
                 "certificate_hash": seed["thumbprint"], "certificate_store": "My"}]})
        state["sslcert"].append({"ip_port": f"0.0.0.0:{shared_port}", "host_port": None, "thumbprint": seed["thumbprint"], "store": "My"})
    host.update(two_sites_on_one_ip_port)
    iis.https.listen(host.address, shared_port, host.state_file)
    sites = iis.host_vars("iis2016")["iis_ssl_sites"] + [
        {"name": "Legacy", "certificate": "portal-example-intra", "host": "", "sni": False, "port": shared_port}]
    iis.write_inventory(iis2016={"iis_ssl_sites": sites}, iis2019={"iis_ssl_sites": []})
    run = iis.playbook("deploy")
    assert run.returncode == 0, run.stdout[-6000:]
    assert "without SNI is shared by the sites Legacy, Shop" in run.stdout, run.stdout[-6000:]
    # neither site's certificate changed: http.sys has one certificate for the IP:port
    assert host.binding("Legacy", "", shared_port)["certificate_hash"] == seed["thumbprint"]
    assert host.binding("Shop", "", shared_port)["certificate_hash"] == seed["thumbprint"]
    assert recap(run.stdout, host="iis2016")["changed"] == 0


def test_root_install_and_key_read_for_an_app_pool_then_nothing_changes(iis):
    host = iis.hosts["iis2019"]
    root = harness.thumbprint(iis.root_pem().read_bytes())
    assert root not in [entry["thumbprint"] for entry in host.read()["stores"]["Root"]]
    identity = "IIS AppPool\\DefaultAppPool"
    iis.write_inventory(iis2019={"iis_ssl_install_root": True, "iis_ssl_app_pool_identity": identity}, iis2016={"iis_ssl_sites": []})
    run = iis.playbook("deploy")
    assert run.returncode == 0, run.stdout[-6000:]
    state = host.read()
    assert root in [entry["thumbprint"] for entry in state["stores"]["Root"]]
    portal, api = iis.store_thumbprint("portal-example-intra"), iis.store_thumbprint("api-example-intra")
    assert identity in state["keys"][portal]["acl"] and identity in state["keys"][api]["acl"]
    assert recap(run.stdout, host="iis2019")["changed"] > 0
    again = iis.playbook("deploy")
    assert again.returncode == 0 and recap(again.stdout, host="iis2019")["changed"] == 0, again.stdout[-4000:]
