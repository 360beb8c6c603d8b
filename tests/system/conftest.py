"""Fixtures of the system tests: real ansible-playbook processes against this checkout, and the real
notification peers (aiosmtpd SMTP server, HTTP webhook receiver) on 127.0.0.1."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from collection_link import collections_root
from notify_peers import make_pki, start_http, start_smtp


@pytest.fixture
def ansible_playbook(tmp_path):
    """run(args, cwd) -> CompletedProcess of ansible-playbook from this Python's environment."""
    binary = Path(sys.executable).parent / "ansible-playbook"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_root()), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
               ANSIBLE_HOME=str(tmp_path / "ansible-home"))

    def run(args, cwd):
        return subprocess.run([str(binary), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)

    return run


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throw-away CA and the SMTP server's certificate (notify_peers.make_pki)."""
    return make_pki(tmp_path_factory.mktemp("notify_pki"))


@pytest.fixture
def smtp(pki):
    """A real aiosmtpd server on 127.0.0.1 with STARTTLS and AUTH required."""
    peer = start_smtp(pki, mode="starttls")
    yield peer
    peer.stop()


@pytest.fixture
def http_peer():
    """An http.server webhook receiver on 127.0.0.1 that records every request."""
    peer = start_http()
    yield peer
    peer.stop()
