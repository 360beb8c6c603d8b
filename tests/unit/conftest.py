"""Make the repository importable as ``ansible_collections.certfleet.tls`` for pytest."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _collection_root() -> Path:
    # When the checkout already sits at .../ansible_collections/certfleet/tls
    # (ansible-test's copy), use it as it is.
    if REPO_ROOT.parent.name == "certfleet" and REPO_ROOT.parents[1].name == "ansible_collections":
        return REPO_ROOT.parents[2]
    root = REPO_ROOT / ".cache" / "collections"
    link = root / "ansible_collections" / "certfleet" / "tls"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(REPO_ROOT, link)
    return root


sys.path.insert(0, str(_collection_root()))
