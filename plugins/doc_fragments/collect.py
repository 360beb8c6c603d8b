# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """The options of collecting certificates dropped into the store's incoming/ folders."""

    DOCUMENTATION = r"""
options:
  pkcs12_password:
    description:
      - Password of the PKCS#12 (PFX) files dropped in, when one password opens them all.
      - A file without a password needs none; a wrong password fails the run naming the file.
    type: str
  pkcs12_passwords:
    description:
      - Passwords of particular PKCS#12 files, by file name as it lies in C(incoming/), overriding O(pkcs12_password).
    type: dict
    default: {}
  intermediates:
    description:
      - A pile of intermediate and cross-root certificates offered to every chain, besides the certificates in the
        dropped files themselves. Each entry is a file path (PEM, DER, PKCS#7) or PEM text.
      - When an intermediate is missing, the error names it from the CA product catalog (which certificate to download).
    type: list
    elements: str
    default: []
  trust_anchors:
    description:
      - Root certificates a collected certificate's chain must reach, each a file path or PEM text.
      - A root dropped into C(incoming/) is never trusted by being there.
    type: list
    elements: str
    default: []
  system_trust:
    description: The operating system's CA bundle counts as trust anchors too.
    type: bool
    default: true
  aia:
    description:
      - Fetch a missing issuer from the certificate's AIA caIssuers URL (RFC 5280 4.2.2.1), at most 4 fetches of at
        most 1 MiB each, with a time limit. Off by default (no network access unless asked for).
    type: bool
    default: false
  prefer:
    description:
      - Which chain to install when there are several (a cross-signed root), as M(certfleet.tls.cert_chain) chooses
        it. V(shortest) ends at the newest root; V(cross_root) keeps the cross-root certificate for old clients.
    type: str
    choices: [shortest, cross_root]
    default: shortest
  max_file_size:
    description: Largest drop-in file read, in bytes; a larger file fails the run naming it.
    type: int
    default: 1048576
  max_files:
    description: Most files read from the drop-in folders in one run.
    type: int
    default: 5000
"""
