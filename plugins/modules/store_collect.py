#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: store_collect
short_description: Collect the certificates a commercial CA sent back, dropped into the store's incoming/ folders
version_added: 0.2.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - A person saves whatever the CA sent - PEM, DER, PKCS#7 (C(.p7b), C(.p7c)), a PEM bundle with the intermediates in
    any order, PKCS#12 - under any file name into the store's C(incoming/) folder or a definition's own
    C(certs/<name>/incoming/) folder.
  - Every file is matched to a definition whose issuer is V(manual) by the public key of its server certificate
    (the key of the definition's CSR), never by the file name, and checked against it - the same key, every name the
    CSR asks for, the CA profile's rules, validity (neither expired nor not yet valid), not a CA certificate, a chain
    that reaches a trust anchor. The chain is built from the file itself, the other files of the run, O(intermediates)
    and, with O(aia), the certificate's AIA URL; the CA product catalog names a missing intermediate.
  - The certificate is then installed through the store - the previous generation archived under its serial, status
    C(issued), a history event C(collected) with the source file's SHA-256 - and the file is moved to
    C(incoming/processed/).
  - Each problem fails the run with a message naming the file; nothing is written and no file is moved then.
  - The C(certfleet.tls.request) playbook collects too (M(certfleet.tls.store_issue) with its C(collect) option);
    C(certfleet.tls.collect) runs this module alone.
attributes:
  diff_mode:
    support: full
    details: One line per definition collected with the serial, SHA-256 fingerprint and end of validity, before and after.
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.store
  - certfleet.tls.collect
options:
  definitions:
    description:
      - Certificate definitions, usually C(certfleet_certificates); those with C(issuer.provider=manual) take drop-ins,
        the others are left alone.
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
seealso:
  - module: certfleet.tls.store_request
  - module: certfleet.tls.store_issue
  - module: certfleet.tls.cert_chain
"""

EXAMPLES = r"""
- name: Collect what the CA sent, checked against the CA's root
  certfleet.tls.store_collect:
    store_path: "{{ inventory_dir }}/cert_store"
    definitions: "{{ certfleet_certificates }}"
    defaults: "{{ certfleet_certificate_defaults | default({}) }}"
    trust_anchors:
      - "{{ inventory_dir }}/files/ca-root.pem"
    pkcs12_passwords:
      www.pfx: "{{ vault_www_pfx_password }}"
  register: collected
"""

RETURN = r"""
collected:
  description: One entry per file taken from the drop-in folders (in check mode, that would be taken).
  returned: success
  type: list
  elements: dict
  contains:
    file:
      description: The file, relative to the store.
      type: str
    sha256:
      description: SHA-256 of the file's bytes.
      type: str
    definition:
      description: The definition it was matched to by public key (null for a file holding only intermediates).
      type: str
    role:
      description: V(certificate), or V(chain) for a file of intermediates used for a chain.
      type: str
    action:
      description: V(collected), V(already in the store), or V(used for the chain).
      type: str
    serial:
      description: Serial of the certificate.
      type: str
    certificate_sha256:
      description: SHA-256 fingerprint of the certificate.
      type: str
    not_after:
      description: End of validity (ISO 8601 UTC).
      type: str
    chain:
      description: Subjects of the intermediates installed with it, the certificate's issuer first.
      type: list
      elements: str
moved:
  description: Where the files went, in C(incoming/processed/) (empty in check mode).
  returned: success
  type: list
  elements: str
certificates:
  description: The definitions whose certificate was installed, as M(certfleet.tls.store_issue) returns them.
  returned: success
  type: list
  elements: dict
pending:
  description: The manual definitions still waiting for their certificate, as M(certfleet.tls.store_issue) returns them.
  returned: success
  type: list
  elements: dict
errors:
  description: On failure, one message per problem, each naming its file.
  returned: failure
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._common.module import require_cryptography, run_or_fail
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import collect as _collect
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.issue import run_collect
from ansible_collections.certfleet.tls.plugins.module_utils._store.options import definitions_argument_spec, definitions_arguments


def diff_text(result: dict) -> dict:
    """Before / after lines of the definitions whose certificate changes."""
    changed = [item for item in result["certificates"] if item["changed"]]
    before = result.get("before", {})
    return {
        "before": "".join(before.get(item["name"], f"{item['name']}: (no certificate)\n") for item in changed),
        "after": "".join(f"{item['name']}: serial {item['serial']} sha256 {item['sha256']} not_after {item['not_after']}\n"
                         for item in changed),
    }


def main():
    module = AnsibleModule(argument_spec=definitions_argument_spec(**_collect.argument_spec()), supports_check_mode=True)
    require_cryptography(module)
    options = {key: module.params[key] for key in _collect.argument_spec()}
    result = run_or_fail(
        module,
        lambda: run_collect(collect=options, **definitions_arguments(module)),
        doing="collecting from incoming/",
        error_fields=lambda exc: {"errors": exc.errors} if isinstance(exc, _collect.CollectFailures) else {},
    )
    for warning in result.pop("warnings"):
        module.warn(warning)
    if module._diff and result["changed"]:
        result["diff"] = diff_text(result)
    result.pop("before", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
