#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: tls_probe
short_description: Deploy check - one TLS handshake to see which certificate and chain a server really presents
version_added: 0.2.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Connects to O(host):O(port), optionally after SMTP STARTTLS, sends O(server_name) as SNI and reads the full
    certificate chain the server presents, the negotiated protocol and cipher.
  - Checks it from outside, as the deploy check of this collection - the presented leaf is
    the expected certificate (SHA-256 or SHA-1 fingerprint), every intermediate is sent and in order, the chain is
    trusted by the trusted CA set, the name matches, enough days are left - plus weak keys, SHA-1/MD5 signatures,
    validity over 398 days, self-signed leaf and intermediates expiring before the leaf.
  - Network problems (refused, timeout, reset, DNS, unreachable, plain HTTP or other non-TLS answer, handshake
    failure, STARTTLS failure) are reported as RV(outcome) with a message, never as a traceback.
  - The task fails when a check named in O(fail_on) is not V(ok); everything is returned either way.
  - Runs where the module runs; use C(delegate_to) to probe from the controller or another vantage point.
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.attributes.info_module
  - certfleet.tls.handshake
options:
  host:
    description: Host name or IP address (IPv4 or IPv6) to connect to.
    type: str
    required: true
  port:
    description: TCP port.
    type: int
    default: 443
  server_name:
    description:
      - Name sent as SNI and checked against the certificate (RFC 6125 host name matching).
      - Defaults to O(host) when it is a DNS name; with an IP address and no O(server_name) no SNI is sent.
    type: str
  timeout:
    description: Seconds for the whole probe (DNS, connect, STARTTLS and handshake).
    type: float
    default: 10
  starttls:
    description: Protocol to speak before the handshake. V(smtp) sends EHLO and STARTTLS (RFC 3207).
    type: str
    choices: [none, smtp]
    default: none
  expected_certificate:
    description:
      - The certificate the server should present, as a path or PEM text - the certificate alone, or followed by its
        intermediates. When it holds intermediates too, each must be presented by the server.
      - Mutually exclusive with O(expected_fingerprint).
    type: str
  expected_fingerprint:
    description:
      - SHA-256 (64 hex digits) or SHA-1 (40 hex digits, the Windows thumbprint) fingerprint of the
        certificate the server should present. Colons and case do not matter.
    type: str
  expected_subject:
    description: Expected subject DN attributes of the leaf, for example C(CN), C(O), C(C).
    type: dict
  trust_bundle:
    description: CA certificates (paths or PEM text) to trust in addition to, or instead of, the system bundle.
    type: list
    elements: str
    default: []
  system_trust:
    description: Include the operating system's CA bundle in the trusted CA set.
    type: bool
    default: true
  revocation_lists:
    description:
      - Certificate revocation lists (paths to DER or PEM files, or PEM text), for example the private CA's
        C(crl.der) from the store (P(certfleet.tls.store_path#lookup)). A leaf or intermediate on one of them makes the
        C(revocation) check V(critical) (and RV(trusted) false); a CRL past its nextUpdate makes it a V(warning).
      - A CRL issued by a CA of the trusted set must carry that CA's signature.
    type: list
    elements: str
    default: []
  check_hostname:
    description: Check that O(server_name) (or O(host)) is in the leaf's subjectAltName (wildcards per RFC 6125, IP SANs).
    type: bool
    default: true
  min_days_valid:
    description: The C(expiry) check is not V(ok) when fewer days are left than this.
    type: int
    default: 14
  warning_days:
    description:
      - Days left below which C(expiry) is only a V(warning); must be at least O(min_days_valid).
      - Defaults to O(min_days_valid), so that C(expiry) is either V(ok) or V(critical).
    type: int
  fail_on:
    description:
      - Checks that fail the task when their status is not V(ok). A check that did not run (no expectation given)
        never fails.
      - C(connect) is the handshake itself; remove it to get a normal result with RV(outcome) for unreachable servers.
    type: list
    elements: str
    choices: [connect, expiry, chain_complete, chain_order, trust, hostname, subject, fingerprint, key_size, signature,
              validity_period, self_signed, intermediate_expiry, revocation]
    default: [connect, fingerprint, chain_complete, trust, hostname, expiry, revocation]
notes:
  - Nothing is verified during the handshake itself (the probe must see broken and legacy servers too, including SHA-1
    and 1024-bit RSA); the checks judge the chain afterwards.
seealso:
  - module: certfleet.tls.cert_scan
  - name: docs/scanning.md
    description: Outcomes, checks and severities.
    link: https://github.com/certfleet/certfleet.tls/blob/main/docs/scanning.md
"""

EXAMPLES = r"""
- name: Deploy check - the server presents the intended certificate with its intermediates
  certfleet.tls.tls_probe:
    host: web01.example.co.jp
    server_name: www.example.co.jp
    expected_certificate: /srv/tls/www.example.co.jp/fullchain.crt
  delegate_to: localhost

- name: Compare with the SHA-1 thumbprint recorded for the certificate
  certfleet.tls.tls_probe:
    host: 192.0.2.10
    server_name: shop.example.co.jp
    expected_fingerprint: "3A:1F:...:9C"

- name: Mail server with STARTTLS and a private CA
  certfleet.tls.tls_probe:
    host: mail.example.internal
    port: 25
    starttls: smtp
    trust_bundle: [/etc/pki/internal-root-ca.crt]
    system_trust: false

- name: Only report, never fail (monitoring style)
  certfleet.tls.tls_probe:
    host: legacy.example.co.jp
    fail_on: []
  register: probe

- name: Show what is wrong
  ansible.builtin.debug:
    msg: "{{ probe.outcome }} {{ probe.status }} {{ probe.problems }}"
"""

RETURN = r"""
outcome:
  description: Network outcome - V(ok), V(refused), V(timeout), V(reset), V(dns_error), V(not_tls), V(handshake_failure),
    V(unreachable), V(starttls_failure), V(bad_certificate) (a presented certificate cannot be parsed) or V(error).
  returned: always
  type: str
  sample: ok
outcome_message:
  description: What happened, for people.
  returned: always
  type: str
status:
  description: Worst status of all checks - V(ok), V(warning) or V(critical) (any network failure is V(critical)).
  returned: always
  type: str
checks:
  description: Every check that ran, by name, with C(status) and C(message).
  returned: always
  type: dict
  sample: {"expiry": {"status": "ok", "message": "expires on 2027-01-01T00:00:00Z: 120 day(s) left"}}
problems:
  description: C(check - message) for every check that is not V(ok).
  returned: always
  type: list
  elements: str
failed_checks:
  description: Checks named in O(fail_on) that are not V(ok) (the task failed when this is not empty).
  returned: always
  type: list
  elements: str
address:
  description: IP address connected to.
  returned: when connected
  type: str
server_name:
  description: SNI sent (null when none).
  returned: always
  type: str
protocol:
  description: Negotiated protocol, for example C(TLSv1.3).
  returned: when the handshake completed
  type: str
cipher:
  description: Negotiated cipher suite.
  returned: when the handshake completed
  type: str
chain:
  description: The certificates as the server presented them, leaf first.
  returned: always (empty when the handshake failed)
  type: list
  elements: dict
  contains:
    subject:
      description: Subject DN, one line.
      type: str
    issuer:
      description: Issuer DN, one line.
      type: str
    sha256:
      description: SHA-256 fingerprint.
      type: str
    sha1:
      description: SHA-1 fingerprint (thumbprint).
      type: str
    not_before:
      description: Start of validity, ISO 8601 UTC.
      type: str
    not_after:
      description: End of validity, ISO 8601 UTC.
      type: str
    serial:
      description: Serial number in hex.
      type: str
    is_ca:
      description: basicConstraints CA flag.
      type: bool
    self_signed:
      description: Whether it is self-signed.
      type: bool
subject:
  description: Subject DN of the leaf.
  returned: when the handshake completed
  type: str
sha256:
  description: SHA-256 fingerprint of the leaf.
  returned: when the handshake completed
  type: str
sha1:
  description: SHA-1 fingerprint of the leaf.
  returned: when the handshake completed
  type: str
not_after:
  description: End of validity of the leaf.
  returned: when the handshake completed
  type: str
days_left:
  description: Whole days until the leaf expires (negative when expired).
  returned: when the handshake completed
  type: int
matches_expected:
  description: Whether the leaf is the expected certificate; null when no expectation was given.
  returned: always
  type: bool
chain_complete:
  description: Whether every intermediate up to a trust anchor (or the server's own root) is presented.
  returned: always
  type: bool
chain_order_ok:
  description: Whether each certificate is followed by its issuer, with nothing extra.
  returned: always
  type: bool
trusted:
  description: Whether the chain validates up to the trusted CA set (false when a certificate of it is revoked).
  returned: always
  type: bool
revoked:
  description: Whether the leaf or an intermediate is on a CRL of O(revocation_lists); null when no CRL covers them.
  returned: always
  type: bool
hostname_ok:
  description: Whether the name matches the leaf; null when not checked.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._scan import checks as _endpoint_checks

from ansible_collections.certfleet.tls.plugins.module_utils._scan import tls as _tls
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import require_cryptography, run_or_fail

CHECK_NAMES = sorted(_endpoint_checks.CHECKS)
DEFAULT_FAIL_ON = ["connect", "fingerprint", "chain_complete", "trust", "hostname", "expiry", "revocation"]


def probe(params: dict) -> dict:
    """Validate the options, run one handshake, check it; returns the report (raises CertfleetError on bad input)."""
    warning_days = params["warning_days"] if params["warning_days"] is not None else params["min_days_valid"]
    policy = _endpoint_checks.Policy(warning_days=warning_days, critical_days=params["min_days_valid"])
    endpoint = _tls.make_endpoint(params["host"], params["port"], server_name=params["server_name"], starttls=params["starttls"])
    names = (["system"] if params["system_trust"] else []) + (["trust_bundle"] if params["trust_bundle"] else [])
    trust = None
    if names:
        trust = _endpoint_checks.TrustStore.load(name="+".join(names), system=params["system_trust"],
                                                 certificates=params["trust_bundle"],
                                                 revocation_lists=params["revocation_lists"])
    elif params["revocation_lists"]:
        raise _endpoint_checks.CertfleetError("revocation_lists needs a trusted CA set: system_trust and/or trust_bundle")
    hostname = None
    if params["check_hostname"]:
        hostname = endpoint.server_name or endpoint.host
    expect = _endpoint_checks.expectations_for(
        hostname=hostname,
        expected_fingerprint=params["expected_fingerprint"],
        expected_certificate=params["expected_certificate"],
        expected_subject=params["expected_subject"],
        trust=trust,
    )
    result = _tls.probe(endpoint, timeout=params["timeout"], backend=params["backend"])
    report = _endpoint_checks.evaluate(result, _endpoint_checks.ChainAnalyzer(policy=policy), expect=expect)
    for key in ("index", "starttls", "elapsed_ms"):
        report.pop(key, None)
    report["failed_checks"] = [name for name in params["fail_on"]
                               if name in report["checks"] and report["checks"][name]["status"] != "ok"]
    return report


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            port=dict(type="int", default=443),
            server_name=dict(type="str"),
            timeout=dict(type="float", default=10),
            starttls=dict(type="str", choices=["none", "smtp"], default="none"),
            expected_certificate=dict(type="str"),
            expected_fingerprint=dict(type="str"),
            expected_subject=dict(type="dict"),
            trust_bundle=dict(type="list", elements="str", default=[]),
            system_trust=dict(type="bool", default=True),
            revocation_lists=dict(type="list", elements="str", default=[]),
            check_hostname=dict(type="bool", default=True),
            min_days_valid=dict(type="int", default=14),
            warning_days=dict(type="int"),
            fail_on=dict(type="list", elements="str", choices=CHECK_NAMES, default=DEFAULT_FAIL_ON),
            backend=dict(type="str", choices=list(_tls.BACKENDS), default="auto"),
        ),
        mutually_exclusive=[("expected_certificate", "expected_fingerprint")],
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    report = run_or_fail(module, lambda: probe(params), doing="in the TLS probe")
    if report["failed_checks"]:
        where = f"{params['host']}:{params['port']}"
        details = "; ".join(f"{name}: {report['checks'][name]['message']}" for name in report["failed_checks"])
        module.fail_json(msg=f"TLS check of {where} failed: {details}", **report)
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
