# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The endpoint trust verdict is the chain engine's (issue 18): order independence, name constraints, scan robustness."""

from __future__ import annotations

import datetime
import itertools

import pytest
from cryptography import x509

from ansible_collections.certfleet.tls.plugins.module_utils._scan import checks as ec
from ansible_collections.certfleet.tls.plugins.module_utils._scan import runner
from ansible_collections.certfleet.tls.plugins.module_utils._scan import tls as _tls
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb


def _handshake(certificates, host="www.cross.test"):
    return _tls.HandshakeResult(endpoint=_tls.Endpoint(host=host, server_name=host), outcome="ok", message="",
                                certificates=list(certificates), der=[ec._der(cert) for cert in certificates])  # pylint: disable=protected-access


@pytest.fixture(scope="module")
def cross():
    """A CA cross-signed twice: by a trusted root and by an untrusted one (same subject and key)."""
    trusted_root = pb.make_root("Trusted Root")
    other_root = pb.make_root("Untrusted Root")
    ca_key = pb.make_key()
    via_trusted = pb.make_intermediate("Cross CA", issuer=trusted_root, key=ca_key)
    via_other = pb.make_intermediate("Cross CA", issuer=other_root, key=ca_key)
    leaf = pb.make_leaf("www.cross.test", issuer=via_trusted)
    return trusted_root, other_root, via_trusted, via_other, leaf


def test_trust_verdict_does_not_depend_on_the_presented_order(cross):
    trusted_root, _other_root, via_trusted, via_other, leaf = cross
    trust = ec.TrustStore([trusted_root.cert], name="cross")
    verdicts = set()
    for order in itertools.permutations([via_other.cert, via_trusted.cert]):
        report = ec.ChainAnalyzer().analyze([leaf.cert, *order], expect=ec.Expectations(hostname="www.cross.test", trust=trust))
        verdicts.add(report.facts["trusted"])
        assert report.check("trust").status == "ok", report.check("trust").message
        # Nothing is missing either way: the completeness check agrees with the path search.
        assert report.facts["chain_complete"] is True, report.check("chain_complete").message
    assert verdicts == {True}


def test_order_is_still_its_own_check(cross):
    trusted_root, _other_root, via_trusted, _via_other, leaf = cross
    trust = ec.TrustStore([trusted_root.cert], name="cross")
    report = ec.ChainAnalyzer().analyze([leaf.cert, trusted_root.cert, via_trusted.cert], expect=ec.Expectations(trust=trust))
    assert report.facts["trusted"] is True
    assert report.check("chain_order").status == "warning"


def _constrained():
    root = pb.make_root("NC Root")
    ica = pb.make_intermediate("NC CA", issuer=root, extra_extensions=[
        (x509.NameConstraints(permitted_subtrees=[x509.DNSName("inside.test")], excluded_subtrees=None), True)])
    return root, ica


def test_name_constraints_reach_the_endpoint_verdict_also_for_a_memoised_ca_path():
    root, ica = _constrained()
    trust = ec.TrustStore([root.cert], name="nc")
    analyzer = ec.ChainAnalyzer()
    inside = pb.make_leaf("www.inside.test", issuer=ica)
    outside = pb.make_leaf("www.outside.test", issuer=ica)
    first = analyzer.analyze([inside.cert, ica.cert], expect=ec.Expectations(trust=trust))
    assert first.facts["trusted"] is True
    # Same issuer, same presented CA: the CA path is known, but the new leaf's names are still checked.
    second = analyzer.analyze([outside.cert, ica.cert], expect=ec.Expectations(trust=trust))
    assert second.facts["trusted"] is False
    assert "name constraints" in second.check("trust").message and "www.outside.test" in second.check("trust").message
    again = analyzer.analyze([pb.make_leaf("api.inside.test", issuer=ica).cert, ica.cert], expect=ec.Expectations(trust=trust))
    assert again.facts["trusted"] is True


def test_client_certificate_is_not_trusted_as_a_server():
    root = pb.make_root("EKU Root")
    client = pb.issue(pb.name("c.eku.test"), public_key=pb.make_key().public_key(), issuer_name=root.cert.subject,
                      signing_key=root.key, ca=False, extra_extensions=[
                          (x509.SubjectAlternativeName([x509.DNSName("c.eku.test")]), False),
                          (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), False)])
    report = ec.ChainAnalyzer().analyze([client], expect=ec.Expectations(trust=ec.TrustStore([root.cert], name="eku")))
    assert report.facts["trusted"] is False and "serverAuth" in report.check("trust").message


def test_expired_trust_anchor_is_not_trusted_at_the_endpoint():
    old_root = pb.make_expired("Old Root")
    ica = pb.make_intermediate("Under Old Root", issuer=old_root, not_before=pb.utcnow() - datetime.timedelta(days=30))
    leaf = pb.make_leaf("old.example.test", issuer=ica)
    report = ec.ChainAnalyzer().analyze([leaf.cert, ica.cert], expect=ec.Expectations(trust=ec.TrustStore([old_root.cert])))
    assert report.facts["trusted"] is False and "expired on" in report.check("trust").message


def test_one_failing_endpoint_never_stops_the_scan(monkeypatch):
    root = pb.make_root("Scan Root")
    leaf = pb.make_leaf("a.scan.test", issuer=root)
    plan = runner.ScanPlan(targets=["a.scan.test", "b.scan.test", "c.scan.test"],
                           trusted_ca_sets={"default": {"system": False, "certificates": [root.pem.decode()]}})

    def scanner(endpoints, **_kwargs):
        for endpoint in endpoints:
            yield _tls.HandshakeResult(endpoint=endpoint, outcome="ok", message="", certificates=[leaf.cert],
                                       der=[leaf.der], server_name=endpoint.host)

    real = runner.evaluate

    def flaky(result, *args, **kwargs):
        if result.endpoint.host == "b.scan.test":
            raise RuntimeError("boom from a hostile certificate")
        return real(result, *args, **kwargs)

    monkeypatch.setattr(runner, "evaluate", flaky)
    reports = list(runner.run_scan(plan, scanner=scanner))
    assert [report["host"] for report in reports] == ["a.scan.test", "b.scan.test", "c.scan.test"]
    failed = reports[1]
    assert failed["outcome"] == "error" and failed["status"] == "critical"
    assert "RuntimeError: boom from a hostile certificate" in failed["outcome_message"]
    assert reports[0]["trusted"] is True and reports[2]["trusted"] is True


def test_memoised_ca_path_is_not_used_after_an_intermediate_expires():
    root = pb.make_root("Window Root")
    ica = pb.make_intermediate("Window CA", issuer=root, not_before=pb.utcnow() - datetime.timedelta(days=10),
                               not_after=pb.utcnow() + datetime.timedelta(days=5))
    trust = ec.TrustStore([root.cert], name="window")
    analyzer = ec.ChainAnalyzer()
    first = pb.make_leaf("a.window.test", issuer=ica, days=3)
    assert analyzer.analyze([first.cert, ica.cert], expect=ec.Expectations(trust=trust)).facts["trusted"] is True
    later = pb.utcnow() + datetime.timedelta(days=6)
    second = pb.make_leaf("b.window.test", issuer=ica, days=3)
    report = analyzer.analyze([second.cert, ica.cert], expect=ec.Expectations(trust=trust), now=later)
    assert report.facts["trusted"] is False and "expired on" in report.check("trust").message
