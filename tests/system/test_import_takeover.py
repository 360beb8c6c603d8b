"""Import and take over Apache hosts configured by hand (no certfleet): 3 podman hosts, each with two SSL vhosts
written the way a vendor's Apache + mod_ssl guide does it (key, certificate and intermediate files copied in,
SSLCertificateFile / SSLCertificateKeyFile / SSLCertificateChainFile, a2enmod ssl, a2ensite, reload).

certfleet.tls.import reads them on the hosts, brings certificates, keys and chains into the store and writes the
inventory snippet; a second import changes nothing; certfleet.tls.deploy with that snippet takes the sites over
under a loop of HTTPS requests (0 failures), the hand-made vhosts are disabled, and every host serves the same
bytes (leaf and chain, read with openssl s_client) as before. Own fleet cache (.cache/fleet-import).
"""
from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

import test_apache_fleet as base
from collection_link import REPO_ROOT, collections_root
from playbook_helpers import recap

from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

CACHE = REPO_ROOT / ".cache" / "fleet-import"
HOSTS = ("web1", "web2", "web3")
PASSPHRASE = "Import-Store-Secret-2468"
# server name, port, definition the import should name it, vhost file name
SITES = {
    "www": ("www.example.co.jp", 443, "www-example-co-jp"),
    "shop": ("shop.example.co.jp", 8443, "shop-example-co-jp"),
}


class ImportFleet(base.Fleet):
    def __init__(self, root: Path, env: dict):
        super().__init__(root, None)
        self.cache = CACHE
        self.env = dict(os.environ, FLEET_CACHE=str(CACHE))
        self.ansible_env = env

    def playbook(self, name: str, *extra: str) -> subprocess.CompletedProcess:
        args = ["-i", str(self.inventory / "hosts.yml"), "-i", str(self.cache / "inventory-ssh.yml"), f"certfleet.tls.{name}", *extra]
        binary = Path(sys.executable).parent / "ansible-playbook"
        return subprocess.run([str(binary), *args], cwd=self.root, env=self.ansible_env, capture_output=True, text=True,
                              timeout=900, check=False)

    def sh(self, host: str, script: str, *, check: bool = True) -> str:
        done = self.fleet("podman", "exec", host, "sh", "-c", script, check=check)
        return done.stdout

    def served_chain(self, host: str, site: str) -> list[bytes]:
        """Every certificate the site sends, DER, in order (openssl s_client -showcerts)."""
        name, port, _definition = SITES[site]
        done = subprocess.run(["openssl", "s_client", "-connect", f"{self.ips[host]}:{port}", "-servername", name, "-showcerts"],
                              input="", capture_output=True, text=True, timeout=30, check=False)
        blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", done.stdout, re.S)
        assert blocks, done.stdout + done.stderr
        return [pb.x509.load_pem_x509_certificate(block.encode()).public_bytes(serialization.Encoding.DER) for block in blocks]


def _pki(tmp: Path) -> dict:
    """A commercial-CA-shaped hierarchy: root (trusted by the controller like a public root), issuing CA, two server certificates."""
    root = pb.make_root("Import Test Root CA", key_type="rsa2048")
    issuing = pb.make_intermediate("Import Test SureServer-like CA", issuer=root, key_type="rsa2048")
    www = pb.make_leaf("www.example.co.jp", issuer=issuing, key_type="rsa2048", san=["www.example.co.jp", "example.co.jp"])
    shop = pb.make_leaf("shop.example.co.jp", issuer=issuing, key_type="ec256", san=["shop.example.co.jp"])
    system = Path(ssl.get_default_verify_paths().openssl_cafile)
    bundle = tmp / "trusted.pem"
    bundle.write_bytes((system.read_bytes() if system.is_file() else b"") + root.pem)
    return {"root": root, "issuing": issuing, "www": www, "shop": shop, "bundle": bundle}


def _configure_by_hand(fleet: ImportFleet, host: str, pki: dict) -> None:
    """What an administrator does by hand: copy the files, write the vhosts, a2enmod ssl, a2ensite, reload."""
    www, shop, issuing = pki["www"], pki["shop"], pki["issuing"]
    files = {
        "/etc/ssl/certs/www.example.co.jp.crt": www.pem, "/etc/ssl/private/www.example.co.jp.key": www.key_pem,
        "/etc/ssl/certs/sureserver-ca.crt": issuing.pem,
        # the second site: the chain appended to the certificate file, the key in its own file
        "/etc/ssl/certs/shop.pem": shop.pem + issuing.pem, "/etc/ssl/private/shop.key": shop.key_pem,
    }
    script = ["set -e", "mkdir -p /var/www/shop"]
    for path, data in files.items():
        script.append(f"printf '%s' '{data.decode()}' > {path}")
        if "/private/" in path:
            script.append(f"chmod 600 {path}")
    script.append("echo shop > /var/www/shop/index.html")
    script.append("cat > /etc/apache2/sites-available/www.conf <<'EOF'\n<VirtualHost *:443>\n    ServerName www.example.co.jp\n"
                  "    ServerAlias example.co.jp\n    DocumentRoot /var/www/html\n    SSLEngine on\n"
                  "    SSLCertificateFile /etc/ssl/certs/www.example.co.jp.crt\n"
                  "    SSLCertificateKeyFile /etc/ssl/private/www.example.co.jp.key\n"
                  "    SSLCertificateChainFile /etc/ssl/certs/sureserver-ca.crt\n</VirtualHost>\nEOF")
    script.append("cat > /etc/apache2/sites-available/shop.conf <<'EOF'\nListen 8443\n<VirtualHost *:8443>\n"
                  "    ServerName \"shop.example.co.jp\"\n    DocumentRoot \"/var/www/shop\"\n    SSLEngine on\n"
                  "    SSLCertificateFile \"/etc/ssl/certs/shop.pem\"\n    SSLCertificateKeyFile \"/etc/ssl/private/shop.key\"\n"
                  "</VirtualHost>\nEOF")
    script += ["a2enmod -q ssl", "a2ensite -q www shop", "apache2ctl -t", "systemctl reload apache2"]
    fleet.sh(host, "\n".join(script))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("import-takeover")
    pki = _pki(root)
    inventory = root / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "group_vars" / "webservers").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"webservers": {"children": {"fleet": {}}}}}}))
    (inventory / "group_vars" / "all" / "secrets.yml").write_text(f"certfleet_store_passphrase: {PASSPHRASE}\n")
    (inventory / "group_vars" / "webservers" / "verify.yml").write_text(
        "apache_ssl_verify_host: \"{{ fleet_ip | default(ansible_host) | default(inventory_hostname) }}\"\n")
    # The controller trusts the test root as it trusts a public CA's (SSL_CERT_FILE: the system bundle plus it).
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCAL_TEMP=str(root / "ansible-tmp"),
               ANSIBLE_HOME=str(root / "ansible-home"), ANSIBLE_FORKS="8", ANSIBLE_COLLECTIONS_PATH=str(collections_root()),
               SSL_CERT_FILE=str(pki["bundle"]))
    the_fleet = ImportFleet(root, env)
    the_fleet.pki = pki
    with base.running_fleet(the_fleet):
        for host in HOSTS:
            _configure_by_hand(the_fleet, host, pki)
        yield the_fleet


def test_hand_configured_hosts_are_imported_and_taken_over_under_load(fleet, record_property):
    before = {(host, site): fleet.served_chain(host, site) for host in HOSTS for site in SITES}
    for (host, site), chain in before.items():
        assert len(chain) == 2, (host, site)  # leaf and the issuing CA, as configured by hand
    snippet = fleet.inventory / "group_vars" / "webservers" / "imported.yml"

    # a damaged chain file on one host (Apache still runs on what it loaded): the import fails naming host and
    # file, and nothing is written anywhere
    chain = "/etc/ssl/certs/sureserver-ca.crt"
    fleet.sh("web3", f"cp {chain} /root/chain.saved && head -c 400 /root/chain.saved > {chain}")
    try:
        broken = fleet.playbook("import", "-e", f"certfleet_import_snippet={snippet}")
    finally:
        fleet.sh("web3", f"cp /root/chain.saved {chain}")
    assert broken.returncode != 0
    assert f"host web3: {chain}: a PEM block has a BEGIN line without its matching END line" in broken.stdout, broken.stdout[-3000:]
    assert not (fleet.inventory / "cert_store").exists() and not snippet.exists()

    checked = fleet.playbook("import", "--check", "--diff", "-e", f"certfleet_import_snippet={snippet}")
    assert checked.returncode == 0, checked.stdout[-4000:]
    assert not (fleet.inventory / "cert_store").exists() and not snippet.exists()
    assert "PRIVATE KEY" not in checked.stdout + checked.stderr

    run = fleet.playbook("import", "-e", f"certfleet_import_snippet={snippet}")
    assert run.returncode == 0, run.stdout[-4000:]
    assert "PRIVATE KEY" not in run.stdout + run.stderr
    store = fleet.inventory / "cert_store"
    assert sorted(os.listdir(store / "certs")) == sorted(definition for _n, _p, definition in SITES.values())
    for _name, _port, definition in SITES.values():
        assert b"ENCRYPTED PRIVATE KEY" in (store / "certs" / definition / "key.pem").read_bytes()
        events = [event["event"] for event in fleet.history(definition, store)]
        assert events.count("imported") == 1, events
    text = snippet.read_text()
    data = yaml.safe_load(text.replace("!unsafe ", ""))
    assert [site["certificate"] for site in data["apache_ssl_sites"]] == ["shop-example-co-jp", "www-example-co-jp"]
    assert data["apache_ssl_replace_vhosts"] == ["/etc/apache2/sites-enabled/shop.conf", "/etc/apache2/sites-enabled/www.conf"]
    assert 'document_root: "/var/www/shop"' in text

    again = fleet.playbook("import", "-e", f"certfleet_import_snippet={snippet}")
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
    assert snippet.read_text() == text

    started = time.monotonic()
    targets = [(fleet.ips[host], name, port) for host in HOSTS for name, port, _d in SITES.values()]
    with base.LoadGenerator(fleet, targets=targets, cafile=fleet.pki["bundle"]) as load:
        time.sleep(2)
        deploy = fleet.playbook("deploy", "-e", '{"certfleet_deploy_serial": 1}')
        time.sleep(2)
    elapsed = time.monotonic() - started
    assert deploy.returncode == 0, deploy.stdout[-5000:]
    figure = (f"import takeover under load: {load.sent} HTTPS requests in {elapsed:.1f} s to {len(load.targets)} sites, "
              f"{len(load.failures)} failed")
    print("\n" + figure)
    record_property("figure", figure)
    assert load.failures == [], load.failures[:10]
    assert load.sent > 100, load.sent
    for (host, site), chain in before.items():
        assert fleet.served_chain(host, site) == chain, (host, site)
    for host in HOSTS:
        enabled = fleet.sh(host, "ls /etc/apache2/sites-enabled/").split()
        assert "www.conf" not in enabled and "shop.conf" not in enabled, enabled
        assert {"certfleet-www.example.co.jp.conf", "certfleet-shop.example.co.jp-8443.conf"} <= set(enabled), enabled
        # the hand-made files themselves stay in sites-available (only their link went, as a2dissite does)
        assert "www.conf" in fleet.sh(host, "ls /etc/apache2/sites-available/").split()
    # served = intended in the fleet table, and a second deploy changes nothing
    for host in HOSTS:
        assert re.search(rf"{host}\s+ok\s+shop.example.co.jp-8443, www.example.co.jp serve the store certificates", deploy.stdout), \
            deploy.stdout[-3000:]
    second = fleet.playbook("deploy")
    assert second.returncode == 0, second.stdout[-3000:]
    for host in HOSTS:
        assert recap(second.stdout, host=host)["changed"] == 0, second.stdout[-3000:]
    history = [event["event"] for event in fleet.history("www-example-co-jp", store)]
    assert history.count("deployed") == len(HOSTS), history
    assert json.dumps(history)
