"""Where tests find this checkout as ``ansible_collections.certfleet.tls``."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def collections_root() -> Path:
    """A directory holding ansible_collections/certfleet/tls for this checkout (made on first use)."""
    # ansible-test's copy already sits at .../ansible_collections/certfleet/tls.
    if REPO_ROOT.parent.name == "certfleet" and REPO_ROOT.parents[1].name == "ansible_collections":
        return REPO_ROOT.parents[2]
    root = REPO_ROOT / ".cache" / "collections"
    link = root / "ansible_collections" / "certfleet" / "tls"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(REPO_ROOT, link)
    return root
