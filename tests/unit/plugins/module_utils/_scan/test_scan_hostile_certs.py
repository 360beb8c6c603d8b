# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile certificates: one that cannot be parsed is that endpoint's result; a huge chain costs bounded work."""

from __future__ import annotations

import json
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._scan import checks as ec
from ansible_collections.certfleet.tls.plugins.module_utils._scan import runner
from ansible_collections.certfleet.tls.plugins.module_utils._scan import tls as _tls
from ansible_collections.certfleet.tls.plugins.modules import cert_scan, tls_probe
from ansible_collections.certfleet.tls.tests.scan_range.hostile import long_chain, run_module, unparsable_leaf
from ansible_collections.certfleet.tls.tests.scan_range.server import RangeServer, server_context
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

ROOT = pb.make_root("Hostile Cert Root")
BAD_NAME = "bad.scan.test"


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def bad_server(tmp_path_factory):
    """Loopback TLS servers presenting a leaf that OpenSSL serves and cryptography cannot read: {field: port}."""
    directory = tmp_path_factory.mktemp("hostile_certs")
    server = RangeServer("127.0.0.1")
    ports = {}
    for field in ("subject", "san"):
        der, key = unparsable_leaf(BAD_NAME, issuer=ROOT, field=field)
        cert_path, key_path = directory / f"{field}.crt", directory / f"{field}.key"
        cert_path.write_bytes(_pem(der))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        ports[field] = server.add("tls", context=server_context(str(cert_path), str(key_path)))
    trust = directory / "trust.pem"
    trust.write_bytes(ROOT.pem)
    server.start()
    yield ports, str(trust)
    server.stop()


# --------------------------------------------------------------------------------------------
# row 2: a certificate that cannot be parsed


@pytest.mark.parametrize("field, where", [("subject", "subject"), ("san", "subject_alternative_name"), ("key", "Invalid key")])
def test_evaluate_unparsable_field_is_the_endpoints_result(field, where):
    der, _key = unparsable_leaf(BAD_NAME, issuer=ROOT, field=field)
    certificate = x509.load_der_x509_certificate(der)  # loads: the bad field is decoded only when read
    result = _tls.HandshakeResult(endpoint=_tls.Endpoint("192.0.2.1", 443), outcome="ok", message="ok",
                                  certificates=[certificate, ROOT.cert], der=[der, ROOT.der])
    trust = ec.TrustStore([ROOT.cert], name="private")
    report = ec.evaluate(result, ec.ChainAnalyzer(), expect=ec.Expectations(hostname=BAD_NAME, trust=trust))
    assert report["outcome"] == "bad_certificate" and report["status"] == "critical"
    message = report["checks"]["connect"]["message"]
    assert message.startswith("certificate cannot be parsed: presented certificate #1 (SHA-256 ") and where in message
    assert report["problems"] == [f"connect: {message}"]


def test_evaluate_unparsable_intermediate_and_der():
    der, _key = unparsable_leaf("Bad Intermediate", issuer=ROOT, field="subject", ca=True)
    leaf = pb.make_leaf("www.scan.test", issuer=ROOT)
    result = _tls.HandshakeResult(endpoint=_tls.Endpoint("192.0.2.1", 443), outcome="ok", message="ok",
                                  certificates=[leaf.cert, x509.load_der_x509_certificate(der)], der=[leaf.der, der])
    report = ec.evaluate(result, ec.ChainAnalyzer(), expect=ec.Expectations(trust=ec.TrustStore([ROOT.cert])))
    assert report["outcome"] == "bad_certificate"
    assert "presented certificate #2" in report["checks"]["connect"]["message"]
    # DER that does not even load: tls keeps the certificates before it and a note.
    notes: list = []
    certificates = _tls._der_list_to_certificates([leaf.der, b"\x30\x03\x02\x01\x01"], notes)
    result = _tls.HandshakeResult(endpoint=_tls.Endpoint("192.0.2.1", 443), outcome="ok", message="ok",
                                  certificates=certificates, der=[leaf.der, b"\x30\x03\x02\x01\x01"], notes=notes)
    report = ec.evaluate(result, ec.ChainAnalyzer())
    assert report["outcome"] == "bad_certificate"
    assert report["checks"]["connect"]["message"].startswith("certificate cannot be parsed: presented certificate #2 (SHA-256 ")


def test_evaluate_any_analysis_error_stays_with_the_endpoint(monkeypatch):
    leaf = pb.make_leaf("www.scan.test", issuer=ROOT)
    result = _tls.HandshakeResult(endpoint=_tls.Endpoint("192.0.2.1", 443), outcome="ok", message="ok",
                                  certificates=[leaf.cert], der=[leaf.der])

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ec.ChainAnalyzer, "analyze", broken)
    report = ec.evaluate(result, ec.ChainAnalyzer())
    assert (report["outcome"], report["status"]) == ("error", "critical")
    assert report["checks"]["connect"]["message"] == "unexpected error while checking the presented chain: RuntimeError: boom"


@pytest.mark.parametrize("workers", [1, 2])
def test_run_scan_reports_every_other_endpoint(scan_range, bad_server, workers):
    ports, trust = bad_server
    names = list(scan_range.endpoints)
    targets = [scan_range.scan_target(name) for name in names]
    targets += [{"host": "127.0.0.1", "port": port, "server_name": BAD_NAME, "name": f"bad_{field}"} for field, port in ports.items()]
    plan = runner.ScanPlan(targets=targets, trusted_ca_sets={"default": {"system": False, "certificates": [scan_range.trust_path, trust]}})
    reports = {report["name"]: report for report in runner.run_scan(plan, timeout=1.5, concurrency=16, workers=workers)}
    assert set(reports) == set(names) | {"bad_subject", "bad_san"}
    for field in ports:
        report = reports[f"bad_{field}"]
        assert (report["outcome"], report["status"]) == ("bad_certificate", "critical")
        assert report["checks"]["connect"]["message"].startswith("certificate cannot be parsed: presented certificate #1")
    for name in names:
        scenario = scan_range.scenario(name)
        assert (reports[name]["outcome"], reports[name]["status"]) == (scenario.outcome, scenario.status), name


def test_cert_scan_writes_results_path(capsys, scan_range, bad_server, tmp_path):
    ports, trust = bad_server
    path = tmp_path / "scan.jsonl"
    targets = [scan_range.scan_target("healthy"), {"host": "127.0.0.1", "port": ports["subject"], "server_name": BAD_NAME, "name": "bad"},
               scan_range.scan_target("expired")]
    result = run_module(capsys, cert_scan.main, {"targets": targets, "results_path": str(path), "timeout": 1.5,
                                                 "trusted_ca_sets": {"default": {"system": False,
                                                                                 "certificates": [scan_range.trust_path, trust]}}})
    assert not result.get("failed"), result.get("msg")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    by_name = {line["name"]: line for line in lines}
    assert set(by_name) == {"healthy", "bad", "expired"}
    assert by_name["bad"]["outcome"] == "bad_certificate"
    assert "certificate cannot be parsed" in by_name["bad"]["checks"]["connect"]["message"]
    assert by_name["healthy"]["outcome"] == "ok" and by_name["expired"]["outcome"] == "ok"
    assert result["summary"]["by_outcome"]["bad_certificate"] == 1 and result["summary"]["total"] == 3


def test_tls_probe_reports_cannot_be_parsed(capsys, bad_server):
    ports, trust = bad_server
    args = {"host": "127.0.0.1", "port": ports["subject"], "server_name": BAD_NAME, "trust_bundle": [trust],
            "system_trust": False, "timeout": 2}
    result = run_module(capsys, tls_probe.main, args)
    assert result["failed"] is True
    assert "unexpected error" not in result["msg"] and "Traceback" not in json.dumps(result)
    assert result["msg"].startswith(f"TLS check of 127.0.0.1:{ports['subject']} failed: connect: certificate cannot be parsed: ")
    assert result["outcome"] == "bad_certificate" and result["failed_checks"] == ["connect"]


# --------------------------------------------------------------------------------------------
# row 8: chain length and analysis work


@pytest.fixture(scope="module")
def huge_chain():
    certificates, _key = long_chain(250)
    return certificates


def _count_signature_checks(monkeypatch) -> list:
    calls = []
    real = _chain.verify_signature

    def counting(certificate, key):
        calls.append(1)
        return real(certificate, key)

    monkeypatch.setattr(_chain, "verify_signature", counting)
    return calls


def test_huge_chain_bounded_work(monkeypatch, huge_chain):
    calls = _count_signature_checks(monkeypatch)
    der = [cert.public_bytes(serialization.Encoding.DER) for cert in huge_chain]
    result = _tls.HandshakeResult(endpoint=_tls.Endpoint("192.0.2.1", 443), outcome="ok", message="ok",
                                  certificates=list(huge_chain), der=der)
    trust = ec.TrustStore([ROOT.cert])
    started = time.monotonic()
    report = ec.evaluate(result, ec.ChainAnalyzer(), expect=ec.Expectations(hostname="hostile.scan.test", trust=trust))
    elapsed = time.monotonic() - started
    assert len(calls) <= ec.MAX_SIGNATURE_CHECKS + ec.MAX_CHAIN_CERTIFICATES
    assert elapsed < 1.0
    order = report["checks"]["chain_order"]
    assert order["status"] != "ok"
    assert f"the server sent 250 certificates; only the first {ec.MAX_CHAIN_CERTIFICATES} were checked" in order["message"]
    assert len(report["chain"]) == ec.MAX_CHAIN_CERTIFICATES


def test_analysis_budget_within_a_short_chain(monkeypatch, huge_chain):
    """Even under the length cap, the issuer search stops at the signature budget and says so."""
    calls = _count_signature_checks(monkeypatch)
    monkeypatch.setattr(ec, "MAX_SIGNATURE_CHECKS", 20)
    chain = [huge_chain[0]] + list(huge_chain[-15:])  # leaf, then its issuers top first: ~n²/2 checks to order
    der = [cert.public_bytes(serialization.Encoding.DER) for cert in chain]
    report = ec.ChainAnalyzer().analyze(chain, der=der)
    assert len(calls) <= 20 + len(chain)
    order = report.check("chain_order")
    assert order.status == "warning" and "analysis stopped after 20 signature checks" in order.message


def test_run_scan_huge_chain_inside_the_deadline(monkeypatch, huge_chain):
    calls = _count_signature_checks(monkeypatch)
    der = [cert.public_bytes(serialization.Encoding.DER) for cert in huge_chain]

    def scanner(endpoints, **_kwargs):
        for endpoint in endpoints:
            yield _tls.HandshakeResult(endpoint=endpoint, outcome="ok", message="ok", certificates=list(huge_chain), der=der)

    plan = runner.ScanPlan(targets=[{"host": f"192.0.2.{n}", "server_name": "hostile.scan.test"} for n in range(1, 5)],
                           trusted_ca_sets={"default": {"system": False, "certificates": [ROOT.pem.decode()]}})
    started = time.monotonic()
    reports = list(runner.run_scan(plan, scanner=scanner, deadline=2))
    elapsed = time.monotonic() - started
    assert elapsed < 2
    assert len(reports) == 4 and all(report["status"] == "critical" for report in reports)
    assert len(calls) <= 4 * (ec.MAX_SIGNATURE_CHECKS + ec.MAX_CHAIN_CERTIFICATES)
