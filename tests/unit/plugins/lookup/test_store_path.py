"""certfleet.tls.store_path: certfleet_store_path, else cert_store/ beside the inventory - as the roles had it."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.certfleet.tls.plugins.lookup.store_path import LookupModule


def lookup(variables: dict, *terms, **kwargs) -> list:
    loader = DataLoader()
    return LookupModule(loader=loader, templar=Templar(loader=loader, variables=variables)).run(list(terms), variables, **kwargs)


def old_default(source: str) -> str:
    """The Jinja expression the roles and playbooks repeated before the lookup, in Python."""
    import os  # pylint: disable=import-outside-toplevel
    return (source if os.path.isdir(source) else os.path.dirname(source)) + "/cert_store"


def test_inventory_directory_and_inventory_file_give_the_old_default(tmp_path):
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text("all: {}\n")
    for source in (str(inventory), str(inventory / "hosts.yml")):
        assert lookup({"ansible_inventory_sources": [source, "/elsewhere/other.yml"]}) == [old_default(source)]
    assert lookup({"ansible_inventory_sources": [str(inventory)]}) == [str(inventory / "cert_store")]


def test_certfleet_store_path_wins_and_is_templated(tmp_path):
    # inventory and play variables are trusted templates; a test string must be marked as one
    variables = {"ansible_inventory_sources": [str(tmp_path)], "base": "/srv",
                 "certfleet_store_path": trust_as_template("{{ base }}/store")}
    assert lookup(variables) == ["/srv/store"]
    assert lookup(dict(variables, certfleet_store_path="")) == [str(tmp_path / "cert_store")]


def test_a_host_list_is_not_a_path(tmp_path):
    variables = {"ansible_inventory_sources": ["web1,web2,"], "playbook_dir": str(tmp_path / "playbooks")}
    assert lookup(variables) == [str(tmp_path / "playbooks" / "cert_store")]


def test_files_of_definitions_and_cas_come_from_the_store_layout(tmp_path):
    variables = {"certfleet_store_path": str(tmp_path / "store")}
    assert lookup(variables, "portal", "api", file="fullchain") == [
        str(tmp_path / "store" / "certs" / "portal" / "fullchain.pem"), str(tmp_path / "store" / "certs" / "api" / "fullchain.pem")]
    assert lookup(variables, "portal") == [str(tmp_path / "store" / "certs" / "portal")]
    assert lookup(variables, ca="intranet") == [str(tmp_path / "store" / "ca" / "intranet" / "root.pem")]
    assert lookup(variables, ca="intranet", file="crl") == [str(tmp_path / "store" / "ca" / "intranet" / "crl.der")]


@pytest.mark.parametrize("terms, options, message", [
    (("portal",), {"colour": "red"}, "takes the options file and ca, not colour"),
    (("../../etc",), {"file": "key"}, "must be 1-128 characters"),
    (("portal",), {"file": "secret"}, "store file kind 'secret' must be one of"),
    ((), {"file": "cert"}, "file needs definition names"),
    (("portal",), {"ca": "intranet"}, "not both"),
    ((), {"ca": "../x"}, "CA name '../x' must be"),
])
def test_bad_terms_and_options_are_refused(tmp_path, terms, options, message):
    with pytest.raises(AnsibleError, match=message):
        lookup({"ansible_inventory_sources": [str(tmp_path)]}, *terms, **options)


def test_a_store_inside_an_inventory_directory_source_is_warned_about(tmp_path, monkeypatch):
    from ansible_collections.certfleet.tls.plugins.lookup import store_path  # pylint: disable=import-outside-toplevel
    warnings = []
    monkeypatch.setattr(store_path.display, "warning", warnings.append)
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text("all: {}\n")
    assert lookup({"ansible_inventory_sources": [str(inventory / "hosts.yml")]}) == [str(inventory / "cert_store")]
    assert not warnings
    assert lookup({"ansible_inventory_sources": [str(inventory)]}) == [str(inventory / "cert_store")]
    assert len(warnings) == 1 and "inside the inventory directory" in warnings[0]
    assert f"-i {inventory}/hosts.yml" in warnings[0]


@pytest.mark.parametrize(("inside", "expected"), [(True, True), (False, False)])
def test_inventory_directory_holding(tmp_path, inside, expected):
    from ansible_collections.certfleet.tls.plugins.module_utils._store.layout import (  # pylint: disable=import-outside-toplevel
        inventory_directory_holding,
    )
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    store = inventory / "cert_store" if inside else tmp_path / "cert_store"
    sources = ["web1,web2,", str(inventory / "hosts.yml"), str(inventory)]
    assert (inventory_directory_holding(str(store), sources) == str(inventory)) is expected
    # an inventory file never holds the store: Ansible reads that file only
    assert inventory_directory_holding(str(store), [str(inventory / "hosts.yml")]) is None
