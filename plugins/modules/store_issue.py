#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: store_issue
short_description: Issue the store's pending CSRs unattended with the store's private CAs
version_added: 0.1.0
description:
  - For every certificate definition whose issuer is C(provider=private_ca) with C(ca=<name>), signs C(certs/<name>/csr.pem)
    with the CA C(ca/<name>/) of the certificate store and writes C(cert.pem), C(chain.pem) (intermediates) and
    C(fullchain.pem) (certificate and intermediates, checked by the chain engine), updates C(state.json) (status
    C(issued), serial, fingerprints, validity) and appends an C(issued) event to C(history.jsonl). Seed 003 calls this
    unattended (無人) processing.
  - Definitions with another provider are left alone.
  - Re-runs change nothing until a certificate enters its renewal window (the definition's C(renew_before_days),
    30 days when not set), its CSR changes (new key or names from M(certfleet.tls.store_request)), or it is revoked.
    The previous certificate files then go to C(archive/<serial>/).
  - Every definition is checked first (CSR present, CA policy and profile); if any fails, the task fails listing
    every problem and nothing is written.
  - This is a step of the C(certfleet.tls.request) playbook, after M(certfleet.tls.store_request) and
    M(certfleet.tls.private_ca).
author:
  - certfleet.tls maintainers (@certfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: One line per changed definition with the serial, SHA-256 fingerprint and end of validity, before and after.
  platform:
    platforms: posix
options:
  store_path:
    description: Root directory of the certificate store.
    type: path
    required: true
  definitions:
    description:
      - Certificate definitions, usually C(certfleet_certificates), as given to M(certfleet.tls.store_request).
      - C(issuer.ca) names the CA; optional C(issuer.validity_days) asks for a shorter validity than the CA's maximum;
        C(issuer.profile) is the CA profile checked at issuance too; C(renew_before_days) sets the renewal window.
    type: list
    elements: dict
    required: true
  defaults:
    description: Values applied to every definition unless it sets them (as for M(certfleet.tls.store_request)).
    type: dict
    default: {}
  profiles:
    description: User-defined CA profiles by name.
    type: dict
    default: {}
  ca_passphrase:
    description: Passphrase of the CA keys. The request playbook passes the store passphrase.
    type: str
  ca_passphrases:
    description: Passphrases of particular CAs, by CA name, overriding O(ca_passphrase).
    type: dict
    default: {}
seealso:
  - module: certfleet.tls.store_request
  - module: certfleet.tls.private_ca
  - module: certfleet.tls.private_ca_certificate
"""

EXAMPLES = r"""
- name: Issue every private-CA definition of the inventory
  certfleet.tls.store_issue:
    store_path: "{{ inventory_dir }}/cert_store"
    definitions: "{{ certfleet_certificates }}"
    defaults: "{{ certfleet_certificate_defaults | default({}) }}"
    ca_passphrase: "{{ certfleet_store_passphrase }}"
  register: issued
"""

RETURN = r"""
certificates:
  description: One entry per private_ca definition, in input order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Definition name.
      type: str
    changed:
      description: Whether anything was (or in check mode would be) written for it.
      type: bool
    actions:
      description: What was done, for example V(certificate issued (no certificate yet)).
      type: list
      elements: str
    status:
      description: Store status, V(issued).
      type: str
    ca:
      description: Name of the issuing CA.
      type: str
    store_dir:
      description: Directory of the definition in the store.
      type: str
    serial:
      description: Serial of the certificate (null in check mode before issuance).
      type: str
    sha256:
      description: SHA-256 fingerprint.
      type: str
    sha1:
      description: SHA-1 fingerprint (thumbprint).
      type: str
    not_after:
      description: End of validity (ISO 8601 UTC).
      type: str
    subject:
      description: Subject DN.
      type: str
    subject_alt_name:
      description: SANs of the certificate.
      type: list
      elements: str
failures:
  description: On failure, the reasons of every definition that cannot be issued, by name.
  returned: failure
  type: dict
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.certfleet.tls.plugins.module_utils._issuers.issue import IssueFailures, run_issue
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    CertfleetError,
)


def diff_lines(certificates: list) -> str:
    lines = []
    for item in certificates:
        lines.append(f"{item['name']}: serial {item['serial'] or '(new)'} sha256 {item['sha256'] or '(new)'} "
                     f"not_after {item['not_after'] or '(new)'}")
    return "\n".join(lines) + "\n"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store_path=dict(type="path", required=True),
            definitions=dict(type="list", elements="dict", required=True),
            defaults=dict(type="dict", default={}),
            profiles=dict(type="dict", default={}),
            ca_passphrase=dict(type="str", no_log=True),
            ca_passphrases=dict(type="dict", default={}, no_log=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    params = module.params
    try:
        result = run_issue(
            store_path=params["store_path"],
            definitions=params["definitions"],
            ca_passphrase=params["ca_passphrase"],
            ca_passphrases=params["ca_passphrases"],
            defaults=params["defaults"],
            profiles=params["profiles"],
            check_mode=module.check_mode,
        )
    except IssueFailures as exc:
        module.fail_json(msg=str(exc), failures=exc.failures)
    except CertfleetError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_json(msg=f"unexpected error issuing from the certificate store: {exc}", exception=traceback.format_exc())
    for warning in result.pop("warnings"):
        module.warn(warning)
    if module._diff and result["changed"]:
        changed = [item for item in result["certificates"] if item["changed"]]
        before = result.pop("before", {})
        result["diff"] = {
            "before": "".join(before.get(item["name"], f"{item['name']}: (no certificate)\n") for item in changed),
            "after": diff_lines(changed),
        }
    result.pop("before", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
