# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """Requirements and the backend option of the modules that make TLS handshakes (tls_probe, cert_scan)."""

    DOCUMENTATION = r"""
requirements:
  - cryptography >= 42.0
  - pyOpenSSL (optional, faster; without it Python's ssl module is used, which gives the full chain on Python 3.10 and newer)
options:
  backend:
    description: Handshake library; V(auto) uses pyOpenSSL when installed, else Python's ssl module.
    type: str
    choices: [auto, pyopenssl, stdlib]
    default: auto
"""
