"""Shared helpers for the system tests (real ansible-playbook processes)."""
from __future__ import annotations

import re


def recap(output: str, host: str = "localhost") -> dict:
    """PLAY RECAP counters of one host (localhost by default)."""
    match = re.search(rf"^{re.escape(host)}\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output, re.M)
    assert match, output[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))
