# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stale_pending filter: definitions waiting at their CA too long (verify and monitor list them)."""

from __future__ import annotations

from ansible_collections.certfleet.tls.plugins.module_utils._scan import monitor as _monitor
from ansible_collections.certfleet.tls.plugins.plugin_utils._filters import certfleet_filter, plain


def stale_pending(definitions, store_path, older_than_days=_monitor.DEFAULT_PENDING_WARN_DAYS):
    """The definitions pending at their CA for older_than_days days or more."""
    return _monitor.stale_pending(plain(definitions), store_path=str(store_path), older_than_days=older_than_days)


class FilterModule:
    """certfleet.tls pending filter."""

    def filters(self):
        return {"stale_pending": certfleet_filter(stale_pending)}
