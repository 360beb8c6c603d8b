"""Shared helpers for the system tests (real ansible-playbook processes)."""
from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def collections_root() -> Path:
    """A directory holding ansible_collections/certfleet/tls -> this checkout."""
    if REPO_ROOT.parent.name == "certfleet" and REPO_ROOT.parents[1].name == "ansible_collections":
        return REPO_ROOT.parents[2]
    root = REPO_ROOT / ".cache" / "collections"
    link = root / "ansible_collections" / "certfleet" / "tls"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(REPO_ROOT, link)
    return root


def recap(output: str) -> dict:
    """PLAY RECAP counters of localhost."""
    match = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert match, output[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))
