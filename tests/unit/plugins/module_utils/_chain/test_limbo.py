# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""x509-limbo's server testcases through the chain engine and the endpoint verdict.

The testcases are vendored in tests/data/limbo/limbo-server.json.gz (built offline by
tests/limbo/build_limbo.py; upstream commit and license in the README beside it). Every
testcase runs twice, with the presented intermediates shuffled by a few seeds:

* the engine: ``build_chain`` with the testcase's trust anchors and validation time, then the
  leaf's validity period, serverAuth EKU and the peer name (``_chain.verify.server_verdict``);
* the endpoint verdict of tls_probe / cert_scan: ``checks.evaluate`` over a handshake that
  presented the leaf and the shuffled intermediates (trusted, hostname ok, leaf in validity).

Both must give limbo's expected result, except the testcases listed in ``OUT_OF_SCOPE``
(each with its reason; docs/chains.md repeats the list). Run as a script for the figures::

    source .cache/env.sh
    PYTHONPATH=.cache/collections python tests/unit/plugins/module_utils/_chain/test_limbo.py
"""

from __future__ import annotations

import datetime
import gzip
import json
import os
import random
import sys
import warnings
from functools import lru_cache

import pytest
from cryptography import x509

from ansible_collections.certfleet.tls.plugins.module_utils._chain import verify as _verify
from ansible_collections.certfleet.tls.plugins.module_utils._scan import checks as _checks
from ansible_collections.certfleet.tls.plugins.module_utils._scan import tls as _tls

pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number:cryptography.utils.CryptographyDeprecationWarning")
DATA = os.path.join(os.path.dirname(os.path.realpath(__file__)), *([os.pardir] * 4), "data", "limbo", "limbo-server.json.gz")
SEEDS = (0, 1, 2)

# Testcases whose verdict the engine does not claim, and why. A testcase here is still run (it
# must not raise); only a disagreement with limbo's expected result is tolerated.
_CRL = "CRL handling: revocation is the scan's separate `revocation` check over the trusted CA set's own CRLs; testcase CRLs are not fed to the engine"
_KEY_IDS = ("RFC 5280 §4.2.1.1 / §4.2.1.2 / CA/B Forum §7.1.2.1.3 issuance profile for key identifiers: path building uses "
            "AKI/SKI only as hints (as OpenSSL does); older and private CAs omit them, so their absence is not a path-validation failure")
_CN = ("CA/B Forum BR §7.1.4.3 issuance rule (the CN must copy a SAN value byte for byte): private CAs set the CN freely and "
       "clients match names against the subjectAltName only")
_PEDANTIC_EKU = "limbo feature pedantic-webpki-eku: CA/B Forum issuance rules for EKU that TLS clients (OpenSSL, Go) do not enforce"
_LEAF_KEY = ("limbo feature pedantic-webpki-subscriber-key: the leaf's key strength is the key_size check of tls_probe / cert_scan "
             "(critical below min_rsa_bits), not part of the trust verdict")
_SERIAL = "limbo feature pedantic-serial-number: cryptography loads such serials with a warning; the loaders report it"
_DEPTH = ("limbo feature max-chain-depth: build_chain's max_depth bounds the work of the path search, it is not a "
          "policy option; limbo's depth counting (logical intermediates) is not offered")
_CA_LEAF = ("conflicts with webpki::ca-as-leaf, which the engine follows: a CA certificate (CA:TRUE, keyCertSign) in the "
            "server position is rejected (CA/B Forum BR §7.1.2.7.8)")

# Testcases whose verdict the engine does not claim, and why. A testcase here is still run (it
# must not raise, and its verdict must not change with the order of the intermediates); only a
# disagreement with limbo's expected result is tolerated. docs/chains.md repeats this list.
OUT_OF_SCOPE = {
    "crl::crlnumber-critical": _CRL,
    "crl::crlnumber-missing": _CRL,
    "crl::issuer-missing-crlsign": _CRL,
    "crl::revoked-certificate-with-crl": _CRL,
    "rfc5280::pc::ica-noncritical-pc": ("policy constraints (limbo feature has-policy-constraints): certificate policies are "
                                        "not processed (initial policy set anyPolicy, no explicit policy required)"),
    "pathlen::max-chain-depth-0-exhausted": _DEPTH,
    "pathlen::max-chain-depth-1-exhausted": _DEPTH,
    "rfc5280::aki::cross-signed-root-missing-aki": _KEY_IDS + " (also limbo feature pedantic-rfc5280)",
    "rfc5280::aki::intermediate-missing-aki": _KEY_IDS,
    "rfc5280::aki::leaf-missing-aki": _KEY_IDS,
    "rfc5280::ski::intermediate-missing-ski": _KEY_IDS,
    "rfc5280::ski::root-missing-ski": _KEY_IDS,
    "webpki::aki::root-with-aki-all-fields": _KEY_IDS,
    "webpki::aki::root-with-aki-missing-keyidentifier": _KEY_IDS,
    "webpki::aki::root-with-aki-ski-mismatch": _KEY_IDS,
    "rfc5280::root-non-critical-basic-constraints": ("RFC 5280 §4.2.1.9 asks CAs to mark basicConstraints critical; a trust "
                                                     "anchor's own encoding is taken as configured (OpenSSL and Go accept it)"),
    "rfc5280::san::underscore-dns": ("RFC 5280 §4.2.1.6 preferred name syntax: names with underscores exist in deployed "
                                     "certificates and clients match them; not a path-validation failure here"),
    "rfc5280::serial::negative": _SERIAL,
    "rfc5280::serial::too-long": _SERIAL,
    "rfc5280::serial::zero": _SERIAL,
    "webpki::san::san-critical-with-nonempty-subject": ("CA/B Forum BR §7.1.2.7.12 issuance rule; RFC 5280 §4.2.1.6 allows a "
                                                        "critical subjectAltName beside a non-empty subject"),
    "webpki::san::public-suffix-multi-label-wildcard-san": "limbo feature pedantic-public-suffix-wildcard: no public suffix list is shipped",
    "webpki::san::public-suffix-private-namespace-wildcard-san": "limbo feature pedantic-public-suffix-wildcard: no public suffix list is shipped",
    "webpki::cn::case-mismatch": _CN,
    "webpki::cn::ipv4-hex-mismatch": _CN,
    "webpki::cn::ipv4-leading-zeros-mismatch": _CN,
    "webpki::cn::ipv6-non-rfc5952-mismatch": _CN,
    "webpki::cn::ipv6-uncompressed-mismatch": _CN,
    "webpki::cn::ipv6-uppercase-mismatch": _CN,
    "webpki::cn::not-in-san": _CN,
    "webpki::cn::punycode-not-in-san": _CN,
    "webpki::cn::utf8-vs-punycode-mismatch": _CN,
    "webpki::eku::ee-anyeku": _PEDANTIC_EKU,
    "webpki::eku::ee-critical-eku": _PEDANTIC_EKU,
    "webpki::eku::ee-without-eku": _PEDANTIC_EKU + "; conflicts with rfc5280::eku::ee-without-eku, which the engine follows",
    "webpki::eku::root-has-eku": _PEDANTIC_EKU + " (the root's EKU allows serverAuth)",
    "webpki::forbidden-dsa-leaf": _LEAF_KEY,
    "webpki::forbidden-p192-leaf": _LEAF_KEY,
    "webpki::forbidden-rsa-key-not-divisible-by-8-in-leaf": _LEAF_KEY,
    "webpki::forbidden-weak-rsa-in-leaf": _LEAF_KEY,
    "rfc5280::nc::permitted-dns-match-noncritical": ("conflicts with webpki::nc::permitted-dns-match-noncritical, which the "
                                                     "engine follows: non-critical name constraints are applied, not rejected"),
    # The two false rejects, by decision:
    "rfc5280::ca-as-leaf": _CA_LEAF,
    "pathlen::validation-ignores-pathlen-in-leaf": _CA_LEAF + " (the same leaf as webpki::ca-as-leaf, with a pathLenConstraint)",
}
# Verdicts the engine gives for the testcases above: a reject where limbo expects success is listed
# here, so a change of verdict (either way) shows in the test.
FALSE_REJECTS_BY_DECISION = {"rfc5280::ca-as-leaf", "pathlen::validation-ignores-pathlen-in-leaf"}


@lru_cache(maxsize=1)
def _document() -> dict:
    with gzip.open(os.path.normpath(DATA), "rt", encoding="utf-8") as handle:
        return json.load(handle)


def _testcases() -> list[dict]:
    return _document()["testcases"]


@lru_cache(maxsize=None)
def _load(pem: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rfc5280::serial::* carry non-positive serials on purpose
        return x509.load_pem_x509_certificate(pem.encode("ascii"))


def _when(case: dict) -> datetime.datetime:
    if case["validation_time"]:
        return datetime.datetime.fromisoformat(case["validation_time"].replace("Z", "+00:00"))
    return datetime.datetime.now(datetime.timezone.utc)


def _peer(case: dict) -> str | None:
    peer = case["expected_peer_name"]
    return peer["value"] if peer else None


def _inputs(case: dict, seed: int):
    leaf = _load(case["peer_certificate"])
    intermediates = [_load(pem) for pem in case["untrusted_intermediates"]]
    random.Random(seed).shuffle(intermediates)
    anchors = [_load(pem) for pem in case["trusted_certs"]]
    return leaf, intermediates, anchors


def engine_verdict(case: dict, seed: int) -> tuple[bool, str]:
    """(accepted, reason) of the chain engine for one testcase."""
    leaf, intermediates, anchors = _inputs(case, seed)
    # max_chain_depth is not passed: build_chain's max_depth bounds work, it is not a policy (see OUT_OF_SCOPE).
    return _verify.server_verdict(leaf, intermediates, trust_anchors=anchors, peer_name=_peer(case), now=_when(case))


def endpoint_verdict(case: dict, seed: int) -> tuple[bool, str]:
    """(accepted, reason) of tls_probe / cert_scan's endpoint checks for one testcase."""
    leaf, intermediates, anchors = _inputs(case, seed)
    presented = [leaf] + intermediates
    trust = _checks.TrustStore(anchors, name="limbo")
    peer = _peer(case)
    result = _tls.HandshakeResult(endpoint=_tls.Endpoint(host=peer or "limbo.test", server_name=peer), outcome="ok",
                                  message="", certificates=presented, der=[_checks._der(cert) for cert in presented])
    report = _checks.evaluate(result, _checks.ChainAnalyzer(), expect=_checks.Expectations(hostname=peer, trust=trust),
                              now=_when(case))
    if report["outcome"] != "ok":
        return False, report["outcome_message"]
    checks = report["checks"]
    problems = [f"{name}: {checks[name]['message']}" for name in ("trust", "hostname") if name in checks and checks[name]["status"] != "ok"]
    if checks["expiry"]["status"] == "critical" and not checks["expiry"]["message"].startswith("expires on"):
        problems.append(f"expiry: {checks['expiry']['message']}")
    return not problems, "; ".join(problems) or checks["trust"]["message"]


def _ids() -> list[str]:
    return [case["id"] for case in _testcases()]


@pytest.mark.parametrize("index", range(len(_testcases())), ids=_ids())
def test_limbo_server_case(index):
    case = _testcases()[index]
    expected = case["expected_result"] == "SUCCESS"
    engine = {seed: engine_verdict(case, seed) for seed in SEEDS}
    endpoint = {seed: endpoint_verdict(case, seed) for seed in SEEDS}
    # The verdict never depends on the order the intermediates are presented in.
    assert len({accepted for accepted, _reason in engine.values()}) == 1, engine
    assert len({accepted for accepted, _reason in endpoint.values()}) == 1, endpoint
    engine_ok, engine_reason = engine[SEEDS[0]]
    endpoint_ok, endpoint_reason = endpoint[SEEDS[0]]
    # The engine and the endpoint checks give one verdict.
    assert engine_ok == endpoint_ok, (engine_reason, endpoint_reason)
    if case["id"] in OUT_OF_SCOPE:
        # Out of scope: a known disagreement, and never a false reject except the listed decisions.
        assert engine_ok or expected is False or case["id"] in FALSE_REJECTS_BY_DECISION, engine_reason
        return
    assert engine_ok == expected, f"engine: {engine_reason}"
    assert endpoint_ok == expected, f"endpoint: {endpoint_reason}"


def test_limbo_data_is_the_documented_build():
    document = _document()
    assert document["license"] == "Apache-2.0" and len(document["commit"]) == 40
    assert len(document["testcases"]) >= 190
    assert set(OUT_OF_SCOPE) <= set(_ids()), "an OUT_OF_SCOPE entry names no testcase"


def main() -> int:
    """Print the agreement figures (engine and endpoint, all and in scope) and every disagreement."""
    cases = _testcases()
    rows = {"engine": engine_verdict, "endpoint": endpoint_verdict}
    for label, function in rows.items():
        agree = scoped_agree = scoped = 0
        false = {"accept": [0, 0], "reject": [0, 0]}  # [in scope, out of scope]
        for case in cases:
            expected = case["expected_result"] == "SUCCESS"
            out = case["id"] in OUT_OF_SCOPE
            scoped += not out
            try:
                verdicts = {function(case, seed)[0] for seed in SEEDS}
                accepted, reason = function(case, SEEDS[0])
            except Exception as exc:  # pylint: disable=broad-exception-caught
                print(f"{label} ERROR {case['id']}: {type(exc).__name__}: {exc}")
                continue
            if len(verdicts) > 1:
                print(f"{label} ORDER-DEPENDENT {case['id']}")
            if accepted == expected:
                agree += 1
                scoped_agree += not out
                continue
            kind = "accept" if accepted else "reject"
            false[kind][out] += 1
            print(f"{label} FALSE-{kind.upper()}{' (out of scope)' if out else ''} {case['id']}: {reason[:200]}")
        print(f"{label}: all {len(cases)} server testcases: {agree} agree ({100 * agree / len(cases):.1f}%), "
              f"false accepts {sum(false['accept'])}, false rejects {sum(false['reject'])}; in scope ({scoped}): "
              f"{scoped_agree} agree, {false['accept'][0]} false accept(s), {false['reject'][0]} false reject(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
