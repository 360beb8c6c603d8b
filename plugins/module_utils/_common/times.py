# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place certfleet.tls reads the clock and writes or parses times.

This module is private to the certfleet.tls collection: its API may change
without notice. Every time the collection writes (store state and history, reports, module
output) is ISO 8601 UTC with seconds and a ``Z``, the way X.509 tools print them.
"""

from __future__ import annotations

import datetime

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_now() -> datetime.datetime:
    """Now in UTC, second precision (X.509 times have no fractions)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso(moment: datetime.datetime) -> str:
    """``moment`` as ISO 8601 UTC with a ``Z``."""
    return moment.astimezone(datetime.timezone.utc).strftime(ISO_FORMAT)


def utc_timestamp() -> str:
    """Now as ISO 8601 UTC with a ``Z``: the time stamp of store state and history events."""
    return iso(utc_now())


def parse_iso(value: str) -> datetime.datetime:
    """The inverse of ``iso``."""
    return datetime.datetime.strptime(value, ISO_FORMAT).replace(tzinfo=datetime.timezone.utc)


def parse_timestamp(value, *, what: str = "time") -> datetime.datetime:
    """A time a user gives (ISO 8601 with ``Z`` or an offset, naive = UTC, or a datetime) as aware UTC to the second.

    Unlike ``parse_iso`` it takes any ISO 8601 form, and raises a CertfleetError naming ``what``.
    """
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise CertfleetError(f"{what}: {str(value)!r} is not an ISO 8601 date and time (such as 2026-12-03T09:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).replace(microsecond=0)
