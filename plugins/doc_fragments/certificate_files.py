# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """The certificate files a module writes; matches _common.module.certificate_files_argument_spec()."""

    DOCUMENTATION = r"""
options:
  fullchain_path:
    description:
      - Write the server certificate followed by the intermediate CA certificates (Apache 2.4.8 and later
        C(SSLCertificateFile), nginx C(ssl_certificate)).
    type: path
  chain_path:
    description:
      - Write the intermediate CA certificates only (Apache before 2.4.8 C(SSLCertificateChainFile)).
      - Empty when the server certificate is signed by a root directly.
    type: path
  backup:
    description: Keep a timestamped copy of each written file before it is replaced.
    type: bool
    default: false
  mode:
    description: Permissions of the written files that hold no private key.
    type: raw
    default: '0644'
  owner:
    description: Owner of the written files.
    type: str
  group:
    description: Group of the written files.
    type: str
"""
