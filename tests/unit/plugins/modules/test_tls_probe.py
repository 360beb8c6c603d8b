# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tls_probe run in-process against the loopback scan range: deploy-check verdicts, failures without tracebacks."""

from __future__ import annotations

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._scan import tls as _tls
from ansible_collections.certfleet.tls.plugins.modules import tls_probe
from ansible_collections.certfleet.tls.tests.scan_range.pki import pem_of


def args_for(scan_range, name: str, **extra) -> dict:
    host, port = scan_range.endpoints[name]
    scenario = scan_range.scenario(name)
    args = {"host": host, "port": port, "server_name": scenario.server_name, "trust_bundle": [scan_range.trust_path],
            "system_trust": False, "timeout": 2}
    if scenario.kind.startswith("smtp"):
        args["starttls"] = "smtp"
    args.update(extra)
    return args


def test_healthy_deploy_check(run_module, scan_range):
    healthy = scan_range.scenario("healthy")
    result = run_module(tls_probe.main, args_for(scan_range, "healthy", expected_certificate=pem_of(healthy.chain).decode()))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert (result["outcome"], result["status"]) == ("ok", "ok")
    assert result["matches_expected"] is True and result["chain_complete"] is True and result["chain_order_ok"] is True
    assert result["trusted"] is True and result["hostname_ok"] is True and result["failed_checks"] == []
    assert result["protocol"].startswith("TLSv") and result["cipher"]
    assert [item["subject"] for item in result["chain"]] == ["/CN=www.scan.test", "/CN=Scan Test Int"]
    assert {"sha256", "sha1", "not_after"} <= set(result["chain"][0])
    assert 80 <= result["days_left"] <= 90


@pytest.mark.parametrize("name, failed_checks, words", [
    ("fingerprint_mismatch", ["fingerprint"], "the server presents a different certificate"),
    ("missing_intermediate", ["chain_complete", "trust"], "/CN=Scan Test Int"),
    ("wrong_host", ["hostname"], "not covered by the subjectAltName"),
    ("expired", ["expiry"], "expired on"),
    ("expiring_10_days", ["expiry"], "10 day(s) left"),
    ("untrusted_private_ca", ["trust"], "not in the trusted CA set"),
    ("self_signed", ["trust"], "self-signed"),
    ("closed_port", ["connect"], "connection refused"),
    ("silent_port", ["connect"], "no answer to the TLS ClientHello"),
    ("plain_http", ["connect"], "plain HTTP"),
    ("sni_rejected", ["connect"], "TLS handshake failed"),
    ("smtp_without_starttls", ["connect"], "does not offer STARTTLS"),
])
def test_failures_are_clear(run_module, scan_range, name, failed_checks, words):
    scenario = scan_range.scenario(name)
    extra = {"expected_fingerprint": scenario.expected_fingerprint} if scenario.expected_fingerprint else {}
    result = run_module(tls_probe.main, args_for(scan_range, name, timeout=1, **extra))
    assert result["failed"] is True
    assert result["failed_checks"] == failed_checks
    assert words in result["msg"]
    assert result["msg"].startswith(f"TLS check of {scan_range.endpoints[name][0]}:{scan_range.endpoints[name][1]} failed")
    assert "exception" not in result and "Traceback" not in result["msg"]
    assert result["outcome"] == scenario.outcome


@pytest.mark.parametrize("name", ["sha1_signed", "rsa_1024", "wrong_order", "long_validity", "intermediate_expires_first",
                                  "smtp_starttls", "healthy_rsa_chain"])
def test_default_fail_on_lets_these_pass_with_their_report(run_module, scan_range, name):
    scenario = scan_range.scenario(name)
    result = run_module(tls_probe.main, args_for(scan_range, name, min_days_valid=14, warning_days=30))
    assert not result.get("failed"), result.get("msg")
    assert result["status"] == scenario.status
    assert {check for check, data in result["checks"].items() if data["status"] != "ok"} == set(scenario.failing)


def test_expiry_window(run_module, scan_range):
    # min_days_valid alone: 20 days left is fine; with a 30-day warning band the listed check is not ok and fails.
    plain = run_module(tls_probe.main, args_for(scan_range, "expiring_20_days"))
    assert not plain.get("failed") and plain["checks"]["expiry"]["status"] == "ok"
    banded = run_module(tls_probe.main, args_for(scan_range, "expiring_20_days", warning_days=30))
    assert banded["failed"] and banded["checks"]["expiry"]["status"] == "warning"
    reported = run_module(tls_probe.main, args_for(scan_range, "expiring_20_days", warning_days=30, fail_on=["connect"]))
    assert not reported.get("failed") and reported["status"] == "warning"


def test_fail_on_weak_crypto(run_module, scan_range):
    result = run_module(tls_probe.main, args_for(scan_range, "sha1_signed", fail_on=["signature", "key_size"]))
    assert result["failed"] and result["failed_checks"] == ["signature"]
    assert "SHA1" in result["msg"]


def test_no_fail_on_returns_the_network_outcome(run_module, scan_range):
    result = run_module(tls_probe.main, args_for(scan_range, "closed_port", fail_on=[]))
    assert not result.get("failed")
    assert (result["outcome"], result["status"]) == ("refused", "critical")
    assert result["chain"] == [] and result["trusted"] is None and result["days_left"] is None


def test_sha1_thumbprint_like_appendix_a(run_module, scan_range):
    from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import certificate_fingerprint  # pylint: disable=import-outside-toplevel

    thumbprint = certificate_fingerprint(scan_range.scenario("healthy").chain[0].cert, "sha1").replace(":", "").lower()
    result = run_module(tls_probe.main, args_for(scan_range, "healthy", expected_fingerprint=thumbprint))
    assert not result.get("failed") and result["matches_expected"] is True


def test_expected_certificate_from_a_file_with_its_intermediate(run_module, scan_range, tmp_path):
    fullchain = tmp_path / "fullchain.pem"
    fullchain.write_bytes(pem_of(scan_range.scenario("healthy").chain))
    # The same certificate served without its intermediate: the deploy check names the missing one.
    result = run_module(tls_probe.main, args_for(scan_range, "missing_intermediate", fail_on=["chain_complete"],
                                                 expected_certificate=str(fullchain)))
    assert result["failed"] and result.get("failed_checks") == ["chain_complete"], result["msg"]


def test_check_mode_probes_too(run_module, scan_range):
    result = run_module(tls_probe.main, dict(args_for(scan_range, "healthy"), _ansible_check_mode=True))
    assert not result.get("failed") and result["outcome"] == "ok" and result["changed"] is False


def test_expected_subject(run_module, scan_range):
    good = run_module(tls_probe.main, args_for(scan_range, "healthy", expected_subject={"CN": "www.scan.test"},
                                               fail_on=["subject"]))
    bad = run_module(tls_probe.main, args_for(scan_range, "healthy", expected_subject={"CN": "www.scan.test", "O": "Example"},
                                              fail_on=["subject"]))
    assert not good.get("failed")
    assert bad["failed"] and "O is missing, expected 'Example'" in bad["msg"]


def test_system_trust_does_not_know_the_test_root(run_module, scan_range):
    result = run_module(tls_probe.main, args_for(scan_range, "healthy", trust_bundle=[], system_trust=True))
    assert result["failed"] and result["failed_checks"] == ["chain_complete", "trust"]


def test_no_trust_at_all(run_module, scan_range):
    result = run_module(tls_probe.main, args_for(scan_range, "healthy", trust_bundle=[], system_trust=False))
    assert not result.get("failed")
    assert result["trusted"] is None and result["chain_complete"] is None


@pytest.mark.parametrize("backend", ["stdlib"] + (["pyopenssl"] if _tls.HAS_PYOPENSSL else []))
def test_backends(run_module, scan_range, backend):
    result = run_module(tls_probe.main, args_for(scan_range, "healthy", backend=backend))
    assert not result.get("failed") and result["outcome"] == "ok"


@pytest.mark.parametrize("extra, message", [
    ({"expected_fingerprint": "12:34"}, "not a SHA-256 (64 hex digits) or SHA-1"),
    ({"expected_fingerprint": "AB" * 32, "expected_certificate": "x"}, "mutually exclusive"),
    ({"expected_certificate": "/nonexistent/cert.pem"}, "neither PEM text nor an existing file"),
    ({"expected_certificate": "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"}, "invalid base64"),
    ({"trust_bundle": ["/nonexistent/ca.pem"]}, "cannot read /nonexistent/ca.pem"),
    ({"port": 0}, "outside 1..65535"),
    ({"server_name": "192.0.2.1"}, "SNI carries host names only"),
    ({"min_days_valid": 40, "warning_days": 30}, "critical_days (40) must not be larger than warning_days (30)"),
    ({"starttls": "imap"}, "value of starttls must be one of"),
    ({"fail_on": ["everything"]}, "value of fail_on must be one or more of"),
])
def test_bad_inputs(run_module, scan_range, extra, message):
    result = run_module(tls_probe.main, args_for(scan_range, "healthy", **extra))
    assert result["failed"] is True
    assert message in result["msg"]
    assert "exception" not in result
