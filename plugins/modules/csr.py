#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: csr
short_description: Create a CSR whose subject meets the CA's rules
version_added: 0.1.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Creates a certificate signing request (PKCS#10) from a private key, after checking the subject, SANs, key and
    digest against a CA profile. A violation fails the task before anything is written and lists every problem.
  - The file is rewritten only when the wanted request differs from the existing one (key, subject, SANs, digest).
  - Never adds a challenge password or optional company name; Cybertrust's SureServer CSR guide says to leave both
    empty.
attributes:
  diff_mode:
    support: full
    details: The diff shows subject, SANs, digest and the key fingerprint.
extends_documentation_fragment:
  - certfleet.tls.attributes
  - ansible.builtin.files
  - certfleet.tls.subject
options:
  path:
    description: Path of the CSR file (PEM).
    type: path
    required: true
  privatekey_path:
    description: Path of the private key. One of O(privatekey_path) or O(privatekey_content) is required.
    type: path
  privatekey_content:
    description: The private key in PEM.
    type: str
  privatekey_passphrase:
    description: Passphrase of an encrypted private key.
    type: str
  backup:
    description: Keep a timestamped copy of the previous CSR when it is replaced.
    type: bool
    default: false
  return_content:
    description: Return the CSR in PEM as RV(csr).
    type: bool
    default: false
seealso:
  - module: certfleet.tls.private_key
  - module: certfleet.tls.csr_info
"""

EXAMPLES = r"""
- name: CSR for Cybertrust SureServer, checked against its DN rules before submission
  certfleet.tls.csr:
    path: /etc/ssl/csr/www.example.co.jp.csr
    privatekey_path: /etc/ssl/private/www.example.co.jp.key
    privatekey_passphrase: "{{ vault_key_passphrase }}"
    country_name: JP
    state_or_province_name: Tokyo
    locality_name: Minato-ku
    organization_name: Example Co.,Ltd.
    common_name: www.example.co.jp
    profile: cybertrust
    return_content: true
  register: request

- name: Show what to paste into the CA's application form
  ansible.builtin.debug:
    msg: "{{ request.csr }}"

- name: Internal service with an intranet name and an IP address
  certfleet.tls.csr:
    path: /etc/ssl/csr/intranet.csr
    privatekey_path: /etc/ssl/private/intranet.key
    common_name: wiki.corp
    subject_alt_name:
      - wiki
      - IP:10.0.0.15
    profile: private

- name: Own rules on top of a built-in profile
  certfleet.tls.csr:
    path: /etc/ssl/csr/api.csr
    privatekey_path: /etc/ssl/private/api.key
    common_name: api.example.com
    organization_name: Example Inc.
    profile:
      extends: cabf
      required_fields: [CN, O]
      digests: [sha384]
    digest: sha384
"""

RETURN = r"""
filename:
  description: Path of the CSR file.
  returned: always
  type: str
subject:
  description: Subject of the CSR by short attribute name.
  returned: success
  type: dict
  sample: {"C": "JP", "ST": "Tokyo", "L": "Minato-ku", "O": "Example Co.,Ltd.", "CN": "www.example.co.jp"}
subject_string:
  description: Subject as one line, in encoding order.
  returned: success
  type: str
  sample: /C=JP/ST=Tokyo/L=Minato-ku/O=Example Co.,Ltd./CN=www.example.co.jp
subject_alt_name:
  description: SANs of the CSR, including the ones the profile added.
  returned: success
  type: list
  elements: str
  sample: [www.example.co.jp, example.co.jp]
policy:
  description: The profile check.
  returned: always
  type: dict
  contains:
    profile:
      description: Profile name.
      type: str
    errors:
      description: Broken rules, each naming the field and the rule. Non-empty only on failure.
      type: list
      elements: str
    warnings:
      description: Things the CA will do or that deserve a look, for example an OU that will be dropped.
      type: list
      elements: str
fingerprint:
  description: SHA-256 fingerprint of the public key in the CSR.
  returned: success
  type: str
csr:
  description: The CSR in PEM.
  returned: when O(return_content=true)
  type: str
backup_file:
  description: Path of the backup of the previous CSR.
  returned: when O(backup=true) and the CSR was replaced
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import (
    create_csr_pem,
    csr_matches,
    describe_csr,
    load_csr,
    plan_request,
    policy_failure_message,
)
from ansible_collections.certfleet.tls.plugins.module_utils._csr.options import subject_argument_spec
from ansible_collections.certfleet.tls.plugins.module_utils._common.files import (
    check_writable_directory,
    read_file,
    write_with_module,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import key_info, load_private_key
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import require_cryptography, run_or_fail
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import (
    CertfleetError,
)


def load_key(params: dict):
    if params["privatekey_content"] is not None:
        data, source = params["privatekey_content"].encode("utf-8"), "privatekey_content"
    else:
        source = "privatekey_path"
        data = read_file(params["privatekey_path"], option=source)
        if data is None:
            raise CertfleetError(f"privatekey_path: '{params['privatekey_path']}' does not exist")
    return load_private_key(data, source=source, passphrase=params["privatekey_passphrase"])


def existing_view(existing: bytes | None) -> dict:
    if not existing:
        return {"exists": False}
    try:
        info = describe_csr(load_csr(existing))
    except CertfleetError as exc:
        return {"exists": True, "readable": False, "error": str(exc)}
    return {
        "exists": True,
        "subject": info["subject_string"],
        "subject_alt_name": info["subject_alt_name"],
        "digest": info["digest"],
        "fingerprint": info["public_key"]["fingerprint"],
    }


def ensure_csr(module: AnsibleModule) -> dict:
    params = module.params
    path = params["path"]
    key = load_key(params)
    public = key_info(key)
    request = plan_request(params, public_key_info=public)
    result = {"filename": path, "policy": request["policy"]}
    if request["policy"]["errors"]:
        module.fail_json(msg=policy_failure_message(request["policy"]), **result)
    existing = read_file(path)
    wanted = dict(subject=request["subject"], subject_alt_names=request["subject_alt_name"], digest=params["digest"])
    changed = not csr_matches(existing, private_key=key, **wanted)
    content = existing
    if changed:
        check_writable_directory(path)
        content = create_csr_pem(key, **wanted)
        if not module.check_mode:
            backup_file = write_with_module(module, path, content, backup=params["backup"])
            if backup_file:
                result["backup_file"] = backup_file
    info = describe_csr(load_csr(content))
    result.update(
        changed=changed,
        subject=info["subject"],
        subject_string=info["subject_string"],
        subject_alt_name=info["subject_alt_name"],
        fingerprint=public["fingerprint"],
    )
    if params["return_content"]:
        result["csr"] = content.decode("ascii")
    if module._diff:
        result["diff"] = {"before": existing_view(existing), "after": existing_view(content)}
    return result


def main():
    argument_spec = subject_argument_spec()
    argument_spec.update(
        path=dict(type="path", required=True),
        privatekey_path=dict(type="path"),
        privatekey_content=dict(type="str", no_log=True),
        privatekey_passphrase=dict(type="str", no_log=True),
        backup=dict(type="bool", default=False),
        return_content=dict(type="bool", default=False),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        add_file_common_args=True,
        supports_check_mode=True,
        required_one_of=[("privatekey_path", "privatekey_content")],
        mutually_exclusive=[("privatekey_path", "privatekey_content")],
    )
    require_cryptography(module)
    result = run_or_fail(module, lambda: ensure_csr(module), doing=f"creating {module.params['path']}",
                         error_fields=lambda exc: {"filename": module.params["path"]})
    if os.path.exists(module.params["path"]):
        file_args = module.load_file_common_arguments(module.params)
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
