"""Pure parts of the acme issuer provider: settings, Retry-After, chain choice, renewal decision, history events,
the http-01 responders, and the retry rules of its network layer (badNonce, rateLimited) with the wire stubbed.

The flow against a real ACME server is in tests/system/test_acme_pebble.py (Debian's pebble).
"""
from __future__ import annotations

import datetime
import http.client
import socket
import sys
import types

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import acme as _acme
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import issue as _issue
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.acme_challenges import (
    CommandResponder,
    StandaloneResponder,
    WebrootResponder,
    check_token,
)
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.base import Issued, IssuerProvider
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import ISSUER_PROVIDERS, read_history, sha256_hex
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"


def acme_definition(**issuer):
    return {"name": "www", "issuer": dict({"provider": "acme", "directory": "https://acme.example.net/dir"}, **issuer)}


def problems(**issuer):
    return _acme.AcmeProvider().check(acme_definition(**issuer))


def test_settings_defaults_and_contacts():
    settings = _acme.acme_settings(acme_definition(contact=["ops@example.net", "mailto:pki@example.net"]))
    assert settings["account"] == "default" and settings["validate_certs"] is True and settings["order_timeout"] == 300
    assert settings["contact"] == ["mailto:ops@example.net", "mailto:pki@example.net"]
    assert settings["challenge"] == {"type": "http-01", "responder": "standalone", "address": "", "port": 80, "webroot": None,
                                     "command": None, "timeout": 60}
    dns = _acme.acme_settings(acme_definition(challenge={"type": "dns-01", "command": ["/usr/local/bin/hook", "--zone", "x"]}))
    assert dns["challenge"]["responder"] == "command"
    assert problems() == []


@pytest.mark.parametrize("issuer, expected", [
    ({"directory": "ftp://acme.example.net/dir"}, "issuer.directory 'ftp://acme.example.net/dir' must be the http(s) URL"),
    ({"directory": None}, "issuer.directory None must be the http(s) URL"),
    ({"directory": "http://acme.example.net/dir"}, "plain http is accepted on loopback only"),
    ({"eab_hmac_key": "c2VjcmV0"}, "issuer.eab_hmac_key must not be in a definition (it would be logged)"),
    ({"account": "../other"}, "issuer.account '../other' must be letters"),
    ({"colour": "blue"}, "issuer: unknown key(s) colour for provider acme"),
    ({"challenge": {"type": "tls-alpn-01"}}, "issuer.challenge.type 'tls-alpn-01' must be http-01 or dns-01"),
    ({"challenge": {"type": "dns-01"}}, "issuer.challenge.command must be a list: an absolute program path"),
    ({"challenge": {"type": "dns-01", "command": ["hook"]}}, "issuer.challenge.command must be a list: an absolute program path"),
    ({"challenge": {"type": "dns-01", "responder": "standalone"}}, "issuer.challenge.responder 'standalone' must be command for dns-01"),
    ({"challenge": {"responder": "command"}}, "must be standalone or webroot for http-01"),
    ({"challenge": {"timeout": 0}}, "issuer.challenge.timeout 0 must be a number of seconds from 1 to 600"),
    ({"challenge": {"responder": "webroot", "webroot": "relative/dir"}}, "issuer.challenge.webroot must be an absolute"),
    ({"challenge": {"port": 70000}}, "issuer.challenge.port 70000 must be a TCP port"),
    ({"challenge": {"port": True}}, "issuer.challenge.port True must be a TCP port"),
    ({"challenge": {"listen": "x"}}, "issuer.challenge: unknown key(s) listen"),
    ({"order_timeout": 86400}, "issuer.order_timeout must be a number of seconds from 10 to 3600"),
    ({"rate_limit_wait": -1}, "issuer.rate_limit_wait must be a number of seconds from 0 to 3600"),
    ({"terms_agreed": "yes"}, "issuer.terms_agreed must be true or false"),
    ({"contact": [""]}, "issuer.contact must be a list of e-mail addresses"),
])
def test_settings_problems_are_named(issuer, expected):
    found = problems(**issuer)
    assert any(expected in problem for problem in found), found


def test_acme_settings_raises_with_every_problem():
    with pytest.raises(CertfleetError) as caught:
        _acme.acme_settings(acme_definition(directory=None, challenge={"port": 0}))
    assert len(caught.value.errors) == 2 and str(caught.value).startswith("www: issuer.directory None")


def test_retry_after_seconds_and_http_dates():
    assert _acme.retry_after_seconds("7", now=NOW) == 7.0
    assert _acme.retry_after_seconds("Tue, 01 Dec 2026 00:01:30 GMT", now=NOW) == 90.0
    assert _acme.retry_after_seconds("Mon, 30 Nov 2026 00:00:00 GMT", now=NOW) == 0.0  # in the past
    assert _acme.retry_after_seconds("soon", now=NOW) == 5.0 and _acme.retry_after_seconds(None, now=NOW, default=3) == 3


@pytest.fixture(scope="module")
def two_chains():
    root_a, root_b = pb.make_root("Root A"), pb.make_root("Root B")
    intermediate = pb.make_intermediate("Issuing CA", issuer=root_a)
    cross = pb.make_cross_signed(intermediate, issuer=root_b)
    leaf = pb.make_leaf("www.example.net", issuer=intermediate)
    return [leaf.cert, intermediate.cert], [leaf.cert, cross.cert]


def test_choose_chain_by_issuer_name(two_chains):
    default, alternate = two_chains
    assert _acme.choose_chain([default, alternate], None) == (default, "default chain")
    assert _acme.choose_chain([default, alternate], "Root B") == (alternate, "alternate chain 1 (issuer Root B)")
    assert _acme.choose_chain([default, alternate], "Root A") == (default, "default chain")
    assert _acme.choose_chain([default, alternate], "Issuing CA")[0] == default  # the topmost certificate itself
    assert _acme.choose_chain([default, alternate], "Root C") == (default, "default chain (no chain issued by 'Root C' offered)")


def test_split_pem_chain_is_bounded(two_chains):
    default, _alternate = two_chains
    text = pb.pem_bundle(default, junk=False).decode()
    assert _acme.split_pem_chain(text, source="test") == default
    with pytest.raises(CertfleetError, match="more than a certificate chain"):
        _acme.split_pem_chain(text + " " * _acme.MAX_CHAIN_BYTES, source="test")
    with pytest.raises(CertfleetError, match="11 certificates; expected 1 to 10"):
        _acme.split_pem_chain(pb.pem_bundle([default[0]] * 11, junk=False).decode(), source="test")


def test_renewal_decision():
    leaf = pb.make_leaf("www.example.net", issuer=pb.make_root("Root A"), days=90).cert
    not_after = leaf.not_valid_after_utc
    csr = b"-----BEGIN CERTIFICATE REQUEST-----\n"
    state = {"certificate": {"provider": "acme", "acme_directory": "https://a/dir", "csr_sha256": sha256_hex(csr)}}

    def decide(current=leaf, record=None, csr_pem=csr, directory="https://a/dir", now=not_after - datetime.timedelta(days=40)):
        return _acme.renewal_decision(current, record or state, csr_pem=csr_pem, directory=directory, renew_before=30, now=now)

    assert decide(current=None) == (True, "no certificate yet")
    assert decide(directory="https://b/dir") == (True, "issuer changed to ACME https://b/dir")
    assert decide(record={"certificate": {"provider": "private_ca"}}) == (True, "issuer changed to ACME https://a/dir")
    assert decide(csr_pem=b"another CSR") == (True, "the CSR changed")
    needed, why = decide()
    assert not needed and why.startswith("valid until ")
    needed, why = decide(now=not_after - datetime.timedelta(days=29))
    assert needed and why == f"renewal due: expires {not_after:%Y-%m-%d}, renew_before_days 30"


def test_history_event_drops_empty_fields():
    assert _acme.history_event("acme_order", status="pending", order=None) == {"event": "acme_order", "status": "pending"}


def test_check_token_refuses_what_could_name_a_path():
    check_token(TOKEN, TOKEN + ".thumbprint")
    for token in ("../../etc/passwd", "short", TOKEN + "/x", TOKEN + "\n"):
        with pytest.raises(CertfleetError, match="not base64url"):
            check_token(token, token + ".x")
    with pytest.raises(CertfleetError, match="does not belong to its token"):
        check_token(TOKEN, "other.thumbprint")


def test_webroot_responder_writes_and_removes_token_files(tmp_path):
    with WebrootResponder(str(tmp_path)) as responder:
        responder.add(TOKEN, TOKEN + ".thumb")
        assert (tmp_path / ".well-known" / "acme-challenge" / TOKEN).read_text() == TOKEN + ".thumb"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / ".well-known").mkdir()
    (tmp_path / ".well-known" / "keep").write_text("x")  # a directory the web server had already: kept
    with WebrootResponder(str(tmp_path)) as responder:
        responder.add(TOKEN, TOKEN + ".thumb")
    assert sorted(p.name for p in (tmp_path / ".well-known").iterdir()) == ["keep"]


def test_webroot_responder_refuses_a_linked_challenge_directory(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / ".well-known").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(CertfleetError, match="is a symbolic link; refused"):
        WebrootResponder(str(tmp_path)).__enter__()
    with pytest.raises(CertfleetError, match="is not a directory"):
        WebrootResponder(str(tmp_path / "missing")).__enter__()


def _get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_standalone_responder_serves_only_its_tokens():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with StandaloneResponder("127.0.0.1", port) as responder:
        responder.add(TOKEN, TOKEN + ".thumb")
        assert _get(port, f"/.well-known/acme-challenge/{TOKEN}") == (200, (TOKEN + ".thumb").encode())
        assert _get(port, "/.well-known/acme-challenge/other")[0] == 404
        assert _get(port, "/")[0] == 404
        with pytest.raises(CertfleetError, match=f"cannot listen on 127.0.0.1:{port}"):
            StandaloneResponder("127.0.0.1", port).__enter__()
    with pytest.raises(OSError):
        _get(port, "/")  # stopped after the validation


VALUE = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"


def _hook(tmp_path, body):
    script = tmp_path / "hook.py"
    script.write_text(f"#!{sys.executable}\nimport sys, time\n" + body)
    script.chmod(0o755)
    return str(script)


def test_command_hook_adds_and_removes_the_record(tmp_path):
    log = tmp_path / "calls"
    hook = _hook(tmp_path, f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n")
    with CommandResponder([hook, "--zone", "example.test"], timeout=10) as responder:
        responder.add("_acme-challenge.www.example.test", VALUE)
        assert log.read_text() == f"--zone example.test add _acme-challenge.www.example.test {VALUE}\n"
    assert log.read_text().splitlines()[-1] == f"--zone example.test remove _acme-challenge.www.example.test {VALUE}"


def test_command_hook_failures_are_clear_and_bounded(tmp_path):
    failing = _hook(tmp_path, "sys.stderr.write('zone example.test is not ours'); sys.exit(3)\n")
    with pytest.raises(CertfleetError, match="add _acme-challenge.www.example.test failed with exit code 3: zone example.test is not ours"):
        CommandResponder([failing], timeout=10).add("_acme-challenge.www.example.test", VALUE)
    slow = _hook(tmp_path, "time.sleep(30)\n")
    with pytest.raises(CertfleetError, match="did not finish within 1 s"):
        CommandResponder([slow], timeout=1).add("_acme-challenge.www.example.test", VALUE)
    for name in ("www.example.test", "_acme-challenge.www.example.test; rm -rf /", "_acme-challenge..x"):
        with pytest.raises(CertfleetError, match="is not a DNS name; refused"):
            CommandResponder([slow], timeout=1).add(name, VALUE)
    with pytest.raises(CertfleetError, match="not base64url SHA-256"):
        CommandResponder([slow], timeout=1).add("_acme-challenge.www.example.test", "x y")


class _Response:
    def __init__(self, status, headers):
        self.status_code = status
        self.headers = headers


def _network(sleeps, recorded, *, rate_limit_wait=60):
    from acme import messages  # noqa: F401  (the library is a test requirement)
    import josepy
    key = josepy.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    return _acme._BoundedNetwork(key, alg=josepy.ES256, verify=True, timeout=30, rate_limit_wait=rate_limit_wait,
                                 recorder=lambda kind, **fields: recorded.append((kind, fields)), sleep=sleeps.append)


def _problem(code):
    from acme import messages
    return messages.Error(typ=f"urn:ietf:params:acme:error:{code}", detail=f"{code} detail")


def _raising(problem):
    def post_once(url, obj, **kwargs):
        raise problem
    return post_once


def test_bad_nonce_is_retried_until_it_stops_then_reported():
    sleeps, recorded = [], []
    network = _network(sleeps, recorded)
    calls = []

    def post_once(url, obj, **kwargs):
        calls.append(kwargs.pop("new_nonce_url", None))  # the library pops it: every attempt must get its own copy
        if len(calls) <= 8:
            raise _problem("badNonce")
        return "response"

    network._post_once = post_once
    assert network.post("https://a/new-order", None, new_nonce_url="https://a/nonce") == "response"
    assert calls == ["https://a/nonce"] * 9 and [kind for kind, _fields in recorded] == ["bad_nonce"] * 8
    calls.clear()
    network._post_once = _raising(_problem("badNonce"))
    with pytest.raises(Exception, match="badNonce"):
        network.post("https://a/new-order", None)


def test_rate_limited_waits_as_told_within_the_bound():
    sleeps, recorded = [], []
    network = _network(sleeps, recorded, rate_limit_wait=10)
    attempts = []

    def post_once(url, obj, **kwargs):
        attempts.append(url)
        if len(attempts) < 3:
            network.last_response = _Response(429, {"Retry-After": "4"})
            raise _problem("rateLimited")
        return "response"

    network._post_once = post_once
    assert network.post("https://a/new-order", None) == "response"
    assert sleeps == [4.0, 4.0] and recorded == [("rate_limited", {"retry_after": 4.0})] * 2
    attempts.clear()
    sleeps.clear()
    # 8 s waited already: another 4 s would pass rate_limit_wait (10 s), so the run stops instead of sleeping.
    with pytest.raises(CertfleetError, match=r"it asks to wait 4 s \(Retry-After\), more than the 2 s left"):
        network.post("https://a/new-order", None)
    assert sleeps == []


def test_other_problems_are_not_retried():
    sleeps, recorded = [], []
    network = _network(sleeps, recorded)
    network.last_response = _Response(403, {})
    network._post_once = _raising(_problem("unauthorized"))
    with pytest.raises(Exception, match="unauthorized"):
        network.post("https://a/new-order", None)
    assert sleeps == [] and recorded == []
    assert _acme.describe_acme_error(_problem("unauthorized")) == "unauthorized: unauthorized detail"
    from acme import messages
    long = _acme.describe_acme_error(messages.Error(typ="urn:ietf:params:acme:error:malformed", detail="x" * 5000))
    assert len(long) == _acme.MAX_REASON + 3 and long.startswith("malformed: xxx")


def test_provider_history_events_reach_the_store_before_the_issued_event(tmp_path):
    root = pb.make_root("History Root")

    class Historian(IssuerProvider):
        name = "historian"

        def needs_issuance(self, context):
            return context.current is None, "no certificate yet"

        def obtain(self, context):
            from cryptography import x509
            csr = x509.load_pem_x509_csr(context.csr_pem)
            leaf = pb.issue(csr.subject, public_key=csr.public_key(), issuer_name=root.subject, signing_key=root.key,
                            ca=False, san=["h.example.test"], aki_key=root.key.public_key(), days=30)
            return Issued(leaf, [], reason=context.reason, history=[_acme.history_event("acme_order", status="pending"),
                                                                    _acme.history_event("acme_order", status="valid")])

    definitions = [{"name": "h", "common_name": "h.example.test", "key": {"type": "ECC"}, "issuer": {"provider": "historian"}}]
    run_request(store_path=str(tmp_path), definitions=definitions, passphrase="History-Pass-1",
                providers=ISSUER_PROVIDERS + ("historian",))
    _issue.run_issue(store_path=str(tmp_path), definitions=definitions, ca_passphrase=None, providers={"historian": Historian})
    events = read_history(str(tmp_path / "certs" / "h"))
    expected = [("acme_order", "pending"), ("acme_order", "valid"), ("issued", None)]
    assert [(e["event"], e.get("status")) for e in events][-3:] == expected
    assert len({e["time"] for e in events[-3:]}) == 1


def test_missing_library_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_acme, "HAS_ACME", False)
    with pytest.raises(CertfleetError, match="needs the Python 'acme' library on the controller"):
        _acme.require_acme()


def test_check_mode_obtains_nothing(tmp_path):
    provider = _acme.AcmeProvider(passphrase="x")
    context = types.SimpleNamespace(definition=acme_definition(), check_mode=True, csr_pem=b"csr", reason="no certificate yet")
    result = provider.obtain(context)
    assert result.certificate is None and result.reason == "no certificate yet"
