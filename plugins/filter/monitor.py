# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters behind the cert_monitor role and the monitor / discover playbooks; the logic lives in module_utils/_scan/monitor.py."""

from __future__ import annotations

try:
    from ansible.utils.unsafe_proxy import wrap_var
except ImportError:  # pragma: no cover - an ansible-core without it never trusts a filter's result as a template
    def wrap_var(value):
        return value

from ansible_collections.certfleet.tls.plugins.module_utils._scan import monitor as _monitor
from ansible_collections.certfleet.tls.plugins.plugin_utils._filters import certfleet_filter, plain


def monitor_hosts(hostnames, hostvars):
    """name, verify_host and sites of every host among hostnames whose apache_ssl_sites deploy certificates."""
    variables = {}
    for name in hostnames or []:
        host = hostvars[name]
        # Only the few variables needed are read: hostvars templates each one on access.
        variables[str(name)] = {key: plain(host[key]) for key in _monitor.HOST_VARIABLES if key in host}
    return _monitor.monitor_hosts(variables)


def monitor_targets(definitions, store_path, defaults=None, hosts=None, discovered=None, trusted_ca_sets=None,
                    default_trusted_ca_set="default", exclude=None):
    """The cert_scan plan of a compliance run: targets, trusted CA sets, endpoints, skipped, covered."""
    return _monitor.monitor_targets(plain(definitions), store_path=str(store_path), defaults=plain(defaults),
                                    hosts=plain(hosts), discovered=plain(discovered),
                                    trusted_ca_sets=plain(trusted_ca_sets),
                                    default_trusted_ca_set=str(default_trusted_ca_set), exclude=plain(exclude))


def monitor_events(results, plan, store_path=None, only_changes=True):
    """Store events from cert_scan results (list or JSON lines) and the plan; only changes when only_changes."""
    return _monitor.monitor_events(plain(results), plain(plan), store_path=None if store_path is None else str(store_path),
                                   only_changes=bool(only_changes))


def monitor_verdict(summary, results, fail_on_critical=True, fail_on_warning=False, limit=20):
    """failed, message and lines naming the worst endpoints."""
    return _monitor.monitor_verdict(plain(summary), plain(results), fail_on_critical=bool(fail_on_critical),
                                    fail_on_warning=bool(fail_on_warning), limit=int(limit))


def discovered_certificates(results, plan, existing="", header=""):
    """added (new monitored_only definitions), text (the discovered-certificates file) and changed."""
    return _monitor.discovery_update(plain(results), plan=plain(plan) or {}, existing_text=str(existing or ""),
                                     header=str(header or ""))


def discovered_file(text):
    """The definitions of a discovered-certificates file's text; scanned strings come back unsafe (never templated)."""
    return wrap_var(_monitor.load_discovered(None if text is None else str(text)))


class FilterModule:
    """certfleet.tls filters for monitoring and discovery."""

    def filters(self):
        return {
            "monitor_hosts": certfleet_filter(monitor_hosts),
            "monitor_targets": certfleet_filter(monitor_targets),
            "monitor_events": certfleet_filter(monitor_events),
            "monitor_verdict": certfleet_filter(monitor_verdict),
            "discovered_certificates": certfleet_filter(discovered_certificates),
            "discovered_file": certfleet_filter(discovered_file),
        }
