# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of the apache_ssl role as pure functions (the role's filters call them).

This module is private to the certfleet.tls collection: its API may change
without notice.

Apache 2.4.8 and later take the intermediates in SSLCertificateFile (leaf first, then the
chain); older versions need SSLCertificateChainFile (Apache mod_ssl documentation; Cybertrust's
SureServer installation guide for Apache + mod_ssl gives both forms).
"""

from __future__ import annotations

import os
import re

from ansible_collections.certfleet.tls.plugins.module_utils._common.network import check_port
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store import store as _store

SITE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")
# A DNS name or a wildcard; Apache takes ServerName literally, so reject spaces and quotes early.
SERVER_NAME_PATTERN = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?\Z")
FULLCHAIN_MIN_VERSION = (2, 4, 8)
# The role's configuration templates (roles/apache_ssl/templates/), rendered by the deploy_files action.
VHOST_TEMPLATE = "vhost.conf.j2"
CONF_TEMPLATE = "certfleet.conf.j2"
HELPER_TEMPLATE = "passphrase-helper.sh.j2"
SITE_KEYS = {
    "name", "certificate", "server_name", "server_aliases", "port", "document_root", "hsts", "hsts_max_age",
    "redirect_http", "ocsp_stapling", "extra_directives", "verify_name", "state",
}
SITE_DEFAULTS = {
    "server_aliases": [], "port": 443, "hsts": False, "hsts_max_age": 31536000, "redirect_http": False,
    "ocsp_stapling": False, "extra_directives": [],
}
OS_FAMILIES = {
    "Debian": ("debian", "ubuntu", "raspbian", "linuxmint"),
    "RedHat": ("rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn"),
}


def parse_os_release(text: str) -> dict:
    """os_family, distribution and major version from /etc/os-release (no fact gathering needed)."""
    values = {}
    for line in (text or "").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key:
            values[key] = value.strip().strip("\"'")
    distribution_id = values.get("ID", "").lower()
    if not distribution_id:
        raise CertfleetError("cannot tell the platform: /etc/os-release has no ID= line")
    candidates = [distribution_id] + values.get("ID_LIKE", "").lower().split()
    family = next((name for name, ids in OS_FAMILIES.items() if any(c in ids for c in candidates)), None)
    if family is None:
        raise CertfleetError(f"unsupported platform '{values.get('PRETTY_NAME', distribution_id)}': "
                             f"the role knows Debian, RedHat and Windows families")
    version = values.get("VERSION_ID", "")
    return {
        "os_family": family,
        "distribution": values.get("NAME", distribution_id).split()[0] if values.get("NAME") else distribution_id,
        "distribution_id": distribution_id,
        "distribution_major_version": version.split(".")[0] if version else "",
    }


def parse_apache_version(text: str) -> str:
    """'2.4.62' from the output of `apache2 -v` / `httpd -v`."""
    match = re.search(r"Apache/(\d+)\.(\d+)\.(\d+)", text or "")
    if not match:
        raise CertfleetError(f"cannot read Apache's version from: {(text or '').strip()[:200]!r}")
    return ".".join(match.groups())


HOST_STATE_MARKER = "#certfleet-apache-state"


def parse_host_state(text: str) -> dict:
    """Platform and Apache's state from the role's single raw probe (tasks/platform.yml).

    The probe prints /etc/os-release, the marker line, then key=value lines: binary, version
    (first line of `<binary> -v`), mod_ssl (path of the module file), module (each enabled
    Debian module), service ("<name> <is-active> <is-enabled>") and passphrase_helper_file (the
    SSLPassPhraseDialog helper or its passphrase, left from apache_ssl_key_handling=passphrase_helper). One round trip per host
    replaces fact gathering, the package check, `apache2 -v` and the service check of a re-run.
    """
    release, found, state = (text or "").partition(HOST_STATE_MARKER)
    if not found:
        raise CertfleetError("the host probe printed no Apache state (is /bin/sh available on the host?)")
    result = {"platform": parse_os_release(release), "binary": "", "version": "", "mod_ssl": False,
              "enabled_modules": [], "services": {}, "passphrase_helper_files": []}
    for line in state.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep:
            continue
        value = value.strip()
        if key == "binary":
            result["binary"] = value
        elif key == "version":
            match = re.search(r"Apache/(\d+\.\d+\.\d+)", value)
            result["version"] = match.group(1) if match else ""
        elif key == "mod_ssl" and value:
            result["mod_ssl"] = True
        elif key == "passphrase_helper_file" and value:
            result["passphrase_helper_files"].append(value)
        elif key == "module" and value and value != "*":
            result["enabled_modules"].append(value)
        elif key == "service" and value:
            name, *states = value.split()
            active, enabled = (states + ["", ""])[:2]
            result["services"][name] = {"active": active == "active", "enabled": enabled in ("enabled", "static", "alias")}
    return result


def uses_fullchain(version: str) -> bool:
    """SSLCertificateFile takes the chain from 2.4.8 on (SSLCertificateChainFile before)."""
    parts = tuple(int(part) for part in version.split(".")[:3])
    return parts >= FULLCHAIN_MIN_VERSION


def _definition_index(definitions: list | None) -> dict:
    index = {}
    for definition in definitions or []:
        if isinstance(definition, dict) and definition.get("name"):
            index[definition["name"]] = definition
    return index


def _bool(value, *, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("yes", "true", "on", "1", "no", "false", "off", "0"):
        return value.lower() in ("yes", "true", "on", "1")
    raise CertfleetError(f"{what} must be true or false, not {value!r}")


def _server_name(value, *, what: str) -> str:
    if not isinstance(value, str) or not SERVER_NAME_PATTERN.fullmatch(value):
        raise CertfleetError(f"{what} must be a DNS name, not {value!r}")
    return value


def normalise_site(site, *, definitions: dict, document_root: str, number: int) -> dict:
    """One site with every key set, or a CertfleetError naming the site and the key."""
    if not isinstance(site, dict):
        raise CertfleetError(f"apache_ssl_sites[{number}] must be a dict with name and certificate")
    label = f"apache_ssl_sites[{number}]"
    unknown = sorted(set(site) - SITE_KEYS)
    if unknown:
        raise CertfleetError(f"{label}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(SITE_KEYS))})")
    name = site.get("name")
    if not isinstance(name, str) or not SITE_NAME_PATTERN.fullmatch(name):
        raise CertfleetError(f"{label}: name must match {SITE_NAME_PATTERN.pattern} (it names the vhost file), not {name!r}")
    label = f"site {name}"
    certificate = site.get("certificate")
    if not isinstance(certificate, str) or not certificate:
        raise CertfleetError(f"{label}: certificate (the definition name in the store) is required")
    # Checked before anything else: the name becomes host paths (certfleet-<certificate>.key), also
    # of the files an absent site removes, and the store path of the certificate.
    layout.check_name(certificate, what=f"{label}: certificate")
    state = site.get("state") or "present"
    if state not in ("present", "absent"):
        raise CertfleetError(f"{label}: state must be present or absent, not {state!r}")
    if state == "absent":
        # Only what names its files matters: the definition may already be gone from the inventory.
        return {"name": name, "certificate": certificate, "state": "absent"}
    result = dict(SITE_DEFAULTS)
    result.update({key: value for key, value in site.items() if value is not None})
    definition = definitions.get(certificate)
    if not site.get("server_name"):
        if definition is None or not definition.get("common_name"):
            raise CertfleetError(f"{label}: server_name is not set and certificate {certificate} is not in "
                                 f"certfleet_certificates (or has no common_name) to take it from")
        result["server_name"] = definition["common_name"]
    result["server_name"] = _server_name(result["server_name"], what=f"{label}: server_name")
    aliases = result["server_aliases"]
    if isinstance(aliases, str) or not isinstance(aliases, list):
        raise CertfleetError(f"{label}: server_aliases must be a list of names")
    result["server_aliases"] = [_server_name(alias, what=f"{label}: server_aliases") for alias in aliases]
    result["port"] = check_port(result["port"], what=label)
    for key in ("hsts", "redirect_http", "ocsp_stapling"):
        result[key] = _bool(result[key], what=f"{label}: {key}")
    try:
        result["hsts_max_age"] = int(result["hsts_max_age"])
    except (TypeError, ValueError):
        raise CertfleetError(f"{label}: hsts_max_age must be a number of seconds") from None
    directives = result["extra_directives"]
    if isinstance(directives, str) or not isinstance(directives, list) or not all(isinstance(d, str) for d in directives):
        raise CertfleetError(f"{label}: extra_directives must be a list of configuration lines")
    if any("\n" in line for line in directives):
        raise CertfleetError(f"{label}: extra_directives: one directive per list item, no newlines")
    result["state"] = "present"
    result["document_root"] = result.get("document_root") or document_root
    result["verify_name"] = _server_name(result.get("verify_name") or result["server_name"], what=f"{label}: verify_name")
    return result


def plan(sites, *, definitions=None, platform: dict, fullchain: bool, store_path: str, verify_host: str,
         key_handling: str = "decrypt", trusted_ca_sets: dict | None = None) -> dict:
    """Everything the role writes and checks for one host, from its sites and the platform's data.

    platform: cert_dir, key_dir, key_mode, key_group, document_root, vhost_dir, vhost_enabled_dir
    (empty: the vhost dir is read directly), default_ports (ports the distribution already listens on).
    ``trusted_ca_sets``: the user's named sets (certfleet_trusted_ca_sets); a definition naming one in
    ``trusted_ca_set`` (a commercial CA's root) is checked against it.
    """
    if sites is None:
        sites = []
    if not isinstance(sites, list):
        raise CertfleetError("apache_ssl_sites must be a list of sites")
    if key_handling not in ("decrypt", "passphrase_helper"):
        raise CertfleetError(f"apache_ssl_key_handling must be decrypt or passphrase_helper, not {key_handling!r}")
    index = _definition_index(definitions)
    every_site = [normalise_site(site, definitions=index, document_root=platform["document_root"], number=number)
                  for number, site in enumerate(sites)]
    seen_names, seen_bindings = set(), {}
    for site in every_site:
        if site["name"] in seen_names:
            raise CertfleetError(f"site {site['name']} is listed twice in apache_ssl_sites")
        seen_names.add(site["name"])
    normalised = [site for site in every_site if site["state"] == "present"]
    removed = [site for site in every_site if site["state"] == "absent"]
    for site in normalised:
        binding = (site["server_name"].lower(), site["port"])
        if binding in seen_bindings:
            raise CertfleetError(f"sites {seen_bindings[binding]} and {site['name']} both serve "
                                 f"{site['server_name']} on port {site['port']}: Apache would use only the first")
        seen_bindings[binding] = site["name"]

    # A definition still waiting for its CA has nothing to deploy: refused here, before any file is planned.
    for site in normalised:
        _store.refuse_pending(store_path, site["certificate"], what=f"site {site['name']}")

    join = _joiner(platform["cert_dir"])

    def certificate_entry(name: str) -> dict:
        entry = {
            "name": name,
            "key_path": join(platform["key_dir"], f"certfleet-{name}.key"),
            "certificate_path": join(platform["cert_dir"], f"certfleet-{name}{'.fullchain' if fullchain else ''}.pem"),
            "key_mode": platform["key_mode"],
            "key_owner": platform.get("key_owner", "root"),
            "key_group": platform["key_group"],
        }
        if not fullchain:
            entry["chain_path"] = join(platform["cert_dir"], f"certfleet-{name}.chain.pem")
        return entry

    def vhost_paths(site_name: str) -> tuple[str, str]:
        return (join(platform["vhost_dir"], f"certfleet-{site_name}.conf"),
                join(platform["vhost_enabled_dir"], f"certfleet-{site_name}.conf") if platform.get("vhost_enabled_dir") else "")

    certificates, by_name = [], {}
    for site in normalised:
        name = site["certificate"]
        if name not in by_name:
            by_name[name] = certificate_entry(name)
            certificates.append(by_name[name])
        entry = by_name[name]
        site["certificate_file"] = entry["certificate_path"]
        site["key_file"] = entry["key_path"]
        site["chain_file"] = entry.get("chain_path", "")
        site["vhost_path"], site["vhost_link"] = vhost_paths(site["name"])

    # state: absent - the site's vhost and link go; its key and certificate files too, unless a
    # present site still uses that certificate.
    removals = []
    for site in removed:
        vhost_path, vhost_link = vhost_paths(site["name"])
        removals.extend({"path": path, "secret": False} for path in (vhost_link, vhost_path) if path)
    for name in dict.fromkeys(site["certificate"] for site in removed):
        if name in by_name:
            continue
        entry = certificate_entry(name)
        removals.append({"path": entry["key_path"], "secret": True})
        removals.extend({"path": entry[key], "secret": False} for key in ("certificate_path", "chain_path") if key in entry)

    default_ports = {int(port) for port in platform.get("default_ports", [])}
    modules = ["ssl", "socache_shmcb"]
    if any(site["hsts"] for site in normalised):
        modules.append("headers")
    if any(site["redirect_http"] for site in normalised):
        modules.append("rewrite")

    definitions_used = {site["certificate"]: index.get(site["certificate"], {}) for site in normalised}
    trusted_ca_sets, set_of = _trusted_ca_sets(definitions_used, store_path=store_path, user_sets=trusted_ca_sets)
    targets = [{
        "name": site["name"],
        "host": verify_host,
        "port": site["port"],
        "server_name": site["verify_name"],
        "mode": "monitored_only",
        "expected_certificate": layout.certificate_path(store_path, site["certificate"], "fullchain"),
        "trusted_ca_set": set_of[site["certificate"]],
        "check_hostname": True,
    } for site in normalised]
    return {
        "sites": normalised,
        "removed_sites": [site["name"] for site in removed],
        "removals": removals,
        "certificates": certificates,
        "listen_ports": sorted({site["port"] for site in normalised} - default_ports),
        "redirect_ports": [80] if any(site["redirect_http"] for site in normalised) and 80 not in default_ports else [],
        "modules": modules,
        "stapling": any(site["ocsp_stapling"] for site in normalised),
        "passphrase_helper": key_handling == "passphrase_helper",
        "check_targets": targets,
        "trusted_ca_sets": trusted_ca_sets,
    }


# A hand-made vhost file the role may remove when it takes a site over: one file name ending in .conf.
REPLACED_VHOST_NAME = re.compile(r"[A-Za-z0-9_@+][A-Za-z0-9_.@+-]*\.conf\Z")


def replaced_vhosts(paths, *, vhost_dirs) -> list[dict]:
    """apache_ssl_replace_vhosts as deploy_files removals: each a .conf file (or sites-enabled link) directly in
    one of ``vhost_dirs``, never a certfleet- file, so an inventory value cannot remove anything else."""
    if paths is None:
        return []
    if isinstance(paths, str) or not isinstance(paths, list):
        raise CertfleetError("apache_ssl_replace_vhosts must be a list of vhost file paths")
    directories = {directory.rstrip("/") for directory in vhost_dirs if directory}
    removals = []
    for path in paths:
        if not isinstance(path, str) or os.path.dirname(path) not in directories or ".." in path.split("/") \
                or not REPLACED_VHOST_NAME.fullmatch(os.path.basename(path)) or os.path.basename(path).startswith("certfleet-"):
            raise CertfleetError(f"apache_ssl_replace_vhosts: {path!r} is not a hand-made vhost file directly in "
                                 f"{' or '.join(sorted(directories))} (a name ending in .conf, not certfleet-*)")
        removals.append({"path": path, "secret": False})
    return removals


def deploy_payload(host_plan: dict, *, conf_file: str, conf_link: str = "", helper: str = "",
                   replace_vhosts=None, vhost_dirs=()) -> dict:
    """The files, links and removals of one host's deploy_files transaction, beside the certificates.

    Each configuration file names its role template (rendered by the deploy_files action with the
    task's variables plus ``template_vars``): one vhost per site, the shared certfleet.conf, and the
    passphrase helper when the keys stay encrypted. ``conf_link`` (Debian's conf-enabled) and each
    site's ``vhost_link`` (sites-enabled) become symbolic links; an empty one is not made.
    ``replace_vhosts``: hand-made vhost files (checked by ``replaced_vhosts``) removed in the same
    transaction, so certfleet's vhosts take their sites over and a rollback puts them back.
    """
    config = {"mode": "0644", "owner": "root", "group": "root"}
    files = [dict(config, path=site["vhost_path"], template=VHOST_TEMPLATE, template_vars={"site": site})
             for site in host_plan["sites"]]
    files.append(dict(config, path=conf_file, template=CONF_TEMPLATE))
    if host_plan["passphrase_helper"]:
        if not helper:
            raise CertfleetError("apache_ssl_key_handling=passphrase_helper needs the helper's path")
        files.append(dict(config, path=helper, template=HELPER_TEMPLATE, mode="0700"))
    links = [{"path": site["vhost_link"], "src": site["vhost_path"]} for site in host_plan["sites"] if site["vhost_link"]]
    if conf_link:
        links.append({"path": conf_link, "src": conf_file})
    absent = [{"path": item["path"], "secret": item["secret"]} for item in host_plan["removals"]]
    absent += replaced_vhosts(replace_vhosts, vhost_dirs=vhost_dirs)
    return {"files": files, "links": links, "absent": absent}


def _joiner(sample: str):
    # Windows paths (C:\Apache\conf\ssl) keep backslashes; everything else uses '/'.
    separator = "\\" if "\\" in sample else "/"
    return lambda directory, name: directory.rstrip("/\\") + separator + name


def _trusted_ca_sets(definitions: dict, *, store_path: str, user_sets: dict | None = None) -> tuple[dict, dict]:
    """The deploy check trusts the system bundle, plus the store's root for private-CA definitions, and the
    user's set a definition names in ``trusted_ca_set`` (for example a commercial CA's root).

    A private-CA definition's set carries the CA's CRL from the store (when the CA has written
    one), so a served certificate the CA has revoked fails the check (``revocation``).
    """
    sets, set_of = {}, {}
    for name, definition in definitions.items():
        issuer = definition.get("issuer") if isinstance(definition.get("issuer"), dict) else {}
        explicit = definition.get("trusted_ca_set")
        if issuer.get("provider") == "private_ca" and issuer.get("ca"):
            set_name = f"private_ca_{issuer['ca']}"
            crl = layout.ca_path(store_path, issuer["ca"], "crl")
            sets[set_name] = {"system": False, "certificates": [layout.ca_path(store_path, issuer["ca"], "root")]}
            if os.path.isfile(crl):
                sets[set_name]["revocation_lists"] = [crl]
            set_of[name] = set_name
        else:
            set_of[name] = explicit or "default"
            if explicit and isinstance(user_sets, dict) and isinstance(user_sets.get(explicit), dict):
                sets[explicit] = dict(user_sets[explicit])
    return sets, set_of


def deploy_check(endpoints, *, min_days: int = 0) -> list[dict]:
    """One row per site from cert_scan's endpoints: ok, and the problems that make it not ok.

    A site passes when the handshake worked, the served leaf is the store's certificate, the
    chain is complete, trust and hostname checks did not fail, and it has min_days left.
    """
    rows = []
    for endpoint in endpoints or []:
        problems = []
        if endpoint.get("outcome") != "ok":
            problems.append(f"no TLS handshake: {endpoint.get('outcome_message') or endpoint.get('outcome')}")
        else:
            if endpoint.get("matches_expected") is not True:
                problems.append(f"serves {endpoint.get('subject')} (SHA-256 {endpoint.get('sha256')}), "
                                f"not the certificate in the store")
            if endpoint.get("chain_complete") is False:
                problems.append(_check_message(endpoint, "chain_complete", "the chain is incomplete"))
            if endpoint.get("chain_order_ok") is False:
                problems.append(_check_message(endpoint, "chain_order", "the chain is out of order"))
            if endpoint.get("revoked") is True:
                problems.append(_check_message(endpoint, "revocation", "revoked"))
            if endpoint.get("trusted") is False and endpoint.get("revoked") is not True:
                problems.append(_check_message(endpoint, "trust", "not trusted"))
            if endpoint.get("hostname_ok") is False:
                problems.append(_check_message(endpoint, "hostname", "the name does not match"))
            days = endpoint.get("days_left")
            if days is not None and days < min_days:
                problems.append(f"{days} days left (< {min_days})")
        rows.append({
            "site": endpoint.get("name"),
            "host": endpoint.get("host"),
            "port": endpoint.get("port"),
            "server_name": endpoint.get("server_name"),
            "ok": not problems,
            "problems": problems,
            "sha256": endpoint.get("sha256"),
            "matches_expected": endpoint.get("matches_expected"),
            "chain_complete": endpoint.get("chain_complete"),
            "trusted": endpoint.get("trusted"),
            "days_left": endpoint.get("days_left"),
        })
    return rows


def _check_message(endpoint: dict, check_name: str, fallback: str) -> str:
    check = (endpoint.get("checks") or {}).get(check_name)
    if isinstance(check, dict) and check.get("message"):
        return check["message"]
    return fallback


def apache_error(text: str, *, limit: int = 5) -> str:
    """Apache's own words from apachectl / systemctl / error.log output: AH codes and emerg/error lines first.

    A line such as "AH00526: Syntax error on line 30 of ...:" is followed by the reason on the next
    line ("Invalid command 'Bogus', ..."), so the line after each match is kept too.
    """
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    marked = [i for i, line in enumerate(lines)
              if re.search(r"AH\d{5}|\[(ssl:)?(emerg|error|crit|alert)\]|Syntax error|Action '", line)]
    if not marked:
        return " | ".join(lines[-limit:])
    chosen = sorted(set(marked) | {i + 1 for i in marked if i + 1 < len(lines)})
    return " | ".join(lines[i] for i in chosen[-limit:])


def describe_failure(task_name: str, result: dict | None, *, error_log: str = "") -> str:
    """``<task>: <reason>`` of a failed task: Apache's own error lines for a command, else the task's message.

    ``error_log``: the tail of Apache's error log, read after a failed reload or start (the service
    manager only says that it failed); its error lines are added after `` - Apache: ``.
    """
    result = result or {}
    stderr, stdout = result.get("stderr") or "", result.get("stdout") or ""
    if "rc" in result and stderr + stdout:
        reason = apache_error(f"{stderr}\n{stdout}")
    else:
        reason = result.get("msg", "failed")
    text = f"{task_name}: {reason}"
    if error_log:
        text += f" - Apache: {apache_error(error_log)}"
    return text
