# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Events of deployment, verification and monitoring, appended to the history of store definitions.

This module is private to the certfleet.tls collection: its API may change
without notice.
"""

from __future__ import annotations

import os

from ansible_collections.certfleet.tls.plugins.module_utils._common.times import utc_timestamp
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import append_history

EVENT_NAMES = ("deployed", "deploy_failed", "verified", "verify_failed", "rolled_back", "monitored", "monitor_failed")
OPTIONAL_KEYS = {"host": str, "site": str, "port": int, "sha256": str, "status": str, "message": str}


def normalise_event(event, *, number: int, now: str) -> dict:
    """One event checked and reduced to the known keys, with its time; errors name the entry."""
    label = f"events[{number}]"
    if not isinstance(event, dict):
        raise CertfleetError(f"{label} must be a dict with certificate and event")
    certificate = event.get("certificate")
    if not isinstance(certificate, str) or not layout.NAME_PATTERN.fullmatch(certificate):
        raise CertfleetError(f"{label}: certificate must be a definition name, not {certificate!r}")
    name = event.get("event")
    if name not in EVENT_NAMES:
        raise CertfleetError(f"{label}: event must be one of {', '.join(EVENT_NAMES)}, not {name!r}")
    unknown = sorted(set(event) - set(OPTIONAL_KEYS) - {"certificate", "event"})
    if unknown:
        raise CertfleetError(f"{label}: unknown keys {', '.join(unknown)}")
    result = {"certificate": certificate, "event": name, "time": now}
    for key, kind in OPTIONAL_KEYS.items():
        value = event.get(key)
        if value in (None, ""):
            continue
        try:
            result[key] = kind(value)
        except (TypeError, ValueError):
            raise CertfleetError(f"{label}: {key} must be {kind.__name__}, not {value!r}") from None
    return result


def record_events(store_path: str, events: list, *, write: bool = True, now: str | None = None) -> list[dict]:
    """Check every event first, then append them per definition; returns them as written."""
    now = now or utc_timestamp()
    normalised = [normalise_event(event, number=number, now=now) for number, event in enumerate(events or [])]
    by_certificate: dict[str, list[dict]] = {}
    for event in normalised:
        directory = layout.certificate_dir(store_path, event["certificate"])
        if not os.path.isdir(directory):
            raise CertfleetError(f"{event['certificate']}: not in the store ({directory} does not exist)")
        by_certificate.setdefault(directory, []).append(event)
    if write:
        for directory, items in by_certificate.items():
            append_history(directory, [{key: value for key, value in item.items() if key != "certificate"} for item in items],
                           store_path=store_path)
    return normalised
