#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cert_scan
short_description: Scan many TLS endpoints concurrently and check every presented certificate chain
version_added: 0.2.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - One module call handles the whole list - C(host:port) targets and CIDR ranges x port lists - with many handshakes
    in flight (O(concurrency)), a per-connection O(timeout) and an overall O(deadline). The engine of certificate
    monitoring and of the discovery of certificates nobody manages yet.
  - Each endpoint gets the checks of M(certfleet.tls.tls_probe), chosen by its mode -
    V(monitored_only) (default) validates the chain against its trusted CA set, checks the name,
    the expected DN and the expiry thresholds; V(lifecycle_managed) compares the presented certificate with the
    current one of the store (fingerprint) and checks that the store's intermediates are sent, without trust or name
    checks. Both modes also report expiry, chain order, weak keys and signatures, validity over 398 days, self-signed
    leaves and intermediates expiring before the leaf.
  - Network failures are classified per endpoint (see RV(endpoints[].outcome)); the task itself only fails on
    invalid options. Thresholds crossed are reported in RV(summary) for a role or playbook to act on.
  - With O(results_path) every result is streamed to a JSON lines file as it arrives, so memory stays flat for tens
    of thousands of endpoints.
attributes:
  check_mode:
    details: The scan only reads, so check mode scans too. O(results_path) is a report, written in check mode as well.
  diff_mode:
    support: none
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.handshake
options:
  targets:
    description:
      - Endpoints as C(host), C(host:port) or C([IPv6]:port) strings, or dicts with C(host) (required), C(port),
        C(server_name) (SNI, alias C(sni)), C(name) (a label for reports), C(mode) (V(monitored_only) or
        V(lifecycle_managed)), C(expected_fingerprint) or C(expected_certificate) (path or PEM; a full chain also
        sets the intermediates that must be sent), C(expected_subject) (dict of C(CN), C(O), C(C), ...),
        C(trusted_ca_set) (a name from O(trusted_ca_sets)), C(starttls) (V(none) or V(smtp)) and C(check_hostname).
      - The name checked is C(server_name), else C(host) when it is a DNS name; IP-only targets are not name-checked
        unless C(check_hostname=true).
    type: list
    elements: raw
    default: []
  ranges:
    description:
      - CIDR ranges, as strings or dicts with C(cidr) (a network or a list of them, IPv4 or IPv6) and C(ports) plus the
        same optional keys as O(targets) except C(host), C(port), C(expected_fingerprint) and C(expected_certificate).
      - Every host address of each network is scanned on every port (a /24 on two ports is 508 endpoints).
    type: list
    elements: raw
    default: []
  ports:
    description: Ports for ranges without C(ports) and for targets without a port. Numbers or C("8000-8010") ranges.
    type: list
    elements: raw
    default: [443]
  defaults:
    description: Keys applied to every target and range that does not set them (C(mode), C(trusted_ca_set), C(starttls),
      C(check_hostname), C(expected_subject), C(server_name)).
    type: dict
    default: {}
  trusted_ca_sets:
    description:
      - Named trusted CA sets - each a dict with C(system) (include the operating system bundle,
        default V(true)), C(certificates) (paths or PEM text of user-defined CAs) and C(revocation_lists)
        (paths to DER or PEM CRLs, or PEM text, for example the private CA's C(crl.der) in the store).
      - A leaf or intermediate on a CRL of its set makes the C(revocation) check V(critical) (RV(endpoints[].trusted)
        false, RV(endpoints[].revoked) true), for lifecycle_managed targets too; a CRL past its nextUpdate warns.
        A CRL issued by a CA of the set must carry that CA's signature.
      - A set called V(default) (the system bundle) always exists unless redefined here.
    type: dict
    default: {}
  default_trusted_ca_set:
    description: Set used by targets and ranges that do not name one.
    type: str
    default: default
  concurrency:
    description: Handshakes in flight at once.
    type: int
    default: 64
  workers:
    description:
      - Processes that scan in parallel, each with O(concurrency) / O(workers) handshakes in flight. One process does a few
        hundred handshakes a second (TLS and the checks cost CPU); more use more cores. V(1) scans in the module process.
    type: int
    default: 1
  timeout:
    description: Seconds per endpoint (DNS, connect, STARTTLS and handshake).
    type: float
    default: 5
  deadline:
    description:
      - Seconds for the whole scan. Endpoints not finished by then are reported with outcome V(deadline), so the task
        always ends within about this time. No limit when unset.
    type: float
  warning_days:
    description: C(expiry) is a V(warning) below this many days left.
    type: int
    default: 30
  critical_days:
    description: C(expiry) is V(critical) below this many days left.
    type: int
    default: 14
  min_rsa_bits:
    description: Smallest acceptable RSA / DSA key of the leaf and the intermediates.
    type: int
    default: 2048
  max_validity_days:
    description: C(validity_period) warns when the leaf is valid for longer (398 days, CA/Browser Forum).
    type: int
    default: 398
  results_path:
    description:
      - Write one JSON object per endpoint (the elements of RV(endpoints)) to this file, one per line, in completion
        order, as results arrive. The file is complete only when the task ends (written beside, then renamed).
    type: path
  return_endpoints:
    description:
      - Which endpoint results to return in RV(endpoints). V(problems) returns only those whose status is not V(ok).
      - Defaults to V(all), or V(none) when O(results_path) is set.
    type: str
    choices: [all, problems, none]
  include_chain:
    description: Include the presented chain (subjects, fingerprints, validity) in each endpoint result.
    type: bool
    default: true
  max_endpoints:
    description: Refuse to start when the targets and ranges expand to more endpoints than this (a typo in a CIDR).
    type: int
    default: 65536
notes:
  - Scan only networks you are responsible for. The scan sends one TLS ClientHello per endpoint and closes.
seealso:
  - module: certfleet.tls.tls_probe
  - name: docs/scanning.md
    description: Outcomes, checks, severities, result schema and performance figures.
    link: https://github.com/certfleet/certfleet.tls/blob/main/docs/scanning.md
"""

EXAMPLES = r"""
- name: Monitor the fleet's endpoints (monitored-only and lifecycle-managed)
  certfleet.tls.cert_scan:
    targets:
      - www.example.co.jp:443
      - host: 192.0.2.10
        server_name: shop.example.co.jp
        mode: lifecycle_managed
        expected_certificate: /srv/tls/shop.example.co.jp/fullchain.crt
      - host: mail.example.internal
        port: 25
        starttls: smtp
        trusted_ca_set: internal
        expected_subject: {O: "Example Co.,Ltd.", C: JP}
    trusted_ca_sets:
      internal:
        system: false
        certificates: [/etc/pki/internal-root-ca.crt]
    warning_days: 30
    critical_days: 14
  register: scan
  delegate_to: localhost

- name: Discovery - every address of two networks on the usual TLS ports, streamed to a file
  certfleet.tls.cert_scan:
    ranges:
      - cidr: [192.0.2.0/24, 198.51.100.0/25]
        ports: [443, 8443, "9443-9445"]
    concurrency: 256
    timeout: 3
    deadline: 900
    results_path: /var/lib/certfleet/discovery.jsonl
    return_endpoints: problems
  register: discovery

- name: Fail the job when something is critical
  ansible.builtin.assert:
    that: scan.summary.critical == 0
    fail_msg: "{{ scan.endpoints | selectattr('status', 'eq', 'critical') | map(attribute='problems') | list }}"
"""

RETURN = r"""
summary:
  description: Counts over all endpoints.
  returned: success
  type: dict
  contains:
    total:
      description: Endpoints scanned (including those cut by the deadline).
      type: int
    ok:
      description: Endpoints whose every check is V(ok).
      type: int
    warning:
      description: Endpoints whose worst check is a V(warning).
      type: int
    critical:
      description: Endpoints with a V(critical) check (every network failure is critical).
      type: int
    by_outcome:
      description: Endpoints per network outcome.
      type: dict
      sample: {"ok": 250, "refused": 3, "timeout": 1}
    by_check:
      description: For each check, how many endpoints had it at V(warning) and V(critical).
      type: dict
      sample: {"expiry": {"warning": 2, "critical": 1}}
    expired:
      description: Endpoints whose leaf has expired.
      type: int
    expiring:
      description: Endpoints whose leaf is inside the warning or critical window (not yet expired).
      type: int
    deadline_reached:
      description: Whether the overall deadline cut the scan short.
      type: bool
    elapsed_seconds:
      description: Wall time of the scan.
      type: float
    endpoints_per_second:
      description: Throughput of the scan.
      type: float
    backend:
      description: Handshake library used (pyopenssl or stdlib).
      type: str
    workers:
      description: Processes that scanned.
      type: int
endpoints:
  description:
    - One result per endpoint, in plan order (targets, then ranges), as selected by O(return_endpoints).
    - The same objects are the lines of O(results_path).
  returned: success
  type: list
  elements: dict
  contains:
    index:
      description: Position in the plan (targets first, then each range's addresses x ports).
      type: int
    name:
      description: The target's C(name), if any.
      type: str
    host:
      description: Host or IP scanned.
      type: str
    port:
      description: Port.
      type: int
    server_name:
      description: SNI sent (null when none).
      type: str
    address:
      description: IP address connected to.
      type: str
    mode:
      description: V(monitored_only) or V(lifecycle_managed).
      type: str
    trusted_ca_set:
      description: Name of the trusted CA set used.
      type: str
    outcome:
      description: V(ok), V(refused), V(timeout), V(reset), V(dns_error), V(not_tls), V(handshake_failure),
        V(unreachable), V(starttls_failure), V(bad_certificate) (a presented certificate cannot be parsed), V(deadline) or V(error).
      type: str
    outcome_message:
      description: What happened on the network.
      type: str
    status:
      description: Worst check status - V(ok), V(warning) or V(critical).
      type: str
    checks:
      description: Every check that ran, by name, with C(status) and C(message).
      type: dict
    problems:
      description: C(check - message) for each check that is not V(ok).
      type: list
      elements: str
    protocol:
      description: Negotiated TLS version.
      type: str
    cipher:
      description: Negotiated cipher suite.
      type: str
    subject:
      description: Leaf subject DN.
      type: str
    issuer:
      description: Leaf issuer DN.
      type: str
    subject_attributes:
      description:
        - The leaf subject's attributes by short name (C(CN), C(O), ...; other attributes by dotted OID), a list when one repeats.
        - Use these, not a split of RV(endpoints[].subject); an attribute value may itself hold C(/O=...).
      type: dict
    issuer_attributes:
      description: The leaf issuer's attributes, the same shape as C(subject_attributes).
      type: dict
    sha256:
      description: Leaf SHA-256 fingerprint.
      type: str
    sha1:
      description: Leaf SHA-1 fingerprint.
      type: str
    not_after:
      description: Leaf end of validity (ISO 8601 UTC).
      type: str
    days_left:
      description: Whole days left (negative when expired).
      type: int
    matches_expected:
      description: Leaf equals the expected certificate; null without an expectation.
      type: bool
    chain_complete:
      description: Every intermediate is presented; null when it cannot be judged.
      type: bool
    chain_order_ok:
      description: Presented in issuing order without extras.
      type: bool
    trusted:
      description: Validates up to the trusted CA set; null when not checked (lifecycle_managed); false when revoked.
      type: bool
    revoked:
      description: The leaf or an intermediate is on a CRL of the trusted CA set; null when no CRL of it covers them.
      type: bool
    hostname_ok:
      description: Name matches; null when not checked.
      type: bool
    chain:
      description: Presented certificates, leaf first (subject, issuer, sha256, sha1, serial, not_before, not_after,
        is_ca, self_signed).
      type: list
      elements: dict
    elapsed_ms:
      description: Time spent on this endpoint.
      type: float
results_path:
  description: The JSON lines file written, when O(results_path) is set.
  returned: when O(results_path) is set
  type: str
"""

import json
import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._common.module import exit_with, require_cryptography, run_or_fail
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._scan import checks as _endpoint_checks
from ansible_collections.certfleet.tls.plugins.module_utils._scan import runner as _runner
from ansible_collections.certfleet.tls.plugins.module_utils._scan import tls as _tls


class _ResultsFile:
    """JSON lines written to a temporary file beside the destination, renamed into place at the end."""

    def __init__(self, module: AnsibleModule, path: str) -> None:
        self.module = module
        self.path = path
        directory = os.path.dirname(os.path.abspath(path)) or "."
        if not os.path.isdir(directory):
            raise CertfleetError(f"results_path: directory {directory} does not exist")
        handle, self.temp = tempfile.mkstemp(prefix=".cert_scan.", suffix=".tmp", dir=directory)
        os.chmod(self.temp, 0o644)
        self.handle = os.fdopen(handle, "w", encoding="utf-8")

    def write(self, report: dict) -> None:
        self.handle.write(json.dumps(report, sort_keys=True) + "\n")

    def commit(self) -> None:
        self.handle.close()
        self.module.atomic_move(self.temp, self.path)

    def discard(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        if os.path.exists(self.temp):
            os.unlink(self.temp)


def scan(module: AnsibleModule) -> tuple[dict, list]:
    """Plan, scan, check, count; returns the module result and the plan's warnings (raises CertfleetError on invalid options)."""
    params = module.params
    defaults = dict(params["defaults"])
    defaults["ports"] = params["ports"]
    policy = _endpoint_checks.Policy(warning_days=params["warning_days"], critical_days=params["critical_days"],
                                     min_rsa_bits=params["min_rsa_bits"], max_validity_days=params["max_validity_days"])
    plan = _runner.ScanPlan(targets=params["targets"], ranges=params["ranges"],
                            trusted_ca_sets=params["trusted_ca_sets"],
                            default_trusted_ca_set=params["default_trusted_ca_set"], defaults=defaults,
                            max_endpoints=params["max_endpoints"])
    backend = _tls.resolve_backend(params["backend"])
    if not 1 <= params["concurrency"] <= _tls.MAX_CONCURRENCY:
        raise CertfleetError(f"concurrency must be between 1 and {_tls.MAX_CONCURRENCY}")
    if not 1 <= params["workers"] <= 64:
        raise CertfleetError("workers must be between 1 and 64")
    returning = params["return_endpoints"] or ("none" if params["results_path"] else "all")
    writer = _ResultsFile(module, params["results_path"]) if params["results_path"] else None
    summary = _endpoint_checks.Summary()
    kept = []
    started = time.monotonic()
    try:
        for report in _runner.run_scan(plan, analyzer=_endpoint_checks.ChainAnalyzer(policy=policy),
                                       concurrency=params["concurrency"], timeout=params["timeout"],
                                       deadline=params["deadline"], backend=backend,
                                       include_chain=params["include_chain"], workers=params["workers"]):
            summary.add(report)
            if writer is not None:
                writer.write(report)
            if returning == "all" or (returning == "problems" and report["status"] != "ok"):
                kept.append(report)
        if writer is not None:
            writer.commit()
    finally:
        if writer is not None:
            writer.discard()
    elapsed = time.monotonic() - started
    counts = summary.as_dict()
    counts.update(deadline_reached=counts["by_outcome"].get("deadline", 0) > 0, elapsed_seconds=round(elapsed, 3),
                  endpoints_per_second=round(summary.total / elapsed, 1) if elapsed > 0 else None, backend=backend,
                  workers=min(params["workers"], plan.total))
    kept.sort(key=lambda item: item["index"])
    result = {"changed": False, "summary": counts, "endpoints": kept}
    if params["results_path"]:
        result["results_path"] = params["results_path"]
    return result, plan.warnings


def main():
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(type="list", elements="raw", default=[]),
            ranges=dict(type="list", elements="raw", default=[]),
            ports=dict(type="list", elements="raw", default=[443]),
            defaults=dict(type="dict", default={}),
            trusted_ca_sets=dict(type="dict", default={}),
            default_trusted_ca_set=dict(type="str", default="default"),
            concurrency=dict(type="int", default=64),
            workers=dict(type="int", default=1),
            timeout=dict(type="float", default=5),
            deadline=dict(type="float"),
            warning_days=dict(type="int", default=30),
            critical_days=dict(type="int", default=14),
            min_rsa_bits=dict(type="int", default=2048),
            max_validity_days=dict(type="int", default=398),
            results_path=dict(type="path"),
            return_endpoints=dict(type="str", choices=["all", "problems", "none"]),
            include_chain=dict(type="bool", default=True),
            max_endpoints=dict(type="int", default=65536),
            backend=dict(type="str", choices=list(_tls.BACKENDS), default="auto"),
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    result, warnings = run_or_fail(module, lambda: scan(module), doing="in the scan")
    exit_with(module, result, warnings=warnings)


if __name__ == "__main__":
    main()
