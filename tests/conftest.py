"""Make the checkout importable as ``ansible_collections.certfleet.tls`` for every pytest test."""
from __future__ import annotations

import sys

from collection_link import collections_root

sys.path.insert(0, str(collections_root()))
