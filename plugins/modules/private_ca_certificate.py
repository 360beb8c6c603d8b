#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: private_ca_certificate
short_description: Issue a server certificate from a CSR with the built-in private CA
version_added: 0.1.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Signs a CSR with a CA made by M(certfleet.tls.private_ca), under the CA's policy - allowed domains and IP
    networks, maximum validity (397 days unless the CA says otherwise, and never beyond the CA certificate's own
    expiry) - and the key / DN rules of a CA O(profile).
  - Only the subject and the subject alternative names are taken from the CSR. Every other extension comes from the
    CA - C(CA:FALSE), key usage, extended key usage C(serverAuth), subject and authority key identifiers, CRL
    distribution points and AIA caIssuers URLs from the CA's settings (RFC 5280); a C(CA:TRUE) or any other
    extension requested in the CSR is ignored with a warning.
  - Serials are random 128-bit numbers, recorded with the certificate in the CA's issuance index.
  - Idempotent - with the same CSR the existing certificate (in O(path), or found in the CA's index) is kept until
    it enters its renewal window (O(renew_before_days)), is revoked, or O(force=true).
attributes:
  diff_mode:
    support: full
    details: The diff shows serial, SHA-256 fingerprint and validity end of the certificate in O(path).
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.store
  - certfleet.tls.certificate_files
options:
  ca:
    description: Name of the CA in the store.
    type: str
    required: true
  passphrase:
    description: Passphrase of the CA key.
    type: str
    required: true
  csr_path:
    description: The CSR (PEM or DER). One of O(csr_path) or O(csr_content) is required.
    type: path
  csr_content:
    description: The CSR as PEM text.
    type: str
  path:
    description: Where to write the certificate (PEM).
    type: path
    required: true
  validity_days:
    description: Validity in days; the CA's C(max_validity_days) when not given, which is also the upper limit.
    type: int
  renew_before_days:
    description: Issue a new certificate when the existing one expires within this many days.
    type: int
    default: 30
  force:
    description: Issue a new certificate even when the existing one is fine.
    type: bool
    default: false
  profile:
    description:
      - CA profile whose key, digest and DN rules the CSR must meet (see M(certfleet.tls.csr)). V(private) allows
        intranet names and IP addresses.
    type: raw
    default: private
  profiles:
    description: User-defined CA profiles by name, as in M(certfleet.tls.csr).
    type: dict
    default: {}
  requester:
    description: Who asked for the certificate, recorded in the CA's issuance index. Defaults to O(path).
    type: str
seealso:
  - module: certfleet.tls.private_ca
  - module: certfleet.tls.cert_chain
  - module: certfleet.tls.store_issue
"""

EXAMPLES = r"""
- name: Certificate for an intranet portal, 90 days
  certfleet.tls.private_ca_certificate:
    store_path: "{{ inventory_dir }}/cert_store"
    ca: intranet
    passphrase: "{{ certfleet_store_passphrase }}"
    csr_path: /etc/httpd/ssl/portal.csr
    path: /etc/httpd/ssl/portal.crt
    fullchain_path: /etc/httpd/ssl/portal.fullchain.crt
    validity_days: 90
  register: issued

- name: Renew two weeks before expiry
  certfleet.tls.private_ca_certificate:
    store_path: "{{ inventory_dir }}/cert_store"
    ca: intranet
    passphrase: "{{ certfleet_store_passphrase }}"
    csr_content: "{{ lookup('ansible.builtin.file', 'portal.csr') }}"
    path: /etc/httpd/ssl/portal.crt
    renew_before_days: 14
"""

RETURN = r"""
action:
  description: V(keep) (the certificate in O(path) is fine), V(reuse) (the CA already issued one for this CSR) or V(issue).
  returned: success
  type: str
reason:
  description: Why that action was chosen.
  returned: success
  type: str
serial:
  description: Serial number (hex). Null in check mode for a certificate not issued yet.
  returned: success
  type: str
sha256:
  description: SHA-256 fingerprint of the certificate.
  returned: success
  type: str
sha1:
  description: SHA-1 fingerprint (thumbprint).
  returned: success
  type: str
not_before:
  description: Start of validity (ISO 8601 UTC).
  returned: success
  type: str
not_after:
  description: End of validity (ISO 8601 UTC).
  returned: success
  type: str
subject:
  description: Subject DN.
  returned: success
  type: str
subject_alt_name:
  description: The SANs written into the certificate.
  returned: success
  type: list
  elements: str
certificate:
  description: The certificate in PEM.
  returned: success, unless a new certificate would be issued in check mode
  type: str
chain:
  description: The served chain (certificate, then CA certificates), each with subject, issuer, serial, fingerprints and dates.
  returned: success, unless a new certificate would be issued in check mode
  type: list
  elements: dict
policy_warnings:
  description: Notes from the policy check, for example ignored CSR extensions or a validity shortened to the CA's.
  returned: success
  type: list
  elements: str
policy_errors:
  description: Every broken rule, when the CSR is refused.
  returned: failure
  type: list
  elements: str
backup_files:
  description: Backups of replaced files, by option name.
  returned: when O(backup=true) and files were replaced
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.private_ca import commit_ca_files, opened_cas

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import load_csr
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._common.files import (
    check_writable_directory,
    read_file,
    write_with_module,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import (
    certificate_files_argument_spec,
    exit_with,
    require_cryptography,
    run_or_fail,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

OUTPUTS = ("path", "chain_path", "fullchain_path")


def load_request(params: dict):
    if params["csr_content"] is not None:
        return load_csr(params["csr_content"].encode("utf-8"), source="csr_content")
    data = read_file(params["csr_path"], option="csr_path")
    if data is None:
        raise CertfleetError(f"csr_path: '{params['csr_path']}' does not exist")
    return load_csr(data, source="csr_path")


def existing_certificate(data: bytes | None):
    if not data:
        return None
    try:
        return _chain.load_certificates(data, source="path").certificates[0].certificate
    except (CertfleetError, IndexError):
        return None


def view(certificate) -> dict:
    if certificate is None:
        return {"exists": False}
    info = _chain.certificate_info(certificate)
    return {"serial": info["serial"], "sha256": info["sha256"], "not_after": info["not_after"]}


def issue(module: AnsibleModule) -> dict:
    params = module.params
    # The CA name becomes <store>/ca/<ca>: checked first, by the one store name rule, so
    # "../../other/ca/netca" can never reach a CA (or its key) outside this store.
    layout.check_name(params["ca"], what="ca:")
    csr = load_request(params)
    outputs = {option: params[option] for option in OUTPUTS if params[option]}
    for option, path in outputs.items():
        check_writable_directory(path, option=option)
    with opened_cas(params["store_path"], [params["ca"]], check_mode=module.check_mode) as cas:
        ca = cas[params["ca"]]
        existing_data = {option: read_file(path, option=option) for option, path in outputs.items()}
        existing = existing_certificate(existing_data["path"])
        decision = _ca.decide_issue(
            ca, csr, existing=existing, passphrase=params["passphrase"], profile=params["profile"], profiles=params["profiles"],
            validity_days=params["validity_days"], renew_before_days=params["renew_before_days"], force=params["force"],
            requester=params["requester"] or params["path"], check_mode=module.check_mode,
            what=f"the CSR ({params['csr_path'] or 'csr_content'})")
        certificate = decision["certificate"]
        result = {"changed": decision["action"] != "keep", "action": decision["action"], "reason": decision["reason"],
                  "policy_warnings": decision["plan"]["warnings"], "serial": None, "sha256": None, "sha1": None,
                  "not_before": None, "not_after": None, "subject": decision["plan"]["subject_string"],
                  "subject_alt_name": decision["plan"]["subject_alt_name"]}
        if certificate is None:
            # Check mode, a certificate would be issued: nothing more is known.
            result["diff"] = {"before": view(existing), "after": {"exists": True, "serial": "(new)"}}
            return result
        chain = _ca.served_chain(ca, certificate)
        wanted = {"path": _ca.pem(certificate), "chain_path": _chain.chain_pem(chain), "fullchain_path": _chain.fullchain_pem(chain)}
        writes = {option: wanted[option] for option in outputs if existing_data[option] != wanted[option]}
        if not module.check_mode:
            # The CA's index first: every certificate that leaves the CA is known to it.
            commit_ca_files(ca, decision["ca_files"])
            backups = {}
            for option, content in writes.items():
                backup = write_with_module(module, outputs[option], content, backup=params["backup"], option=option)
                if backup:
                    backups[option] = backup
            if backups:
                result["backup_files"] = backups
    changed = result["changed"] or bool(writes)
    for option, path in outputs.items():
        if os.path.exists(path):
            changed = module.set_mode_if_different(path, params["mode"], changed)
            changed = module.set_owner_if_different(path, params["owner"], changed)
            changed = module.set_group_if_different(path, params["group"], changed)
    info = _chain.certificate_info(certificate)
    result.update({key: info[key] for key in ("serial", "sha256", "sha1", "not_before", "not_after", "subject")})
    result.update(changed=changed, certificate=_ca.pem(certificate).decode("ascii"), chain=_chain.chain_info(chain),
                  subject_alt_name=_ca.certificate_sans(certificate), diff={"before": view(existing), "after": view(certificate)})
    for warning in chain.warnings:
        module.warn(warning)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            certificate_files_argument_spec(),
            store_path=dict(type="path", required=True),
            ca=dict(type="str", required=True),
            passphrase=dict(type="str", required=True, no_log=True),
            csr_path=dict(type="path"),
            csr_content=dict(type="str"),
            path=dict(type="path", required=True),
            validity_days=dict(type="int"),
            renew_before_days=dict(type="int", default=30),
            force=dict(type="bool", default=False),
            profile=dict(type="raw", default="private"),
            profiles=dict(type="dict", default={}),
            requester=dict(type="str"),
        ),
        supports_check_mode=True,
        required_one_of=[("csr_path", "csr_content")],
        mutually_exclusive=[("csr_path", "csr_content")],
    )
    require_cryptography(module)
    if module.params["renew_before_days"] < 0:
        module.fail_json(msg="renew_before_days: must not be negative")
    result = run_or_fail(
        module,
        lambda: issue(module),
        doing=f"issuing {module.params['path']}",
        error_fields=lambda exc: {"policy_errors": exc.errors} if isinstance(exc, _ca.PolicyError) else {},
    )
    exit_with(module, result, warnings=result["policy_warnings"])


if __name__ == "__main__":
    main()
