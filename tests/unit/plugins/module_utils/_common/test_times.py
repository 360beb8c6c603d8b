# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one time module: ISO 8601 UTC with a Z out, strict and lenient parsing in."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._common import times
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

JST = datetime.timezone(datetime.timedelta(hours=9))


# From the reports (generated_at): any ISO 8601 form in, UTC to the second out.
@pytest.mark.parametrize("value, expected", [
    ("2026-12-04T09:00:00Z", "2026-12-04T09:00:00Z"),
    ("2026-12-04T18:00:00+09:00", "2026-12-04T09:00:00Z"),
    ("2026-12-04T09:00:00.987654", "2026-12-04T09:00:00Z"),
    ("2026-12-04 09:00:00z", "2026-12-04T09:00:00Z"),
    (datetime.datetime(2026, 12, 4, 9, tzinfo=datetime.timezone.utc), "2026-12-04T09:00:00Z"),
])
def test_parse_timestamp(value, expected):
    assert times.iso(times.parse_timestamp(value)) == expected


def test_parse_timestamp_error_names_the_option():
    with pytest.raises(CertfleetError, match=r"generated_at: 'yesterday' is not an ISO 8601 date and time"):
        times.parse_timestamp("yesterday", what="generated_at")


# The strict pair: what the collection writes, read back.

def test_iso_and_parse_iso_round_trip():
    moment = datetime.datetime(2026, 12, 4, 18, 0, 30, tzinfo=JST)
    assert times.iso(moment) == "2026-12-04T09:00:30Z"
    assert times.parse_iso(times.iso(moment)) == moment


@pytest.mark.parametrize("value", ["2026-12-04T09:00:00+09:00", "2026-12-04T09:00:00.5Z", "2026-12-04"])
def test_parse_iso_accepts_only_what_iso_writes(value):
    with pytest.raises(ValueError):
        times.parse_iso(value)


def test_utc_now_is_aware_utc_to_the_second():
    now = times.utc_now()
    assert now.tzinfo is not None and now.utcoffset() == datetime.timedelta(0) and now.microsecond == 0
    assert times.parse_iso(times.utc_timestamp()) >= now


def test_parse_timestamp_default_name():
    with pytest.raises(CertfleetError, match=r"^time: 'soon' is not an ISO 8601 date and time"):
        times.parse_timestamp("soon")
