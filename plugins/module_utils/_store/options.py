# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument spec shared by the modules that work on the store's certificate definitions.

This module is private to the certfleet.tls collection: its API may change
without notice. store_request and store_issue take the same four options (store_path,
definitions, defaults, profiles) and hand them to their engine the same way.
"""

from __future__ import annotations

DEFINITION_OPTIONS = ("store_path", "definitions", "defaults", "profiles")


def definitions_argument_spec(**extra) -> dict:
    """store_path, definitions, defaults and profiles, plus a module's own options."""
    return dict(
        store_path=dict(type="path", required=True),
        definitions=dict(type="list", elements="dict", required=True),
        defaults=dict(type="dict", default={}),
        profiles=dict(type="dict", default={}),
        **extra,
    )


def definitions_arguments(module) -> dict:
    """Those options and check mode as keyword arguments of run_request / run_issue.

    Uses from ``module`` only ``params`` and ``check_mode``.
    """
    return dict({option: module.params[option] for option in DEFINITION_OPTIONS}, check_mode=module.check_mode)
