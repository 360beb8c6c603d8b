# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the collection's filter plugins (controller side only, so not in module_utils)."""

from __future__ import annotations

import functools

from ansible.errors import AnsibleFilterError

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError


def certfleet_filter(function):
    """The filter ``function`` with its CertfleetError turned into a task error without a traceback."""
    @functools.wraps(function)
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except CertfleetError as exc:
            raise AnsibleFilterError(str(exc)) from None
    return run


def plain(value):
    """Ansible's lazy / tagged containers as plain dicts and lists, for the pure functions of module_utils."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value
