# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The handshake engine: target parsing, error classification, and real handshakes against the loopback range."""

from __future__ import annotations

import asyncio
import errno
import itertools
import socket
import ssl
import threading
import time

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._scan import checks as ec
from ansible_collections.certfleet.tls.plugins.module_utils._scan import tls as _tls
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError, certificate_fingerprint
from ansible_collections.certfleet.tls.tests.scan_range.server import RangeServer, ipv6_available

BACKENDS = ["stdlib"] + (["pyopenssl"] if _tls.HAS_PYOPENSSL else [])
needs_ipv6 = pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback (::1) on this machine")


def endpoint_for(scan_range, name: str, **kwargs) -> _tls.Endpoint:
    host, port = scan_range.endpoints[name]
    scenario = scan_range.scenario(name)
    starttls = "smtp" if scenario.kind.startswith("smtp") else "none"
    return _tls.Endpoint(host, port, server_name=kwargs.pop("server_name", scenario.server_name), starttls=starttls, data=name, **kwargs)


# --------------------------------------------------------------------------------------------
# targets


@pytest.mark.parametrize("ports, expected", [
    ([443], [443]),
    (["443", 8443, "8000-8002", 443], [443, 8443, 8000, 8001, 8002]),
    (["1-1"], [1]),
])
def test_parse_ports(ports, expected):
    assert _tls.parse_ports(ports) == expected


@pytest.mark.parametrize("ports, message", [([], "no port given"), (["5-3"], "runs backwards"), (["x"], "not a number"),
                                            ([70000], "outside")])
def test_parse_ports_errors(ports, message):
    with pytest.raises(CertfleetError, match=message):
        _tls.parse_ports(ports)


@pytest.mark.parametrize("cidr, first, count", [
    ("192.0.2.0/24", "192.0.2.1", 254),
    ("192.0.2.0/30", "192.0.2.1", 2),
    ("192.0.2.6/31", "192.0.2.6", 2),
    ("192.0.2.7/32", "192.0.2.7", 1),
    ("192.0.2.7", "192.0.2.7", 1),
    ("192.0.2.5/24", "192.0.2.1", 254),  # host bits allowed, as people write them
    ("2001:db8::/126", "2001:db8::1", 3),
    ("2001:db8::/127", "2001:db8::", 2),
    ("::1/128", "::1", 1),
])
def test_network_expansion(cidr, first, count):
    network = _tls.parse_network(cidr)
    addresses = list(_tls.network_addresses(network))
    assert addresses[0] == first
    assert len(addresses) == count == _tls.network_size(network)


def test_expand_range_is_lazy_and_numbered():
    endpoints = _tls.expand_range(["10.0.0.0/8", "192.0.2.0/30"], [443, "8000-8001"], server_name="a.test", start_index=5)
    head = list(itertools.islice(endpoints, 4))
    assert [(e.host, e.port, e.index) for e in head] == [("10.0.0.1", 443, 5), ("10.0.0.1", 8000, 6), ("10.0.0.1", 8001, 7),
                                                         ("10.0.0.2", 443, 8)]
    assert head[0].sni == "a.test"


@pytest.mark.parametrize("host, server_name, sni", [
    ("www.example.test", None, "www.example.test"),
    ("192.0.2.1", None, None),
    ("2001:db8::1", None, None),
    ("192.0.2.1", "www.example.test", "www.example.test"),
    ("www.example.test", "", None),
])
def test_endpoint_sni(host, server_name, sni):
    endpoint = _tls.make_endpoint(host, 443, server_name=server_name)
    assert endpoint.sni == sni


@pytest.mark.parametrize("kwargs, message", [
    ({"host": "a.test", "port": 443, "starttls": "imap"}, "starttls must be one of"),
    ({"host": "a.test", "port": 443, "server_name": "2001:db8::1"}, "SNI carries host names only"),
    ({"host": "", "port": 443}, "empty host"),
    ({"host": "a.test", "port": "x"}, "not a number"),
])
def test_make_endpoint_errors(kwargs, message):
    host = kwargs.pop("host")
    with pytest.raises(CertfleetError, match=message):
        _tls.make_endpoint(host, **kwargs)


def test_endpoint_label():
    assert _tls.Endpoint("2001:db8::1", 8443).label == "[2001:db8::1]:8443"
    assert _tls.Endpoint("a.test", 443).label == "a.test:443"


# --------------------------------------------------------------------------------------------
# classification


def _os_error(number):
    return OSError(number, "error text")


@pytest.mark.parametrize("exc, outcome", [
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "dns_error"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "refused"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "reset"),
    (BrokenPipeError(errno.EPIPE, "pipe"), "reset"),
    (TimeoutError("timed out"), "timeout"),
    (asyncio.TimeoutError(), "timeout"),
    (_os_error(errno.ENETUNREACH), "unreachable"),
    (_os_error(errno.EHOSTUNREACH), "unreachable"),
    (_os_error(errno.EADDRNOTAVAIL), "unreachable"),
    (_os_error(errno.EAFNOSUPPORT), "unreachable"),
    (_os_error(errno.ECONNREFUSED), "refused"),
    (_os_error(errno.ECONNABORTED), "reset"),
    (_os_error(errno.EMFILE), "error"),
    (ValueError("odd"), "error"),
])
def test_classify_os_error(exc, outcome):
    got, message = _tls.classify_os_error(exc, phase="connecting to 192.0.2.1")
    assert got == outcome
    assert message and "Traceback" not in message


@pytest.mark.parametrize("data, tls", [
    (b"\x16\x03\x03\x00\x7a", True),
    (b"\x15\x03\x01\x00\x02", True),
    (b"\x16", True),
    (b"", True),
    (b"HTTP/1.1 400 Bad Request\r\n", False),
    (b"220 mail ESMTP\r\n", False),
    (b"SSH-2.0-OpenSSH_9.2\r\n", False),
    (b"\x16\x01\x00", False),
])
def test_looks_like_tls(data, tls):
    assert _tls.looks_like_tls(data) is tls


@pytest.mark.parametrize("data, words", [
    (b"HTTP/1.1 400 Bad Request\r\n", "plain HTTP"),
    (b"220 mail.example ESMTP\r\n", "starttls: smtp"),
    (b"SSH-2.0-OpenSSH\r\n", "SSH"),
    (b"\x00\x01garbage\xff", "..garbage."),
])
def test_not_tls_message(data, words):
    assert words in _tls.not_tls_message(data)


class _Chain313:
    def get_unverified_chain(self):
        return [b"leaf-der", b"int-der"]


class _Cert311:
    def __init__(self, der):
        self.der = der

    def public_bytes(self, encoding):
        assert encoding == ssl._ssl.ENCODING_DER  # pylint: disable=protected-access
        return self.der


class _Inner311:
    def get_unverified_chain(self):
        return [_Cert311(b"leaf-der"), _Cert311(b"int-der")]


class _Obj311:
    _sslobj = _Inner311()


class _Obj39:
    def getpeercert(self, binary_form=False):
        assert binary_form
        return b"leaf-der"


@pytest.mark.parametrize("obj, expected", [
    (_Chain313(), ([b"leaf-der", b"int-der"], True)),
    (_Obj311(), ([b"leaf-der", b"int-der"], True)),
    (_Obj39(), ([b"leaf-der"], False)),
])
def test_stdlib_peer_chain_on_every_python(obj, expected):
    assert _tls.stdlib_peer_chain(obj) == expected


def test_resolve_backend(monkeypatch):
    assert _tls.resolve_backend("stdlib") == "stdlib"
    with pytest.raises(CertfleetError, match="backend must be one of"):
        _tls.resolve_backend("gnutls")
    monkeypatch.setattr(_tls, "HAS_PYOPENSSL", False)
    assert _tls.resolve_backend("auto") == "stdlib"
    with pytest.raises(CertfleetError, match="pyOpenSSL is not installed"):
        _tls.resolve_backend("pyopenssl")


@pytest.mark.parametrize("kwargs, message", [
    ({"concurrency": 0}, "concurrency must be between"),
    ({"concurrency": 100000}, "concurrency must be between"),
    ({"timeout": 0}, "timeout must be positive"),
    ({"deadline": -1}, "deadline must be positive"),
])
def test_scan_argument_errors(kwargs, message):
    with pytest.raises(CertfleetError, match=message):
        next(_tls.scan([], **kwargs))


# --------------------------------------------------------------------------------------------
# real handshakes on loopback

NETWORK_SCENARIOS = ["healthy", "healthy_rsa_chain", "wrong_order", "sha1_signed", "rsa_1024", "self_signed", "closed_port",
                     "silent_port", "plain_http", "reset", "sni_rejected", "smtp_starttls", "smtp_without_starttls",
                     "missing_intermediate", "ipv6_healthy"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", NETWORK_SCENARIOS)
def test_outcome_of_each_scenario(scan_range, backend, name):
    if name not in scan_range.endpoints:
        pytest.skip("no IPv6 loopback")
    scenario = scan_range.scenario(name)
    result = _tls.probe(endpoint_for(scan_range, name), timeout=1.5, backend=backend)
    assert result.outcome == scenario.outcome, result.message
    assert result.backend == backend
    if scenario.outcome == "ok":
        # The full chain, exactly as the server sends it (order included), as cryptography objects and DER.
        assert [certificate_fingerprint(c) for c in result.certificates] == [certificate_fingerprint(i.cert) for i in scenario.chain]
        assert result.der == [i.der for i in scenario.chain]
        assert result.chain_available and result.protocol.startswith("TLSv") and result.cipher
        assert result.address == scan_range.endpoints[name][0]
    else:
        assert result.certificates == [] and result.message


def test_outcome_messages(scan_range):
    messages = {name: _tls.probe(endpoint_for(scan_range, name), timeout=1).message
                for name in ("closed_port", "silent_port", "plain_http", "sni_rejected", "smtp_without_starttls", "reset")}
    assert messages["closed_port"].startswith("connection refused while connecting to 127.0.0.1")
    assert "no answer to the TLS ClientHello within 1 s" in messages["silent_port"]
    assert "HTTP/1.1 400 Bad Request" in messages["plain_http"] and "plain HTTP" in messages["plain_http"]
    # OpenSSL names the alert "unrecognized name" or TLSV1_UNRECOGNIZED_NAME depending on where it surfaces.
    assert "unrecognized name" in messages["sni_rejected"].lower().replace("_", " ")
    assert "does not offer STARTTLS" in messages["smtp_without_starttls"]
    assert "reset" in messages["reset"] or "closed" in messages["reset"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_legacy_protocol_is_reported(scan_range, backend, tmp_path):
    scenario = scan_range.scenario("healthy")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(f"{scan_range.directory}/healthy.crt", f"{scan_range.directory}/healthy.key")
    with RangeServer() as server:
        port = server.add("tls", context=context)
        result = _tls.probe(_tls.Endpoint("127.0.0.1", port, server_name=scenario.server_name), backend=backend)
    assert result.outcome == "ok" and result.protocol == "TLSv1.2"


def test_smtp_greeting_refused(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        conn, _addr = listener.accept()
        conn.sendall(b"554-mail.test no service for you\r\n554 go away\r\n")
        time.sleep(0.5)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    result = _tls.probe(_tls.Endpoint("127.0.0.1", listener.getsockname()[1], starttls="smtp"), timeout=3)
    thread.join()
    listener.close()
    assert result.outcome == "starttls_failure"
    assert "554" in result.message and "go away" in result.message


def test_localhost_resolves_through_the_system(scan_range):
    _host, port = scan_range.endpoints["healthy"]
    result = _tls.probe(_tls.Endpoint("localhost", port, server_name="www.scan.test"), timeout=3)
    assert result.outcome == "ok"
    assert result.address in ("127.0.0.1", "::1")


@needs_ipv6
def test_ipv6_literal(scan_range):
    host, port = scan_range.endpoints["ipv6_healthy"]
    assert host == "::1"
    result = _tls.probe(_tls.make_endpoint(f"[::1]:{port}", server_name="www.scan.test"))
    assert result.outcome == "ok" and result.address == "::1"


def _fake_resolver(table: dict, *, delay: float = 0.0, active: list | None = None):
    async def resolve(host, port):
        if active is not None:
            active.append(1)
            active[0] = max(active[0], len(active) - 1)
        try:
            if delay:
                await asyncio.sleep(delay)
            if host not in table:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port))]
        finally:
            if active is not None:
                active.pop()

    return resolve


def test_dns_error_with_an_injected_resolver():
    result = _tls.probe(_tls.Endpoint("nowhere.invalid", 443), resolver=_fake_resolver({}))
    assert result.outcome == "dns_error"
    assert "cannot resolve the host name" in result.message


def test_resolved_name_is_connected(scan_range):
    _host, port = scan_range.endpoints["healthy"]
    result = _tls.probe(_tls.Endpoint("www.scan.test", port), resolver=_fake_resolver({"www.scan.test": "127.0.0.1"}))
    assert result.outcome == "ok" and result.server_name == "www.scan.test"


@pytest.mark.parametrize("threaded", [False, True])
def test_scan_streams_every_endpoint_once(scan_range, threaded):
    names = [name for name in scan_range.endpoints if name != "silent_port"]
    endpoints = [endpoint_for(scan_range, name, index=number) for number, name in enumerate(names)] * 3
    endpoints = [_tls.Endpoint(e.host, e.port, server_name=e.server_name, starttls=e.starttls, index=i, data=e.data)
                 for i, e in enumerate(endpoints)]
    results = list(_tls.scan(iter(endpoints), concurrency=8, timeout=3, threaded=threaded))
    assert sorted(r.endpoint.index for r in results) == list(range(len(endpoints)))
    for result in results:
        assert result.outcome == scan_range.scenario(result.endpoint.data).outcome, (result.endpoint.data, result.message)


def test_concurrency_is_bounded():
    active = [0]
    resolver = _fake_resolver({f"h{i}.test": "127.0.0.1" for i in range(40)}, delay=0.05, active=active)
    port = _closed_port()
    started = time.monotonic()
    results = list(_tls.scan((_tls.Endpoint(f"h{i}.test", port) for i in range(40)), concurrency=5, resolver=resolver))
    elapsed = time.monotonic() - started
    assert len(results) == 40 and {r.outcome for r in results} == {"refused"}
    assert active[0] == 5
    assert elapsed < 40 * 0.05  # concurrent, not one after the other


def test_slow_consumer_keeps_memory_bounded():
    calls = []

    async def resolver(host, port):
        calls.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "no")

    endpoints = (_tls.Endpoint(f"h{i}.test", 443) for i in range(10000))
    scanner = _tls.scan(endpoints, concurrency=4, buffer=4, resolver=resolver)
    next(scanner)
    time.sleep(0.2)
    # Only concurrency + buffer (+ the one taken) endpoints were ever started.
    assert len(calls) <= 9
    scanner.close()


@pytest.mark.parametrize("threaded", [False, True])
def test_closing_early_stops_the_scan(scan_range, threaded):
    silent = endpoint_for(scan_range, "silent_port")
    healthy = endpoint_for(scan_range, "healthy")
    endpoints = [healthy] * 3 + [silent] * 50
    started = time.monotonic()
    scanner = _tls.scan(endpoints, concurrency=20, timeout=30, threaded=threaded)
    first = next(scanner)
    scanner.close()
    assert first.outcome == "ok"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("threaded", [False, True])
def test_scan_ends_within_its_deadline(scan_range, threaded):
    silent = endpoint_for(scan_range, "silent_port")
    healthy = endpoint_for(scan_range, "healthy")
    endpoints = [_tls.Endpoint(e.host, e.port, server_name=e.server_name, index=i)
                 for i, e in enumerate([healthy] * 5 + [silent] * 200)]
    started = time.monotonic()
    results = list(_tls.scan(endpoints, concurrency=16, timeout=30, deadline=1.5, threaded=threaded))
    elapsed = time.monotonic() - started
    assert elapsed < 1.5 + 1.0
    assert len(results) == len(endpoints)
    outcomes = {r.outcome for r in results}
    assert outcomes <= {"ok", "deadline", "timeout"} and "deadline" in outcomes
    assert sum(r.outcome == "ok" for r in results) == 5
    cut = [r for r in results if r.outcome == "deadline"]
    assert any("cut short" in r.message for r in cut) and any("not scanned" in r.message for r in cut)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_checks_over_scanned_results(scan_range):
    trust = ec.TrustStore.load(name="scan", system=False, certificates=[scan_range.trust_path])
    analyzer = ec.ChainAnalyzer()
    names = [name for name in scan_range.endpoints if name != "silent_port"]
    endpoints = [endpoint_for(scan_range, name, index=i) for i, name in enumerate(names)]
    for result in _tls.scan(endpoints, timeout=3):
        scenario = scan_range.scenario(result.endpoint.data)
        fingerprint = ec.normalize_fingerprint(scenario.expected_fingerprint) if scenario.expected_fingerprint else None
        report = ec.evaluate(result, analyzer, expect=ec.Expectations(hostname=scenario.server_name, fingerprint=fingerprint, trust=trust))
        failing = {name: check["status"] for name, check in report["checks"].items() if check["status"] != "ok"}
        assert (report["outcome"], report["status"], failing) == (scenario.outcome, scenario.status, scenario.failing), scenario.name
