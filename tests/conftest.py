"""Make the checkout importable as ``ansible_collections.certfleet.tls`` for every pytest test, and
the fixtures unit and system tests share."""
from __future__ import annotations

import sys

import pytest

from collection_link import collections_root

sys.path.insert(0, str(collections_root()))

# pylint: disable-next=wrong-import-position
from ansible_collections.certfleet.tls.tests.scan_range.range import start_range  # noqa: E402


@pytest.fixture(scope="module")
def scan_range(tmp_path_factory):
    """The loopback scan range (tests/scan_range): one real TLS server per problem class, for one test file."""
    running = start_range(str(tmp_path_factory.mktemp("scan_range")))
    yield running
    running.stop()


def pytest_terminal_summary(terminalreporter):
    """Print the figures tests recorded with record_property("figure", ...), also from xdist workers."""
    figures = [value for report in terminalreporter.stats.get("passed", []) if report.when == "call"
               for name, value in report.user_properties if name == "figure"]
    if figures:
        terminalreporter.section("figures")
        for figure in figures:
            terminalreporter.write_line(figure)
