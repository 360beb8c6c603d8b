# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory snippet an import writes: YAML text built from data, every value from a host kept as data.

This module is private to the certfleet.tls collection: its API may change
without notice. Every string taken from a certificate or a host (names, paths, descriptions) that
could start a template (it holds ``{``, which every Jinja marker starts with) is written ``!unsafe``:
Ansible's YAML loader (group_vars, inventory, vars files) keeps it as text and never renders it.
The values certfleet chooses itself (definition and site names, mode, provider, profile, key type)
are never tagged. Scalars are JSON-quoted, which YAML reads back unchanged as strings, so the same
import gives a byte-identical file.
"""

from __future__ import annotations

import json
import re

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._common.yaml_text import yaml_scalar

FORMATS = ("group_vars", "inventory")
# Keys whose values certfleet writes itself (checked names and fixed words): no tag needed.
_OWN_KEYS = frozenset(("name", "certificate", "mode", "provider", "profile", "type", "curve"))
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\Z")


def scalar(value, *, own: bool = False) -> str:
    """One YAML scalar: null, booleans, integers plain; text JSON-quoted, ``!unsafe`` unless certfleet chose it."""
    return yaml_scalar(value, trusted=own)


def _key(key) -> str:
    key = str(key)
    return key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)


def _lines(value, indent: int, *, own: bool = False) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        lines = []
        for key, item in value.items():
            item_own = key in _OWN_KEYS
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{_key(key)}:")
                lines.extend(_lines(item, indent + 2, own=item_own))
            else:
                lines.append(f"{pad}{_key(key)}: {_inline(item, own=item_own)}")
        return lines
    if isinstance(value, list):
        if not value:
            return [pad + "[]"]
        lines = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                inner = _lines(item, indent + 2, own=own)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {_inline(item, own=own)}")
        return lines
    return [pad + scalar(value, own=own)]


def _inline(value, *, own: bool) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return scalar(value, own=own)


def dump(data: dict, *, header: str = "") -> str:
    """A YAML document of ``data`` (dicts, lists, scalars), with ``header`` as comment lines."""
    lines = ["---"]
    lines.extend(f"# {line}".rstrip() for line in header.splitlines())
    lines.extend(_lines(data, 0))
    return "\n".join(lines) + "\n"


def snippet(inventory: dict, *, snippet_format: str = "group_vars", group: str = "webservers") -> dict:
    """The snippet's data: a vars file (group_vars: every host serves the same sites) or an inventory file."""
    if snippet_format not in FORMATS:
        raise CertfleetError(f"snippet_format must be one of {', '.join(FORMATS)}, not {snippet_format!r}")
    definitions = inventory["certfleet_certificates"]
    hosts = inventory["hosts"]
    if snippet_format == "inventory":
        return {"all": {"vars": {"certfleet_certificates": definitions}, "children": {group: {"hosts": hosts or {}}}}}
    data = {"certfleet_certificates": definitions}
    values = list(hosts.values())
    if values:
        first = values[0]
        differing = sorted(host for host, host_vars in hosts.items() if host_vars != first)
        if differing:
            raise CertfleetError(
                f"hosts {', '.join(sorted(hosts)[:1] + differing[:5])} serve different sites, so one group_vars file cannot "
                f"describe them; use snippet_format: inventory (per-host apache_ssl_sites)")
        data.update(first)
    return data
