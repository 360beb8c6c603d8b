"""apache_ssl on a real fleet: 3 Debian hosts (systemd containers with Apache) with 2 SNI sites each.

One fleet for the whole module, used in order: first site run and idempotence, a rotation with
serial 1 under continuous HTTPS load (0 failed requests), then fault injection on one host while
the others proceed (chain for the wrong issuer, key that does not match, a directive Apache
rejects, Apache stopped), and an unreachable host that is completed by a re-run once it is back.
Every "served" claim is proved by a TLS handshake from here. The fleet is podman on an internal
network (tests/fleet/fleet); without podman these tests fail, they never skip.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import hashes, serialization

from collection_link import REPO_ROOT, collections_root
from playbook_helpers import recap

from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

FLEET = REPO_ROOT / "tests" / "fleet" / "fleet"
HOSTS = ("web1", "web2", "web3")
STORE_PASSPHRASE = "Fleet-Store-Secret-5151"
DEFINITIONS = ("portal-example-intra", "api-example-intra")
SITES = {"portal": ("portal-example-intra", "portal.example.intra", 443), "api": ("api-example-intra", "api.example.intra", 8443)}


class Fleet:
    """The running fleet, its inventory and helpers to run playbooks and look at what is served."""

    def __init__(self, root: Path, run_playbook):
        self.root = root
        self.cache = REPO_ROOT / ".cache" / "fleet-systest"
        self.env = dict(os.environ, FLEET_CACHE=str(self.cache))
        self.inventory = root / "inventory"
        self.store = self.inventory / "cert_store"
        self._run_playbook = run_playbook
        self.ips: dict[str, str] = {}

    def fleet(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([str(FLEET), *args], env=self.env, capture_output=True, text=True, timeout=900, check=False)
        if check:
            assert done.returncode == 0, f"fleet {' '.join(args)}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        return done

    def up(self) -> None:
        self.fleet("up", str(len(HOSTS)))
        inventory = yaml.safe_load((self.cache / "inventory-ssh.yml").read_text())
        self.ips = {name: host["fleet_ip"] for name, host in inventory["all"]["children"]["fleet"]["hosts"].items()}

    def playbook(self, name: str, *extra: str) -> subprocess.CompletedProcess:
        args = ["-i", str(self.inventory / "hosts.yml"), "-i", str(self.cache / "inventory-ssh.yml"), f"certfleet.tls.{name}", *extra]
        return self._run_playbook(args, cwd=self.root)

    def rotate(self) -> None:
        """Issue new certificates for both definitions (renewal window wider than the validity)."""
        run = self.playbook("request", "-e", "@" + str(self.root / "renew-now.yml"))
        assert run.returncode == 0, run.stdout[-3000:]

    def store_sha256(self, definition: str, store: Path | None = None) -> str:
        pem = ((store or self.store) / "certs" / definition / "cert.pem").read_bytes()
        der = pb.x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
        return hashlib.sha256(der).hexdigest()

    def served_sha256(self, host: str, site: str) -> str:
        _definition, name, port = SITES[site]
        context = ssl.create_default_context(cafile=str(self.store / "ca" / "example-intranet" / "root.pem"))
        with socket.create_connection((self.ips[host], port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=name) as tls:
                return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()

    def served(self) -> dict:
        return {(host, site): self.served_sha256(host, site) for host in HOSTS for site in SITES}

    def apache_active(self, host: str) -> bool:
        done = self.fleet("podman", "exec", host, "systemctl", "is-active", "apache2", check=False)
        return done.stdout.strip() == "active"

    def history(self, definition: str, store: Path | None = None) -> list[dict]:
        path = (store or self.store) / "certs" / definition / "history.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def host_vars(self, host: str, values: dict | None) -> None:
        path = self.inventory / "host_vars" / f"{host}.yml"
        if values is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(values))


def prepare_run_root(root: Path, *, collections_path: str | None = None):
    """A copy of the example inventory under ``root`` with the test passphrase and a renew-now vars file;
    returns (run(args, cwd), env, binary): ansible-playbook with this collection and a private Ansible home, and what it
    runs with, for tests that start a playbook in the background."""
    inventory = root / "inventory"
    shutil.copytree(REPO_ROOT / "examples" / "inventory", inventory, ignore=shutil.ignore_patterns("cert_store", "vault.yml"))
    (inventory / "group_vars" / "all" / "secrets.yml").write_text(f"certfleet_store_passphrase: {STORE_PASSPHRASE}\n")
    definitions = yaml.safe_load((inventory / "group_vars" / "all" / "certificates.yml").read_text())["certfleet_certificates"]
    for definition in definitions:
        definition["renew_before_days"] = 5000
    (root / "renew-now.yml").write_text(yaml.safe_dump({"certfleet_certificates": definitions}))
    binary = Path(sys.executable).parent / "ansible-playbook"
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCAL_TEMP=str(root / "ansible-tmp"),
               ANSIBLE_HOME=str(root / "ansible-home"), ANSIBLE_FORKS="8",
               ANSIBLE_COLLECTIONS_PATH=collections_path or str(collections_root()))

    def run(args, cwd):
        return subprocess.run([str(binary), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)

    return run, env, binary


@contextlib.contextmanager
def running_fleet(the_fleet: Fleet, *, site: bool = False, teardown=None):
    """Fresh hosts for the_fleet's cache (its own podman network), held by one test module at a time; with site,
    the site playbook has deployed both sites everywhere. The hosts go down afterwards (after teardown())."""
    if shutil.which("podman") is None:
        pytest.fail("podman is required for the fleet tests (apt-get install -y podman runc debootstrap); "
                    "./scripts/setup.sh installs it")
    # One user of these hosts at a time: a second pytest worker or run that got here would tear the
    # fleet down under this one and serve certificates of another store from the same addresses.
    the_fleet.cache.mkdir(parents=True, exist_ok=True)
    session_lock = open(the_fleet.cache / ".pytest-session.lock", "w", encoding="utf-8")  # pylint: disable=consider-using-with
    fcntl.flock(session_lock, fcntl.LOCK_EX)
    try:
        the_fleet.fleet("image")
        # fresh hosts: Debian's Apache on port 80 only, nothing of a previous run
        the_fleet.fleet("down")
        the_fleet.up()
        if site:
            first = the_fleet.playbook("site")
            assert first.returncode == 0, first.stdout[-4000:]
        yield the_fleet
    finally:
        if teardown is not None:
            teardown()
        the_fleet.fleet("down", check=False)
        session_lock.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("apache-fleet")
    run, _env, _binary = prepare_run_root(root)
    with running_fleet(Fleet(root, run)) as the_fleet:
        yield the_fleet


def test_site_deploys_both_sites_everywhere_then_changes_nothing(fleet):
    first = fleet.playbook("site")
    assert first.returncode == 0, first.stdout[-4000:]
    assert "served = intended" in first.stdout
    for (host, site), served in fleet.served().items():
        assert served == fleet.store_sha256(SITES[site][0]), f"{host} {site}"
    table = [line for line in first.stdout.splitlines() if "| portal |" in line or "| api    |" in line]
    assert len(table) == 6 and all("| yes " in line and line.rstrip().endswith('| ok",') for line in table), table
    # HTTP -> HTTPS redirect and HSTS of the portal site
    done = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", "Host: portal.example.intra",
                           f"http://{fleet.ips['web1']}/"], capture_output=True, text=True, timeout=20, check=False)
    assert done.stdout == "301 https://portal.example.intra/", done.stdout
    events = [event["event"] for event in fleet.history("portal-example-intra")]
    assert events.count("deployed") == 3 and events.count("verified") >= 3

    again = fleet.playbook("deploy")
    assert again.returncode == 0, again.stdout[-3000:]
    for host in HOSTS:
        assert recap(again.stdout, host=host)["changed"] == 0, again.stdout[-3000:]


class LoadGenerator:
    """Threads that open a new TLS connection per request to every site and count what fails."""

    def __init__(self, fleet: Fleet, threads: int = 6, *, targets: list | None = None, cafile: Path | None = None):
        """targets: (address, server name, port) tuples, default every site of every host; cafile: what the
        clients trust, default the store's private CA."""
        self.fleet = fleet
        self.targets = targets or [(fleet.ips[host], name, port) for host in HOSTS for _d, name, port in SITES.values()]
        self.context = ssl.create_default_context(cafile=str(cafile or fleet.store / "ca" / "example-intranet" / "root.pem"))
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent = 0
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._work, args=(number,), daemon=True) for number in range(threads)]

    def _one(self, address: str, name: str, port: int) -> None:
        with socket.create_connection((address, port), timeout=10) as raw:
            with self.context.wrap_socket(raw, server_hostname=name) as tls:
                tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
                answer = b""
                while chunk := tls.recv(65536):
                    answer += chunk
        status = answer.split(b"\r\n", 1)[0]
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"answer {status!r}")

    def _work(self, number: int) -> None:
        index = number
        while not self.stop.is_set():
            address, name, port = self.targets[index % len(self.targets)]
            index += 1
            try:
                self._one(address, name, port)
                error = None
            except (OSError, RuntimeError) as exc:
                error = f"{address} {name}:{port}: {exc}"
            with self.lock:
                self.sent += 1
                if error:
                    self.failures.append(error)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def test_rotation_with_serial_1_under_load_fails_no_request(fleet, record_property):
    before = fleet.served()
    fleet.rotate()
    wanted = {site: fleet.store_sha256(definition) for site, (definition, _n, _p) in SITES.items()}
    assert all(before[(host, site)] != wanted[site] for host in HOSTS for site in SITES), "the rotation issued nothing new"
    started = time.monotonic()
    with LoadGenerator(fleet) as load:
        time.sleep(2)
        run = fleet.playbook("deploy", "-e", '{"certfleet_deploy_serial": 1}')
        time.sleep(2)
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stdout[-4000:]
    figure = (f"rotation under load: {load.sent} HTTPS requests in {elapsed:.1f} s ({load.sent / elapsed:.0f}/s, "
              f"new TLS connection each) to {len(load.targets)} sites, {len(load.failures)} failed")
    print("\n" + figure)
    record_property("figure", figure)
    assert load.failures == [], load.failures[:10]
    assert load.sent > 200, f"only {load.sent} requests were sent during the rotation"
    for (host, site), served in fleet.served().items():
        assert served == wanted[site], f"{host} {site} still serves the old certificate"
    assert run.stdout.count("Reload Apache (graceful)") == 3


def _broken_store_copy(fleet: Fleet, host: str, damage) -> Path:
    """A copy of the store for one host (apache_ssl_store_path), damaged by damage(certificate_dir)."""
    copy = fleet.root / f"store-{host}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(fleet.store, copy)
    damage(copy / "certs" / "portal-example-intra")
    fleet.host_vars(host, {"apache_ssl_store_path": str(copy)})
    return copy


def _wrong_issuer(directory: Path) -> None:
    other = pb.make_intermediate("Unrelated Issuing CA", issuer=pb.make_root("Unrelated Root"))
    (directory / "chain.pem").write_bytes(other.pem)


def _mismatched_key(directory: Path) -> None:
    key = pb.make_key()
    (directory / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.BestAvailableEncryption(STORE_PASSPHRASE.encode())))


def _not_yet_valid(directory: Path) -> None:
    """The same names and key, signed by the store's own CA, valid only from two days on (a CA clock ahead)."""
    ca = directory.parent.parent / "ca" / "example-intranet"
    ca_cert = pb.x509.load_pem_x509_certificate((ca / "cert.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca / "key.pem").read_bytes(), STORE_PASSPHRASE.encode())
    current = pb.x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
    start = pb.utcnow() + datetime.timedelta(days=2)
    builder = (pb.x509.CertificateBuilder().subject_name(current.subject).issuer_name(ca_cert.subject)
               .public_key(current.public_key()).serial_number(pb.x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=90)))
    for extension in current.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    (directory / "cert.pem").write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize("damage, message", [
    (_wrong_issuer, "chain.pem certificate 1 (/CN=Unrelated Issuing CA) did not issue"),
    (_mismatched_key, "portal-example-intra/key.pem does not match portal-example-intra/cert.pem"),
    (_not_yet_valid, "portal.example.intra is not valid before"),
])
def test_bad_store_entry_on_one_host_keeps_its_certificate_while_the_others_proceed(fleet, damage, message):
    fleet.rotate()
    before = fleet.served()
    copy = _broken_store_copy(fleet, "web2", damage)
    try:
        run = fleet.playbook("deploy", "-e", '{"certfleet_deploy_serial": 1}')
    finally:
        fleet.host_vars("web2", None)
    assert run.returncode != 0, "a failed host must fail the run"
    assert message in run.stdout, run.stdout[-4000:]
    assert "nothing was written" in run.stdout
    after = fleet.served()
    for site in SITES:
        assert after[("web2", site)] == before[("web2", site)], "web2 changed although its store entry is broken"
        for host in ("web1", "web3"):
            assert after[(host, site)] == fleet.store_sha256(SITES[site][0]), f"{host} did not proceed"
    assert fleet.apache_active("web2")
    failed = [event for event in fleet.history("portal-example-intra", copy) if event["event"] == "deploy_failed"]
    assert failed and failed[-1]["host"] == "web2" and message in failed[-1]["message"]


def test_directive_apache_rejects_is_rolled_back_and_a_stopped_apache_is_started(fleet):
    fleet.rotate()
    before = fleet.served()
    sites = yaml.safe_load((fleet.inventory / "group_vars" / "webservers" / "sites.yml").read_text())["apache_ssl_sites"]
    sites[0]["extra_directives"] = ["CertfleetBogusDirective on"]
    fleet.host_vars("web3", {"apache_ssl_sites": sites})
    fleet.fleet("podman", "exec", "web1", "systemctl", "stop", "apache2")
    vhost = "/etc/apache2/sites-available/certfleet-portal.conf"
    vhost_before = fleet.fleet("podman", "exec", "web3", "cat", vhost).stdout
    try:
        run = fleet.playbook("deploy", "-e", '{"certfleet_deploy_serial": 1}')
    finally:
        fleet.host_vars("web3", None)
    assert run.returncode != 0
    assert "Invalid command 'CertfleetBogusDirective'" in run.stdout, run.stdout[-4000:]
    assert "previous files restored from transaction" in run.stdout
    after = fleet.served()
    for site in SITES:
        assert after[("web3", site)] == before[("web3", site)], "web3 does not serve its previous certificate"
        assert after[("web1", site)] == fleet.store_sha256(SITES[site][0]), "the stopped Apache of web1 was not started"
        assert after[("web2", site)] == fleet.store_sha256(SITES[site][0])
    assert fleet.apache_active("web1") and fleet.apache_active("web3")
    assert fleet.fleet("podman", "exec", "web3", "cat", vhost).stdout == vhost_before
    failed = [event for event in fleet.history("portal-example-intra") if event["event"] == "deploy_failed"]
    assert failed[-1]["host"] == "web3" and "CertfleetBogusDirective" in failed[-1]["message"]


def test_passphrase_helper_keeps_keys_encrypted_and_apache_starts_with_them(fleet):
    """apache_ssl_key_handling: passphrase_helper on web1, then back to decrypt (the default)."""
    key_passphrase = "Key-On-Server-7171"
    web1 = '{"certfleet_deploy_hosts": "web1"}'
    encrypted_keys = ["sh", "-c", "grep -l 'BEGIN ENCRYPTED PRIVATE KEY' /etc/ssl/private/* || true"]
    leftovers = ["sh", "-c", "ls /usr/local/sbin/certfleet-passphrase /etc/ssl/private/certfleet-passphrase 2>/dev/null || true"]
    fleet.host_vars("web1", {"apache_ssl_key_handling": "passphrase_helper", "apache_ssl_key_passphrase": key_passphrase})
    try:
        run = fleet.playbook("deploy", "-e", web1)
    finally:
        fleet.host_vars("web1", None)
    assert run.returncode == 0, run.stdout[-4000:]
    assert key_passphrase not in run.stdout + run.stderr
    assert len(fleet.fleet("podman", "exec", "web1", *encrypted_keys).stdout.split()) == len(SITES)
    modes = fleet.fleet("podman", "exec", "web1", "stat", "-c", "%n %a %U", "/usr/local/sbin/certfleet-passphrase",
                        "/etc/ssl/private/certfleet-passphrase").stdout.splitlines()
    assert modes == ["/usr/local/sbin/certfleet-passphrase 700 root", "/etc/ssl/private/certfleet-passphrase 600 root"]
    # Debian's mods-enabled/ssl.conf sets its own ask-for-passphrase dialog; conf-enabled is read after it.
    config = fleet.fleet("podman", "exec", "web1", "sh", "-c", "grep -Rh '^SSLPassPhraseDialog' /etc/apache2/conf-enabled/").stdout
    assert config.strip() == "SSLPassPhraseDialog exec:/usr/local/sbin/certfleet-passphrase"
    # A full restart makes Apache open the encrypted keys again, through the helper (Debian's would hang on no tty).
    fleet.fleet("podman", "exec", "web1", "systemctl", "restart", "apache2")
    assert fleet.apache_active("web1")
    for site, (definition, _name, _port) in SITES.items():
        assert fleet.served_sha256("web1", site) == fleet.store_sha256(definition)

    back = fleet.playbook("deploy", "-e", web1)
    assert back.returncode == 0, back.stdout[-4000:]
    assert fleet.fleet("podman", "exec", "web1", *encrypted_keys).stdout.split() == []
    assert fleet.fleet("podman", "exec", "web1", *leftovers).stdout.split() == []  # no passphrase left on the host
    fleet.fleet("podman", "exec", "web1", "systemctl", "restart", "apache2")
    for site, (definition, _name, _port) in SITES.items():
        assert fleet.served_sha256("web1", site) == fleet.store_sha256(definition)


def test_site_with_state_absent_is_removed_and_comes_back_when_listed_again(fleet):
    sites = yaml.safe_load((fleet.inventory / "group_vars" / "webservers" / "sites.yml").read_text())["apache_ssl_sites"]
    api = next(site for site in sites if site["name"] == "api")
    files = ["/etc/apache2/sites-available/certfleet-api.conf", "/etc/apache2/sites-enabled/certfleet-api.conf",
             "/etc/ssl/private/certfleet-api-example-intra.key", "/etc/ssl/certfleet/certfleet-api-example-intra.fullchain.pem"]
    present = ["sh", "-c", "for f in " + " ".join(files) + "; do [ -e \"$f\" ] && echo \"$f\"; done; true"]
    assert fleet.fleet("podman", "exec", "web2", *present).stdout.split() == files
    web2 = '{"certfleet_deploy_hosts": "web2"}'
    fleet.host_vars("web2", {"apache_ssl_sites": [site for site in sites if site is not api] + [dict(api, state="absent")]})
    try:
        run = fleet.playbook("deploy", "-e", web2)
        assert run.returncode == 0, run.stdout[-4000:]
        assert fleet.fleet("podman", "exec", "web2", *present).stdout.split() == []
        with pytest.raises(OSError):  # Listen 8443 went with the site
            socket.create_connection((fleet.ips["web2"], SITES["api"][2]), timeout=3).close()
        assert fleet.served_sha256("web2", "portal") == fleet.store_sha256("portal-example-intra")
        again = fleet.playbook("deploy", "-e", web2)
        assert again.returncode == 0 and recap(again.stdout, "web2")["changed"] == 0, again.stdout[-3000:]
    finally:
        fleet.host_vars("web2", None)
    back = fleet.playbook("deploy", "-e", web2)
    assert back.returncode == 0, back.stdout[-4000:]
    assert fleet.fleet("podman", "exec", "web2", *present).stdout.split() == files
    for site, (definition, _name, _port) in SITES.items():
        assert fleet.served_sha256("web2", site) == fleet.store_sha256(definition)


def test_unreachable_host_is_reported_and_completed_by_a_rerun(fleet):
    fleet.rotate()
    wanted = {site: fleet.store_sha256(definition) for site, (definition, _n, _p) in SITES.items()}
    fleet.fleet("podman", "stop", "--time", "1", "web2")
    run = fleet.playbook("deploy", "-e", '{"certfleet_deploy_serial": 1, "certfleet_deploy_connect_timeout": 5}')
    assert run.returncode != 0
    assert "web2  FAILED    host unreachable" in run.stdout, run.stdout[-4000:]
    for site in SITES:
        for host in ("web1", "web3"):
            assert fleet.served_sha256(host, site) == wanted[site]
    failed = [event for event in fleet.history("api-example-intra") if event["event"] == "deploy_failed"]
    assert failed[-1]["host"] == "web2" and "unreachable" in failed[-1]["message"]

    fleet.fleet("podman", "start", "web2")
    fleet.up()
    rerun = fleet.playbook("deploy")
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    for site in SITES:
        assert fleet.served_sha256("web2", site) == wanted[site]
