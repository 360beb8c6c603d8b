#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: iis_offline_package
short_description: Build an encrypted offline installation package for an IIS server Ansible cannot reach
version_added: 0.3.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - For one definition and one host (IIS 6 on Windows Server 2003, an air-gapped server), writes a package a person
    installs by hand - the PFX with the leaf and its key (3DES with a SHA-1 MAC by default, the scheme Windows Server
    2003 imports), the intermediate CA certificates (and the root when asked), C(INSTALL.txt) with the steps in the
    Certificates snap-in and IIS Manager, the SHA-1 thumbprint to compare after installing, and C(SHA256SUMS.txt).
  - The zip is encrypted the way C(openssl enc -aes-256-cbc -pbkdf2 -md sha256 -iter 600000) does, so it opens with
    OpenSSL 1.1.1 or later on any machine. The same passphrase opens the PFX. It goes another way than the package -
    given in O(passphrase), written to O(passphrase_file) (mode 0600), or returned in RV(passphrase).
  - After the person installed it, the C(certfleet.tls.verify) playbook confirms it from the network like any other host.
  - Runs on the controller (C(delegate_to=localhost)).
attributes:
  check_mode:
    details: Nothing is written in check mode.
  diff_mode:
    support: none
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.store
options:
  store_passphrase:
    description: Passphrase of the keys in the store (keep it in Ansible Vault).
    type: str
  certificate:
    description: The definition to package.
    type: str
    required: true
  host:
    description: The server the package is for (names the package; selects C(<definition>--<host>) under key_policy per_server).
    type: str
    required: true
  definitions:
    description: The certificate definitions (C(certfleet_certificates)), for C(deploy.key_policy) and the private CA's root.
    type: list
    elements: dict
    default: []
  key_policy:
    description: V(auto) follows the definition's C(deploy.key_policy); V(shared) refuses a per_server definition.
    type: str
    choices: [auto, shared, per_server]
    default: auto
  dest:
    description: Directory on the controller for the package (created 0700 when missing).
    type: path
    required: true
  passphrase:
    description: Passphrase of the package and of the PFX in it. Default a new one (6 groups of 5 letters and digits).
    type: str
  passphrase_file:
    description:
      - Where a generated passphrase is written (mode 0600) instead of being returned. Keep it apart from the package;
        send it another way than the package.
    type: path
  pfx_encryption:
    description: V(compatible) (3DES, SHA-1 MAC) for every Windows; V(modern) (AES-256, SHA-256 MAC) for Windows Server 2019 and later.
    type: str
    choices: [compatible, modern]
    default: compatible
  iis_version:
    description: Which IIS Manager the steps describe - V(6) (Directory Security > Server Certificate) or V(7), V(8), V(10) (Bindings).
    type: str
    choices: ['6', '7', '8', '10']
    default: '6'
  sites:
    description: The sites to name in the steps, each with C(name) and optional C(host) and C(port).
    type: list
    elements: dict
    default: []
  install_root:
    description: Include the chain's root for the Trusted Root Certification Authorities store.
    type: bool
    default: false
  root_certificates:
    description: Files with candidate root certificates (PEM or DER) for chains of commercial CAs.
    type: list
    elements: path
    default: []
  key_exportable:
    description: The steps tick 'Mark this key as exportable'.
    type: bool
    default: false
  force:
    description: Build a new package even when one for this certificate and host is in O(dest).
    type: bool
    default: false
requirements:
  - cryptography >= 42.0
seealso:
  - module: certfleet.tls.iis_plan
"""

EXAMPLES = r"""
- name: Offline package for the IIS 6 server legacy01
  certfleet.tls.iis_offline_package:
    store_path: "{{ lookup('certfleet.tls.store_path') }}"
    store_passphrase: "{{ certfleet_store_passphrase }}"
    certificate: www-example-co-jp
    host: legacy01
    definitions: "{{ certfleet_certificates }}"
    dest: "{{ playbook_dir }}/offline"
    passphrase_file: "{{ lookup('env', 'HOME') }}/.certfleet/legacy01.passphrase"
    sites:
      - {name: Default Web Site, port: 443}
  delegate_to: localhost
"""

RETURN = r"""
package_path:
  description: The encrypted package.
  returned: always
  type: str
package_sha256:
  description: SHA-256 of the package file, to compare after carrying it over (C(sha256sum)).
  returned: always
  type: str
thumbprint:
  description: SHA-1 thumbprint of the certificate (upper-case hex), to compare on the server after installing.
  returned: always
  type: str
manifest:
  description: Definition, host, thumbprint, SHA-256, subject, end of validity, PFX encryption, the files in the package
    and the command that opens it; no secret.
  returned: when built
  type: dict
passphrase:
  description: The generated passphrase when neither O(passphrase) nor O(passphrase_file) was given (register with no_log).
  returned: when generated without passphrase_file
  type: str
passphrase_file:
  description: Where the generated passphrase was written.
  returned: when O(passphrase_file) was used
  type: str
"""

import hashlib
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._common.files import read_file, write_file_atomic
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import exit_with, require_cryptography, run_or_fail
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import iis, offline
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import load_current


def run(module) -> tuple[dict, list]:
    params = module.params
    store_path = params["store_path"]
    definitions = iis.definitions_by_name(params["definitions"])
    definition = params["certificate"]
    name, _policy = iis.deploy_name(definition, definitions.get(definition), host=params["host"], policy=params["key_policy"],
                                    available=lambda item: os.path.isdir(layout.certificate_dir(store_path, item)))
    current = load_current(store_path, name, params["store_passphrase"])
    thumbprint = iis.certificate_thumbprint(current.leaf)
    dest = params["dest"]
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise CertfleetError(f"dest: {dest} is not a directory")
    path = os.path.join(dest, offline.package_file_name(name, params["host"], thumbprint))
    result = {"changed": False, "package_path": path, "thumbprint": thumbprint}
    existing = read_file(path, option="dest")
    if existing is not None and not params["force"]:
        result["package_sha256"] = hashlib.sha256(existing).hexdigest()
        return result, []
    passphrase_file = params["passphrase_file"]
    if passphrase_file and os.path.abspath(passphrase_file) == os.path.abspath(path):
        raise CertfleetError("passphrase_file must not be the package itself")
    warnings = []
    if passphrase_file and os.path.dirname(os.path.abspath(passphrase_file)) == os.path.abspath(dest):
        warnings.append("passphrase_file is in the same directory as the package; keep them apart and send them separately")

    def read(item):
        return read_file(item, option="root_certificates")

    candidates = (iis.private_ca_root(store_path, definitions.get(definition), read=read)
                  + iis.load_roots(params["root_certificates"], read=read))
    proper, _sent = iis.split_chain(current.intermediates)
    root = iis.find_root(proper[-1] if proper else current.leaf, candidates)
    passphrase = params["passphrase"] or offline.new_passphrase()
    sealed, manifest, package_warnings = offline.build_package(
        current, definition=definition, host=params["host"], passphrase=passphrase, root=root,
        install_root=params["install_root"], pfx_encryption=params["pfx_encryption"], iis_version=params["iis_version"],
        sites=params["sites"], key_exportable=params["key_exportable"])
    warnings.extend(package_warnings)
    result.update(changed=True, manifest=manifest, package_sha256=manifest["package_sha256"])
    if not module.check_mode:
        if not os.path.isdir(dest):
            try:
                os.makedirs(dest, mode=0o700)
            except OSError as exc:
                raise CertfleetError(f"dest: cannot create {dest} ({exc.strerror})") from None
        if not params["passphrase"] and passphrase_file:
            write_file_atomic(passphrase_file, passphrase.encode("ascii") + b"\n", option="passphrase_file")
        write_file_atomic(path, sealed, option="dest")
    if not params["passphrase"]:
        if passphrase_file:
            result["passphrase_file"] = passphrase_file
        else:
            result["passphrase"] = passphrase
    return result, warnings


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store_path=dict(type="path", required=True),
            store_passphrase=dict(type="str", no_log=True),
            certificate=dict(type="str", required=True),
            host=dict(type="str", required=True),
            definitions=dict(type="list", elements="dict", default=[]),
            key_policy=dict(type="str", choices=["auto", "shared", "per_server"], default="auto"),
            dest=dict(type="path", required=True),
            passphrase=dict(type="str", no_log=True),
            passphrase_file=dict(type="path"),
            pfx_encryption=dict(type="str", choices=["compatible", "modern"], default="compatible"),
            iis_version=dict(type="str", choices=list(offline.IIS_VERSIONS), default="6"),
            sites=dict(type="list", elements="dict", default=[]),
            install_root=dict(type="bool", default=False),
            root_certificates=dict(type="list", elements="path", default=[]),
            key_exportable=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    result, warnings = run_or_fail(module, lambda: run(module), doing="building the offline package", fields={"changed": False})
    exit_with(module, result, warnings=warnings)


if __name__ == "__main__":
    main()
