# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: store_path
author:
  - certfleet.tls maintainers (@certfleet)
version_added: 0.1.0
short_description: The controller-side certificate store every role and playbook of the collection uses
description:
  - Returns C(certfleet_store_path) when it is set (and not empty).
  - Otherwise C(cert_store) beside the first inventory source that is a path (C(ansible_inventory_sources)) - inside it when
    the source is a directory, next to it when it is a file. A host list such as C(web1,web2,) is not a path and is passed
    over; with no path at all, C(cert_store) beside the playbook (C(playbook_dir)).
  - When the store it returns lies inside a directory given as an inventory source, it warns - Ansible reads every file in
    an inventory directory as inventory (YAML and JSON files can set variables, executable files run as inventory
    scripts), the store's files included. Give the inventory file (C(-i inventory/hosts.yml)) instead.
  - The roles (C(apache_ssl_store_path), C(cert_monitor_store_path)) and the playbooks (C(certfleet.tls.request),
    C(certfleet.tls.deploy)) take their default from this lookup, so they all find the same store.
  - With terms (definition names), the path of each definition's directory, or of one of its files with O(file);
    with O(ca), the path of a file of that private CA. The names are checked, so a path can never leave the store.
    Use this instead of spelling the store's layout.
options:
  _terms:
    description: Definition names (as in C(certfleet_certificates)).
    required: false
  file:
    description:
      - Which file of each definition (V(key), V(csr), V(cert), V(chain), V(fullchain), V(state), V(history)), or of the
        CA named by O(ca) (V(cert), V(chain), V(root), V(crl), ...; V(root) when not set).
    type: str
  ca:
    description: A private CA of the store (as named by C(issuer.ca)); returns the path of its O(file).
    type: str
notes:
  - The result is a path on the controller; nothing is created or checked.
seealso:
  - name: The certificate store
    description: Its layout and what each file holds.
    link: https://github.com/certfleet/certfleet.tls/blob/main/docs/store.md
"""

EXAMPLES = r"""
- name: Show which store this inventory uses
  ansible.builtin.debug:
    msg: "{{ lookup('certfleet.tls.store_path') }}"

- name: A role default that follows certfleet_store_path
  ansible.builtin.set_fact:
    my_store: "{{ lookup('certfleet.tls.store_path') }}"

- name: Check that a server presents the store's certificate, trusted by the store's private CA
  certfleet.tls.tls_probe:
    host: portal.example.intra
    expected_certificate: "{{ lookup('certfleet.tls.store_path', 'portal', file='fullchain') }}"
    trust_bundle: ["{{ lookup('certfleet.tls.store_path', ca='intranet', file='root') }}"]
  delegate_to: localhost
"""

RETURN = r"""
_raw:
  description: The store's directory on the controller; with terms one path per term; with O(ca) one path.
  type: list
  elements: path
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._store.layout import (
    ca_path,
    certificate_dir,
    certificate_path,
    default_store_path,
    inventory_directory_holding,
)

display = Display()


class LookupModule(LookupBase):
    """certfleet_store_path, else the store beside the inventory."""

    def run(self, terms, variables=None, **kwargs):
        unknown = sorted(set(kwargs) - {"file", "ca"})
        if unknown:
            raise AnsibleLookupError(f"certfleet.tls.store_path takes the options file and ca, not {', '.join(unknown)}")
        variables = variables or {}
        store = self._store(variables)
        kind, ca = kwargs.get("file"), kwargs.get("ca")
        try:
            if ca:
                if terms:
                    raise CertfleetError("certfleet.tls.store_path: give definition names or ca, not both")
                return [ca_path(store, ca, kind or "root")]
            if not terms:
                if kind:
                    raise CertfleetError("certfleet.tls.store_path: file needs definition names (terms) or ca")
                return [store]
            return [certificate_path(store, name, kind) if kind else certificate_dir(store, name) for name in terms]
        except CertfleetError as exc:
            raise AnsibleLookupError(str(exc)) from None

    def _store(self, variables: dict) -> str:
        # Variables reach a lookup untemplated; certfleet_store_path may itself be an expression.
        configured = self._templar.template(variables["certfleet_store_path"]) if "certfleet_store_path" in variables else None
        if configured not in (None, ""):
            return str(configured)
        sources = self._templar.template(variables.get("ansible_inventory_sources") or [])
        playbook_dir = self._templar.template(variables.get("playbook_dir")) if variables.get("playbook_dir") else None
        store = default_store_path(inventory_sources=sources, playbook_dir=playbook_dir)
        holder = inventory_directory_holding(store, sources)
        if holder is not None:
            display.warning(
                f"certfleet.tls: the certificate store {store} is inside the inventory directory {holder}. Ansible reads "
                f"every file there as inventory (YAML/JSON files can set variables, executable files run as inventory "
                f"scripts), including files saved into the store's incoming/ folder. Give the inventory file instead "
                f"(-i {holder.rstrip('/')}/hosts.yml) or set certfleet_store_path outside {holder}.")
        return store
