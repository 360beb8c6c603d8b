#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: store_request
short_description: Keys and CA-checked CSRs for many certificate definitions in the certificate store
version_added: 0.1.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - For every certificate definition, ensures its private key (PKCS#8, AES-256, encrypted with the store passphrase),
    its CSR and its state in the controller-side certificate store, and appends events to its history (the store's
    layout is described in the collection's docs/store.md). The store directory is created if missing.
  - Every definition is checked against its CA profile first; if any breaks a rule, the task fails listing every
    problem of every definition and nothing is written.
  - One call handles the whole list, so a fleet of hundreds of definitions costs one module round trip.
    Re-runs compare recorded hashes and do not decrypt keys, except one to verify the passphrase.
  - A definition whose key type or size changes gets a new key and CSR; the previous files are archived in the store.
  - This is the engine of the C(certfleet.tls.request) playbook; most users run the playbook.
attributes:
  diff_mode:
    support: full
    details: One line per definition with its key fingerprint, subject and SANs, never key material.
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.store
options:
  definitions:
    description:
      - Certificate definitions, usually C(certfleet_certificates) from the inventory.
      - Each has C(name) (store directory name), the subject options of M(certfleet.tls.csr) (C(common_name),
        C(country_name), C(state_or_province_name), C(locality_name), C(organization_name),
        C(organizational_unit_name), C(email_address), C(subject_alt_name)), C(digest), C(key) (dict with C(type),
        C(size), C(curve)), and C(issuer) (dict with C(provider) - V(manual), V(private_ca) or V(acme) - and
        C(profile), the CA profile name).
      - Other keys used by later stages (C(mode), C(renew_before_days), C(deploy), C(check_name), ...) pass through.
    type: list
    elements: dict
    required: true
  defaults:
    description: Values applied to every definition unless it sets them, for example the organisation's DN fields.
    type: dict
    default: {}
  profiles:
    description: User-defined CA profiles by name, as in M(certfleet.tls.csr).
    type: dict
    default: {}
  passphrase:
    description: The store passphrase that encrypts every key; keep it in Ansible Vault.
    type: str
    required: true
seealso:
  - module: certfleet.tls.csr
  - module: certfleet.tls.private_key
"""

EXAMPLES = r"""
- name: Keys and CSRs for every definition of the inventory
  certfleet.tls.store_request:
    store_path: "{{ inventory_dir }}/cert_store"
    passphrase: "{{ certfleet_store_passphrase }}"
    defaults:
      country_name: JP
      state_or_province_name: Tokyo
      locality_name: Minato-ku
      organization_name: Example Co.,Ltd.
    definitions:
      - name: www-example
        common_name: www.example.co.jp
        issuer:
          provider: manual
          profile: cybertrust
      - name: api-example
        common_name: api.example.co.jp
        subject_alt_name: [api2.example.co.jp]
        key:
          type: ECC
          curve: secp384r1
        issuer:
          profile: cabf
  register: requests
"""

RETURN = r"""
certificates:
  description: One entry per definition, in input order.
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
      description: What was done, for example V(key generated), V(csr generated).
      type: list
      elements: str
    status:
      description: Store status, V(pending_issuance) once a CSR waits for the CA.
      type: str
    store_dir:
      description: Directory of the definition in the store.
      type: str
    subject:
      description: Subject by short name.
      type: dict
    subject_string:
      description: Subject as one line.
      type: str
    subject_alt_name:
      description: SANs of the CSR, after the profile's completion rules.
      type: list
      elements: str
    key_fingerprint:
      description: SHA-256 of the public key.
      type: str
    policy:
      description: Profile name, errors (empty on success) and warnings.
      type: dict
    csr:
      description: The CSR in PEM, to paste into the CA's form. Null in check mode for a definition not yet generated.
      type: str
    issuer:
      description: Issuer settings (provider, profile).
      type: dict
policy_failures:
  description: On failure, the policy report of every definition that breaks its profile, by name.
  returned: failure
  type: dict
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._store.request import PolicyViolations, run_request
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import require_cryptography, run_or_fail
from ansible_collections.certfleet.tls.plugins.module_utils._store.options import definitions_argument_spec, definitions_arguments


def diff_lines(certificates: list, *, after: bool) -> str:
    lines = []
    for item in certificates:
        if not after and item["changed"]:
            lines.append(f"{item['name']}: (previous key / CSR)")
            continue
        lines.append(f"{item['name']}: key {item.get('key_fingerprint') or '(new)'} subject {item.get('subject_string', '')} "
                     f"SAN {','.join(item['subject_alt_name'])}")
    return "\n".join(lines) + "\n"


def main():
    module = AnsibleModule(
        argument_spec=definitions_argument_spec(passphrase=dict(type="str", required=True, no_log=True)),
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    result = run_or_fail(
        module,
        lambda: run_request(passphrase=params["passphrase"], **definitions_arguments(module)),
        doing="in the certificate store",
        error_fields=lambda exc: {"policy_failures": exc.reports} if isinstance(exc, PolicyViolations) else {},
    )
    for warning in result.pop("warnings"):
        module.warn(warning)
    if module._diff and result["changed"]:
        changed = [item for item in result["certificates"] if item["changed"]]
        result["diff"] = {"before": diff_lines(changed, after=False), "after": diff_lines(changed, after=True)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
