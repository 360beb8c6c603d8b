# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scan runner: a validated plan of targets and ranges, scanned by ``tls`` and judged by ``checks``.

This module is private to the certfleet.tls collection: its API may change
without notice.

``ScanPlan`` turns cert_scan's targets and ranges into endpoints (counted up front, produced
lazily); ``run_scan`` handshakes with them and yields one endpoint report each, in one process
or forked over several worker processes.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass

from ansible_collections.certfleet.tls.plugins.module_utils._common.network import is_ip_address, parse_host_port
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._scan import tls as _tls
from ansible_collections.certfleet.tls.plugins.module_utils._scan.checks import (
    ChainAnalyzer,
    Expectations,
    TrustStore,
    endpoint_report,
    evaluate,
    expectations_for,
)

TARGET_KEYS = frozenset(("host", "port", "server_name", "sni", "name", "mode", "expected_fingerprint", "expected_certificate",
                         "expected_subject", "trusted_ca_set", "starttls", "check_hostname"))
RANGE_KEYS = frozenset(("cidr", "ports", "server_name", "sni", "name", "mode", "expected_subject", "trusted_ca_set", "starttls",
                        "check_hostname"))


@dataclass
class EndpointSpec:
    """What the scanner carries through ``Endpoint.data``: the expectations and the labels for the report."""

    expect: Expectations
    extra: dict


class ScanPlan:
    """Validated targets and ranges: counts up front, endpoints lazily (10,000s without a list in memory)."""

    def __init__(self, *, targets: list | None = None, ranges: list | None = None, trusted_ca_sets: dict | None = None,
                 default_trusted_ca_set: str = "default", defaults: dict | None = None, max_endpoints: int = 65536,
                 system_path: str | None = None) -> None:
        self.defaults = dict(defaults or {})
        self.set_options = {"default": {"system": True, "certificates": [], "revocation_lists": []}}
        for name, options in (trusted_ca_sets or {}).items():
            options = options or {}
            unknown = set(options) - {"system", "certificates", "revocation_lists"}
            if unknown:
                raise CertfleetError(f"trusted_ca_sets.{name}: unknown key(s) {', '.join(sorted(unknown))}; "
                                     f"use system, certificates, revocation_lists")
            self.set_options[name] = {"system": bool(options.get("system", True)), "certificates": list(options.get("certificates") or []),
                                      "revocation_lists": list(options.get("revocation_lists") or [])}
        self.default_set = default_trusted_ca_set
        self.system_path = system_path
        self._stores: dict[str, TrustStore] = {}
        self.warnings: list[str] = []
        self.targets: list[tuple] = []  # (host, port, server_name, starttls, spec)
        self.ranges: list[tuple] = []  # (networks, ports, server_name, starttls, spec)
        self.total = 0
        for number, target in enumerate(targets or [], start=1):
            self._add_target(target, what=f"targets[{number}]: ")
        for number, entry in enumerate(ranges or [], start=1):
            self._add_range(entry, what=f"ranges[{number}]: ")
        if self.total == 0:
            raise CertfleetError("nothing to scan: give targets and/or ranges")
        if self.total > max_endpoints:
            raise CertfleetError(f"{self.total} endpoints planned, more than max_endpoints ({max_endpoints}); raise max_endpoints "
                                 f"or split the ranges")

    def trust_store(self, name: str, *, what: str = "") -> TrustStore:
        """The trusted CA set called ``name``, loaded once."""
        if name not in self.set_options:
            raise CertfleetError(f"{what}trusted CA set {name!r} is not defined; defined: {', '.join(sorted(self.set_options))}")
        if name not in self._stores:
            options = self.set_options[name]
            store = TrustStore.load(name=name, system=options["system"], certificates=options["certificates"],
                                    system_path=self.system_path, revocation_lists=options["revocation_lists"])
            self.warnings.extend(store.warnings[:5])
            self._stores[name] = store
        return self._stores[name]

    def _merged(self, entry, *, what: str, keys: frozenset, required: str) -> dict:
        """The entry (a string is its ``required`` key) over the plan's defaults, checked for unknown keys."""
        if isinstance(entry, str):
            entry = {required: entry}
        if not isinstance(entry, dict):
            raise CertfleetError(f"{what}expected a dict or a host:port string, got {type(entry).__name__}")
        unknown = set(entry) - keys
        if unknown:
            raise CertfleetError(f"{what}unknown key(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(keys))}")
        merged = {key: value for key, value in self.defaults.items() if key in keys and key not in ("host", "port", "cidr", "name")}
        merged.update({key: value for key, value in entry.items() if value is not None})
        if "sni" in merged:
            merged.setdefault("server_name", merged.pop("sni"))
        if not merged.get(required):
            raise CertfleetError(f"{what}{required} is required")
        return merged

    def _spec(self, merged: dict, *, host: str | None, port: int, what: str) -> tuple[EndpointSpec, str | None]:
        mode = merged.get("mode", "monitored_only")
        server_name = merged.get("server_name")
        starttls = merged.get("starttls", "none")
        if starttls not in _tls.STARTTLS_PROTOCOLS:
            raise CertfleetError(f"{what}starttls must be one of {', '.join(_tls.STARTTLS_PROTOCOLS)}, not {starttls!r}")
        name_to_check = server_name or (host if host and not is_ip_address(host) else None)
        check = merged.get("check_hostname")
        if check is None:
            check = name_to_check is not None
        elif check and name_to_check is None:
            name_to_check = host
        store = self.trust_store(merged.get("trusted_ca_set", self.default_set), what=what)
        expect = expectations_for(hostname=name_to_check if check and mode == "monitored_only" else None,
                                  expected_fingerprint=merged.get("expected_fingerprint"),
                                  expected_certificate=merged.get("expected_certificate"),
                                  expected_subject=merged.get("expected_subject") if mode == "monitored_only" else None,
                                  trust=store, mode=mode, what=what)
        extra = {"name": merged.get("name"), "mode": mode, "trusted_ca_set": store.name}
        return EndpointSpec(expect=expect, extra=extra), server_name

    def _add_target(self, target, *, what: str) -> None:
        merged = self._merged(target, what=what, keys=TARGET_KEYS, required="host")
        host, port = parse_host_port(merged["host"], default_port=int(self.defaults.get("port") or _tls.DEFAULT_PORT))
        if merged.get("port") is not None:
            port = merged["port"]
        spec, server_name = self._spec(merged, host=host, port=port, what=what)
        # Validate host, port, SNI and STARTTLS now, before any connection.
        _tls.make_endpoint(host, port, server_name=server_name, starttls=merged.get("starttls", "none"))
        self.targets.append((host, int(port), server_name, merged.get("starttls", "none"), spec))
        self.total += 1

    def _add_range(self, entry, *, what: str) -> None:
        merged = self._merged(entry, what=what, keys=RANGE_KEYS, required="cidr")
        cidrs = merged["cidr"] if isinstance(merged["cidr"], list) else [merged["cidr"]]
        networks = [_tls.parse_network(cidr, what=f"{what}cidr") for cidr in cidrs]
        ports = _tls.parse_ports(merged.get("ports") or self.defaults.get("ports") or [443], what=f"{what}ports")
        spec, server_name = self._spec(merged, host=None, port=0, what=what)
        _tls.make_endpoint("127.0.0.1", 1, server_name=server_name, starttls=merged.get("starttls", "none"))
        self.ranges.append((networks, ports, server_name, merged.get("starttls", "none"), spec))
        self.total += sum(_tls.network_size(network) for network in networks) * len(ports)

    def endpoints(self):
        """Every endpoint, lazily, numbered in plan order."""
        index = 0
        for host, port, server_name, starttls, spec in self.targets:
            yield _tls.Endpoint(host=host, port=port, server_name=server_name, starttls=starttls, index=index, data=spec)
            index += 1
        for networks, ports, server_name, starttls, spec in self.ranges:
            for network in networks:
                for address in _tls.network_addresses(network):
                    for port in ports:
                        yield _tls.Endpoint(host=address, port=port, server_name=server_name, starttls=starttls,
                                            index=index, data=spec)
                        index += 1


def run_scan(plan: ScanPlan, *, analyzer: ChainAnalyzer | None = None, concurrency: int = 64, timeout: float = 10.0,
             deadline: float | None = None, backend: str = "auto", include_chain: bool = True, scanner=None,
             resolver=None, workers: int = 1):
    """Scan and check every endpoint of the plan: yields endpoint reports (dicts) as they complete.

    ``workers`` > 1 forks that many processes, each scanning and checking its share (every
    ``workers``-th endpoint of the plan) with ``concurrency / workers`` handshakes in flight, so a
    scan can use every core: one process tops out at a few hundred handshakes a second.
    """
    analyzer = analyzer or ChainAnalyzer()
    if workers > 1 and plan.total > 1 and _fork_context() is not None:
        yield from _run_workers(plan, analyzer=analyzer, concurrency=concurrency, timeout=timeout, deadline=deadline,
                                backend=backend, include_chain=include_chain, scanner=scanner, resolver=resolver,
                                workers=min(workers, plan.total))
        return
    scanner = scanner or _tls.scan
    for result in scanner(plan.endpoints(), concurrency=concurrency, timeout=timeout, deadline=deadline, backend=backend,
                          resolver=resolver):
        spec = result.endpoint.data
        yield safe_evaluate(result, analyzer, expect=spec.expect, include_chain=include_chain, extra=spec.extra)


def safe_evaluate(result, analyzer: ChainAnalyzer, *, expect, include_chain: bool, extra) -> dict:
    """``evaluate``, but whatever goes wrong with one endpoint is that endpoint's ``error`` outcome, never the end of the scan."""
    try:
        return evaluate(result, analyzer, expect=expect, include_chain=include_chain, extra=extra)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        failed = dataclasses.replace(result, outcome="error",
                                     message=f"unexpected error while checking the presented chain: {type(exc).__name__}: {exc}")
        return endpoint_report(failed, None, include_chain=include_chain, extra=extra)


def _fork_context():
    import multiprocessing  # pylint: disable=import-outside-toplevel

    try:
        return multiprocessing.get_context("fork")
    except ValueError:  # pragma: no cover - no fork on this platform: one process
        return None


class _Share:
    """The endpoints of one worker: every ``workers``-th of the plan, from ``number``."""

    def __init__(self, plan: ScanPlan, number: int, workers: int) -> None:
        self.plan = plan
        self.number = number
        self.workers = workers
        self.total = len(range(number, plan.total, workers))

    def endpoints(self):
        return (endpoint for endpoint in self.plan.endpoints() if endpoint.index % self.workers == self.number)


_BATCH = 32
_BATCH_SECONDS = 0.05


def _worker_main(conn, share: _Share, options: dict, deadline_at: float | None) -> None:
    """Child process: scan the share, send reports in small batches, then None (or ('error', text))."""
    try:
        deadline = None
        if deadline_at is not None:
            deadline = max(deadline_at - time.monotonic(), 0.001)
        batch: list = []
        sent_at = time.monotonic()
        for report in run_scan(share, deadline=deadline, workers=1, **options):
            batch.append(report)
            now = time.monotonic()
            if len(batch) >= _BATCH or now - sent_at > _BATCH_SECONDS:
                conn.send(batch)
                batch, sent_at = [], now
        if batch:
            conn.send(batch)
        conn.send(None)
    except BaseException as exc:  # pylint: disable=broad-exception-caught
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        except (OSError, ValueError):
            pass
    finally:
        conn.close()


def _run_workers(plan: ScanPlan, *, analyzer: ChainAnalyzer, concurrency: int, timeout: float, deadline: float | None,
                 backend: str, include_chain: bool, scanner, resolver, workers: int):
    from multiprocessing.connection import wait  # pylint: disable=import-outside-toplevel

    context = _fork_context()
    options = {"analyzer": ChainAnalyzer(policy=analyzer.policy), "concurrency": max(1, -(-concurrency // workers)),
               "timeout": timeout, "backend": backend, "include_chain": include_chain, "scanner": scanner,
               "resolver": resolver}
    deadline_at = time.monotonic() + deadline if deadline else None
    # Anything buffered would be written again by each child when it exits.
    sys.stdout.flush()
    sys.stderr.flush()
    processes = []
    connections = {}
    try:
        for number in range(workers):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_worker_main, args=(sender, _Share(plan, number, workers), options, deadline_at),
                                      name=f"certfleet-scan-{number}", daemon=True)
            process.start()
            sender.close()
            processes.append(process)
            connections[receiver] = number
        while connections:
            for conn in wait(list(connections)):
                try:
                    message = conn.recv()
                except EOFError:
                    number = connections.pop(conn)
                    raise CertfleetError(f"scan worker {number} ended without finishing its share "
                                         f"(exit code {processes[number].exitcode})") from None
                if message is None:
                    del connections[conn]
                    conn.close()
                elif isinstance(message, tuple):
                    raise CertfleetError(f"scan worker {connections[conn]} failed: {message[1]}")
                else:
                    yield from message
    finally:
        for conn in connections:
            conn.close()
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join(5)
