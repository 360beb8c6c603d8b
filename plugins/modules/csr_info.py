#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: csr_info
short_description: Read a CSR and check it against a CA profile
version_added: 0.1.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Parses an existing certificate signing request (PEM or DER) and returns its subject, SANs, key, signature
    algorithm and the policy report for a CA profile, without writing anything.
  - The CSR check that CA ordering guides send people to (Cybertrust's CSR checker, for example), usable on CSRs
    made by any tool.
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.attributes.info_module
options:
  path:
    description: Path of the CSR. One of O(path) or O(content) is required.
    type: path
  content:
    description: The CSR in PEM.
    type: str
  profile:
    description:
      - CA profile to check against, by name (V(cybertrust), V(cabf), V(private), or a key of O(profiles)) or as a
        dict of rules with C(extends). See M(certfleet.tls.csr) for the rules.
    type: raw
    default: private
  profiles:
    description: User-defined profiles by name.
    type: dict
    default: {}
  fail_on_policy_errors:
    description: Fail the task when the CSR breaks a rule of the profile (the report is returned either way).
    type: bool
    default: false
seealso:
  - module: certfleet.tls.csr
"""

EXAMPLES = r"""
- name: Check a CSR someone made by hand before it goes to Cybertrust
  certfleet.tls.csr_info:
    path: /tmp/server.csr
    profile: cybertrust
  register: check

- name: Show the problems
  ansible.builtin.debug:
    msg: "{{ check.policy.errors + check.policy.warnings }}"

- name: Gate a pipeline on the CA's rules
  certfleet.tls.csr_info:
    content: "{{ lookup('ansible.builtin.file', 'server.csr') }}"
    profile: cabf
    fail_on_policy_errors: true
"""

RETURN = r"""
subject:
  description: Subject by short attribute name; repeated attributes are lists.
  returned: success
  type: dict
  sample: {"C": "JP", "ST": "Tokyo", "L": "Minato-ku", "O": "Example Co.,Ltd.", "CN": "www.example.co.jp"}
subject_string:
  description: Subject as one line, in encoding order.
  returned: success
  type: str
subject_alt_name:
  description: SAN entries; DNS names bare, others prefixed (C(IP:), C(email:), C(URI:)).
  returned: success
  type: list
  elements: str
public_key:
  description: Key in the CSR.
  returned: success
  type: dict
  contains:
    type:
      description: V(RSA), V(ECC) or another algorithm name.
      type: str
    size:
      description: Key size in bits.
      type: int
    curve:
      description: Curve name of an ECC key.
      type: str
    fingerprint:
      description: SHA-256 of the DER SubjectPublicKeyInfo.
      type: str
signature_algorithm:
  description: Signature algorithm name.
  returned: success
  type: str
  sample: sha256WithRSAEncryption
digest:
  description: Hash of the signature.
  returned: success
  type: str
  sample: sha256
signature_valid:
  description: Whether the CSR's self-signature verifies.
  returned: success
  type: bool
attributes:
  description: PKCS#9 request attributes present (V(challengePassword), V(unstructuredName) - the optional company name).
  returned: success
  type: list
  elements: str
sha256:
  description: SHA-256 of the DER-encoded CSR.
  returned: success
  type: str
policy:
  description: The profile check. RV(policy.subject_alt_name) shows the SANs the CA would certify.
  returned: success
  type: dict
  contains:
    profile:
      description: Profile name.
      type: str
    errors:
      description: Broken rules.
      type: list
      elements: str
    warnings:
      description: Remarks.
      type: list
      elements: str
    subject_alt_name:
      description: SANs after the profile's completion rules.
      type: list
      elements: str
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import describe_csr, load_csr, policy_failure_message
from ansible_collections.certfleet.tls.plugins.module_utils._common.files import read_file
from ansible_collections.certfleet.tls.plugins.module_utils._csr.profiles import check_request, resolve_profile
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import require_cryptography, run_or_fail
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import (
    CertfleetError,
)


def inspect(params: dict) -> dict:
    if params["content"] is not None:
        data, source = params["content"].encode("utf-8"), "content"
    else:
        source = "path"
        data = read_file(params["path"], option=source)
        if data is None:
            raise CertfleetError(f"path: '{params['path']}' does not exist")
    info = describe_csr(load_csr(data, source=source))
    profile = resolve_profile(params["profile"], params["profiles"])
    report = check_request(
        profile,
        subject=info["subject"],
        subject_alt_names=info["subject_alt_name"],
        key_info=info["public_key"],
        digest=info["digest"] or "none",
        attributes=info["attributes"],
    )
    errors = list(report["errors"])
    if not info["signature_valid"]:
        errors.insert(0, "signature: the CSR's self-signature does not verify (the file was altered or is corrupt)")
    info["policy"] = {
        "profile": report["profile"],
        "errors": errors,
        "warnings": report["warnings"],
        "subject_alt_name": report["subject_alt_name"],
    }
    return info


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            content=dict(type="str"),
            profile=dict(type="raw", default="private"),
            profiles=dict(type="dict", default={}),
            fail_on_policy_errors=dict(type="bool", default=False),
        ),
        required_one_of=[("path", "content")],
        mutually_exclusive=[("path", "content")],
        supports_check_mode=True,
    )
    require_cryptography(module)
    result = run_or_fail(module, lambda: inspect(module.params), doing="reading the CSR")
    if module.params["fail_on_policy_errors"] and result["policy"]["errors"]:
        module.fail_json(msg=policy_failure_message(result["policy"], what="the CSR"), **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
