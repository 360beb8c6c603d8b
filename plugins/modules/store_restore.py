#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: store_restore
short_description: Restore the certificate store from an encrypted archive of certfleet.tls.store_backup
version_added: 0.3.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Restores an archive written by M(certfleet.tls.store_backup) into O(store_path), byte for byte - every directory
    and file with its mode.
  - The whole archive is authenticated and every file's SHA-256 checked before anything is written; then it is
    extracted into a private directory beside O(store_path), checked again, and renamed into place. A wrong
    passphrase, a truncated or altered archive, a manifest path that would leave the target (C(..), absolute, a
    symbolic link), an oversized entry, or a non-empty target without O(force) fails with a message naming the
    problem, and nothing is written.
  - O(store_path) must be missing or empty, unless O(force=true); then the current store is moved aside to
    C(<store_path>.replaced-<UTC time>) (kept, never deleted) and the archive takes its place.
  - An archive of selected definitions and CAs (O(certfleet.tls.store_backup#module:definitions),
    O(certfleet.tls.store_backup#module:cas)) restored with O(force=true) into a non-empty store replaces only their
    directories, one rename each; the current ones are kept aside under C(<store_path>.replaced-<UTC time>/), and
    every other definition is left alone. A failure puts back the directories already swapped.
  - Idempotent - a target that already holds exactly the archive's entries is left alone (not changed), even
    without O(force).
  - Runs on the controller.
attributes:
  check_mode:
    details: The archive is read and authenticated whole; nothing is written. The result says what would be restored.
  diff_mode:
    support: none
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.store
options:
  src:
    description:
      - The archive. A directory means the newest archive of O(prefix) in it (by the UTC time in its name).
    type: path
    required: true
  passphrase:
    description: Passphrase the archive was encrypted under.
    type: str
    required: true
  force:
    description:
      - Replace a non-empty O(store_path); its current content is kept aside as C(<store_path>.replaced-<UTC time>).
      - With an archive of selected definitions and CAs, only their directories are replaced.
    type: bool
    default: false
  prefix:
    description: Name prefix of the archives when O(src) is a directory.
    type: str
    default: certfleet-store
seealso:
  - module: certfleet.tls.store_backup
"""

EXAMPLES = r"""
- name: Restore the newest backup into a new store
  certfleet.tls.store_restore:
    src: /var/backups/certfleet
    store_path: "{{ lookup('certfleet.tls.store_path') }}"
    passphrase: "{{ certfleet_backup_passphrase }}"
  delegate_to: localhost

- name: Replace a damaged store with one archive (the old one is kept aside)
  certfleet.tls.store_restore:
    src: /var/backups/certfleet/certfleet-store-20261206T030000Z.cfbackup
    store_path: "{{ lookup('certfleet.tls.store_path') }}"
    passphrase: "{{ certfleet_backup_passphrase }}"
    force: true
  delegate_to: localhost
"""

RETURN = r"""
archive:
  description: The archive restored (O(src), or the newest archive in it).
  returned: always
  type: str
replaced:
  description: Where the previous content of O(store_path) (or of the selected directories) was moved (O(force)), or null.
  returned: always
  type: str
created:
  description: When the archive was written (ISO 8601 UTC).
  returned: always
  type: str
content_sha256:
  description: SHA-256 of the manifest's entries.
  returned: always
  type: str
entries:
  description: Directories and files restored.
  returned: always
  type: int
files:
  description: Files restored.
  returned: always
  type: int
size:
  description: Bytes of file content restored.
  returned: always
  type: int
scope:
  description: V(store) for an archive of the whole store, V(selected) for chosen definitions and CAs.
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
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._store.backup import run_restore
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import exit_with, require_cryptography, run_or_fail


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            store_path=dict(type="path", required=True),
            passphrase=dict(type="str", required=True, no_log=True),
            force=dict(type="bool", default=False),
            prefix=dict(type="str", default="certfleet-store"),
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    result = run_or_fail(module, lambda: run_restore(module.params, check_mode=module.check_mode),
                         doing="restoring the certificate store")
    exit_with(module, result)


if __name__ == "__main__":
    main()
