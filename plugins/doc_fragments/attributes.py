# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """Attributes every module shares; each module states its own diff_mode support.

    A module's own ``attributes:`` entries win over these, key by key, so a module only adds its
    ``details`` and its ``diff_mode`` support.
    """

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it predicts without modifying the target.
    support: full
  diff_mode:
    description: Returns what changed (or, in check mode, would change) when run with C(--diff).
  platform:
    description: Target OS families the module can run on.
    support: N/A
    platforms: posix
"""

    # With DOCUMENTATION, for a module that only reads.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    details: The module only reads, so check mode runs it the same way.
  diff_mode:
    support: N/A
    details: The module never changes anything.
"""
