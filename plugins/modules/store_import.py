#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: store_import
short_description: Adopt existing certificates and keys (files, a directory, running Apache hosts) into the store
version_added: 0.2.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Reads certificates, chains and private keys from files in any format (PEM, DER, PKCS#7 C(.p7b)/C(.p7c),
    PKCS#12 C(.pfx)/C(.p12), Java keystores JKS/JCEKS), from every file below a directory, and from what
    M(certfleet.tls.apache_tls_facts) found on running Apache hosts, and makes each server certificate a
    lifecycle-managed definition of the certificate store.
  - Certificates and keys are matched by public key, never by file name. The chain is the one the source served when
    it is in order, else built from every CA certificate of the import (and the CA product catalog).
  - The key is re-encrypted with the store passphrase on the way in; a CSR for it and the request state are written
    too, so the C(certfleet.tls.request) playbook finds the definition issued. An encrypted source key needs its
    passphrase (O(passphrases) or O(file_passphrases)).
  - Idempotent - the same certificate imported twice (from two hosts, two files or two runs) is one definition, and a
    second run writes nothing. A new certificate for the key of an existing definition becomes its next generation
    (the previous one archived).
  - A certificate whose key is not given (not readable on the host, not in the files) is not put in the store; its
    definition in the snippet is V(monitored_only), with the endpoints it was found on.
  - Every input is read and checked before anything is written, so a wrong passphrase, a key that matches no
    certificate, a damaged file or a wrong keystore password fails the task naming the file, and nothing is written.
  - Writes an inventory snippet (O(snippet_path)) with C(certfleet_certificates) and, for host imports,
    C(apache_ssl_sites) and C(apache_ssl_replace_vhosts), so that the C(certfleet.tls.deploy) playbook takes the sites
    over. Every value read from a host or a certificate that could start a template (it holds a brace) is tagged
    C(!unsafe) in it, so Ansible never renders it.
attributes:
  diff_mode:
    support: full
    details: The definitions that would be imported (name, action, SHA-256) and the snippet, before and after; never key material.
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.store
options:
  passphrase:
    description: The store passphrase; imported keys are encrypted with it (PKCS#8, AES-256-CBC).
    type: str
    required: true
  files:
    description: Files to import, each holding certificates, a chain, a key, or several of them.
    type: list
    elements: path
    default: []
  directory:
    description: Import every regular file below this directory (hidden names skipped; at most 10000 files).
    type: path
  file_passphrases:
    description: Passphrase (encrypted key, PKCS#12 or keystore password) of particular files, by path as given in O(files).
    type: dict
    default: {}
  passphrases:
    description: Passphrases tried in order for encrypted keys, PKCS#12 files and Java keystores without their own.
    type: list
    elements: str
    default: []
  hosts:
    description:
      - What M(certfleet.tls.apache_tls_facts) found, one entry per host - C(name) (inventory name), C(address)
        (where its sites are reached, for monitored-only endpoints) and C(facts) (the module's result without the keys).
      - The C(certfleet.tls.import) playbook builds this list.
    type: list
    elements: dict
    default: []
  private_keys:
    description: The PEM keys M(certfleet.tls.apache_tls_facts) returned (its RV(certfleet.tls.apache_tls_facts#module:private_keys)).
    type: list
    elements: str
    default: []
  snippet_path:
    description: Where to write the inventory snippet (YAML). Its directory must exist. Not written when not set.
    type: path
  snippet_format:
    description:
      - V(group_vars) - a vars file with C(certfleet_certificates), C(apache_ssl_sites) and C(apache_ssl_replace_vhosts),
        for a group whose hosts all serve the same sites (fails when they differ).
      - V(inventory) - an inventory file with C(certfleet_certificates) for all and the sites per host under O(snippet_group).
    type: str
    choices: [group_vars, inventory]
    default: group_vars
  snippet_group:
    description: The group of the web servers in an V(inventory) snippet.
    type: str
    default: webservers
  replace_vhosts:
    description:
      - List the hand-made vhost files of imported sites in C(apache_ssl_replace_vhosts), so that the deploy disables them
        in the same transaction as it writes certfleet's vhosts. V(false) leaves them in place.
    type: bool
    default: true
  catalog:
    description: Use the collection's CA product catalog (intermediates and cross-roots) to complete chains.
    type: bool
    default: true
notes:
  - Reading Java keystores needs the C(pyjks) Python library on the controller (requirements.txt).
seealso:
  - module: certfleet.tls.apache_tls_facts
  - module: certfleet.tls.store_request
"""

EXAMPLES = r"""
- name: Import what the CA sent and the key from the old server
  certfleet.tls.store_import:
    store_path: "{{ lookup('certfleet.tls.store_path') }}"
    passphrase: "{{ certfleet_store_passphrase }}"
    files:
      - /srv/import/www.example.co.jp.pfx
      - /srv/import/old-server.jks
    passphrases:
      - "{{ pfx_password }}"
    snippet_path: "{{ inventory_dir }}/group_vars/webservers/imported.yml"

- name: Import a whole directory of certificates and keys, check mode shows what would be imported
  certfleet.tls.store_import:
    store_path: "{{ lookup('certfleet.tls.store_path') }}"
    passphrase: "{{ certfleet_store_passphrase }}"
    directory: /srv/import/
  check_mode: true
  diff: true
"""

RETURN = r"""
certificates:
  description: One entry per server certificate found, sorted by definition name.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The definition (store) name.
      type: str
    action:
      description: V(imported) (new definition), V(renewed) (next generation of a definition with this key), V(unchanged), or V(monitored_only) (no key).
      type: str
    mode:
      description: V(lifecycle_managed) or V(monitored_only).
      type: str
    sha256:
      description: SHA-256 fingerprint of the certificate.
      type: str
    subject:
      description: Subject DN.
      type: str
    chain:
      description: Subjects of the intermediates stored with it, the leaf's issuer first.
      type: list
      elements: str
    sources:
      description: The files or host vhosts it was found in.
      type: list
      elements: str
    hosts:
      description: Inventory hosts that serve it.
      type: list
      elements: str
definitions:
  description: The definitions for C(certfleet_certificates), as in the snippet.
  returned: success
  type: list
  elements: dict
sites:
  description: Per inventory host, its C(apache_ssl_sites) (and C(apache_ssl_replace_vhosts)), as in the snippet.
  returned: success
  type: dict
snippet:
  description: The text of the inventory snippet.
  returned: success
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._adopt import adopt as _adopt
from ansible_collections.certfleet.tls.plugins.module_utils._adopt import snippet as _snippet
from ansible_collections.certfleet.tls.plugins.module_utils._common.files import read_file, write_file_atomic
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import exit_with, require_cryptography, run_or_fail

HEADER = ("Written by certfleet.tls.store_import: the certificates it adopted into the store.\n"
          "Values from hosts that could be templates are !unsafe (never rendered). Review, then use it as group_vars.")


def run(params: dict, *, check_mode: bool) -> dict:
    """The import as the module runs it: read, plan, write the store, then the snippet."""
    passphrases = [item for item in params["passphrases"] if item]
    materials = _adopt.read_files([{"path": path, "passphrase": params["file_passphrases"].get(path)}
                                   for path in params["files"]],
                                  directory=params["directory"], passphrases=passphrases)
    materials += _adopt.host_materials(params["hosts"], private_keys=params["private_keys"], passphrases=passphrases)
    if not materials:
        raise _adopt.CertfleetError("nothing to import: give files, directory or hosts")
    result = _adopt.run_import(store_path=params["store_path"], passphrase=params["passphrase"], materials=materials,
                               check_mode=check_mode, replace_vhosts=params["replace_vhosts"],
                               catalog=None if params["catalog"] else [])
    data = _snippet.snippet({"certfleet_certificates": result["definitions"], "hosts": result["hosts"]},
                            snippet_format=params["snippet_format"], group=params["snippet_group"])
    text = _snippet.dump(data, header=HEADER)
    before_text = None
    if params["snippet_path"]:
        before = read_file(params["snippet_path"], option="snippet_path")
        before_text = before.decode("utf-8", "replace") if before is not None else ""
        if before_text != text:
            result["changed"] = True
            if not check_mode:
                if not os.path.isdir(os.path.dirname(os.path.abspath(params["snippet_path"]))):
                    raise _adopt.CertfleetError(f"snippet_path: the directory of {params['snippet_path']} does not exist")
                write_file_atomic(params["snippet_path"], text.encode("utf-8"), option="snippet_path")
    lines = [f"{item['name']}: {item['action']} sha256 {item['sha256']}\n" for item in result["certificates"]]
    result["diff"] = {"before": before_text or "", "after": "".join(lines) + text}
    result["snippet"] = text
    result["snippet_path"] = params["snippet_path"]
    result["sites"] = result.pop("hosts")
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store_path=dict(type="path", required=True),
            passphrase=dict(type="str", required=True, no_log=True),
            files=dict(type="list", elements="path", default=[]),
            directory=dict(type="path"),
            file_passphrases=dict(type="dict", default={}, no_log=True),
            passphrases=dict(type="list", elements="str", default=[], no_log=True),
            hosts=dict(type="list", elements="dict", default=[]),
            private_keys=dict(type="list", elements="str", default=[], no_log=True),
            snippet_path=dict(type="path"),
            snippet_format=dict(type="str", choices=list(_snippet.FORMATS), default="group_vars"),
            snippet_group=dict(type="str", default="webservers"),
            replace_vhosts=dict(type="bool", default=True),
            catalog=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    result = run_or_fail(module, lambda: run(module.params, check_mode=module.check_mode), doing="importing certificates")
    exit_with(module, result, warnings=result.pop("warnings"))


if __name__ == "__main__":
    main()
