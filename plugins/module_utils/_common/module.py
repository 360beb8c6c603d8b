# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the certfleet.tls modules share: turning a missing library or an error into a failed task, common options.

This module is private to the certfleet.tls collection: its API may change
without notice.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, Iterable, Mapping, TypeVar

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    CertfleetError,
)

T = TypeVar("T")


def require_cryptography(module) -> None:
    """Fail the task with Ansible's standard install hint when cryptography cannot be imported."""
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)


def run_or_fail(
    module,
    work: Callable[[], T],
    *,
    doing: str,
    fields: Mapping[str, Any] | None = None,
    error_fields: Callable[[CertfleetError], Mapping[str, Any]] | None = None,
) -> T:
    """Return work(); fail the task on a CertfleetError with its message, on anything else with one line.

    ``doing`` completes "unexpected error <doing>: <error>"; the traceback of an unexpected error goes only
    to the ``exception`` field (shown with -vvv). ``fields`` go into every failure, ``error_fields(exc)``
    into a CertfleetError's.
    """
    fields = dict(fields or {})
    try:
        return work()
    except CertfleetError as exc:
        extra = dict(error_fields(exc)) if error_fields else {}
        module.fail_json(msg=str(exc), **fields, **extra)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_json(msg=f"unexpected error {doing}: {exc}", exception=traceback.format_exc(), **fields)
    raise AssertionError("fail_json returned")  # pragma: no cover - fail_json exits


def exit_with(module, result: dict, *, warnings: Iterable[str] = ()) -> None:
    """Exit the task with the result: each warning through module.warn, a "diff" only in diff mode."""
    for warning in warnings:
        module.warn(warning)
    diff = result.pop("diff", None)
    if diff is not None and module._diff:  # pylint: disable=protected-access
        result["diff"] = diff
    module.exit_json(**result)


def certificate_files_argument_spec() -> dict:
    """Options of the certificate files a module writes; matches the certfleet.tls.certificate_files doc fragment."""
    return {
        "fullchain_path": {"type": "path"},
        "chain_path": {"type": "path"},
        "backup": {"type": "bool", "default": False},
        "mode": {"type": "raw", "default": "0644"},
        "owner": {"type": "str"},
        "group": {"type": "str"},
    }
