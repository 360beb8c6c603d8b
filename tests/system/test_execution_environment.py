# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX execution environment of docs/awx.md with the real ansible-builder and ansible-galaxy.

The collection is built and installed as a user would; ansible-builder's own introspection must
find its Python and system dependencies, and ``ansible-builder create`` must turn
examples/awx/execution-environment.yml into a build context that installs that tarball. (Building
the image needs the base image from quay.io, which this machine cannot reach.)
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from collection_link import REPO_ROOT

BIN = Path(sys.executable).parent
VERSION = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())["version"]
TARBALL = f"certfleet-tls-{VERSION}.tar.gz"


def run(*args, cwd):
    result = subprocess.run([str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def built_collection(tmp_path_factory):
    out = tmp_path_factory.mktemp("collection_build")
    run(BIN / "ansible-galaxy", "collection", "build", "--output-path", out, REPO_ROOT, cwd=out)
    return out / TARBALL


def test_ansible_builder_introspection_finds_the_collection_dependencies(built_collection, tmp_path):
    collections = tmp_path / "collections"
    run(BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps", "--force", "-p", collections, built_collection,
        cwd=tmp_path)
    found = yaml.safe_load(run(BIN / "ansible-builder", "introspect", "--sanitize", collections, cwd=tmp_path))
    python = [line for line in found["python"] if "certfleet.tls" in line]
    system = [line for line in found["system"] if "certfleet.tls" in line]
    assert python and python[0].startswith("cryptography>=41"), found
    assert system and system[0].startswith("openssl"), found


def test_the_example_definition_builds_a_context_that_installs_the_tarball(built_collection, tmp_path):
    work = tmp_path / "awx"
    shutil.copytree(REPO_ROOT / "examples" / "awx", work)
    shutil.copy(built_collection, work / TARBALL)
    run(BIN / "ansible-builder", "create", "-f", work / "execution-environment.yml", "-c", tmp_path / "context",
        cwd=work)
    build = tmp_path / "context" / "_build"
    assert (build / "collections" / TARBALL).read_bytes() == built_collection.read_bytes()
    requirements = yaml.safe_load((build / "requirements.yml").read_text())
    # The galaxy stage runs in /build, a copy of _build: the relative name must point at the copied tarball.
    assert {"name": f"collections/{TARBALL}", "type": "file"} in requirements["collections"]
    containerfile = (tmp_path / "context" / "Containerfile").read_text()
    assert "COPY _build /build" in containerfile and "WORKDIR /build" in containerfile
    assert "ansible-galaxy collection install" in containerfile and "introspect" in containerfile
