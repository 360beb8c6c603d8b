"""The inventory snippet: YAML built from data; what came from a host stays text for Ansible, whatever it holds."""
from __future__ import annotations

import pytest
from ansible.parsing.yaml.loader import AnsibleLoader
from ansible.template import Templar

from ansible_collections.certfleet.tls.plugins.module_utils._adopt import snippet
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

HOSTILE = "{{ lookup('pipe', 'id') }}"


def _load(text: str):
    loader = AnsibleLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


@pytest.mark.parametrize("value", [HOSTILE, "{% if true %}x{% endif %}", "a\nb", "quote \" and \\ back", "tab\tand \u2028 LS",
                                   "ünïcode 日本語", "- not a list", "key: value", "", "null", "yes", "0777"])
def test_values_load_back_unchanged_and_are_never_templated(value):
    data = {"certfleet_certificates": [{"name": "www-example-co-jp", "common_name": value, "mode": "lifecycle_managed"}],
            "apache_ssl_sites": [{"name": "www", "certificate": "www-example-co-jp", "server_aliases": [value], "port": 443}]}
    text = snippet.dump(data, header="written by a test")
    loaded = _load(text)
    assert loaded == data
    templar = Templar(loader=None, variables={})
    assert templar.template(loaded["certfleet_certificates"][0]["common_name"]) == value
    assert templar.template(loaded["apache_ssl_sites"][0]["server_aliases"][0]) == value


def test_the_same_data_gives_the_same_bytes_and_own_values_are_plain():
    data = {"certfleet_certificates": [{"name": "a", "mode": "monitored_only", "issuer": {"provider": "manual", "profile": "private"},
                                        "endpoints": [{"host": "10.0.0.1", "port": 443}]}]}
    assert snippet.dump(data) == snippet.dump(dict(data))
    text = snippet.dump(data)
    assert 'name: "a"' in text and 'mode: "monitored_only"' in text and 'host: "10.0.0.1"' in text and "!unsafe" not in text


def test_group_vars_needs_the_same_sites_on_every_host():
    hosts = {"web1": {"apache_ssl_sites": [{"name": "a"}]}, "web2": {"apache_ssl_sites": [{"name": "b"}]}}
    inventory = {"certfleet_certificates": [], "hosts": hosts}
    with pytest.raises(CertfleetError, match="use snippet_format: inventory"):
        snippet.snippet(inventory)
    data = snippet.snippet(inventory, snippet_format="inventory", group="web")
    assert data["all"]["children"]["web"]["hosts"]["web2"] == {"apache_ssl_sites": [{"name": "b"}]}
    with pytest.raises(CertfleetError, match="snippet_format must be one of"):
        snippet.snippet(inventory, snippet_format="ini")
