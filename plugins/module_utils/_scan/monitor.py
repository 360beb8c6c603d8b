# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Monitoring and discovery plans for the cert_monitor role.

This module is private to the certfleet.tls collection: its API may change without notice.
Pure functions over plain data: definitions and hosts in, cert_scan targets, store events,
the failure verdict and the discovered-definitions file out. Reading the store is done
through a ``read`` callable so tests need no files.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket

from ansible_collections.certfleet.tls.plugins.module_utils._common.network import (
    check_port,
    host_port_label,
    is_ip_address,
    parse_host_port,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._common.yaml_text import yaml_scalar
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store import store as _store

MODES = ("lifecycle_managed", "monitored_only")
ENDPOINT_KEYS = frozenset(("host", "port", "server_name", "sni", "starttls", "check_hostname"))
STARTTLS = ("none", "smtp")
DEFAULT_PORT = 443
# The inventory variables monitor_hosts reads: apache_ssl's sites and where apache_ssl verifies them.
HOST_VARIABLES = ("apache_ssl_sites", "apache_ssl_verify_host", "ansible_host")
_HOST_PATTERN = re.compile(r"^[A-Za-z0-9_*]([A-Za-z0-9_.*-]{0,252})\Z")
_DN_PART = re.compile(r"/(?=(?:[A-Za-z]+|[0-9]+(?:\.[0-9]+)+)=)")


def _read_text(path: str) -> str | None:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def _check_host(host, *, what: str) -> str:
    if not isinstance(host, str) or not host:
        raise CertfleetError(f"{what}: host is required")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _HOST_PATTERN.fullmatch(host):
        raise CertfleetError(f"{what}: host {host!r} is neither an IP address nor a DNS name")
    return host


def _usable_sni(name) -> bool:
    """Whether a certificate's CN can be sent as SNI: a DNS name, not an IP address or a wildcard."""
    return isinstance(name, str) and "*" not in name and not is_ip_address(name) and bool(_HOST_PATTERN.fullmatch(name))


def parse_endpoint(entry, *, what: str, default_server_name: str | None = None) -> dict:
    """One endpoint of a definition: host, port (443), server_name (SNI), starttls.

    Strings are ``host``, ``host:port`` or ``[IPv6]:port``; dicts have ``host`` plus optional
    ``port``, ``server_name`` (alias ``sni``), ``starttls`` (none, smtp) and ``check_hostname``.
    The SNI defaults to the definition's common name: the host is where to connect, the
    certificate's name is what the clients ask for.
    """
    if isinstance(entry, str):
        host, port = parse_host_port(entry, what=what)
        entry = {"host": host, "port": port}
    elif isinstance(entry, dict):
        unknown = sorted(set(entry) - ENDPOINT_KEYS)
        if unknown:
            raise CertfleetError(f"{what}: unknown key(s) {', '.join(unknown)}; use {', '.join(sorted(ENDPOINT_KEYS))}")
        entry = dict(entry)
        if isinstance(entry.get("host"), str) and entry.get("port") in (None, ""):
            entry["host"], entry["port"] = parse_host_port(entry["host"], what=what)
        elif isinstance(entry.get("host"), str) and entry["host"].startswith("["):
            entry["host"] = parse_host_port(entry["host"], what=what)[0]
    else:
        raise CertfleetError(f"{what}: an endpoint is a host:port string or a dict with host, not {type(entry).__name__}")
    host = _check_host(entry.get("host"), what=what)
    port = check_port(entry["port"], what=what) if entry.get("port") not in (None, "") else DEFAULT_PORT
    server_name = entry.get("server_name") or entry.get("sni")
    if server_name is None and _usable_sni(default_server_name):
        server_name = default_server_name
    if server_name is None and not is_ip_address(host):
        server_name = host
    if server_name is not None and (not isinstance(server_name, str) or is_ip_address(server_name)
                                    or not _HOST_PATTERN.fullmatch(server_name)):
        raise CertfleetError(f"{what}: server_name {server_name!r} must be a DNS name")
    starttls = entry.get("starttls") or "none"
    if starttls not in STARTTLS:
        raise CertfleetError(f"{what}: starttls must be one of {', '.join(STARTTLS)}, not {starttls!r}")
    result = {"host": host, "port": port, "server_name": server_name, "starttls": starttls}
    if entry.get("check_hostname") is not None:
        result["check_hostname"] = bool(entry["check_hostname"])
    return result


def endpoint_key(endpoint: dict) -> tuple:
    """What makes two endpoints the same scan: host, port, SNI and STARTTLS (case-insensitive names)."""
    return (endpoint["host"].lower(), endpoint["port"], (endpoint.get("server_name") or "").lower(),
            endpoint.get("starttls") or "none")


def monitor_hosts(host_variables: dict) -> list[dict]:
    """The ``hosts`` of ``monitor_targets``: name, verify_host and sites of each host that has apache_ssl_sites.

    ``host_variables`` maps inventory host names, in inventory order, to their variables (the
    ones in ``HOST_VARIABLES`` are enough). A site is scanned where apache_ssl verifies it:
    apache_ssl_verify_host, else ansible_host, else the inventory name.
    """
    if not isinstance(host_variables, dict):
        raise CertfleetError("monitor_hosts: expected a dict of inventory host name -> host variables")
    hosts = []
    for name, variables in host_variables.items():
        variables = variables or {}
        sites = variables.get("apache_ssl_sites")
        if not sites:
            continue
        verify_host = variables.get("apache_ssl_verify_host", variables.get("ansible_host", name))
        hosts.append({"name": name, "verify_host": verify_host, "sites": sites})
    return hosts


def _site_endpoints(hosts, *, definitions: dict) -> dict:
    """{definition name: [(endpoint, inventory host, site name)]} from the hosts' apache_ssl_sites."""
    found: dict = {}
    for number, host in enumerate(hosts or []):
        if not isinstance(host, dict) or not host.get("name"):
            raise CertfleetError(f"hosts[{number}]: expected a dict with name, sites and verify_host")
        sites = host.get("sites") or []
        if not isinstance(sites, list):
            raise CertfleetError(f"host {host['name']}: apache_ssl_sites must be a list")
        for index, site in enumerate(sites):
            what = f"host {host['name']}: apache_ssl_sites[{index}]"
            if not isinstance(site, dict) or not site.get("certificate"):
                raise CertfleetError(f"{what}: a site needs certificate (the definition name)")
            if site.get("state") == "absent":
                continue  # being removed from the host: nothing is served there any more
            definition = definitions.get(site["certificate"])
            if definition is None:
                continue  # apache_ssl itself reports unknown definitions; nothing to monitor here
            what = f"{site['certificate']}: site {site.get('name') or index} of host {host['name']}"
            server_name = site.get("verify_name") or site.get("server_name") or definition.get("common_name")
            endpoint = parse_endpoint({"host": host.get("verify_host") or host["name"], "port": site.get("port") or DEFAULT_PORT,
                                       "server_name": server_name}, what=what)
            found.setdefault(site["certificate"], []).append((endpoint, host["name"], site.get("name")))
    return found


def _pem(path: str, *, read, what: str) -> str | None:
    text = read(path)
    if text is None:
        return None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise CertfleetError(f"{what}: {path} holds no PEM certificate")
    return text


def monitor_targets(definitions, *, store_path: str, defaults: dict | None = None, hosts: list | None = None,
                    discovered: list | None = None, trusted_ca_sets: dict | None = None,
                    default_trusted_ca_set: str = "default", exclude: list | None = None, read=_read_text) -> dict:
    """The cert_scan plan of a compliance run.

    * ``lifecycle_managed`` (the default mode): the store's current full chain of the definition is
      the expected certificate (fingerprint + intermediates); not issued yet = skipped, listed.
    * ``monitored_only``: X.509 validation against the definition's trusted CA set, DN check of
      CN / O / C from the definition, expiry thresholds.

    Endpoints come from each definition's ``endpoints``, from the ``apache_ssl_sites`` of
    ``hosts`` ([{name, sites, verify_host}]) for lifecycle-managed definitions, and from the
    discovered-definitions file (monitored_only only; a definition of the inventory wins).
    Store files are inlined as PEM so the scan can run on a monitor host without the store.

    Returns targets (cert_scan, name = definition), endpoints (same order: certificate, mode,
    host, port, server_name, starttls, inventory_host, site, source), trusted_ca_sets, skipped,
    covered ([host, port] of every endpoint of every definition, inventory and discovered, excluded
    ones too), names (of every definition) and warnings.
    """
    if definitions is None:
        definitions = []
    if not isinstance(definitions, list):
        raise CertfleetError("certfleet_certificates must be a list of definitions")
    if discovered is not None and not isinstance(discovered, list):
        raise CertfleetError("the discovered-certificates file must hold a YAML list of definitions")
    if trusted_ca_sets is not None and not isinstance(trusted_ca_sets, dict):
        raise CertfleetError("certfleet_trusted_ca_sets must be a dict (set name -> system, certificates)")
    user_sets = dict(trusted_ca_sets or {})
    known_sets = set(user_sets) | {"default"}
    if default_trusted_ca_set not in known_sets:
        raise CertfleetError(f"default trusted CA set {default_trusted_ca_set!r} is not defined; "
                             f"defined: {', '.join(sorted(known_sets))}")
    excluded = set(exclude or [])
    sets: dict = {name: dict(options or {}) for name, options in user_sets.items()}
    targets, endpoints, skipped, warnings, covered = [], [], [], [], []
    seen: dict = {}

    normalised = []
    for source, entries in (("inventory", definitions), ("discovered", discovered or [])):
        names = set()
        for number, definition in enumerate(entries):
            if not isinstance(definition, dict):
                raise CertfleetError(f"{source} definitions[{number}]: expected a dict, got {type(definition).__name__}")
            # Discovered definitions describe what was found: the inventory's defaults (O, C ...) are not theirs.
            merged, _warnings = _store.normalise_definition(definition, defaults if source == "inventory" else None)
            if merged["name"] in names:
                raise CertfleetError(f"{merged['name']}: defined twice in the {source} definitions")
            names.add(merged["name"])
            normalised.append((source, merged))
    by_name = {merged["name"]: merged for source, merged in normalised if source == "inventory"}
    from_sites = _site_endpoints(hosts, definitions=by_name)

    for source, definition in normalised:
        name = definition["name"]
        what = name if source == "inventory" else f"{name} (discovered)"
        mode = definition.get("mode") or "lifecycle_managed"
        if mode not in MODES:
            raise CertfleetError(f"{what}: mode must be one of {', '.join(MODES)}, not {mode!r}")
        if source == "discovered" and mode != "monitored_only":
            raise CertfleetError(f"{what}: discovered definitions are monitored_only; move it to certfleet_certificates "
                                 f"to manage its lifecycle")
        if source == "discovered" and name in by_name:
            skipped.append({"certificate": name, "source": source, "reason": "also defined in the inventory"})
            continue
        raw = definition.get("endpoints") or []
        if not isinstance(raw, list):
            raise CertfleetError(f"{what}: endpoints must be a list of host:port strings or dicts")
        common_name = definition.get("common_name")
        planned = [(parse_endpoint(entry, what=f"{what}: endpoints[{number}]", default_server_name=common_name),
                    None, None, source)
                   for number, entry in enumerate(raw)]
        if mode == "lifecycle_managed":
            planned += [(endpoint, host, site, "apache_ssl") for endpoint, host, site in from_sites.get(name, [])]
        covered.extend([endpoint["host"], endpoint["port"]] for endpoint, *_rest in planned)
        if name in excluded:
            skipped.append({"certificate": name, "source": source, "reason": "excluded"})
            continue
        if not planned:
            skipped.append({"certificate": name, "source": source,
                            "reason": "no endpoints (give endpoints, or deploy it with apache_ssl_sites)"})
            continue

        target = {"name": name, "mode": mode}
        issuer = definition.get("issuer") or {}
        set_name = definition.get("trusted_ca_set")
        if set_name is not None and set_name not in known_sets:
            raise CertfleetError(f"{what}: trusted_ca_set {set_name!r} is not defined in certfleet_trusted_ca_sets; "
                                 f"defined: {', '.join(sorted(known_sets))}")
        if set_name is None and issuer.get("provider") == "private_ca" and issuer.get("ca"):
            root_path = layout.ca_path(store_path, issuer["ca"], "root")
            root = _pem(root_path, read=read, what=what)
            if root is not None:
                set_name = f"private_ca_{issuer['ca']}"
                # the CA's CRL (PEM) when it has written one: a revoked served certificate is critical
                crl = read(layout.ca_path(store_path, issuer["ca"], "crl_pem"))
                if crl is not None and "-----BEGIN X509 CRL-----" not in crl:
                    raise CertfleetError(f"{what}: {layout.ca_path(store_path, issuer['ca'], 'crl_pem')} holds no PEM CRL")
                sets[set_name] = {"system": False, "certificates": [root]}
                if crl is not None:
                    sets[set_name]["revocation_lists"] = [crl]
            else:
                warnings.append(f"{what}: private CA {issuer['ca']} has no {os.path.basename(root_path)} in the store yet; "
                                f"using the trusted CA set {default_trusted_ca_set}")
        target["trusted_ca_set"] = set_name or default_trusted_ca_set
        if mode == "lifecycle_managed":
            fullchain = _pem(layout.certificate_path(store_path, name, "fullchain"), read=read, what=what)
            if fullchain is None:
                skipped.append({"certificate": name, "source": source,
                                "reason": f"not issued yet (no {layout.filename('fullchain')} in the store)"})
                continue
            target["expected_certificate"] = fullchain
        else:
            subject = {"CN": common_name, "O": definition.get("organization_name"), "C": definition.get("country_name")}
            subject = {key: value for key, value in subject.items() if value not in (None, "")}
            if subject:
                target["expected_subject"] = subject

        for endpoint, inventory_host, site, origin in planned:
            key = endpoint_key(endpoint)
            if key in seen:
                other = seen[key]
                if other["certificate"] == name:
                    if site and not other.get("site"):
                        other.update(site=site, inventory_host=inventory_host)
                    continue
                if source == "discovered":
                    skipped.append({"certificate": name, "source": source,
                                    "reason": f"{_label(endpoint)} is already monitored for {other['certificate']}"})
                    continue
                raise CertfleetError(f"{what}: endpoint {_label(endpoint)} is also an endpoint of "
                                     f"{other['certificate']}; one endpoint serves one certificate")
            entry = dict(target, host=endpoint["host"], port=endpoint["port"], starttls=endpoint["starttls"])
            if endpoint["server_name"]:
                entry["server_name"] = endpoint["server_name"]
            if "check_hostname" in endpoint:
                entry["check_hostname"] = endpoint["check_hostname"]
            meta = {"certificate": name, "mode": mode, "host": endpoint["host"], "port": endpoint["port"],
                    "server_name": endpoint["server_name"], "starttls": endpoint["starttls"],
                    "inventory_host": inventory_host, "site": site, "source": origin}
            seen[key] = meta
            targets.append(entry)
            endpoints.append(meta)
    return {"targets": targets, "endpoints": endpoints, "trusted_ca_sets": sets, "skipped": skipped,
            "covered": covered, "names": sorted({merged["name"] for _source, merged in normalised}), "warnings": warnings}


def _label(endpoint: dict) -> str:
    sni = f" (SNI {endpoint['server_name']})" if endpoint.get("server_name") else ""
    return host_port_label(endpoint["host"], endpoint["port"]) + sni


def parse_results(results) -> list[dict]:
    """cert_scan results from a list of dicts or the text of its results_path (JSON lines)."""
    if results is None:
        return []
    if isinstance(results, (bytes, str)):
        text = results.decode("utf-8") if isinstance(results, bytes) else results
        parsed = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                parsed.append(json.loads(line))
            except ValueError as exc:
                raise CertfleetError(f"scan results line {number}: not JSON ({exc})") from None
        return parsed
    if not isinstance(results, list):
        raise CertfleetError("scan results must be a list of endpoint dicts or JSON lines text")
    return list(results)


def _last_monitor_events(text: str | None) -> dict:
    """{(host, port, site): last monitored / monitor_failed event} of one definition's history (JSON lines)."""
    last: dict = {}
    for line in (text or "").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # the history is append-only; a torn line must not stop monitoring
        if isinstance(event, dict) and event.get("event") in ("monitored", "monitor_failed"):
            last[(event.get("host"), event.get("port"), event.get("site"))] = event
    return last


def monitor_events(results, plan: dict, *, store_path: str | None = None, only_changes: bool = True,
                   read=_read_text) -> list[dict]:
    """Store events (store_event format) for the lifecycle-managed endpoints scanned.

    ``monitored`` when the endpoint is ok or warning, ``monitor_failed`` when critical. With
    ``only_changes`` an event is recorded only when the status or the served certificate (SHA-256)
    differs from the last one recorded for that host, port and site, so a daily run adds a line
    when something happened, not every day (``store_path`` is then needed to read the history).
    """
    meta = plan.get("endpoints") or []
    histories: dict = {}
    events = []
    for result in sorted(parse_results(results), key=lambda item: item.get("index", 0)):
        index = result.get("index")
        if not isinstance(index, int) or not 0 <= index < len(meta):
            continue
        info = meta[index]
        if info["mode"] != "lifecycle_managed":
            continue
        problems = result.get("problems") or []
        status = result.get("status") or "critical"
        message = f"{status} at {_label(info)}" + (": " + "; ".join(problems) if problems else "")
        event = {"certificate": info["certificate"], "event": "monitor_failed" if status == "critical" else "monitored",
                 "host": info["inventory_host"] or info["host"], "port": info["port"], "status": status,
                 "sha256": result.get("sha256"), "message": message}
        if info.get("site"):
            event["site"] = info["site"]
        if only_changes:
            if store_path is None:
                raise CertfleetError("monitor_events: only_changes needs the store path to read the history")
            name = info["certificate"]
            if name not in histories:
                histories[name] = _last_monitor_events(read(layout.certificate_path(store_path, name, "history")))
            last = histories[name].get((event["host"], event["port"], event.get("site")))
            if last is not None and (last.get("event"), last.get("status"), last.get("sha256")) == (
                    event["event"], event["status"], event["sha256"]):
                continue
        events.append(event)
    return events


_STATUS_RANK = {"critical": 0, "warning": 1, "ok": 2}


def worst_endpoints(results, *, limit: int = 20) -> list[dict]:
    """Endpoints that are not ok, worst first: critical before warning, then fewest days left."""
    bad = [item for item in parse_results(results) if item.get("status") in ("critical", "warning")]
    bad.sort(key=lambda item: (_STATUS_RANK[item["status"]], item.get("days_left") if item.get("days_left") is not None
                               else -10 ** 6, item.get("name") or "", item.get("host") or "", item.get("port") or 0))
    return bad[:limit] if limit else bad


def monitor_verdict(summary: dict, results, *, fail_on_critical: bool = True, fail_on_warning: bool = False,
                    limit: int = 20) -> dict:
    """Whether the compliance run fails, and a message naming the worst endpoints."""
    summary = summary or {}
    critical, warning = int(summary.get("critical") or 0), int(summary.get("warning") or 0)
    failed = (fail_on_critical and critical > 0) or (fail_on_warning and warning > 0)
    worst = worst_endpoints(results, limit=0)
    if not fail_on_warning:
        worst = [item for item in worst if item["status"] == "critical"]
    lines = []
    for item in worst[:limit]:
        sni = f" ({item['server_name']})" if item.get("server_name") else ""
        label = f"{item.get('name') or '-'} {host_port_label(str(item.get('host')), item.get('port'))}{sni}"
        lines.append(f"{item['status'].upper()} {label}: {'; '.join(item.get('problems') or []) or item.get('outcome')}")
    if len(worst) > limit:
        lines.append(f"... and {len(worst) - limit} more (see the reports)")
    head = (f"certificate compliance: {critical} critical, {warning} warning of {summary.get('total', 0)} endpoint(s)")
    return {"failed": bool(failed), "critical": critical, "warning": warning, "lines": lines,
            "message": head + ("\n" + "\n".join(lines) if lines else "")}


# --------------------------------------------------------------------------------------------
# discovery: endpoints no definition covers, as monitored_only definitions ready to import


def parse_dn(text: str | None) -> dict:
    """{short name: value} from cert_scan's one-line DN (``/C=JP/O=Example/CN=www.example.jp``)."""
    result: dict = {}
    if not text:
        return result
    for part in _DN_PART.split(text):
        if not part or "=" not in part:
            continue
        key, value = part.split("=", 1)
        result.setdefault(key, value)
    return result


def subject_attributes(item: dict) -> dict:
    """{short name: first value} of an endpoint result's leaf subject.

    From ``subject_attributes`` (the certificate's own attributes, as cert_scan returns them): a value
    may hold ``/O=...`` itself, so the joined ``subject`` string cannot be split back. Only results
    without them (from before cert_scan returned attributes) fall back to ``parse_dn``.
    """
    attributes = item.get("subject_attributes")
    if not isinstance(attributes, dict):
        return parse_dn(item.get("subject"))
    result: dict = {}
    for key, value in attributes.items():
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, str):
            result[str(key)] = value
    return result


def _slug(text: str) -> str:
    text = text.lower().replace("*", "wildcard")
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:100] or "endpoint"


def _sort_host(host: str) -> tuple:
    try:
        address = ipaddress.ip_address(host)
        return (0, address.version, int(address), "")
    except ValueError:
        return (1, 0, 0, host.lower())


def _resolve(host: str) -> set:
    """The addresses a name resolves to (empty when it does not)."""
    try:
        return {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return set()


def covered_keys(covered, *, resolve=_resolve) -> set:
    """{(host or address, port)} of the endpoints already defined, DNS names also as their addresses."""
    keys = set()
    for host, port in covered or []:
        host = str(host).lower()
        keys.add((host, int(port)))
        if not is_ip_address(host):
            keys.update((str(ipaddress.ip_address(address.split("%")[0])), int(port)) for address in resolve(host))
    return keys


def discovered_definitions(results, *, covered=None, taken_names=None, resolve=_resolve) -> list[dict]:
    """monitored_only definitions for every TLS endpoint found that no definition covers.

    Endpoints serving the same certificate (SHA-256) become one definition with several
    endpoints. The name is the common name made safe (``www-example-co-jp``), or host and port
    when there is no CN; names shared by different certificates or already used in the
    inventory get ``-<host>-<port>`` of their first endpoint. Sorted, so the same scan gives
    the same file.
    """
    known = covered_keys(covered, resolve=resolve)
    groups: dict = {}
    for item in parse_results(results):
        if item.get("outcome") != "ok" or not item.get("sha256"):
            continue
        hosts = {str(item.get("host") or "").lower(), str(item.get("address") or "").lower()} - {""}
        if any((host, int(item["port"])) in known for host in hosts):
            continue
        groups.setdefault(item["sha256"], []).append(item)
    entries = []
    for sha256, items in groups.items():
        items.sort(key=lambda item: (_sort_host(item["host"]), item["port"]))
        first = items[0]
        subject = subject_attributes(first)
        cn = subject.get("CN")
        seen, endpoint_list = set(), []
        for item in items:
            server_name = item.get("server_name") or (cn if _usable_sni(cn) else None)
            key = (item["host"], item["port"], server_name)
            if key in seen:
                continue
            seen.add(key)
            endpoint = {"host": item["host"], "port": item["port"]}
            if server_name:
                endpoint["server_name"] = server_name
            endpoint_list.append(endpoint)
        entry = {
            "base": _slug(cn) if cn else _slug(f"{first['host']}-{first['port']}"),
            "suffix": _slug(f"{first['host']}-{first['port']}"),
            "sort": (_sort_host(first["host"]), first["port"]),
            "definition": {
                "name": None,
                "common_name": cn,
                "organization_name": subject.get("O"),
                "country_name": subject.get("C"),
                "mode": "monitored_only",
                "endpoints": endpoint_list,
                "description": (f"discovered: issuer {first.get('issuer') or '?'}; not after {first.get('not_after') or '?'}; "
                                f"SHA-256 {sha256}"),
            },
        }
        if first.get("trusted_ca_set") not in (None, "default"):
            entry["definition"]["trusted_ca_set"] = first["trusted_ca_set"]
        entries.append(entry)
    taken = set(taken_names or [])
    counts: dict = {}
    for entry in entries:
        counts[entry["base"]] = counts.get(entry["base"], 0) + 1
    entries.sort(key=lambda entry: entry["sort"])
    used = set(taken)
    for entry in entries:
        name = entry["base"]
        if (counts[name] > 1 or name in taken) and entry["base"] != entry["suffix"]:
            name = f"{entry['base']}-{entry['suffix']}"
        candidate, number = name, 2
        while candidate in used:
            candidate = f"{name}-{number}"
            number += 1
        used.add(candidate)
        entry["definition"]["name"] = candidate[:128]
    return [entry["definition"] for entry in entries]


def discovered_yaml(definitions: list[dict], *, header: str = "") -> str:
    """The discovered-certificates file: a YAML list ready to paste into certfleet_certificates.

    Written by hand (JSON-quoted scalars are valid YAML) so the text depends only on the data:
    the same scan gives a byte-identical file. Every value comes from a scanned certificate, so any
    string holding ``{{``, ``{%`` or ``{#`` is tagged ``!unsafe``: pasted into group_vars, or read
    back by the role (``load_discovered``), it stays text and is never rendered.
    """
    lines = ["---"]
    lines.extend(f"# {line}".rstrip() for line in header.splitlines())
    if not definitions:
        lines.append("[]")
        return "\n".join(lines) + "\n"
    order = ("name", "common_name", "organization_name", "country_name", "mode", "trusted_ca_set", "description")
    for definition in definitions:
        first = True
        for key in order:
            if key not in definition:
                continue
            lines.append(f"{'- ' if first else '  '}{key}: {yaml_scalar(definition[key])}")
            first = False
        lines.append("  endpoints:")
        for endpoint in definition.get("endpoints") or []:
            parts = [f"{key}: {yaml_scalar(endpoint[key])}" for key in ("host", "port", "server_name") if key in endpoint]
            lines.append(f"    - {{{', '.join(parts)}}}")
    return "\n".join(lines) + "\n"


MAX_DISCOVERED_BYTES = 16 * 1024 * 1024


def load_discovered(text) -> list:
    """The definitions of a discovered-certificates file (as ``discovered_yaml`` writes it, hand edits kept).

    A YAML safe load that also knows Ansible's ``!unsafe`` tag (the values stay plain text): Ansible's
    ``from_yaml`` filter refuses the tag, and dropping it would let the role render scanned values.
    """
    import yaml  # pylint: disable=import-outside-toplevel  # controller side only (filters), PyYAML comes with Ansible

    if text is None:
        return []
    text = str(text)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DISCOVERED_BYTES:
        raise CertfleetError(f"discovered-certificates file: larger than {MAX_DISCOVERED_BYTES} bytes")

    class _Loader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
        pass

    def unsafe(loader, node):
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        return loader.construct_scalar(node)

    _Loader.add_constructor("!unsafe", unsafe)
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader plus the !unsafe tag
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise CertfleetError(f"discovered-certificates file: not valid YAML{where}: "
                             f"{getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise CertfleetError("discovered-certificates file: must be a YAML list of certificate definitions (dicts)")
    return data


def discovery_update(results, *, plan: dict, existing_text: str | None = None, header: str = "",
                     resolve=_resolve) -> dict:
    """New monitored_only definitions and the discovered-certificates file text with them added.

    The file is only ever appended to: what is in it (hand edits, comments) stays as it is, and a
    scan that finds nothing new leaves it byte-identical (``changed`` false), so a second run of
    certfleet.tls.discover adds nothing.
    """
    added = discovered_definitions(results, covered=plan.get("covered"), taken_names=plan.get("names"), resolve=resolve)
    text = existing_text or ""
    has_entries = any(line.startswith("- ") for line in text.splitlines())
    if not added:
        return {"added": [], "text": text if text.strip() else discovered_yaml([], header=header),
                "changed": not text.strip()}
    if not has_entries:
        return {"added": added, "text": discovered_yaml(added, header=header), "changed": True}
    body = discovered_yaml(added).split("\n", 1)[1]  # without its "---"
    note = "\n".join(f"# {line}".rstrip() for line in header.splitlines())
    return {"added": added, "text": text.rstrip("\n") + "\n" + (note + "\n" if note else "") + body, "changed": True}


# Definitions waiting longer than this for their CA are listed by verify and monitor.
DEFAULT_PENDING_WARN_DAYS = 14


def stale_pending(definitions, *, store_path: str, older_than_days: int = DEFAULT_PENDING_WARN_DAYS, now=None) -> list[dict]:
    """The definitions pending at their CA for ``older_than_days`` days or more, oldest first, each with a message."""
    try:
        threshold = int(older_than_days)
    except (TypeError, ValueError):
        raise CertfleetError(f"the pending threshold must be a number of days, not {older_than_days!r}") from None
    if threshold < 0:
        raise CertfleetError("the pending threshold must not be negative")
    found = []
    for definition in definitions or []:
        name = definition.get("name") if isinstance(definition, dict) else None
        if not isinstance(name, str) or not layout.NAME_PATTERN.fullmatch(name):
            continue
        status = _store.pending_status(store_path, name, now=now)
        if status is None or status["days"] is None or status["days"] < threshold:
            continue
        found.append(dict(status, message=(
            f"{name}: pending at its CA for {status['days']} day(s) (since {status['since']}, threshold {threshold}); "
            f"submit its CSR or drop the certificate the CA sent into incoming/ and run certfleet.tls.collect")))
    return sorted(found, key=lambda item: (-item["days"], item["name"]))
