# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role-neutral filters of a deployment's result; the logic lives in module_utils/_deploy/results.py."""

from __future__ import annotations

from ansible_collections.certfleet.tls.plugins.module_utils._deploy import results as _results
from ansible_collections.certfleet.tls.plugins.plugin_utils._filters import certfleet_filter, plain


def deploy_result(rows, target, sites=None, failure=None, deployed=False, transaction=None, certificates=None,
                  configtest=None, configtest_command="apachectl -t"):
    """certfleet_deploy_result of one host: ok, failure, deployed, checked, transaction, certificates, sites, host problems."""
    findings = _results.configtest_findings(plain(configtest), command=str(configtest_command))
    return _results.deploy_result(plain(rows), target=str(target), sites=plain(sites),
                                  failure=None if failure in (None, "") else str(failure), deployed=bool(deployed),
                                  transaction=None if transaction in (None, "") else str(transaction),
                                  certificates=plain(certificates), host_problems=findings["problems"],
                                  host_notes=findings["notes"])


def deploy_events(result, host, record_verified=False):
    """deployed / verified / verify_failed store events of a certfleet_deploy_result."""
    return _results.deploy_events(plain(result), host=str(host), record_verified=bool(record_verified))


def deploy_failed_events(sites, host, message, ports=True):
    """One deploy_failed store event per site of a host."""
    return _results.deploy_failed_events(plain(sites), host=str(host), message=str(message), ports=bool(ports))


def deploy_host_failure(failure, unreachable_before=False, gone=False, deadline_over=False, deadline=None):
    """The message of a host whose deploy step failed: first contact, deadline, gone during the deploy, or the step's own."""
    return _results.host_failure(None if failure in (None, "") else str(failure), unreachable_before=bool(unreachable_before),
                                 gone=bool(gone), deadline_over=bool(deadline_over),
                                 deadline=None if deadline is None else int(deadline))


def deploy_table(hostnames, hostvars):
    """The fleet table (text, a line a site) from the certfleet_deploy_result of each host among hostnames."""
    results = []
    for name in hostnames or []:
        host = hostvars[name]
        # Only this variable is read: hostvars templates each one on access.
        results.append([str(name), plain(host["certfleet_deploy_result"]) if "certfleet_deploy_result" in host else None])
    return _results.deploy_table(results)


class FilterModule:
    """certfleet.tls filters shared by the deployment roles and playbooks."""

    def filters(self):
        functions = (deploy_result, deploy_events, deploy_failed_events, deploy_host_failure, deploy_table)
        return {function.__name__: certfleet_filter(function) for function in functions}
