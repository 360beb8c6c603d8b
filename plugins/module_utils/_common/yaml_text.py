# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One YAML scalar writer for the inventory YAML the collection writes (discovered definitions, import snippets).

This module is private to the certfleet.tls collection: its API may change
without notice. Values read from a certificate, a scanned endpoint or a host are data, never a template:
a string that could start one (it holds ``{``, which every Jinja marker starts with) is written
``!unsafe``, so Ansible's YAML loader (inventory, group_vars, vars files) keeps it as text. Only such
strings carry the tag: Ansible's ``!unsafe`` constructor resolves the scalar again, so ``!unsafe "yes"``
would load as true. Text is JSON-quoted (valid YAML, read back unchanged), so the same data always
gives the same text.
"""

from __future__ import annotations

import json
import re

# Characters a YAML double-quoted scalar cannot hold as they are (outside YAML's printable set, or read as
# line breaks and folded: NEL, LS, PS; the BOM), written as \u escapes so the value loads back unchanged.
_YAML_UNSAFE_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


def yaml_scalar(value, *, trusted: bool = False) -> str:
    """One YAML scalar: null, booleans and integers plain; text JSON-quoted and ``!unsafe`` when it holds ``{``
    (unless ``trusted``: a value the collection chose itself, such as a checked name)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    quoted = _YAML_UNSAFE_CHARACTERS.sub(lambda match: f"\\u{ord(match.group()):04x}", json.dumps(text, ensure_ascii=False))
    return f"!unsafe {quoted}" if not trusted and "{" in text else quoted
