#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The module is PowerShell (win_iis_certificate.ps1); this file only documents it.

from __future__ import annotations

DOCUMENTATION = r"""
module: win_iis_certificate
short_description: Put a certificate into Windows for IIS - machine key storage, intermediates to CA, repairs, clean-up
version_added: 0.3.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - With O(state=present), imports the PFX at O(pfx_path) (the leaf and its key only) into C(LocalMachine\My) with
    machine key storage (C(MachineKeySet) and C(PersistKeySet), C(Exportable) only with O(key_exportable)). A key stored in
    a user profile makes IIS bindings fail with C(A specified logon session does not exist).
  - Adds each of O(intermediates) to C(LocalMachine\CA) - never to C(My) beside the leaf - and O(root) to C(LocalMachine\Root)
    (given only when the root is to be installed). Each PEM must have the thumbprint it is listed with.
  - Removes or reports (per entry's C(action)) the roots of O(conflicting_roots) - old roots with the same name as the
    chain's root make Windows build the old chain.
  - Runs C(certutil -repairstore my <thumbprint>) for each of O(repair) (a certificate whose key association is lost), and
    for the leaf when it has no private key after the import; then fails clearly when C(HasPrivateKey) stays false.
  - Grants read on the private key file to O(app_pool_identity) when given.
  - Deletes the copied PFX (O(remove_pfx)) whatever happened.
  - With O(state=absent), removes the certificates of O(thumbprints) from C(LocalMachine\My) with their key files, except
    those an IIS binding or the http.sys SSL table still uses (listed in RV(kept_bound), with a warning).
  - Thumbprints are compared case-insensitively (spaces and colons ignored).
  - The decisions come from M(certfleet.tls.iis_plan); this module has not been run on a real Windows host (see C(docs/iis.md)).
attributes:
  check_mode:
    support: full
    details: Nothing is imported, added, removed, repaired or deleted; RV(actions) lists what would be. The PFX is not opened.
  diff_mode:
    support: full
    details: The thumbprints of C(My), C(CA) and C(Root) before and after (no key material).
  platform:
    description: Target OS families the module can run on.
    support: full
    platforms: windows
extends_documentation_fragment:
  - certfleet.tls.attributes
options:
  state:
    description: V(present) imports and repairs; V(absent) removes O(thumbprints).
    type: str
    choices: [present, absent]
    default: present
  thumbprint:
    description: The leaf's SHA-1 thumbprint (required with O(state=present)). The import checks the PFX holds it.
    type: str
  pfx_path:
    description: Path of the PFX on the host. Not needed when the certificate is already in C(My) with its key.
    type: path
  pfx_passphrase:
    description: The PFX's passphrase. Never logged.
    type: str
  key_exportable:
    description: Import the key as exportable. Leave false unless the key must be exported again from this host.
    type: bool
    default: false
  intermediates:
    description: Certificates for C(LocalMachine\CA) - C(thumbprint), C(subject), C(pem).
    type: list
    elements: dict
    default: []
    suboptions: &cert
      thumbprint:
        description: SHA-1 thumbprint.
        type: str
        required: true
      subject:
        description: Subject, for messages.
        type: str
      pem:
        description: The certificate (PEM).
        type: str
      not_after:
        description: End of validity, for messages.
        type: str
      action:
        description: For O(conflicting_roots) - V(remove) it from C(Root), or V(report) it (a warning).
        type: str
        choices: [remove, report]
        default: report
  root:
    description: A root certificate for C(LocalMachine\Root) (the private CA's, when it is to be installed).
    type: dict
    suboptions: *cert
  conflicting_roots:
    description: Roots in C(LocalMachine\Root) with the chain root's name but another key or validity, with their C(action).
    type: list
    elements: dict
    default: []
    suboptions: *cert
  repair:
    description: Thumbprints in C(My) whose key association is lost; C(certutil -repairstore my) runs for each.
    type: list
    elements: str
    default: []
  app_pool_identity:
    description: An account (for example C(IIS AppPool\DefaultAppPool)) that gets read on the private key file.
    type: str
  remove_pfx:
    description: Delete O(pfx_path) at the end, also on failure.
    type: bool
    default: true
  thumbprints:
    description: With O(state=absent), the certificates to remove from C(My).
    type: list
    elements: str
    default: []
seealso:
  - module: certfleet.tls.win_iis_facts
  - module: certfleet.tls.win_iis_binding
  - module: ansible.windows.win_certificate_store
  - name: docs/iis.md
    description: The iis_ssl flow and what was tested how.
    link: https://github.com/certfleet/certfleet.tls/blob/main/docs/iis.md
"""

EXAMPLES = r"""
- name: Import the PFX the plan wrote, with its intermediates
  certfleet.tls.win_iis_certificate:
    thumbprint: "{{ plan.thumbprint }}"
    pfx_path: C:\Windows\Temp\certfleet-portal.pfx
    pfx_passphrase: "{{ pfx_passphrase }}"
    intermediates: "{{ plan.intermediates }}"
    conflicting_roots: "{{ plan.conflicting_roots }}"
    repair: "{{ plan.repair }}"
  no_log: true

- name: Remove old generations that no binding uses
  certfleet.tls.win_iis_certificate:
    state: absent
    thumbprints: ["0A1B2C3D4E5F60718293A4B5C6D7E8F901234567"]
"""

RETURN = r"""
thumbprint:
  description: The leaf's thumbprint (upper case).
  returned: state=present
  type: str
has_private_key:
  description: The certificate in C(My) reaches its private key (checked after the import and repairs).
  returned: state=present and not check mode
  type: bool
actions:
  description: What was done per certificate - C(thumbprint), C(store), C(action) (V(imported), V(added), V(unchanged),
    V(repaired), V(removed), V(reported), V(granted), V(kept_bound)) and C(detail).
  returned: always
  type: list
  elements: dict
reported_roots:
  description: Conflicting roots left in place (C(action=report)), with C(thumbprint) and C(subject).
  returned: always
  type: list
  elements: dict
kept_bound:
  description: With O(state=absent), thumbprints not removed because a binding still uses them.
  returned: always
  type: list
  elements: str
pfx_removed:
  description: The copied PFX was deleted.
  returned: when it existed
  type: bool
"""
