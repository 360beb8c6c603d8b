#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The module is PowerShell (win_iis_facts.ps1); this file only documents it.

from __future__ import annotations

DOCUMENTATION = r"""
module: win_iis_facts
short_description: Read what an IIS host has for TLS - OS build, certificate stores, site bindings, the http.sys SSL table
version_added: 0.3.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Reads the Windows version and build (C(Win32_OperatingSystem)), the certificates of the C(LocalMachine) stores named in
    O(stores) with C(HasPrivateKey), every IIS site with its bindings and C(sslFlags) (Microsoft.Web.Administration, the API
    behind IIS Manager), and the http.sys SSL certificate table (C(netsh http show sslcert)).
  - The result is what M(certfleet.tls.iis_plan) decides from on the controller (PFX encryption by OS build, which certificates
    are missing, same-name roots, lost key associations, bindings and their flags, shared IP:port bindings).
  - Thumbprints are returned in upper case, as Windows shows them.
  - The http.sys table is read by the shape of its values, not by its labels, which Windows translates (a Japanese Windows
    prints Japanese labels).
  - This module has not been run on a real Windows host; the role's contract tests run a fake of it (see C(docs/iis.md)).
attributes:
  platform:
    description: Target OS families the module can run on.
    support: full
    platforms: windows
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.attributes.info_module
options:
  stores:
    description: The C(LocalMachine) certificate stores to list.
    type: list
    elements: str
    default: [My, CA, Root]
  max_certificates:
    description: At most this many certificates are listed per store (a warning says when more are there).
    type: int
    default: 2000
notes:
  - IIS missing is not an error - RV(iis.iis_installed) is false and RV(iis.sites) empty.
seealso:
  - module: certfleet.tls.win_iis_certificate
  - module: certfleet.tls.win_iis_binding
  - name: docs/iis.md
    description: The iis_ssl flow and what was tested how.
    link: https://github.com/certfleet/certfleet.tls/blob/main/docs/iis.md
"""

EXAMPLES = r"""
- name: Read the host's certificates and bindings
  certfleet.tls.win_iis_facts:
  register: iis_facts

- name: Show the HTTPS bindings
  ansible.builtin.debug:
    msg: "{{ iis_facts.iis.sites | map(attribute='bindings') | flatten | selectattr('protocol', 'eq', 'https') | list }}"
"""

RETURN = r"""
iis:
  description: What the host has.
  returned: success
  type: dict
  contains:
    os:
      description: C(version) (V(10.0.17763)), C(build) (integer) and C(caption) of Windows.
      type: dict
      returned: success
    iis_installed:
      description: Whether IIS (Microsoft.Web.Administration) is on the host.
      type: bool
      returned: success
    certificates:
      description:
        - One list per store of O(stores); each certificate with C(thumbprint), C(subject), C(issuer), C(not_after)
          (ISO 8601, UTC), C(has_private_key) and C(friendly_name).
      type: dict
      returned: success
      sample: {"My": [{"thumbprint": "3A1F...9C", "subject": "CN=www.example.co.jp", "has_private_key": true}], "CA": [], "Root": []}
    sites:
      description:
        - Each IIS site with C(name), C(id) and C(bindings) - C(protocol), C(ip) (V(*) for all addresses), C(port), C(host),
          C(ssl_flags), C(certificate_hash) (upper-case hex or null) and C(certificate_store).
      type: list
      elements: dict
      returned: success
    sslcert:
      description:
        - The http.sys SSL table, each entry with C(ip_port) (V(0.0.0.0:443)) or C(host_port) (V(www.example.co.jp:443)),
          C(thumbprint) and C(store).
      type: list
      elements: dict
      returned: success
"""
