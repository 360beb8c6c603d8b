# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks over presented chains, without any network: pki_builder chains in, verdicts out."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._scan import checks as ec
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError, certificate_fingerprint
from ansible_collections.certfleet.tls.tests.scan_range.pki import SERVER_NAME, build_range_pki, pem_of
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def range_pki():
    return build_range_pki()


@pytest.fixture(scope="module")
def trust(range_pki):
    return ec.TrustStore([range_pki.root.cert], name="scan")


def certs(chain) -> list:
    return [item.cert for item in chain]


# --------------------------------------------------------------------------------------------
# every TLS scenario of the range, judged offline (the same table the network tests use)

OFFLINE_KINDS = ("tls", "sni_reject", "smtp", "smtp_no_starttls")


@pytest.mark.parametrize("name", [
    "healthy", "healthy_rsa_chain", "expired", "expiring_10_days", "expiring_20_days", "missing_intermediate", "wrong_order",
    "wrong_host", "self_signed", "untrusted_private_ca", "sha1_signed", "rsa_1024", "fingerprint_mismatch",
    "fingerprint_match", "long_validity", "intermediate_expires_first",
])
def test_scenario_classification_offline(range_pki, trust, name):
    scenario = range_pki.scenarios[name]
    expect = ec.Expectations(hostname=scenario.server_name, trust=trust,
                             fingerprint=ec.normalize_fingerprint(scenario.expected_fingerprint) if scenario.expected_fingerprint else None)
    report = ec.ChainAnalyzer().analyze(certs(scenario.chain), expect=expect)
    failing = {check.name: check.status for check in report.checks if check.status != "ok"}
    assert failing == scenario.failing
    assert report.status == scenario.status
    assert all(check.status in ec.STATUSES and check.message for check in report.checks)


def test_facts_of_a_healthy_chain(range_pki, trust):
    scenario = range_pki.scenarios["healthy"]
    report = ec.ChainAnalyzer().analyze(certs(scenario.chain), expect=ec.Expectations(hostname=SERVER_NAME, trust=trust))
    facts = report.facts
    assert facts["chain_complete"] is True and facts["chain_order_ok"] is True and facts["trusted"] is True
    assert facts["hostname_ok"] is True and facts["matches_expected"] is None
    assert facts["sha256"] == certificate_fingerprint(scenario.chain[0].cert, "sha256")
    assert facts["sha1"] == certificate_fingerprint(scenario.chain[0].cert, "sha1")
    assert 85 <= facts["days_left"] <= 90
    assert facts["subject_alt_name"] == [SERVER_NAME]
    assert [item["subject"] for item in report.chain] == ["/CN=www.scan.test", "/CN=Scan Test Int"]
    assert report.chain == _chain.chain_info(certs(scenario.chain))


def test_missing_intermediate_names_the_issuer(range_pki, trust):
    report = ec.ChainAnalyzer().analyze(certs(range_pki.scenarios["missing_intermediate"].chain),
                                        expect=ec.Expectations(trust=trust))
    assert "/CN=Scan Test Int" in report.check("chain_complete").message
    assert report.check("trust").message.startswith("not trusted:")


def test_missing_intermediate_named_from_the_expected_chain(range_pki, trust):
    healthy = range_pki.scenarios["healthy"]
    fingerprint, intermediates = ec.expected_from_certificate(pem_of(healthy.chain), source="fullchain.pem")
    expect = ec.Expectations(fingerprint=fingerprint, intermediates=intermediates, trust=trust, check_trust=False)
    report = ec.ChainAnalyzer().analyze([healthy.chain[0].cert], expect=expect)
    assert report.check("chain_complete").status == "critical"
    assert "/CN=Scan Test Int" in report.check("chain_complete").message
    assert report.check("fingerprint").status == "ok"
    assert report.check("trust") is None and report.facts["trusted"] is None
    complete = ec.ChainAnalyzer().analyze(certs(healthy.chain), expect=expect)
    assert complete.status == "ok"


def test_wrong_order_message_lists_the_right_order(range_pki, trust):
    report = ec.ChainAnalyzer().analyze(certs(range_pki.scenarios["wrong_order"].chain), expect=ec.Expectations(trust=trust))
    message = report.check("chain_order").message
    assert "Int B -> /CN=Scan Test Int A" in message and "#1 -> #3 -> #2" in message
    assert report.facts["chain_order_ok"] is False and report.facts["trusted"] is True


def test_extra_and_leaf_not_first(range_pki, trust):
    scenario = range_pki.scenarios["healthy"]
    extra = ec.ChainAnalyzer().analyze(certs(scenario.chain) + [range_pki.private_root.cert], expect=ec.Expectations(trust=trust))
    assert extra.check("chain_order").status == "warning"
    assert "#3 (/CN=Scan Private Root) is not part of the leaf's chain" in extra.check("chain_order").message
    swapped = ec.ChainAnalyzer().analyze(list(reversed(certs(scenario.chain))), expect=ec.Expectations(trust=trust))
    assert swapped.check("chain_order").status == "critical"
    assert "must come first" in swapped.check("chain_order").message


def test_cross_signed_root_reaches_the_anchor():
    pki = pb.standard_pki()
    store = ec.TrustStore([pki.root.cert], name="new-root")
    # leaf -> int2 -> int1 -> root cross-signed by the old root: the cross certificate is the anchor's CA.
    report = ec.ChainAnalyzer().analyze([pki.leaf.cert, pki.int2.cert, pki.int1.cert, pki.root_x.cert],
                                        expect=ec.Expectations(trust=store))
    assert report.facts["trusted"] is True and report.facts["chain_complete"] is True


def test_presented_root_in_the_trust_set(range_pki, trust):
    chain = certs(range_pki.scenarios["healthy"].chain) + [range_pki.root.cert]
    report = ec.ChainAnalyzer().analyze(chain, expect=ec.Expectations(trust=trust))
    assert report.status == "ok"
    assert report.check("chain_complete").message.startswith("complete")


def test_pinned_self_signed_leaf_is_trusted(range_pki):
    leaf = range_pki.scenarios["self_signed"].chain[0]
    report = ec.ChainAnalyzer().analyze([leaf.cert], expect=ec.Expectations(trust=ec.TrustStore([leaf.cert], name="pinned")))
    assert report.facts["trusted"] is True
    assert report.check("self_signed").status == "warning"


def test_expired_intermediate_is_critical_and_untrusted():
    pki = pb.standard_pki()
    store = ec.TrustStore([pki.root.cert], name="t")
    report = ec.ChainAnalyzer().analyze([pki.leaf_under_expired.cert, pki.expired_int.cert], expect=ec.Expectations(trust=store))
    assert report.check("intermediate_expiry").status == "critical"
    assert report.check("trust").status == "critical"
    assert "expired" in report.check("trust").message


def test_no_trust_store_leaves_completeness_open(range_pki):
    report = ec.ChainAnalyzer().analyze(certs(range_pki.scenarios["missing_intermediate"].chain), expect=ec.Expectations())
    assert report.facts["chain_complete"] is None and report.facts["trusted"] is None
    assert report.check("trust") is None


def test_empty_chain():
    report = ec.ChainAnalyzer().analyze([])
    assert report.status == "critical" and report.check("chain_complete").status == "critical"


# --------------------------------------------------------------------------------------------
# single checks


def _leaf(not_before, not_after):
    root = pb.make_root("R")
    return pb.make_leaf("a.test", issuer=root, not_before=not_before, not_after=not_after).cert


@pytest.mark.parametrize("start_days, end_days, status, words", [
    (-100, 100, "ok", "100 day(s) left"),
    (-100, 30, "ok", "30 day(s) left"),
    (-100, 29.5, "warning", "29 day(s) left (< 30)"),
    (-100, 14, "warning", "14 day(s) left (< 30)"),
    (-100, 13.9, "critical", "13 day(s) left (< 14)"),
    (-100, 0.5, "critical", "0 day(s) left"),
    (-100, -3, "critical", "expired on"),
    (1, 100, "critical", "not yet valid"),
])
def test_check_expiry(start_days, end_days, status, words):
    cert = _leaf(NOW + datetime.timedelta(days=start_days), NOW + datetime.timedelta(days=end_days))
    check = ec.check_expiry(cert, now=NOW, policy=ec.Policy())
    assert (check.status, check.name) == (status, "expiry")
    assert words in check.message


def test_policy_validation():
    with pytest.raises(CertfleetError, match="critical_days .* must not be larger"):
        ec.Policy(warning_days=10, critical_days=20)
    with pytest.raises(CertfleetError, match="negative"):
        ec.Policy(warning_days=-1, critical_days=-1)


def _san_cert(names=None, ips=None, cn="ignored.test"):
    key = pb.make_key()
    builder = (x509.CertificateBuilder().subject_name(pb.name(cn)).issuer_name(pb.name("CA")).public_key(key.public_key())
               .serial_number(1).not_valid_before(NOW - datetime.timedelta(days=1)).not_valid_after(NOW + datetime.timedelta(days=9)))
    entries = [x509.DNSName(n) for n in names or []] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips or []]
    if entries:
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
    from cryptography.hazmat.primitives import hashes  # pylint: disable=import-outside-toplevel

    return builder.sign(key, hashes.SHA256())


@pytest.mark.parametrize("names, ips, hostname, ok", [
    (["www.example.test"], None, "www.example.test", True),
    (["www.example.test"], None, "WWW.Example.TEST.", True),
    (["www.example.test"], None, "example.test", False),
    (["*.example.test"], None, "www.example.test", True),
    (["*.example.test"], None, "example.test", False),
    (["*.example.test"], None, "a.b.example.test", False),
    (["*.EXAMPLE.test"], None, "shop.example.test", True),
    (["w*.example.test"], None, "www.example.test", False),
    (["*.test"], None, "example.test", False),
    (["*.*.example.test"], None, "a.b.example.test", False),
    (["xn--bcher-kva.example"], None, "bücher.example", True),
    (["www.example.test"], ["192.0.2.1"], "192.0.2.1", True),
    (["192.0.2.1"], None, "192.0.2.1", False),
    (None, ["2001:db8::1"], "2001:db8:0::1", True),
    (None, ["2001:db8::1"], "[2001:db8::1]", True),
    (None, ["192.0.2.1"], "192.0.2.2", False),
    (None, None, "ignored.test", False),
])
def test_hostname_matches(names, ips, hostname, ok):
    matched, message = ec.hostname_matches(_san_cert(names, ips), hostname)
    assert matched is ok
    assert message


def test_hostname_without_san_mentions_the_cn():
    _ok, message = ec.hostname_matches(_san_cert(cn="www.example.test"), "www.example.test")
    assert "no subjectAltName" in message and "www.example.test" in message


@pytest.mark.parametrize("value, expected", [
    ("AB" * 32, "AB" * 32),
    (":".join(["ab"] * 32), "AB" * 32),
    (" ".join(["Ab"] * 20), "AB" * 20),
    ("sha256=" + "cd" * 32, "CD" * 32),
    ("SHA1:" + "01" * 20, "01" * 20),
])
def test_normalize_fingerprint(value, expected):
    assert ec.normalize_fingerprint(value) == expected


@pytest.mark.parametrize("value", ["", "AB" * 31, "ZZ" * 32, "AB" * 33, None])
def test_normalize_fingerprint_rejects(value):
    with pytest.raises(CertfleetError, match="not a SHA-256 .* or SHA-1"):
        ec.normalize_fingerprint(value)


def test_check_fingerprint_sha1_and_sha256(range_pki):
    leaf = range_pki.scenarios["healthy"].chain[0].cert
    sha256, sha1 = certificate_fingerprint(leaf, "sha256"), certificate_fingerprint(leaf, "sha1")
    assert ec.check_fingerprint(sha256, sha1, expected=ec.normalize_fingerprint(sha1)).status == "ok"
    assert "SHA-1" in ec.check_fingerprint(sha256, sha1, expected=ec.normalize_fingerprint(sha1)).message
    wrong = ec.check_fingerprint(sha256, sha1, expected="00" * 32)
    assert wrong.status == "critical" and sha256 in wrong.message


@pytest.mark.parametrize("expected, status", [
    ({"CN": "www.scan.test"}, "ok"),
    ({"CN": "WWW.SCAN.TEST"}, "ok"),
    ({"CN": "www.scan.test", "O": "Example"}, "critical"),
    ({"CN": "other.scan.test"}, "critical"),
])
def test_check_subject(range_pki, expected, status):
    leaf = range_pki.scenarios["healthy"].chain[0].cert
    assert ec.check_subject(leaf, expected).status == status


def test_subject_expectations():
    assert ec.subject_expectations({"common_name": "a", "O": "b", "C": None}) == (("CN", "a"), ("O", "b"))
    with pytest.raises(CertfleetError, match="unknown attribute 'XX'"):
        ec.subject_expectations({"XX": "a"})


def test_weak_key_and_signature(range_pki):
    rsa_leaf = range_pki.scenarios["rsa_1024"].chain[0].cert
    assert ec.weak_key(rsa_leaf, min_rsa_bits=2048) == "RSA 1024 bits (< 2048)"
    assert ec.weak_key(rsa_leaf, min_rsa_bits=1024) is None
    assert ec.weak_key(range_pki.scenarios["healthy"].chain[0].cert, min_rsa_bits=2048) is None
    assert ec.signature_hash(range_pki.scenarios["sha1_signed"].chain[0].cert) == "sha1"
    assert ec.signature_hash(range_pki.scenarios["healthy"].chain[0].cert) == "sha256"


def test_worst():
    assert ec.worst([]) == "ok"
    assert ec.worst(["ok", "warning", "ok"]) == "warning"
    assert ec.worst(["warning", "critical", "ok"]) == "critical"


# --------------------------------------------------------------------------------------------
# memoisation and the DER wrapper


def test_with_der_gives_the_same_certificate_info(range_pki):
    cert = range_pki.scenarios["healthy_rsa_chain"].chain[0].cert
    der = cert.public_bytes(serialization.Encoding.DER)
    assert _chain.certificate_info(ec._WithDer(cert, der)) == _chain.certificate_info(cert)  # pylint: disable=protected-access
    assert ec._WithDer(cert, der).public_bytes(serialization.Encoding.PEM) == cert.public_bytes(serialization.Encoding.PEM)  # pylint: disable=protected-access


def test_path_verdict_is_memoised_per_ca_chain(range_pki, trust, monkeypatch):
    calls = []
    real = _chain.build_chain

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_chain, "build_chain", counting)
    analyzer = ec.ChainAnalyzer()
    inter = range_pki.intermediate
    for number in range(5):
        leaf = pb.make_leaf(f"h{number}.scan.test", issuer=inter, days=90)
        report = analyzer.analyze([leaf.cert, inter.cert], expect=ec.Expectations(trust=trust))
        assert report.facts["trusted"] is True
    assert len(calls) == 1


def test_memo_is_bounded(monkeypatch, range_pki, trust):
    monkeypatch.setattr(ec, "_MEMO_LIMIT", 3)
    analyzer = ec.ChainAnalyzer()
    inter = range_pki.intermediate
    for number in range(8):
        leaf = pb.make_leaf(f"m{number}.scan.test", issuer=inter, days=90)
        analyzer.analyze([leaf.cert, inter.cert], expect=ec.Expectations(trust=trust))
    assert len(analyzer._issued) <= 4  # pylint: disable=protected-access


# --------------------------------------------------------------------------------------------
# trusted CA sets


def test_trust_store_load_sources(tmp_path, range_pki):
    path = tmp_path / "ca.pem"
    path.write_bytes(range_pki.root.pem)
    from_path = ec.TrustStore.load(name="p", system=False, certificates=[str(path)])
    from_text = ec.TrustStore.load(name="t", system=False, certificates=[range_pki.root.pem.decode()])
    duplicates = ec.TrustStore.load(name="d", system=False, certificates=[str(path), range_pki.root.pem.decode()])
    assert len(from_path) == len(from_text) == len(duplicates) == 1
    assert from_path.ident == from_text.ident
    assert from_path.sources == [str(path)]


def test_trust_store_system_bundle(range_pki):
    path = ec.system_bundle_path()
    if path is None:
        pytest.skip("no system CA bundle on this machine")
    store = ec.TrustStore.load(name="system", system=True, certificates=[range_pki.root.pem.decode()])
    assert len(store) > 10
    assert store.candidates(range_pki.intermediate.cert)[0][0].certificate == range_pki.root.cert


@pytest.mark.parametrize("kwargs, message", [
    ({"system": False, "certificates": []}, "is empty"),
    ({"system": False, "certificates": ["/nonexistent/ca.pem"]}, "cannot read /nonexistent/ca.pem"),
    ({"system": True, "system_path": None, "certificates": [], "name": "x"}, None),
    ({"system": False, "certificates": [42]}, "must be a path or PEM text"),
])
def test_trust_store_errors(kwargs, message, monkeypatch):
    if message is None:
        monkeypatch.setattr(ec, "system_bundle_path", lambda: None)
        message = "no system CA bundle found"
    with pytest.raises(CertfleetError, match=message):
        ec.TrustStore.load(**kwargs)


# --------------------------------------------------------------------------------------------
# options, plan and summary


def test_expectations_for(tmp_path, range_pki):
    healthy = range_pki.scenarios["healthy"]
    fullchain = tmp_path / "fullchain.pem"
    fullchain.write_bytes(pem_of(healthy.chain + [range_pki.root]))
    expect = ec.expectations_for(hostname="h", expected_certificate=str(fullchain))
    assert expect.fingerprint == ec.normalize_fingerprint(certificate_fingerprint(healthy.chain[0].cert))
    assert [cert for cert, _digest in expect.intermediates] == [range_pki.intermediate.cert]  # the root is not required
    inline = ec.expectations_for(hostname=None, expected_certificate=healthy.chain[0].pem.decode(), mode="lifecycle_managed")
    assert inline.check_trust is False and inline.hostname is None


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "managed"}, "mode must be one of"),
    ({"mode": "lifecycle_managed"}, "needs expected_certificate or expected_fingerprint"),
    ({"expected_fingerprint": "AB" * 32, "expected_certificate": "x"}, "mutually exclusive"),
    ({"expected_certificate": "/nonexistent/cert.pem"}, "neither PEM text nor an existing file"),
    ({"expected_fingerprint": "xyz"}, "not a SHA-256"),
    ({"expected_subject": {"CX": "1"}}, "unknown attribute"),
])
def test_expectations_for_errors(kwargs, message):
    with pytest.raises(CertfleetError, match=message):
        ec.expectations_for(hostname=None, what="t: ", **kwargs)


def test_summary_counts():
    summary = ec.Summary()
    summary.add({"status": "ok", "outcome": "ok", "checks": {"expiry": {"status": "ok"}}, "days_left": 50})
    summary.add({"status": "warning", "outcome": "ok", "checks": {"expiry": {"status": "warning"}}, "days_left": 20})
    summary.add({"status": "critical", "outcome": "ok", "checks": {"expiry": {"status": "critical"}}, "days_left": -2})
    summary.add({"status": "critical", "outcome": "timeout", "checks": {"connect": {"status": "critical"}}, "days_left": None})
    assert summary.as_dict() == {
        "total": 4, "ok": 1, "warning": 1, "critical": 2,
        "by_outcome": {"ok": 3, "timeout": 1},
        "by_check": {"connect": {"warning": 0, "critical": 1}, "expiry": {"warning": 1, "critical": 1}},
        "expired": 1, "expiring": 1,
    }
