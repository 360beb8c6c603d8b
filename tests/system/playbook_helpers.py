"""Shared helpers for the system tests (real ansible-playbook processes)."""
from __future__ import annotations

import re


def recap(output: str) -> dict:
    """PLAY RECAP counters of localhost."""
    match = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert match, output[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))
