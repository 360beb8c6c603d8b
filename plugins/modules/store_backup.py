#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: store_backup
short_description: Back up the certificate store into one encrypted archive, and export definitions as PKCS#12
version_added: 0.3.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Writes one encrypted archive of the whole controller-side store, or of the chosen O(definitions) and O(cas) - every
    directory and file with its mode, size and SHA-256 in a manifest, then the files.
  - The archive is zlib-compressed, then encrypted and authenticated with AES-256-GCM under a key derived from
    O(passphrase) with scrypt (N=2^17, r=8, p=1, random 16-byte salt), in chunks of 1 MiB, each with its own random nonce and with its index and
    a final flag authenticated, so a truncated, reordered or altered archive is refused by M(certfleet.tls.store_restore).
    The collection's docs/backup.md describes the format.
  - With O(directory), each run writes C(<prefix>-<UTC time>.cfbackup) and then removes the oldest archives of that
    prefix beyond O(keep).
  - Idempotence - with O(skip_unchanged) (the default), nothing is written when the newest archive (O(path) itself, or
    the newest in O(directory)) opens with O(passphrase), authenticates whole, and lists exactly the store's current
    entries (paths, modes, sizes, SHA-256). Otherwise every run writes an archive and reports C(changed).
  - On request, each definition in O(pkcs12) is also exported as C(<definition>.pfx) into O(pkcs12_path) for Windows
    administrators, with the key, the certificate and its chain, under O(pkcs12_passphrase).
  - Runs on the controller; backups must be kept outside the store.
attributes:
  check_mode:
    details: Nothing is written or removed; the result says what would be archived, where, and which archives rotation
      would remove. The newest archive is still read to decide whether it is unchanged.
  diff_mode:
    support: none
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.store
options:
  passphrase:
    description:
      - Passphrase the archive is encrypted under. Keep it in Ansible Vault, and somewhere a restore can reach without
        the store (a backup that needs the lost store to open it restores nothing).
    type: str
    required: true
  path:
    description: The archive file to write (replaced atomically). One of O(path) or O(directory) is required.
    type: path
  directory:
    description: Folder for archives named by UTC time, with rotation (O(keep)). Created (mode 0700) when missing.
    type: path
  prefix:
    description: Name prefix of the archives in O(directory); rotation only touches archives of this prefix.
    type: str
    default: certfleet-store
  keep:
    description: How many archives of O(prefix) to keep in O(directory), newest first; V(0) keeps all.
    type: int
    default: 0
  definitions:
    description: Archive only these definitions (their whole directories). With O(cas), only those; neither means the whole store.
    type: list
    elements: str
  cas:
    description: Archive only these private CAs (their whole directories, issued copies and root included).
    type: list
    elements: str
  skip_unchanged:
    description: Write nothing when the newest archive already holds exactly the store's current content.
    type: bool
    default: true
  pkcs12:
    description: Definitions to export as PKCS#12 (their current certificate, chain and key).
    type: list
    elements: str
  pkcs12_path:
    description: Folder of the PKCS#12 exports (C(<definition>.pfx), mode 0600); not inside the store.
    type: path
  pkcs12_passphrase:
    description: Passphrase of the PKCS#12 files, given to the Windows administrator separately.
    type: str
  pkcs12_encryption:
    description:
      - V(modern) is AES-256-CBC with PBKDF2 (PBES2) and a SHA-256 MAC (Windows Server 2019 and later, OpenSSL 3).
      - V(compatibility) is 3DES with a SHA-1 MAC, the newest scheme Windows Server 2016 and older import.
    type: str
    choices: [modern, compatibility]
    default: modern
  store_passphrase:
    description: The store passphrase, to open the definitions' keys for O(pkcs12).
    type: str
seealso:
  - module: certfleet.tls.store_restore
notes:
  - File owners and modification times are not archived; a restore makes the files owned by the user running it.
"""

EXAMPLES = r"""
- name: Back up the store, keeping the last 14 archives
  certfleet.tls.store_backup:
    store_path: "{{ lookup('certfleet.tls.store_path') }}"
    passphrase: "{{ certfleet_backup_passphrase }}"
    directory: /var/backups/certfleet
    keep: 14
  delegate_to: localhost

- name: Archive one definition and its CA, and export it for an IIS administrator
  certfleet.tls.store_backup:
    store_path: "{{ lookup('certfleet.tls.store_path') }}"
    passphrase: "{{ certfleet_backup_passphrase }}"
    path: /srv/handover/portal.cfbackup
    definitions: [portal-example-intra]
    cas: [example-intranet]
    pkcs12: [portal-example-intra]
    pkcs12_path: /srv/handover
    pkcs12_passphrase: "{{ portal_pfx_passphrase }}"
    pkcs12_encryption: compatibility
    store_passphrase: "{{ certfleet_store_passphrase }}"
  delegate_to: localhost
"""

RETURN = r"""
archive:
  description: The archive written (or, in check mode, that would be), or the newest one when nothing changed.
  returned: always
  type: str
written:
  description: Whether an archive was (or would be) written.
  returned: always
  type: bool
archive_size:
  description: Size of the archive in bytes (0 in check mode).
  returned: always
  type: int
content_sha256:
  description: SHA-256 of the manifest's entries; equal for two archives of the same store content.
  returned: always
  type: str
entries:
  description: Directories and files archived.
  returned: always
  type: int
files:
  description: Files archived.
  returned: always
  type: int
size:
  description: Bytes of file content archived.
  returned: always
  type: int
scope:
  description: V(store) for the whole store, V(selected) for chosen definitions and CAs.
  returned: always
  type: str
definitions:
  description: Definitions in the archive.
  returned: always
  type: list
  elements: str
cas:
  description: Private CAs in the archive.
  returned: always
  type: list
  elements: str
removed:
  description: Old archives removed (or, in check mode, that would be) by rotation.
  returned: always
  type: list
  elements: str
pkcs12:
  description: The PKCS#12 exports, each with C(name), C(path), C(changed) and C(encryption).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._store.backup import run_backup
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import exit_with, require_cryptography, run_or_fail


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store_path=dict(type="path", required=True),
            passphrase=dict(type="str", required=True, no_log=True),
            path=dict(type="path"),
            directory=dict(type="path"),
            prefix=dict(type="str", default="certfleet-store"),
            keep=dict(type="int", default=0),
            definitions=dict(type="list", elements="str"),
            cas=dict(type="list", elements="str"),
            skip_unchanged=dict(type="bool", default=True),
            pkcs12=dict(type="list", elements="str"),
            pkcs12_path=dict(type="path"),
            pkcs12_passphrase=dict(type="str", no_log=True),
            pkcs12_encryption=dict(type="str", choices=["modern", "compatibility"], default="modern"),
            store_passphrase=dict(type="str", no_log=True),
        ),
        mutually_exclusive=[("path", "directory")],
        required_one_of=[("path", "directory")],
        supports_check_mode=True,
    )
    require_cryptography(module)
    result = run_or_fail(module, lambda: run_backup(module.params, check_mode=module.check_mode),
                         doing="backing up the certificate store")
    exit_with(module, result)


if __name__ == "__main__":
    main()
