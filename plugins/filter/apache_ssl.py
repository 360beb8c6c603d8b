# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters behind the apache_ssl role's decisions; the logic lives in module_utils/_deploy/apache.py."""

from __future__ import annotations

from ansible_collections.certfleet.tls.plugins.module_utils._deploy import apache as _apache
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import artifacts as _artifacts
from ansible_collections.certfleet.tls.plugins.plugin_utils._filters import certfleet_filter, plain


def apache_ssl_plan(sites, platform, fullchain, store_path, verify_host, definitions=None, key_handling="decrypt",
                    trusted_ca_sets=None):
    """The files, modules and checks of one host's sites."""
    return _apache.plan(sites, definitions=definitions, platform=platform, fullchain=bool(fullchain),
                        store_path=str(store_path), verify_host=verify_host, key_handling=key_handling,
                        trusted_ca_sets=plain(trusted_ca_sets))


def apache_ssl_store_files(certificates, store_path, passphrase=None):
    """[{dest, content}] of the plan's certificates: every entry checked as deploy_files does, keys decrypted."""
    checked = _artifacts.store_files(str(store_path), plain(certificates), passphrase=passphrase)
    return [{"dest": item["path"], "content": item["content"]} for _entry, files, _facts in checked for item in files]


def apache_ssl_deploy_files(plan, conf_file, conf_link="", helper="", replace_vhosts=None, vhost_dirs=None):
    """files (vhosts, certfleet.conf, passphrase helper as role templates), links and absent paths for deploy_files."""
    return _apache.deploy_payload(plain(plan), conf_file=str(conf_file), conf_link=str(conf_link or ""),
                                  helper=str(helper or ""), replace_vhosts=plain(replace_vhosts),
                                  vhost_dirs=[str(item) for item in plain(vhost_dirs) or []])


def apache_ssl_failure(task_name, result, error_log=""):
    """'<task>: <reason>' of a failed task, with Apache's own error lines (and those of its error log)."""
    return _apache.describe_failure(str(task_name), plain(result), error_log=str(error_log or ""))


def deploy_check(endpoints, min_days=0):
    """One row per site with ok and problems, from certfleet.tls.cert_scan endpoints."""
    return _apache.deploy_check(endpoints, min_days=int(min_days))


def os_release(text):
    """os_family, distribution and major version from /etc/os-release."""
    return _apache.parse_os_release(text)


def apache_host_state(text):
    """Platform and Apache's state (binary, version, mod_ssl, enabled modules, services) from the role's probe."""
    return _apache.parse_host_state(text)


def apache_version(text):
    """Apache's version from apache2 -v / httpd -v output."""
    return _apache.parse_apache_version(text)


def apache_error(text):
    """Apache's own error lines (AH codes, emerg / error lines) from command or log output."""
    return _apache.apache_error(text)


class FilterModule:
    """certfleet.tls filters for the apache_ssl role."""

    def filters(self):
        functions = (apache_ssl_plan, apache_ssl_store_files, apache_ssl_deploy_files, apache_ssl_failure, deploy_check,
                     os_release, apache_version, apache_host_state, apache_error)
        return {function.__name__: certfleet_filter(function) for function in functions}
