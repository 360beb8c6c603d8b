#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: iis_plan
short_description: Plan an IIS certificate deployment on the controller from the store and the host's facts
version_added: 0.3.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Decides, on the controller, everything the C(certfleet.tls.iis_ssl) role does on one IIS host, from the store's current
    certificate and the facts C(certfleet.tls.win_iis_facts) read there - the PFX encryption the host can import, which
    certificate goes into which LocalMachine store, same-name roots, lost key associations, one HTTPS binding per site
    with SNI and its C(sslFlags) bits kept, non-SNI IP:port collisions, the rollback of the bindings and the clean-up of
    old generations.
  - Writes the PFX (leaf and key only, no chain) mode 0600 into O(work_dir) when the host needs it; it is encrypted
    with a passphrase for this run only.
  - Run it with C(delegate_to=localhost); the store is on the controller.
attributes:
  check_mode:
    details: In check mode the plan is made the same way and no PFX is written (RV(plan.pfx_path) says where it would be).
  diff_mode:
    support: full
    details: Bindings and store changes by thumbprint; never key material.
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.store
options:
  store_passphrase:
    description: Passphrase of the keys in the store (keep it in Ansible Vault).
    type: str
  sites:
    description:
      - The host's HTTPS sites (the role's C(iis_ssl_sites)). Each has C(name) (the IIS site, which must exist),
        C(certificate) (a definition of the store), optional C(host) (host header; default the definition's
        C(common_name), else the certificate's; an empty string binds without a host name), C(port) (default 443),
        C(ip) (default C(*)) and C(sni) (default true; needs a host name and IIS 8 or later).
    type: list
    elements: dict
    required: true
  definitions:
    description:
      - The certificate definitions (C(certfleet_certificates)). Used for the default host name, the private CA whose root
        belongs to the chain, and C(deploy.key_policy) - V(shared) (default, one key copied to every server) or
        V(per_server) (each server has its own definition C(<definition>--<host>) in the store, with its own key and CSR).
    type: list
    elements: dict
    default: []
  facts:
    description: What C(certfleet.tls.win_iis_facts) returned for the host (its C(iis) value).
    type: dict
    required: true
  host:
    description: The host's inventory name; needed for C(key_policy=per_server) and names the PFX file.
    type: str
  certificate:
    description: Plan only the sites of this definition; default every definition the sites use.
    type: str
  key_policy:
    description:
      - V(auto) follows each definition's C(deploy.key_policy). V(shared) or V(per_server) asserts it - a shared-key
        deploy of a per_server definition is refused.
    type: str
    choices: [auto, shared, per_server]
    default: auto
  pfx_encryption:
    description:
      - V(auto) - AES-256-CBC with PBKDF2 and a SHA-256 MAC from Windows Server 2019 (build 17763) on; 3DES with a SHA-1
        MAC on Windows Server 2016 and older (they refuse AES PFX files with "The specified network password is not
        correct") and when the facts do not give the build.
      - V(modern) or V(compatible) (V(compatibility)) forces one.
    type: str
    choices: [auto, modern, compatible, compatibility]
    default: auto
  pfx_passphrase:
    description:
      - Passphrase of this run's PFX files. Recommended - the role creates one per run and passes it here and to the
        import, so the secret never appears in a task result.
      - Without it one is generated (C(secrets.token_urlsafe)) and returned in RV(pfx_passphrase); register that task
        with C(no_log=true).
    type: str
  install_root:
    description: Put the chain's root into the Root store when missing (a private CA's root; commercial roots come with Windows).
    type: bool
    default: false
  remove_conflicting_roots:
    description: Remove roots in Root with the intended root's name but another key; otherwise they are reported.
    type: bool
    default: false
  root_certificates:
    description: Files on the controller with candidate root certificates (PEM or DER), for chains of commercial CAs.
    type: list
    elements: path
    default: []
  keep_generations:
    description: Older generations of the definition (certificates in My with its friendly name) kept besides the deployed one.
    type: int
    default: 1
  key_exportable:
    description: Echoed into the plan; the import marks the key exportable only when true.
    type: bool
    default: false
  work_dir:
    description: Directory on the controller for the PFX files (created 0700 when missing).
    type: path
    required: true
requirements:
  - cryptography >= 42.0
notes:
  - The thumbprint is the SHA-1 of the certificate in upper-case hex, as Windows shows it; thumbprints are compared
    case-insensitively and without spaces or the invisible mark a copy from the certificate dialog brings.
seealso:
  - module: certfleet.tls.iis_offline_package
"""

EXAMPLES = r"""
- name: Plan the IIS deployment of this host
  certfleet.tls.iis_plan:
    store_path: "{{ lookup('certfleet.tls.store_path') }}"
    store_passphrase: "{{ certfleet_store_passphrase }}"
    sites:
      - {name: Default Web Site, certificate: www-example-co-jp}
    definitions: "{{ certfleet_certificates }}"
    facts: "{{ iis_facts.iis }}"
    host: "{{ inventory_hostname }}"
    pfx_passphrase: "{{ iis_run_pfx_passphrase }}"
    work_dir: "{{ playbook_dir }}/.certfleet-work"
  delegate_to: localhost
  register: iis_plan
"""

RETURN = r"""
plan:
  description: The plan of the one definition the sites use (or O(certificate)); null when they use several (see RV(plans)).
  returned: always
  type: dict
  contains:
    changed:
      description: Anything to do on the host.
      type: bool
    name:
      description: Store definition deployed (C(<definition>--<host>) under key_policy per_server).
      type: str
    definition:
      description: The definition as the sites name it.
      type: str
    key_policy:
      description: V(shared) or V(per_server).
      type: str
    pfx_path:
      description: The PFX on the controller; null when the certificate is already in My with its key.
      type: str
    pfx_encryption:
      description: V(modern) or V(compatible).
      type: str
    pfx_encryption_reason:
      description: Why that encryption.
      type: str
    key_exportable:
      description: Mark the key exportable on import.
      type: bool
    thumbprint:
      description: SHA-1 of the leaf in upper-case hex.
      type: str
    certificate:
      description: The leaf - C(name), C(sha256), C(subject) and C(not_after).
      type: dict
    intermediates:
      description: Intermediates missing from the CA store, each with C(thumbprint), C(subject) and C(pem).
      type: list
      elements: dict
    root:
      description: The root to add to Root (only with O(install_root)); null otherwise.
      type: dict
    conflicting_roots:
      description: Same-name roots with another key; C(action) is V(remove) or V(report).
      type: list
      elements: dict
    repair:
      description: Thumbprints in My without their private key (certutil -repairstore).
      type: list
      elements: str
    bindings:
      description:
        - One per site - C(site), C(ip), C(port), C(host), C(sni), C(ssl_flags), C(previous_thumbprint), C(previous_ssl_flags)
          and C(action) (V(add), V(switch) or V(unchanged)).
      type: list
      elements: dict
    rollback:
      description: What restores the bindings, the last change first.
      type: list
      elements: dict
    collisions:
      description: Non-SNI IP:port shared with other sites; those bindings are left alone.
      type: list
      elements: dict
    cleanup:
      description: Old generations to remove from My (never one still bound).
      type: list
      elements: str
    messages:
      description: What a person should know.
      type: list
      elements: str
plans:
  description: One plan per definition the sites use, in the order of first use.
  returned: always
  type: list
  elements: dict
pfx_passphrase:
  description: The generated PFX passphrase when O(pfx_passphrase) was not given (register the task with no_log).
  returned: when generated
  type: str
"""

import os
import secrets

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._common.files import read_file, write_file_atomic
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import exit_with, require_cryptography, run_or_fail
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import artifacts, iis
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import load_current


def _work_dir(path: str, *, create: bool) -> None:
    if os.path.isdir(path):
        return
    if os.path.exists(path):
        raise CertfleetError(f"work_dir: {path} is not a directory")
    if create:
        try:
            os.makedirs(path, mode=0o700)
        except OSError as exc:
            raise CertfleetError(f"work_dir: cannot create {path} ({exc.strerror})") from None


def run(module, passphrase: str) -> dict:
    params = module.params
    store_path = params["store_path"]
    options = {"pfx_encryption_option": params["pfx_encryption"], "install_root": params["install_root"],
               "remove_conflicting_roots": params["remove_conflicting_roots"], "keep_generations": params["keep_generations"],
               "key_exportable": params["key_exportable"]}
    plans = iis.plan_host(
        store_path=store_path, passphrase=params["store_passphrase"], sites=params["sites"], definitions=params["definitions"],
        facts=params["facts"], host=params["host"], certificate=params["certificate"], key_policy_option=params["key_policy"],
        root_certificates=params["root_certificates"], load=load_current,
        read=lambda path: read_file(path, option="root_certificates"),
        exists=lambda name: os.path.isdir(layout.certificate_dir(store_path, name)), options=options)
    _work_dir(params["work_dir"], create=not module.check_mode)
    token = secrets.token_hex(4)
    result_plans, before, after = [], {}, {}
    for plan, current in plans:
        if iis.pfx_needed(plan["thumbprint"], iis.normalise_facts(params["facts"])):
            path = os.path.join(params["work_dir"], iis.pfx_file_name(plan["name"], params["host"], plan["thumbprint"], token=token))
            plan["pfx_path"] = path
            if not module.check_mode:
                data = artifacts.pkcs12(current, passphrase=passphrase, encryption=iis.CHAIN_ENCRYPTION[plan["pfx_encryption"]],
                                        include_chain=False)
                write_file_atomic(path, data, option="work_dir")
        diff = iis.plan_diff(plan)
        before[plan["name"]], after[plan["name"]] = diff["before"], diff["after"]
        result_plans.append(plan)
    return {"changed": any(plan["changed"] for plan in result_plans), "plans": result_plans,
            "plan": result_plans[0] if len(result_plans) == 1 else None, "diff": {"before": before, "after": after}}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store_path=dict(type="path", required=True),
            store_passphrase=dict(type="str", no_log=True),
            sites=dict(type="list", elements="dict", required=True),
            definitions=dict(type="list", elements="dict", default=[]),
            facts=dict(type="dict", required=True),
            host=dict(type="str"),
            certificate=dict(type="str"),
            key_policy=dict(type="str", choices=["auto", "shared", "per_server"], default="auto"),
            pfx_encryption=dict(type="str", choices=list(iis.PFX_ENCRYPTION_CHOICES), default="auto"),
            pfx_passphrase=dict(type="str", no_log=True),
            install_root=dict(type="bool", default=False),
            remove_conflicting_roots=dict(type="bool", default=False),
            root_certificates=dict(type="list", elements="path", default=[]),
            keep_generations=dict(type="int", default=1),
            key_exportable=dict(type="bool", default=False),
            work_dir=dict(type="path", required=True),
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    generated = not module.params["pfx_passphrase"]
    passphrase = module.params["pfx_passphrase"] or secrets.token_urlsafe(32)
    result = run_or_fail(module, lambda: run(module, passphrase), doing="planning the IIS deployment",
                         fields={"changed": False})
    if generated:
        # Not added to module.no_log_values: Ansible would then replace the returned value itself with a mask
        # and the import could never read it. The task registering it must use no_log (see the documentation).
        result["pfx_passphrase"] = passphrase
    exit_with(module, result)


if __name__ == "__main__":
    main()
