# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every name that becomes a store path passes one check, matched whole (issue 16, rows 9 and 10)."""
from __future__ import annotations

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.events import record_events
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

BAD_NAMES = ["www\n", "ca\n", "www\r", "www\x00", "../../other/ca/netca", "../x", "..", ".", "a/b", "a\\b", "",
             " www", "-www", "x" * 129, None, 7]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n)[:20] for n in BAD_NAMES])
def test_check_name_refuses_every_name_that_is_not_one_directory(name):
    with pytest.raises(CertfleetError, match="must be 1-128 characters of letters, digits"):
        layout.check_name(name)
    assert layout.NAME_PATTERN.match(name) is None if isinstance(name, str) else True


@pytest.mark.parametrize("name", ["www\n", "../../other/ca/netca", "../../store/ca/corp"])
def test_store_paths_refuse_escaping_names(tmp_path, name):
    with pytest.raises(CertfleetError, match=r"must be 1-128 characters"):
        layout.certificate_dir(str(tmp_path), name)
    with pytest.raises(CertfleetError, match=r"CA name .* must be 1-128 characters"):
        layout.ca_dir(str(tmp_path), name)
    with pytest.raises(CertfleetError, match=r"CA name .* must be 1-128 characters"):
        layout.ca_path(str(tmp_path), name, "key")


@pytest.mark.parametrize("name", ["www", "portal.example.intra", "a_b-c.1", "x" * 128])
def test_check_name_accepts_plain_names(name):
    assert layout.check_name(name) == name


def test_an_event_for_a_name_with_a_final_newline_is_refused(tmp_path):
    with pytest.raises(CertfleetError, match="certificate must be a definition name"):
        record_events(str(tmp_path), [{"certificate": "www\n", "event": "deployed"}])
    assert not (tmp_path / "certs").exists()
