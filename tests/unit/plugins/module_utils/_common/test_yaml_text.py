"""The one YAML scalar writer of the inventory YAML the collection writes."""
from __future__ import annotations

import pytest
import yaml

from ansible_collections.certfleet.tls.plugins.module_utils._common.yaml_text import yaml_scalar


class UnsafeLoader(yaml.SafeLoader):
    """SafeLoader that reads !unsafe as the string it tags (what Ansible's loader keeps as data)."""


UnsafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


@pytest.mark.parametrize(("value", "trusted", "text"), [
    (None, False, "null"),
    (True, False, "true"),
    (443, False, "443"),
    ("portal.example.intra", False, '"portal.example.intra"'),
    ("{{ lookup('pipe', 'id') }}", False, "!unsafe \"{{ lookup('pipe', 'id') }}\""),
    ("{% if true %}x{% endif %}", False, '!unsafe "{% if true %}x{% endif %}"'),
    ("a{b", False, '!unsafe "a{b"'),
    ("a{b", True, '"a{b"'),
    ("yes", False, '"yes"'),
])
def test_yaml_scalar(value, trusted, text):
    assert yaml_scalar(value, trusted=trusted) == text


@pytest.mark.parametrize("value", ["a\x85b\u2028c\u2029d\ufeffe\x7ff\x9fg", "tab\tnul\x00bell\x07", "{{x}}\u2028", "日本語 ＣＮ"])
def test_every_string_loads_back_unchanged(value):
    assert yaml.load(f"key: {yaml_scalar(value)}\n", Loader=UnsafeLoader) == {"key": value}  # noqa: S506
