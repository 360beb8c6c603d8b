# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS handshake engine: one handshake or many endpoints concurrently, with the full presented chain.

This module is private to the certfleet.tls collection: its API may change
without notice.

Only network I/O lives here; the checks over the fetched chain are in
``checks``; ``runner`` drives a whole scan. Every network failure becomes a classified ``HandshakeResult``
(see ``OUTCOMES``), never an exception.

Backends (``backend=``):

* ``pyopenssl`` - pyOpenSSL ``Connection.get_peer_cert_chain``. Preferred: it is the API made
  for the job, and it runs on the OpenSSL that the cryptography wheel bundles, whose TLS
  client costs measurably less CPU per handshake than the system OpenSSL 3.0 of Debian 12
  (docs/scanning.md has the figures).
* ``stdlib`` - Python's ssl module. The full chain comes from ``SSLObject.get_unverified_chain``
  (public since Python 3.13; a private method of ``_ssl._SSLSocket`` in 3.10 - 3.12). On older
  Pythons only the leaf is available and the result says so.
* ``auto`` - pyopenssl when importable, else stdlib.

Both drive OpenSSL through memory BIOs, so this module reads every byte the server sends:
that is how a plain HTTP answer is told apart from a TLS failure, and how SMTP STARTTLS
runs before the handshake on the same socket.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import queue
import socket
import ssl
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from ansible_collections.certfleet.tls.plugins.module_utils._common.network import (
    check_port,
    host_port_label,
    is_ip_address,
    parse_host_port,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import HAS_CRYPTOGRAPHY, CertfleetError

if HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

try:
    from OpenSSL import SSL as _OSSL
    from OpenSSL import crypto as _OSSL_crypto
except ImportError:  # pragma: no cover - optional: the stdlib backend is used instead
    HAS_PYOPENSSL = False
else:
    HAS_PYOPENSSL = True

# outcome -> meaning; "ok" is the only one with a certificate chain.
OUTCOMES = {
    "ok": "TLS handshake completed",
    "refused": "TCP connection refused (nothing listens on the port, or a firewall rejects)",
    "timeout": "no answer within the per-connection timeout (filtered port, or a server that never answers)",
    "reset": "the server reset the connection",
    "dns_error": "the host name does not resolve",
    "not_tls": "the server answered, but not with TLS (plain HTTP, SMTP banner, ...)",
    "handshake_failure": "the server speaks TLS but the handshake failed (alert, no common protocol or cipher, closed)",
    "unreachable": "no route to the host or network",
    "starttls_failure": "the STARTTLS exchange before the handshake failed",
    "bad_certificate": "the handshake completed, but a presented certificate cannot be parsed (malformed name, extension or key)",
    "deadline": "not scanned, or cut short, because the overall scan deadline was reached",
    "error": "an unexpected local error (the message says which)",
}
BACKENDS = ("auto", "pyopenssl", "stdlib")
STARTTLS_PROTOCOLS = ("none", "smtp")
DEFAULT_PORT = 443
DEFAULT_TIMEOUT = 10.0
DEFAULT_CONCURRENCY = 64
MAX_CONCURRENCY = 4096
# Most a server may send before the handshake completes (a chain of a few dozen certificates).
_MAX_HANDSHAKE_BYTES = 1024 * 1024
# Most one SMTP reply (greeting, EHLO, STARTTLS answer) may take, all its lines together: real EHLO
# replies are a dozen lines of at most 512 octets (RFC 5321 §4.5.3.1.5).
_MAX_SMTP_REPLY = 64 * 1024
_MAX_SMTP_LINES = 256
# First byte of a TLS record: change_cipher_spec, alert, handshake, application_data, heartbeat.
_TLS_RECORD_TYPES = frozenset((0x14, 0x15, 0x16, 0x17, 0x18))
# A scanner must read what legacy servers present, so nothing is refused on our side: old
# protocols and security level 0 (SHA-1 signatures, 1024-bit RSA). Nothing is verified here;
# the checks judge the chain afterwards.
_CIPHERS = "ALL:@SECLEVEL=0"

_UNREACHABLE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENETUNREACH", "EHOSTUNREACH", "EADDRNOTAVAIL", "EAFNOSUPPORT", "ENETDOWN", "EHOSTDOWN")
    if hasattr(errno, name)
)
_RESET_ERRNOS = frozenset(getattr(errno, name) for name in ("ECONNRESET", "EPIPE", "ECONNABORTED") if hasattr(errno, name))


# --------------------------------------------------------------------------------------------
# endpoints


@dataclass(frozen=True)
class Endpoint:
    """One TLS service to probe; ``data`` is the caller's, passed through to the result untouched."""

    host: str
    port: int = DEFAULT_PORT
    server_name: str | None = None
    starttls: str = "none"
    index: int = 0
    data: Any = None

    @property
    def label(self) -> str:
        """``host:port``, IPv6 literals in brackets."""
        return host_port_label(self.host, self.port)

    @property
    def sni(self) -> str | None:
        """The SNI to send: ``server_name`` if set ('' = none), else the host when it is a DNS name."""
        if self.server_name is not None:
            return self.server_name or None
        return None if is_ip_address(self.host) else self.host


def _check_host(host: str, *, what: str) -> str:
    host = (host or "").strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise CertfleetError(f"{what}: empty host")
    if not is_ip_address(host):
        try:
            host.encode("idna")
        except UnicodeError as exc:
            raise CertfleetError(f"{what}: {host!r} is not a valid host name ({exc})") from None
    return host


def _check_server_name(server_name: str | None, *, what: str) -> str | None:
    if server_name is None or server_name == "":
        return server_name
    if is_ip_address(server_name):
        raise CertfleetError(f"{what}: server_name {server_name!r} is an IP address; SNI carries host names only (RFC 6066 §3)")
    try:
        server_name.encode("idna")
    except UnicodeError as exc:
        raise CertfleetError(f"{what}: server_name {server_name!r} is not a valid host name ({exc})") from None
    return server_name


def parse_ports(ports: Iterable, *, what: str = "ports") -> list[int]:
    """Port list from numbers and ``"8000-8010"`` ranges, order kept, duplicates dropped."""
    result: list[int] = []
    seen = set()
    for item in ports:
        text = str(item).strip()
        if "-" in text:
            low, _sep, high = text.partition("-")
            first, last = check_port(low, what=what), check_port(high, what=what)
            if first > last:
                raise CertfleetError(f"{what}: port range {text!r} runs backwards")
            numbers = range(first, last + 1)
        else:
            numbers = [check_port(text, what=what)]
        for number in numbers:
            if number not in seen:
                seen.add(number)
                result.append(number)
    if not result:
        raise CertfleetError(f"{what}: no port given")
    return result


def parse_network(cidr: str, *, what: str = "cidr"):
    """``ipaddress`` network from ``10.0.0.0/24``, ``::1/128`` or a single address."""
    try:
        return ipaddress.ip_network(str(cidr).strip(), strict=False)
    except ValueError as exc:
        raise CertfleetError(f"{what}: {cidr!r} is not an IP network ({exc})") from None


def network_addresses(network) -> Iterator[str]:
    """Scan addresses of a network: every host address (all of them for /31, /32, /127, /128)."""
    if network.num_addresses <= 2:
        return (str(address) for address in network)
    return (str(address) for address in network.hosts())


def network_size(network) -> int:
    """How many addresses ``network_addresses`` yields, without iterating."""
    count = network.num_addresses
    if count <= 2:
        return count
    # IPv4 hosts() drops network and broadcast; IPv6 drops the subnet-router anycast address.
    return count - 2 if network.version == 4 else count - 1


def expand_range(cidrs: Iterable[str] | str, ports: Iterable, *, server_name: str | None = None, starttls: str = "none",
                 data: Any = None, start_index: int = 0) -> Iterator[Endpoint]:
    """Lazily every address of the networks x every port, as Endpoints numbered from ``start_index``."""
    networks = [parse_network(cidr) for cidr in ([cidrs] if isinstance(cidrs, str) else cidrs)]
    port_list = parse_ports(ports)
    server_name = _check_server_name(server_name, what="range")
    index = start_index
    for network in networks:
        for address in network_addresses(network):
            for port in port_list:
                yield Endpoint(host=address, port=port, server_name=server_name, starttls=starttls, index=index, data=data)
                index += 1


def make_endpoint(host: str, port: int | None = None, *, server_name: str | None = None, starttls: str = "none",
                  index: int = 0, data: Any = None) -> Endpoint:
    """Validated Endpoint; ``host`` may carry the port (``host:port``) when ``port`` is None."""
    if port is None:
        text = str(host).strip()
        host, port = parse_host_port(text, default_port=DEFAULT_PORT)
        host = _check_host(host, what=text)
    else:
        host = _check_host(str(host), what=str(host))
        port = check_port(port, what=str(host))
    if starttls not in STARTTLS_PROTOCOLS:
        raise CertfleetError(f"{host}: starttls must be one of {', '.join(STARTTLS_PROTOCOLS)}, not {starttls!r}")
    return Endpoint(host=host, port=port, server_name=_check_server_name(server_name, what=host), starttls=starttls,
                    index=index, data=data)


# --------------------------------------------------------------------------------------------
# results


@dataclass
class HandshakeResult:
    """What one endpoint gave: the outcome, and for ``ok`` the chain in the order the server sent it."""

    endpoint: Endpoint
    outcome: str
    message: str
    address: str | None = None
    protocol: str | None = None
    cipher: str | None = None
    certificates: list = field(default_factory=list)
    der: list = field(default_factory=list)
    chain_available: bool = True
    elapsed: float = 0.0
    backend: str = ""
    server_name: str | None = None
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the handshake completed."""
        return self.outcome == "ok"


class _Failure(Exception):
    """A classified failure inside one probe."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


def classify_os_error(exc: BaseException, *, phase: str) -> tuple[str, str]:
    """(outcome, message) for a socket-level exception raised while ``phase`` (connecting, ...)."""
    if isinstance(exc, socket.gaierror):
        return "dns_error", f"cannot resolve the host name: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "refused", f"connection refused while {phase}"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset", f"connection reset by the server while {phase}"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, socket.timeout)):
        return "timeout", f"timed out while {phase}"
    number = getattr(exc, "errno", None)
    if number in _UNREACHABLE_ERRNOS:
        return "unreachable", f"{exc.strerror or exc} while {phase}"
    if number in _RESET_ERRNOS:
        return "reset", f"connection reset by the server while {phase}"
    if number == errno.ECONNREFUSED:
        return "refused", f"connection refused while {phase}"
    if isinstance(exc, OSError):
        return "error", f"{exc.strerror or exc} while {phase}"
    return "error", f"{type(exc).__name__}: {exc} while {phase}"


def describe_bytes(data: bytes, limit: int = 48) -> str:
    """Printable preview of what a server sent, for messages."""
    text = data[:limit].decode("latin-1")
    preview = "".join(ch if 32 <= ord(ch) < 127 else "." for ch in text)
    return preview + ("..." if len(data) > limit else "")


def looks_like_tls(first_bytes: bytes) -> bool:
    """True when the first bytes from a server can start a TLS record (type, then version major 3)."""
    if not first_bytes:
        return True
    if first_bytes[0] not in _TLS_RECORD_TYPES:
        return False
    return len(first_bytes) < 2 or first_bytes[1] == 3


def not_tls_message(first_bytes: bytes) -> str:
    """Why the answer is not TLS, with a hint for the common cases."""
    preview = describe_bytes(first_bytes)
    if first_bytes.startswith(b"HTTP/"):
        hint = " (plain HTTP on this port)"
    elif first_bytes[:3].isdigit() and first_bytes[3:4] in (b" ", b"-"):
        hint = " (a text protocol banner: SMTP, FTP, ...; for SMTP use starttls: smtp)"
    elif first_bytes.startswith(b"SSH-"):
        hint = " (an SSH server)"
    else:
        hint = ""
    return f"the server answered with non-TLS data: {preview!r}{hint}"


# --------------------------------------------------------------------------------------------
# handshake backends: same small interface over a memory BIO


def _ssl_error_text(exc) -> str:
    """Readable reason from a pyOpenSSL or stdlib ssl error."""
    if HAS_PYOPENSSL and isinstance(exc, _OSSL.Error) and exc.args and isinstance(exc.args[0], list):
        reasons = [item[2] for item in exc.args[0] if len(item) > 2 and item[2]]
        if reasons:
            return "; ".join(dict.fromkeys(reasons))
    if isinstance(exc, ssl.SSLError):
        return getattr(exc, "reason", None) or str(exc)
    return str(exc) or type(exc).__name__


def _der_list_to_certificates(der_list: list[bytes], notes: list[str]) -> list:
    certificates = []
    for number, der in enumerate(der_list, start=1):
        try:
            certificates.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            notes.append(f"presented certificate #{number} cannot be parsed: {exc}")
            break
    return certificates


class _PyOpenSSLHandshake:
    name = "pyopenssl"

    def __init__(self, context, server_name: str | None) -> None:
        self.conn = _OSSL.Connection(context, None)
        self.conn.set_connect_state()
        if server_name:
            self.conn.set_tlsext_host_name(server_name.encode("idna"))

    def step(self) -> bool:
        try:
            self.conn.do_handshake()
        except _OSSL.WantReadError:
            return False
        except _OSSL.Error as exc:
            raise _Failure("handshake_failure", f"TLS handshake failed: {_ssl_error_text(exc)}") from None
        return True

    def outgoing(self) -> bytes:
        chunks = []
        while True:
            try:
                chunks.append(self.conn.bio_read(65536))
            except _OSSL.WantReadError:
                return b"".join(chunks)

    def incoming(self, data: bytes) -> None:
        self.conn.bio_write(data)

    def eof(self) -> None:
        self.conn.bio_shutdown()

    def details(self) -> tuple[list, list, bool, str | None, str | None, list]:
        notes: list[str] = []
        # DER once per certificate, parsed by cryptography (to_cryptography() would encode it again).
        der_list = [_OSSL_crypto.dump_certificate(_OSSL_crypto.FILETYPE_ASN1, item) for item in self.conn.get_peer_cert_chain() or []]
        return (_der_list_to_certificates(der_list, notes), der_list, True, self.conn.get_protocol_version_name(),
                self.conn.get_cipher_name(), notes)


class _StdlibHandshake:
    name = "stdlib"

    def __init__(self, context: ssl.SSLContext, server_name: str | None) -> None:
        self.bio_in = ssl.MemoryBIO()
        self.bio_out = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.bio_in, self.bio_out, server_side=False, server_hostname=server_name)

    def step(self) -> bool:
        try:
            self.obj.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        except ssl.SSLError as exc:
            raise _Failure("handshake_failure", f"TLS handshake failed: {_ssl_error_text(exc)}") from None
        return True

    def outgoing(self) -> bytes:
        return self.bio_out.read()

    def incoming(self, data: bytes) -> None:
        self.bio_in.write(data)

    def eof(self) -> None:
        self.bio_in.write_eof()

    def details(self) -> tuple[list, list, bool, str | None, str | None, list]:
        notes: list[str] = []
        der_list, complete = stdlib_peer_chain(self.obj)
        if not complete:
            notes.append("this Python's ssl module gives only the leaf certificate (full chain needs Python >= 3.10 or pyOpenSSL)")
        cipher = self.obj.cipher()
        return (_der_list_to_certificates(der_list, notes), der_list, complete, self.obj.version(),
                cipher[0] if cipher else None, notes)


def stdlib_peer_chain(obj) -> tuple[list[bytes], bool]:
    """(DER list as sent, full chain?) from an ssl.SSLObject / SSLSocket, whatever the Python version gives."""
    for owner in (obj, getattr(obj, "_sslobj", None)):
        getter = getattr(owner, "get_unverified_chain", None)
        if getter is None:
            continue
        # Public (3.13+) returns DER bytes; the private 3.10-3.12 method returns _ssl.Certificate objects.
        items = getter() or []
        return [item if isinstance(item, bytes) else item.public_bytes(ssl._ssl.ENCODING_DER) for item in items], True  # pylint: disable=protected-access
    leaf = obj.getpeercert(binary_form=True)
    return ([leaf] if leaf else []), False


def _pyopenssl_context():
    context = _OSSL.Context(_OSSL.TLS_CLIENT_METHOD)
    context.set_verify(_OSSL.VERIFY_NONE, None)
    context.set_session_cache_mode(_OSSL.SESS_CACHE_OFF)
    context.set_options(_OSSL.OP_NO_TICKET)
    try:
        context.set_min_proto_version(_OSSL.TLS1_VERSION)
    except _OSSL.Error:  # pragma: no cover - an OpenSSL built without TLS 1.0
        pass
    try:
        context.set_cipher_list(_CIPHERS.encode("ascii"))
    except _OSSL.Error:  # pragma: no cover - an OpenSSL without security levels
        context.set_cipher_list(b"ALL")
    return context


def _stdlib_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.options |= ssl.OP_NO_TICKET
    try:
        with warnings.catch_warnings():
            # Deprecated for clients that trust what they get; a scanner must still see TLS 1.0 servers.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
    except (ValueError, AttributeError):  # pragma: no cover
        pass
    try:
        context.set_ciphers(_CIPHERS)
    except ssl.SSLError:  # pragma: no cover
        context.set_ciphers("ALL")
    return context


def resolve_backend(backend: str = "auto") -> str:
    """The backend that ``backend`` means here: pyopenssl or stdlib."""
    if backend not in BACKENDS:
        raise CertfleetError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "auto":
        return "pyopenssl" if HAS_PYOPENSSL else "stdlib"
    if backend == "pyopenssl" and not HAS_PYOPENSSL:
        raise CertfleetError("backend pyopenssl: the Python library pyOpenSSL is not installed")
    return backend


class _Factory:
    """Per-scan TLS client context and handshake constructor."""

    def __init__(self, backend: str) -> None:
        self.name = resolve_backend(backend)
        if self.name == "pyopenssl":
            self.context = _pyopenssl_context()
            self.cls = _PyOpenSSLHandshake
        else:
            self.context = _stdlib_context()
            self.cls = _StdlibHandshake

    def new(self, server_name: str | None):
        return self.cls(self.context, server_name)


# --------------------------------------------------------------------------------------------
# one probe


class _Probe:
    """Connect, optional STARTTLS, handshake; records its phase so a timeout can say where it stopped."""

    def __init__(self, loop, endpoint: Endpoint, factory: _Factory, resolver) -> None:
        self.loop = loop
        self.endpoint = endpoint
        self.factory = factory
        self.resolver = resolver
        self.phase = "resolving the host name"
        self.address: str | None = None
        self.connected = False
        self.received = 0
        self.sock: socket.socket | None = None
        # When the whole exchange must be over (time.monotonic()); set by the scan. asyncio's
        # sock_recv returns at once while data is waiting, without yielding to the loop, so a peer
        # that keeps the socket full would never let wait_for's timer fire: every read checks it.
        self.expires_at: float | None = None

    async def _addresses(self) -> list[tuple]:
        host = self.endpoint.host
        if is_ip_address(host) and "%" not in host:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            address = (host, self.endpoint.port) if family == socket.AF_INET else (host, self.endpoint.port, 0, 0)
            return [(family, address)]
        infos = await self.resolver(host, self.endpoint.port)
        result = []
        for family, _type, _proto, _name, address in infos:
            if family in (socket.AF_INET, socket.AF_INET6) and (family, address) not in result:
                result.append((family, address))
        if not result:
            raise socket.gaierror(socket.EAI_NONAME, "no IPv4 or IPv6 address")
        return result

    async def _connect(self) -> socket.socket:
        try:
            addresses = await self._addresses()
        except OSError as exc:
            raise _Failure(*classify_os_error(exc, phase=self.phase)) from None
        last: tuple[str, str] | None = None
        for family, address in addresses:
            self.phase = f"connecting to {address[0]}"
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await self.loop.sock_connect(sock, address)
            except OSError as exc:
                sock.close()
                last = classify_os_error(exc, phase=self.phase)
                continue
            except BaseException:
                sock.close()
                raise
            self.address = address[0]
            self.connected = True
            return sock
        if last is None:  # pragma: no cover - the loop above runs at least once
            raise RuntimeError("no connection attempt was made")
        raise _Failure(*last)

    async def _recv(self, sock: socket.socket) -> bytes:
        try:
            data = await self.loop.sock_recv(sock, 65536)
        except OSError as exc:
            raise _Failure(*classify_os_error(exc, phase=self.phase)) from None
        self.received += len(data)
        if self.expires_at is not None and time.monotonic() >= self.expires_at:
            # Classified by the caller exactly like wait_for's own timeout (timeout or deadline).
            raise asyncio.TimeoutError()
        return data

    async def _send(self, sock: socket.socket, data: bytes) -> None:
        try:
            await self.loop.sock_sendall(sock, data)
        except OSError as exc:
            raise _Failure(*classify_os_error(exc, phase=self.phase)) from None

    async def _smtp_reply(self, sock: socket.socket, buffer: bytearray) -> tuple[int, list[str]]:
        """One SMTP reply (RFC 5321 §4.2: ``250-...`` lines continue, ``250 ...`` ends), bounded in bytes and lines."""
        lines: list[str] = []
        size = 0  # bytes of this reply consumed so far, line ends included
        while True:
            end = buffer.find(b"\n")
            while end < 0:
                if size + len(buffer) > _MAX_SMTP_REPLY:
                    raise _Failure("starttls_failure", f"SMTP reply longer than {_MAX_SMTP_REPLY} bytes while {self.phase}")
                data = await self._recv(sock)
                if not data:
                    raise _Failure("starttls_failure", f"the server closed the connection while {self.phase}")
                buffer.extend(data)
                end = buffer.find(b"\n")
            size += end + 1
            if size > _MAX_SMTP_REPLY:
                raise _Failure("starttls_failure", f"SMTP reply longer than {_MAX_SMTP_REPLY} bytes while {self.phase}")
            raw = bytes(buffer[:end])
            del buffer[:end + 1]
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            if len(line) < 3 or not line[:3].isdigit():
                raise _Failure("not_tls" if not lines else "starttls_failure",
                               f"not an SMTP reply while {self.phase}: {describe_bytes(raw)!r}")
            if len(lines) >= _MAX_SMTP_LINES:
                raise _Failure("starttls_failure", f"SMTP reply of more than {_MAX_SMTP_LINES} lines while {self.phase}")
            lines.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), lines

    async def _starttls_smtp(self, sock: socket.socket) -> None:
        buffer = bytearray()
        self.phase = "reading the SMTP greeting"
        code, lines = await self._smtp_reply(sock, buffer)
        if code != 220:
            raise _Failure("starttls_failure", f"SMTP greeting {code} {' '.join(lines)!s} (expected 220)")
        local = sock.getsockname()[0]
        # RFC 5321 §4.1.3 address literal: we do not know (or want to look up) our own FQDN.
        literal = f"[IPv6:{local}]" if ":" in local else f"[{local}]"
        self.phase = "sending EHLO"
        await self._send(sock, f"EHLO {literal}\r\n".encode("ascii"))
        code, lines = await self._smtp_reply(sock, buffer)
        if code != 250:
            raise _Failure("starttls_failure", f"EHLO answered {code} {' '.join(lines)} (expected 250)")
        if not any(line.split(" ", 1)[0].upper() == "STARTTLS" for line in lines[1:]):
            raise _Failure("starttls_failure", "the SMTP server does not offer STARTTLS (not in its EHLO reply)")
        self.phase = "sending STARTTLS"
        await self._send(sock, b"STARTTLS\r\n")
        code, lines = await self._smtp_reply(sock, buffer)
        if code != 220:
            raise _Failure("starttls_failure", f"STARTTLS answered {code} {' '.join(lines)} (expected 220)")
        if buffer:
            raise _Failure("starttls_failure", "the SMTP server sent data after its STARTTLS reply (command injection?)")

    async def run(self) -> HandshakeResult:
        started = time.monotonic()
        sni = self.endpoint.sni
        sock = await self._connect()
        self.sock = sock
        if self.endpoint.starttls == "smtp":
            await self._starttls_smtp(sock)
        self.phase = "waiting for the TLS handshake"
        tls = self.factory.new(sni)
        first = True
        while True:
            done = tls.step()
            data = tls.outgoing()
            if data:
                await self._send(sock, data)
            if done:
                break
            data = await self._recv(sock)
            if not data:
                if first:
                    raise _Failure("handshake_failure", "the server closed the connection without answering the TLS ClientHello")
                tls.eof()
                try:
                    tls.step()
                except _Failure as exc:
                    raise _Failure("handshake_failure", f"the server closed the connection during the TLS handshake ({exc.message})") from None
                raise _Failure("handshake_failure", "the server closed the connection during the TLS handshake")
            if first:
                if not looks_like_tls(data):
                    raise _Failure("not_tls", not_tls_message(data))
                first = False
                self.phase = "in the TLS handshake"
            if self.received > _MAX_HANDSHAKE_BYTES:
                raise _Failure("handshake_failure", f"the server sent more than {_MAX_HANDSHAKE_BYTES} bytes without completing the handshake")
            tls.incoming(data)
        certificates, der_list, complete, protocol, cipher, notes = tls.details()
        # No close_notify: the connection is closed (FIN) right away. A third send per endpoint
        # costs measurably on a busy scanner, and servers treat a FIN after the handshake as a
        # normal client going away.
        return HandshakeResult(endpoint=self.endpoint, outcome="ok", message=OUTCOMES["ok"], address=self.address,
                               protocol=protocol, cipher=cipher, certificates=certificates, der=der_list,
                               chain_available=complete, elapsed=time.monotonic() - started, backend=self.factory.name,
                               server_name=sni, notes=notes)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _timeout_message(probe: _Probe, seconds: float) -> str:
    if probe.connected and probe.received == 0 and probe.phase == "waiting for the TLS handshake":
        return f"connected to {probe.address}, but no answer to the TLS ClientHello within {seconds:g} s (a server that accepts and stays silent)"
    if probe.connected and probe.received == 0 and probe.phase == "reading the SMTP greeting":
        return (f"connected to {probe.address}, but no SMTP greeting within {seconds:g} s (an implicit-TLS port such as 465 "
                f"waits for the client: use starttls: none)")
    return f"timed out after {seconds:g} s while {probe.phase}"


# --------------------------------------------------------------------------------------------
# the scanner


async def _default_resolver(host: str, port: int) -> list:
    loop = asyncio.get_running_loop()
    return await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)


class _Scan:
    """Runs in the event loop thread: at most ``concurrency`` probes at a time, results to a bounded queue."""

    def __init__(self, endpoints: Iterable[Endpoint], *, concurrency: int, timeout: float, deadline: float | None,
                 backend: str, resolver, buffer: int) -> None:
        self.endpoints = iter(endpoints)
        self.concurrency = concurrency
        self.timeout = timeout
        self.deadline = deadline
        self.factory = _Factory(backend)
        self.resolver = resolver or _default_resolver
        self.buffer = buffer
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sink: Callable | None = None
        self.on_emit: Callable | None = None
        self.slots: asyncio.Semaphore | None = None
        self.deadline_at: float | None = None
        self.taken = 0

    def bind(self, loop: asyncio.AbstractEventLoop, sink: Callable) -> None:
        """Where results go."""
        self.loop = loop
        self.sink = sink

    def release(self) -> None:
        """The consumer took a result: room for one more (before main() runs, counted for later)."""
        if self.slots is None:
            self.taken += 1
        else:
            self.slots.release()

    def _emit(self, result: HandshakeResult) -> None:
        if self.sink is None:  # pragma: no cover - set before any result is delivered
            raise RuntimeError("result sink is not set")
        self.sink(result)
        if self.on_emit is not None:
            self.on_emit()

    def _deadline_result(self, endpoint: Endpoint) -> HandshakeResult:
        return HandshakeResult(endpoint=endpoint, outcome="deadline", server_name=endpoint.sni, backend=self.factory.name,
                               message=f"not scanned: the overall deadline of {self.deadline:g} s was reached")

    async def _one(self, endpoint: Endpoint, limit: float, cut_by_deadline: bool) -> None:
        if self.loop is None:  # pragma: no cover - set when the scan starts
            raise RuntimeError("event loop is not set")
        probe = _Probe(self.loop, endpoint, self.factory, self.resolver)
        started = time.monotonic()
        probe.expires_at = started + limit
        try:
            result = await asyncio.wait_for(probe.run(), limit)
        except asyncio.TimeoutError:
            if cut_by_deadline:
                result = HandshakeResult(endpoint=endpoint, outcome="deadline",
                                         message=f"cut short by the overall deadline of {self.deadline:g} s while {probe.phase}")
            else:
                result = HandshakeResult(endpoint=endpoint, outcome="timeout", message=_timeout_message(probe, limit))
        except _Failure as exc:
            result = HandshakeResult(endpoint=endpoint, outcome=exc.outcome, message=exc.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # A bug or an unforeseen library error must not end the scan or surface as a traceback.
            result = HandshakeResult(endpoint=endpoint, outcome="error", message=f"unexpected error while {probe.phase}: {type(exc).__name__}: {exc}")
        finally:
            probe.close()
        if result.outcome != "ok":
            result.address = probe.address
            result.elapsed = time.monotonic() - started
            result.backend = self.factory.name
            result.server_name = endpoint.sni
        self._emit(result)

    async def main(self) -> None:
        self.loop = asyncio.get_running_loop()
        # Slots bound probes in flight plus results not yet taken by the consumer: flat memory.
        self.slots = asyncio.Semaphore(self.concurrency + self.buffer + self.taken)
        inflight = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task] = set()
        start = self.loop.time()
        self.deadline_at = start + self.deadline if self.deadline else None

        def finished(task: asyncio.Task) -> None:
            tasks.discard(task)
            inflight.release()

        try:
            for endpoint in self.endpoints:
                if self.deadline_at is not None and self.loop.time() >= self.deadline_at:
                    await self.slots.acquire()
                    self._emit(self._deadline_result(endpoint))
                    continue
                await self.slots.acquire()
                await inflight.acquire()
                limit = self.timeout
                cut = False
                if self.deadline_at is not None:
                    remaining = self.deadline_at - self.loop.time()
                    if remaining <= 0:
                        inflight.release()
                        self._emit(self._deadline_result(endpoint))
                        continue
                    if remaining < limit:
                        limit, cut = remaining, True
                task = self.loop.create_task(self._one(endpoint, limit, cut))
                tasks.add(task)
                task.add_done_callback(finished)
            if tasks:
                await asyncio.gather(*list(tasks))
        finally:
            for task in list(tasks):
                task.cancel()
            if tasks:
                await asyncio.gather(*list(tasks), return_exceptions=True)


def scan(endpoints: Iterable[Endpoint], *, concurrency: int = DEFAULT_CONCURRENCY, timeout: float = DEFAULT_TIMEOUT,
         deadline: float | None = None, backend: str = "auto", resolver: Callable | None = None,
         buffer: int | None = None, threaded: bool = False) -> Iterator[HandshakeResult]:
    """Probe endpoints concurrently; yields one HandshakeResult per endpoint as each finishes (completion order).

    ``endpoints`` is consumed lazily and results are yielded as they come, so memory stays flat
    however many endpoints there are. ``timeout`` bounds each endpoint (resolve + connect +
    STARTTLS + handshake); ``deadline`` bounds the whole scan: endpoints not finished by then are
    yielded with outcome ``deadline``. ``resolver`` is an ``async (host, port) -> getaddrinfo list``
    (tests use it to avoid real DNS). Closing the generator early stops the scan.

    The event loop runs in the calling thread between results (``threaded=False``, the default and
    the faster: see docs/scanning.md), or in a thread of its own feeding a queue (``threaded=True``).
    """
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise CertfleetError(f"concurrency must be between 1 and {MAX_CONCURRENCY}, not {concurrency}")
    if timeout <= 0:
        raise CertfleetError(f"timeout must be positive, not {timeout}")
    if deadline is not None and deadline <= 0:
        raise CertfleetError(f"deadline must be positive, not {deadline}")
    job = _Scan(endpoints, concurrency=concurrency, timeout=float(timeout), deadline=deadline, backend=backend,
                resolver=resolver, buffer=concurrency if buffer is None else buffer)
    if threaded:
        return _scan_threaded(job)
    return _scan_inline(job)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
        if hasattr(loop, "shutdown_default_executor"):  # Python >= 3.9
            loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def _scan_inline(job: _Scan) -> Iterator[HandshakeResult]:
    loop = asyncio.new_event_loop()
    ready: deque = deque()
    job.bind(loop, ready.append)
    waiter: list = [None]

    def wake(*_args) -> None:
        future = waiter[0]
        if future is not None and not future.done():
            future.set_result(None)

    job.on_emit = wake
    main = None
    try:
        main = loop.create_task(job.main())
        main.add_done_callback(wake)
        while True:
            if not ready:
                if main.done():
                    break
                # Run the loop until the next result (or the end): no thread, no GIL hand-offs.
                waiter[0] = loop.create_future()
                loop.run_until_complete(waiter[0])
                continue
            item = ready.popleft()
            job.release()
            yield item
        main.result()
    finally:
        if main is not None and not main.done():
            main.cancel()
            try:
                loop.run_until_complete(main)
            except asyncio.CancelledError:
                pass
        _close_loop(loop)


def _scan_threaded(job: _Scan) -> Iterator[HandshakeResult]:
    out: queue.Queue = queue.Queue()
    loop = asyncio.new_event_loop()
    job.bind(loop, out.put)
    failure: list[BaseException] = []
    main_task: list[asyncio.Task] = []
    done = object()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            task = loop.create_task(job.main())
            main_task.append(task)
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # pylint: disable=broad-exception-caught
            failure.append(exc)
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                out.put(done)

    thread = threading.Thread(target=run, name="certfleet-tls-scan", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is done:
                break
            loop.call_soon_threadsafe(job.release)
            yield item
        if failure:
            raise CertfleetError(f"the scanner stopped unexpectedly: {type(failure[0]).__name__}: {failure[0]}")
    finally:
        if thread.is_alive():
            if main_task:
                loop.call_soon_threadsafe(main_task[0].cancel)
            while thread.is_alive():
                try:
                    if out.get(timeout=0.1) is done:
                        break
                except queue.Empty:
                    continue
                loop.call_soon_threadsafe(job.release)
        thread.join()
        loop.close()


def probe(endpoint: Endpoint, *, timeout: float = DEFAULT_TIMEOUT, backend: str = "auto",
          resolver: Callable | None = None) -> HandshakeResult:
    """One handshake (the deploy check): ``scan`` of a single endpoint."""
    for result in scan([endpoint], concurrency=1, timeout=timeout, backend=backend, resolver=resolver):
        return result
    raise CertfleetError("the scanner returned no result")  # pragma: no cover


def certificates_der(result: HandshakeResult) -> list[bytes]:
    """DER of each presented certificate (what the fingerprints are computed over)."""
    if result.der:
        return list(result.der)
    return [certificate.public_bytes(serialization.Encoding.DER) for certificate in result.certificates]
