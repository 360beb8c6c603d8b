"""Fixtures to run real ansible-playbook processes against the collection in this checkout."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from collection_link import collections_root


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
