#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: store_issue
short_description: Issue the store's certificate definitions through their issuer providers
version_added: 0.1.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - For every certificate definition, the issuer provider it names in C(issuer.provider) decides whether a certificate
    must be obtained and obtains it; the module then installs it in the certificate store - the certificate, its chain
    (intermediates) and the full chain (certificate and intermediates, checked by the chain engine) - records it in the
    definition's state (status C(issued), serial, fingerprints, validity) and appends an C(issued) event to its history.
    Issuance runs unattended, without a person approving each certificate.
  - V(private_ca) signs the definition's CSR with the CA of the store named by C(issuer.ca) (see M(certfleet.tls.private_ca)).
  - V(manual) definitions are ordered from a CA by a person; until the certificate the CA sent is dropped into an
    C(incoming/) folder (then it is collected, see M(certfleet.tls.store_collect)) they are not in RV(certificates),
    and RV(pending) says what to do for each.
  - V(acme) definitions are issued by an ACME CA (RFC 8555) named by C(issuer.directory), with an account kept in the
    store (its key encrypted with O(passphrase)), http-01 validation (a standalone responder on the controller or
    token files in a webroot) or dns-01 validation through a command hook; see C(docs/acme.md). Needs the Python
    C(acme) library on the controller.
  - Re-runs change nothing until a certificate enters its renewal window (the definition's C(renew_before_days),
    30 days when not set), its CSR changes (new key or names from M(certfleet.tls.store_request)), or it is revoked.
    The previous certificate generation is then archived in the store under its serial.
  - Every definition is checked first (CSR present, CA policy and profile); if any fails, the task fails listing
    every problem and nothing is written.
  - This is a step of the C(certfleet.tls.request) playbook, after M(certfleet.tls.store_request) and
    M(certfleet.tls.private_ca).
attributes:
  diff_mode:
    support: full
    details: One line per changed definition with the serial, SHA-256 fingerprint and end of validity, before and after.
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.store
options:
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
  passphrase:
    description:
      - The store passphrase, which encrypts the key of every ACME account in the store.
      - Defaults to O(ca_passphrase) (the request playbook passes the store passphrase as both).
    type: str
  acme_eab_hmac_keys:
    description:
      - External Account Binding HMAC keys (base64url, from the CA), by ACME account name (C(issuer.account),
        V(default) when not set); the key ID is the definition's C(issuer.eab_kid).
      - Used only when an account is registered. Keep them in Ansible Vault.
    type: dict
    default: {}
  collect:
    description:
      - How V(manual) definitions collect the certificates dropped into the store's C(incoming/) folders (see
        M(certfleet.tls.store_collect), which takes the same options). A collected certificate is listed in
        RV(certificates) and its file in RV(collected).
      - Without it, drop-ins are checked against the operating system's CA bundle only.
    type: dict
    suboptions:
      pkcs12_password:
        description: Password of the PKCS#12 files dropped in.
        type: str
      pkcs12_passwords:
        description: Passwords of particular PKCS#12 files, by file name.
        type: dict
        default: {}
      intermediates:
        description: Intermediate and cross-root certificates offered to every chain (file paths or PEM text).
        type: list
        elements: str
        default: []
      trust_anchors:
        description: Root certificates a chain must reach (file paths or PEM text).
        type: list
        elements: str
        default: []
      system_trust:
        description: The operating system's CA bundle counts as trust anchors too.
        type: bool
        default: true
      aia:
        description: Fetch a missing issuer from the certificate's AIA caIssuers URL (bounded).
        type: bool
        default: false
      prefer:
        description: Which chain to install when there are several.
        type: str
        choices: [shortest, cross_root]
        default: shortest
      max_file_size:
        description: Largest drop-in file read, in bytes.
        type: int
        default: 1048576
      max_files:
        description: Most files read from the drop-in folders in one run.
        type: int
        default: 5000
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
  description: One entry per definition with a certificate from its provider (V(private_ca)), in input order.
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
    provider:
      description: The issuer provider, from C(issuer.provider).
      type: str
    ca:
      description: Name of the issuing CA (C(issuer.ca)).
      type: str
    store_dir:
      description: Directory of the definition in the store.
      type: str
    files:
      description: Paths of the certificate (C(cert)), its intermediates (C(chain)) and both (C(fullchain)) in the store.
      type: dict
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
pending:
  description:
    - Definitions waiting for a person (provider V(manual)), in input order; nothing was written for them.
    - Each has C(name), C(provider), C(reason) (why a certificate is needed, for example V(no certificate yet)) and
      C(instructions), what to do, one step per entry (submit the CSR to the CA, put the certificate it returns into
      the store).
    - A V(manual) definition with a CSR also has C(csr) (the PEM to paste), C(form) (the subject fields in the order
      the CA's application form asks for them, each with C(field), C(label) and C(value)), C(subject_alt_name) (the
      names the CA will register), C(profile), C(key_fingerprint), C(pending_since) and C(pending_days), and
      C(incoming) (the folders to drop the certificate into).
  returned: success
  type: list
  elements: dict
collected:
  description: The files taken from the C(incoming/) folders (see M(certfleet.tls.store_collect)).
  returned: success
  type: list
  elements: dict
failures:
  description: On failure, the reasons of every definition that cannot be issued, by name.
  returned: failure
  type: dict
errors:
  description: On a failed collect, one message per problem with the dropped files, each naming its file.
  returned: failure
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._issuers.acme import AcmeProvider
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import collect as _collect
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.issue import IssueFailures, run_issue
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import require_cryptography, run_or_fail
from ansible_collections.certfleet.tls.plugins.module_utils._store.options import definitions_argument_spec, definitions_arguments


def diff_lines(certificates: list) -> str:
    lines = []
    for item in certificates:
        lines.append(f"{item['name']}: serial {item['serial'] or '(new)'} sha256 {item['sha256'] or '(new)'} "
                     f"not_after {item['not_after'] or '(new)'}")
    return "\n".join(lines) + "\n"


def _error_fields(exc) -> dict:
    if isinstance(exc, IssueFailures):
        return {"failures": exc.failures}
    if isinstance(exc, _collect.CollectFailures):
        return {"errors": exc.errors}
    return {}


def main():
    module = AnsibleModule(
        argument_spec=definitions_argument_spec(
            ca_passphrase=dict(type="str", no_log=True),
            ca_passphrases=dict(type="dict", default={}, no_log=True),
            passphrase=dict(type="str", no_log=True),
            acme_eab_hmac_keys=dict(type="dict", default={}, no_log=True),
            collect=dict(type="dict", options=_collect.argument_spec()),
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params

    def acme_provider():
        return AcmeProvider(passphrase=params["passphrase"] or params["ca_passphrase"],
                            eab_hmac_keys=params["acme_eab_hmac_keys"])

    result = run_or_fail(
        module,
        lambda: run_issue(ca_passphrase=params["ca_passphrase"], ca_passphrases=params["ca_passphrases"],
                          providers={"acme": acme_provider}, collect=params["collect"],
                          **definitions_arguments(module)),
        doing="issuing from the certificate store",
        error_fields=_error_fields,
    )
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
