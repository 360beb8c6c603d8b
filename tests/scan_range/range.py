"""Start every scenario of ``pki.build_range_pki()`` on loopback: ``start_range(directory)``."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ansible_collections.certfleet.tls.tests.scan_range.pki import RangePKI, Scenario, build_range_pki, pem_of
from ansible_collections.certfleet.tls.tests.scan_range.server import RangeServer, closed_port, ipv6_available, server_context


@dataclass
class RunningRange:
    """The servers, where each scenario listens, and the files the tests need."""

    pki: RangePKI
    server: RangeServer
    endpoints: dict = field(default_factory=dict)  # scenario name -> (host, port)
    trust_path: str = ""
    directory: str = ""

    def scenario(self, name: str) -> Scenario:
        """The Scenario called ``name``."""
        return self.pki.scenarios[name]

    def target(self, name: str) -> str:
        """``host:port`` of a scenario, IPv6 in brackets."""
        host, port = self.endpoints[name]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def scan_target(self, name: str, /, **extra) -> dict:
        """The cert_scan target of a scenario: its SNI, STARTTLS and pinned fingerprint as it needs, named after it."""
        host, port = self.endpoints[name]
        scenario = self.scenario(name)
        entry = {"host": host, "port": port, "server_name": scenario.server_name, "name": name}
        if scenario.kind.startswith("smtp"):
            entry["starttls"] = "smtp"
        if scenario.expected_fingerprint:
            entry["expected_fingerprint"] = scenario.expected_fingerprint
        entry.update(extra)
        return entry

    def scan_targets(self) -> list[dict]:
        """scan_target of every scenario that is served."""
        return [self.scan_target(name) for name in self.endpoints]

    def stop(self) -> None:
        """Stop the servers."""
        self.server.stop()


def start_range(directory: str, pki: RangePKI | None = None) -> RunningRange:
    """Write the scenario certificates under ``directory`` and serve every scenario (IPv6 ones only when ::1 works)."""
    pki = pki or build_range_pki()
    server = RangeServer("127.0.0.1")
    running = RunningRange(pki=pki, server=server, directory=directory)
    running.trust_path = os.path.join(directory, "trust.pem")
    with open(running.trust_path, "wb") as handle:
        handle.write(pki.trust_pem)
    has_ipv6 = ipv6_available()
    for name, scenario in pki.scenarios.items():
        if scenario.host == "::1" and not has_ipv6:
            continue
        context = None
        if scenario.chain:
            cert_path = os.path.join(directory, f"{name}.crt")
            key_path = os.path.join(directory, f"{name}.key")
            with open(cert_path, "wb") as handle:
                handle.write(pem_of(scenario.chain))
            with open(key_path, "wb") as handle:
                handle.write(scenario.chain[0].key_pem)
            context = server_context(cert_path, key_path, weak=scenario.weak)
        if scenario.kind == "closed":
            running.endpoints[name] = (scenario.host, closed_port(scenario.host))
            continue
        port = server.add(scenario.kind, context=context, host=scenario.host,
                          server_name=pki.scenarios["healthy"].server_name if scenario.kind == "sni_reject" else None)
        running.endpoints[name] = (scenario.host, port)
    server.start()
    return running
