"""Make the checkout importable as ``ansible_collections.certfleet.tls`` for every pytest test."""
from __future__ import annotations

import sys

from collection_link import collections_root

sys.path.insert(0, str(collections_root()))


def pytest_terminal_summary(terminalreporter):
    """Print the figures tests recorded with record_property("figure", ...), also from xdist workers."""
    figures = [value for report in terminalreporter.stats.get("passed", []) if report.when == "call"
               for name, value in report.user_properties if name == "figure"]
    if figures:
        terminalreporter.section("figures")
        for figure in figures:
            terminalreporter.write_line(figure)
