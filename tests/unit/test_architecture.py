"""The layout of plugins/ keeps the architecture of docs/architecture.md: who may import whom, who knows the store."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from collection_link import REPO_ROOT

PLUGINS = REPO_ROOT / "plugins"
MODULE_UTILS = PLUGINS / "module_utils"
PREFIX = "ansible_collections.certfleet.tls.plugins.module_utils."

# package -> the packages it may import (itself always allowed). Mirrors the table in docs/architecture.md.
ALLOWED = {
    "_common": set(),
    "_csr": {"_common"},
    "_chain": {"_common"},
    "_store": {"_common", "_chain", "_csr"},
    "_issuers": {"_common", "_chain", "_csr", "_store"},
    "_deploy": {"_common", "_chain", "_store"},
    "_scan": {"_common", "_chain", "_store"},
    "_report": {"_common"},
    "_adopt": {"_common", "_chain", "_csr", "_store", "_deploy"},
}

# What spells the store's layout; only _store/ may say it.
STORE_NAMES = re.compile(r"fullchain\.pem|state\.json|history\.jsonl|[\"'/]certs/")
# Host-side system directories that happen to be called certs/ (CA bundles, Apache defaults).
SYSTEM_CERT_DIRS = re.compile(r"/etc/(ssl|pki/tls|pki/ca-trust/[a-z/]*)/certs/")


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name.startswith(PREFIX):
                found.add(name[len(PREFIX):].split(".")[0])
    return found


def _package_files():
    return sorted(path for path in MODULE_UTILS.rglob("*.py") if path.parent != MODULE_UTILS)


def test_module_utils_is_only_packages():
    """Every module_utils file sits in a package of the table; nothing is left flat."""
    assert sorted(path.name for path in MODULE_UTILS.glob("*.py")) == []
    assert {path.parent.name for path in _package_files()} == set(ALLOWED)


@pytest.mark.parametrize("path", _package_files(), ids=lambda path: str(path.relative_to(MODULE_UTILS)))
def test_package_imports_follow_the_table(path):
    package = path.parent.name
    forbidden = _imported_packages(path) - ALLOWED[package] - {package}
    assert not forbidden, f"{path.relative_to(REPO_ROOT)} imports {sorted(forbidden)}; {package} may import {sorted(ALLOWED[package])}"


def test_only_the_store_spells_its_layout():
    """No store file name or the certs/ folder outside _store/ (code, roles, playbooks)."""
    offenders = []
    roots = [PLUGINS, REPO_ROOT / "roles", REPO_ROOT / "playbooks"]
    for root in roots:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.suffix not in (".py", ".yml", ".yaml", ".j2") or MODULE_UTILS / "_store" in path.parents:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if STORE_NAMES.search(SYSTEM_CERT_DIRS.sub("", line)):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert not offenders, "store layout spelled outside plugins/module_utils/_store:\n" + "\n".join(offenders)


def test_no_role_private_variable_outside_its_role():
    offenders = []
    for path in sorted(REPO_ROOT.glob("playbooks/**/*")) + sorted(REPO_ROOT.glob("roles/cert_monitor/**/*")):
        if path.is_file() and "__apache_ssl_" in path.read_text(encoding="utf-8"):
            offenders.append(str(path.relative_to(REPO_ROOT)))
    assert not offenders, f"__apache_ssl_ variables read outside roles/apache_ssl: {offenders}"


def test_no_yaml_is_built_by_rendering_a_template():
    offenders = []
    for path in sorted(REPO_ROOT.glob("roles/**/*.yml")) + sorted(REPO_ROOT.glob("playbooks/**/*.yml")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if "from_yaml" in line and "template" in line:
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}")
    assert not offenders and not list(REPO_ROOT.glob("roles/*/templates/*.yml.j2")) and not list(REPO_ROOT.glob("playbooks/templates/*.yml.j2")), offenders


def test_test_files_have_unique_names():
    """pytest imports test files by their base name (no __init__.py in tests/): two alike fail the whole run."""
    names = [path.name for path in (REPO_ROOT / "tests").rglob("test_*.py")]
    assert sorted({name for name in names if names.count(name) > 1}) == []
