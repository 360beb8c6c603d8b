"""The fake-Windows harness of the iis_ssl contract tests.

A test-only collection overlay is built under a temporary ``ansible_collections`` tree: a copy of this
checkout in which ``plugins/modules/win_iis_*`` (PowerShell + doc) are replaced by the Python fakes of
``tests/iis/fakes`` (certificate stores, key storage, HasPrivateKey, IIS bindings and the http.sys
table in one JSON state file per host), plus a fake ``ansible.windows`` collection (win_copy) placed
first on the collections path. The fake hosts run with the local connection; each has its own Python
wrapper that points the fakes at its state file and file system. ``FakeHttpSys`` (fake_https.py)
serves real TLS on loopback from that state, so the role's deploy check makes real handshakes.

The planner is real: the collection's own ``iis_plan`` when the checkout has it (after the merge);
before that, the other IIS helper's worktree (CERTFLEET_IIS_PLANNER_FROM, default /work/wt/iispy),
whose iis_plan module and _deploy files are copied into the overlay. Without either the tests fail.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import socket
import ssl
import sys
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from collection_link import REPO_ROOT  # pylint: disable=import-error

FAKES = REPO_ROOT / "tests" / "iis" / "fakes"
STORE_PASSPHRASE = "Iis-Store-Secret-7373"
DEFINITIONS = [
    {"name": "portal-example-intra", "common_name": "portal.example.intra", "subject_alt_name": ["wiki.example.intra"],
     "key": {"type": "ECC", "curve": "secp256r1"}, "issuer": {"provider": "private_ca", "ca": "example-intranet", "profile": "private"},
     "mode": "lifecycle_managed", "renew_before_days": 30},
    {"name": "api-example-intra", "common_name": "api.example.intra", "key": {"type": "RSA", "size": 2048},
     "issuer": {"provider": "private_ca", "ca": "example-intranet", "profile": "private"}},
]
OS_2019 = {"version": "10.0.17763", "build": 17763, "caption": "Microsoft Windows Server 2019 Datacenter"}
OS_2016 = {"version": "10.0.14393", "build": 14393, "caption": "Microsoft Windows Server 2016 Standard"}


def _copy_ignore(directory, names):
    skip = {".cache", ".git", "tests", "benchmarks", "cert_store", "__pycache__"}
    return [name for name in names if name in skip or (Path(directory) == REPO_ROOT / "plugins" / "modules" and name.startswith("win_iis_"))]


def planner_source() -> str:
    """Where iis_plan comes from: 'collection' or a worktree path."""
    if (REPO_ROOT / "plugins" / "modules" / "iis_plan.py").is_file():
        return "collection"
    other = Path(os.environ.get("CERTFLEET_IIS_PLANNER_FROM", "/work/wt/iispy"))
    if (other / "plugins" / "modules" / "iis_plan.py").is_file() and (other / "plugins" / "module_utils" / "_deploy" / "iis.py").is_file():
        return str(other)
    raise AssertionError("certfleet.tls.iis_plan is missing: neither plugins/modules/iis_plan.py in this checkout nor "
                         f"{other} (CERTFLEET_IIS_PLANNER_FROM) has it")


def build_overlay(root: Path) -> tuple[str, str]:
    """(ANSIBLE_COLLECTIONS_PATH, planner source) of a collection overlay with the Windows fakes."""
    ours = root / "collections" / "ansible_collections" / "certfleet" / "tls"
    shutil.copytree(REPO_ROOT, ours, ignore=_copy_ignore)
    # The fakes are kept without the module shebang (ansible-test: they are no modules of this collection).
    for name in ("win_iis_facts", "win_iis_certificate", "win_iis_binding"):
        (ours / "plugins" / "modules" / f"{name}.py").write_text("#!/usr/bin/python\n" + (FAKES / f"{name}.py").read_text())
    shutil.copy(FAKES / "fake_windows.py", ours / "plugins" / "module_utils" / "fake_windows.py")
    source = planner_source()
    if source != "collection":
        other = Path(source)
        for path in sorted((other / "plugins" / "modules").glob("iis_*.py")):
            shutil.copy(path, ours / "plugins" / "modules" / path.name)
        for path in sorted((other / "plugins" / "module_utils" / "_deploy").glob("*.py")):
            if not (ours / "plugins" / "module_utils" / "_deploy" / path.name).exists():
                shutil.copy(path, ours / "plugins" / "module_utils" / "_deploy" / path.name)
    windows = root / "fake-windows-collections" / "ansible_collections" / "ansible" / "windows"
    shutil.copytree(FAKES / "ansible_windows", windows)
    for module in (windows / "plugins" / "modules").glob("*.py"):
        module.write_text("#!/usr/bin/python\n" + module.read_text())
    site_packages = Path(sys.executable).resolve().parent.parent / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    venv_site = Path(os.environ.get("VIRTUAL_ENV", Path(sys.executable).parent.parent)) / "lib" / \
        f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    paths = [root / "collections", root / "fake-windows-collections", venv_site, site_packages]
    return ":".join(str(path) for path in paths), source


def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def thumbprint(pem: bytes | str) -> str:
    certificate = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    return hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).hexdigest().upper()  # nosec - Windows thumbprint


class FakeHost:
    """One fake Windows host: its state file, file system, interpreter wrapper and loopback address."""

    def __init__(self, root: Path, name: str, address: str, os_info: dict):
        self.name, self.address = name, address
        self.dir = root / "hosts" / name
        self.fs = self.dir / "fs"
        self.fs.mkdir(parents=True)
        self.state_file = self.dir / "state.json"
        self.python = self.dir / "python"
        self.python.write_text(f"#!/bin/sh\nFAKE_WINDOWS_STATE='{self.state_file}' FAKE_WINDOWS_ROOT='{self.fs}' "
                               f"exec '{sys.executable}' \"$@\"\n")
        self.python.chmod(0o755)
        self.write({"os": os_info, "stores": {"My": [], "CA": [], "Root": []}, "keys": {}, "sites": [], "sslcert": [],
                    "faults": {}, "log": []})

    def read(self) -> dict:
        return json.loads(self.state_file.read_text())

    def write(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state, indent=1, sort_keys=True))

    def update(self, change) -> None:
        state = self.read()
        change(state)
        self.write(state)

    def faults(self, **faults) -> None:
        def apply(state):
            state["faults"] = copy.deepcopy(faults)
        self.update(apply)

    def binding(self, site: str, host: str, port: int) -> dict:
        site_state = next(item for item in self.read()["sites"] if item["name"] == site)
        return next(item for item in site_state["bindings"] if item["protocol"] == "https" and item["host"] == host and item["port"] == port)

    def files(self) -> list[str]:
        return sorted(str(path.relative_to(self.fs)) for path in self.fs.rglob("*") if path.is_file())

    def served(self, server_name: str | None, port: int, cafile: Path) -> str:
        """SHA-1 thumbprint of the certificate this host's endpoint serves (a real handshake, chain verified)."""
        context = ssl.create_default_context(cafile=str(cafile))
        if server_name is None:
            context.check_hostname = False
        with socket.create_connection((self.address, port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=server_name) as tls:
                der = tls.getpeercert(binary_form=True)
        return hashlib.sha1(der).hexdigest().upper()  # nosec - Windows thumbprint


def inventory(path: Path, hosts: dict) -> None:
    """hosts.yml (webservers) and group_vars/all with the definitions and the store passphrase."""
    (path / "group_vars" / "all").mkdir(parents=True)
    (path / "group_vars" / "all" / "certificates.yml").write_text(yaml.safe_dump({"certfleet_certificates": DEFINITIONS}))
    (path / "group_vars" / "all" / "secrets.yml").write_text(yaml.safe_dump({"certfleet_store_passphrase": STORE_PASSPHRASE}))
    (path / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"webservers": {"hosts": hosts}}}}))
