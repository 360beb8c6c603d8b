#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: store_event
short_description: Record deployment, verification and monitoring events in the certificate store's history
version_added: 0.2.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Appends events to the history of a definition (C(certificate)) in the controller-side store, each with the time (UTC).
    The history is append-only, so the whole life of every certificate stays on record - this module never rewrites it.
  - Used by the apache_ssl role (V(deployed), V(verified), V(verify_failed), V(deploy_failed)), the deploy playbook
    (unreachable hosts) and the cert_monitor role (V(monitored)). Run it on the controller, with C(delegate_to=localhost).
attributes:
  check_mode:
    details: Nothing is written in check mode; RV(events) lists what would be.
  diff_mode:
    support: none
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.store
options:
  events:
    description:
      - Events to record. Each has C(certificate) (definition name) and C(event) (one of V(deployed), V(deploy_failed),
        V(verified), V(verify_failed), V(rolled_back), V(monitored), V(monitor_failed)); optional C(host), C(site),
        C(port), C(sha256), C(status) and C(message).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Record that web1 serves the new certificate
  certfleet.tls.store_event:
    store_path: "{{ inventory_dir }}/cert_store"
    events:
      - certificate: www-example-co-jp
        event: verified
        host: web1
        site: www
        port: 443
        sha256: "AB:CD:..."
  delegate_to: localhost
"""

RETURN = r"""
events:
  description: The events as written (or, in check mode, as they would be), with their C(time).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._store.events import record_events
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store_path=dict(type="path", required=True),
            events=dict(type="list", elements="dict", required=True),
        ),
        supports_check_mode=True,
    )
    try:
        events = record_events(module.params["store_path"], module.params["events"], write=not module.check_mode)
    except CertfleetError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=bool(events), events=events)


if __name__ == "__main__":
    main()
