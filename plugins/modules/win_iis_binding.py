#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The module is PowerShell (win_iis_binding.ps1); this file only documents it.

from __future__ import annotations

DOCUMENTATION = r"""
module: win_iis_binding
short_description: Switch IIS HTTPS bindings to a certificate one binding at a time, keeping every sslFlags bit, with rollback
version_added: 0.3.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - With O(state=present), points each binding of O(bindings) (IIS site, IP, port, host name) at the certificate O(thumbprint)
    in one commit per binding, adding the HTTPS binding when it is missing. Returns RV(record), the previous thumbprint and
    flags of each binding - the rollback record.
  - C(sslFlags) - bit 1 SNI and bit 2 central certificate store come from the binding's C(ssl_flags) (or C(sni)); every
    higher bit the binding has now (IIS 10 - disable HTTP/2, disable OCSP stapling, disable QUIC, disable TLS 1.3 over TCP,
    disable legacy TLS) is kept. M(microsoft.iis.website) rebuilds the flags from C(use_sni) and C(use_ccs) only, which
    clears those bits; that is why this module exists.
  - After each commit the http.sys SSL table (C(netsh http show sslcert)) must serve the new thumbprint on that endpoint,
    else the module fails naming both.
  - With O(state=rollback), puts each binding of O(record) back to its C(previous_thumbprint) and C(previous_ssl_flags), and
    removes a binding the run added (C(existed=false)).
  - Thumbprints are compared case-insensitively. This module has not been run on a real Windows host (see C(docs/iis.md)).
attributes:
  check_mode:
    support: full
    details: Nothing is committed; RV(record) and RV(bindings) say what would change.
  diff_mode:
    support: full
    details: Each binding's thumbprint and flags before and after.
  platform:
    description: Target OS families the module can run on.
    support: full
    platforms: windows
extends_documentation_fragment:
  - certfleet.tls.attributes
options:
  state:
    description: V(present) switches O(bindings); V(rollback) restores O(record).
    type: str
    choices: [present, rollback]
    default: present
  thumbprint:
    description: The certificate the bindings get (required with O(state=present)); it must be in O(certificate_store).
    type: str
  certificate_store:
    description: The C(LocalMachine) store of the certificate.
    type: str
    default: My
  bindings:
    description: The bindings to switch, as M(certfleet.tls.iis_plan) returns them (C(plan.bindings)).
    type: list
    elements: dict
    default: []
    suboptions:
      site:
        description: IIS site name.
        type: str
        required: true
      ip:
        description: IP address, V(*) for all.
        type: str
        default: '*'
      port:
        description: Port.
        type: int
        default: 443
      host:
        description: Host name (SNI); empty for an IP:port binding.
        type: str
        default: ''
      sni:
        description: Require SNI (flag 1), when C(ssl_flags) is not given.
        type: bool
        default: true
      ssl_flags:
        description: The flags planned; bits above 2 the binding has now are kept whatever this says.
        type: int
      previous_thumbprint:
        description: The thumbprint the plan saw (informational; the module reads the binding itself).
        type: str
      previous_ssl_flags:
        description: The flags the plan saw (informational).
        type: int
      action:
        description: The plan's action (informational).
        type: str
  record:
    description: With O(state=rollback), RV(record) of the run to undo.
    type: list
    elements: dict
    default: []
    suboptions:
      site:
        description: IIS site name.
        type: str
        required: true
      ip:
        description: IP address.
        type: str
        default: '*'
      port:
        description: Port.
        type: int
        default: 443
      host:
        description: Host name.
        type: str
        default: ''
      existed:
        description: The binding existed before the run (else the rollback removes it).
        type: bool
        default: true
      previous_thumbprint:
        description: The thumbprint to restore.
        type: str
      previous_ssl_flags:
        description: The flags to restore.
        type: int
        default: 0
      thumbprint:
        description: The thumbprint the run set (informational).
        type: str
  verify_http_sys:
    description: Check after each commit that http.sys serves the new thumbprint on the endpoint.
    type: bool
    default: true
seealso:
  - module: certfleet.tls.win_iis_facts
  - module: certfleet.tls.win_iis_certificate
  - module: microsoft.iis.website
  - name: docs/iis.md
    description: The iis_ssl flow and what was tested how.
    link: https://github.com/certfleet/certfleet.tls/blob/main/docs/iis.md
"""

EXAMPLES = r"""
- name: Switch the planned bindings
  certfleet.tls.win_iis_binding:
    thumbprint: "{{ plan.thumbprint }}"
    bindings: "{{ plan.bindings }}"
  register: switched

- name: Put them back
  certfleet.tls.win_iis_binding:
    state: rollback
    record: "{{ switched.record }}"
"""

RETURN = r"""
record:
  description:
    - One entry per binding of O(bindings) - C(site), C(ip), C(port), C(host), C(existed), C(previous_thumbprint),
      C(previous_ssl_flags), C(thumbprint), C(ssl_flags), C(changed). Give it back as O(record) to roll back.
  returned: state=present
  type: list
  elements: dict
bindings:
  description: The same entries for every binding handled (also with O(state=rollback)).
  returned: always
  type: list
  elements: dict
"""
