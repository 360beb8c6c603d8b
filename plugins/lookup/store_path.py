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
  - The roles (C(apache_ssl_store_path), C(cert_monitor_store_path)) and the playbooks (C(certfleet.tls.request),
    C(certfleet.tls.deploy)) take their default from this lookup, so they all find the same store.
  - Takes no terms and no options.
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
"""

RETURN = r"""
_raw:
  description: One path, the store's directory on the controller.
  type: list
  elements: path
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.certfleet.tls.plugins.module_utils._store.layout import default_store_path


class LookupModule(LookupBase):
    """certfleet_store_path, else the store beside the inventory."""

    def run(self, terms, variables=None, **kwargs):
        if terms:
            raise AnsibleLookupError("certfleet.tls.store_path takes no terms")
        if kwargs:
            raise AnsibleLookupError(f"certfleet.tls.store_path takes no options, not {', '.join(sorted(kwargs))}")
        variables = variables or {}
        # Variables reach a lookup untemplated; certfleet_store_path may itself be an expression.
        configured = self._templar.template(variables["certfleet_store_path"]) if "certfleet_store_path" in variables else None
        if configured not in (None, ""):
            return [str(configured)]
        sources = self._templar.template(variables.get("ansible_inventory_sources") or [])
        playbook_dir = self._templar.template(variables.get("playbook_dir")) if variables.get("playbook_dir") else None
        return [default_store_path(inventory_sources=sources, playbook_dir=playbook_dir)]
