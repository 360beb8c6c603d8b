# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """The store_path option of the modules that work on the controller-side certificate store."""

    DOCUMENTATION = r"""
options:
  store_path:
    description:
      - Root directory of the controller-side certificate store (its layout is described in the collection's docs/store.md).
      - The collection's roles and playbooks use C(lookup('certfleet.tls.store_path')), which is C(certfleet_store_path)
        when set, else C(cert_store) beside the inventory.
    type: path
    required: true
"""
