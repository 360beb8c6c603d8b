"""Loopback servers for the scan range: many listeners, one selectors loop, in a thread or a process.

Listener kinds:

* ``tls`` - TLS handshake with the given context, then close.
* ``sni_reject`` - TLS, but the handshake is refused (unrecognized_name alert) for any SNI but the one given.
* ``smtp`` / ``smtp_no_starttls`` - a tiny SMTP server (RFC 5321 greeting, EHLO, STARTTLS per RFC 3207).
* ``http`` - answers anything with ``HTTP/1.1 400 Bad Request`` (a plain HTTP server on a TLS port).
* ``reset`` - accepts and resets the connection at once (SO_LINGER 0).
* ``silent`` - listens but never accepts: connections complete in the kernel and nothing answers.

``closed_port()`` gives a port nothing listens on. Run as a script (``--spec spec.json``)
it serves a benchmark range in its own process until stdin closes; several such
processes can share the ports (SO_REUSEPORT) to use every core.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import socket
import ssl
import struct
import sys
import threading
import time
import warnings

_HTTP_ANSWER = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request"


def server_context(cert_pem_path: str, key_pem_path: str, *, weak: bool = False, tickets: bool = False) -> ssl.SSLContext:
    """Server context presenting the chain in the PEM file, in file order (leaf first)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if weak:
        # SHA-1 signed and 1024-bit RSA certificates are refused at the default security level.
        context.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
    if not tickets:
        context.options |= ssl.OP_NO_TICKET
        context.num_tickets = 0
    context.load_cert_chain(cert_pem_path, key_pem_path)
    return context


def closed_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago and has no listener now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def ipv6_available() -> bool:
    """True when ::1 can be bound here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


class _Conn:
    """One accepted connection and its state machine."""

    __slots__ = ("sock", "kind", "listener", "state", "buffer", "out")

    def __init__(self, sock, kind: str, listener: "_Listener") -> None:
        self.sock = sock
        self.kind = kind
        self.listener = listener
        self.state = "new"
        self.buffer = b""
        self.out = b""


class _Listener:
    __slots__ = ("sock", "kind", "context", "port", "server_name")

    def __init__(self, sock, kind: str, context, server_name: str | None) -> None:
        self.sock = sock
        self.kind = kind
        self.context = context
        self.port = sock.getsockname()[1]
        self.server_name = server_name


class RangeServer:
    """Many listeners on loopback served by one selectors loop (``start()`` runs it in a thread)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.selector = selectors.DefaultSelector()
        self.listeners: list[_Listener] = []
        self.silent: list[socket.socket] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop = False
        self._thread: threading.Thread | None = None
        self.handshakes = 0
        self.failures = 0

    # -- listeners

    def _listen(self, host: str | None, port: int, *, reuse_port: bool = False, backlog: int = 1024) -> socket.socket:
        host = host or self.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
        return sock

    def add(self, kind: str, *, context: ssl.SSLContext | None = None, port: int = 0, host: str | None = None,
            server_name: str | None = None, reuse_port: bool = False) -> int:
        """Listen with a behaviour (see the module docstring); returns the port."""
        if kind == "silent":
            sock = self._listen(host, port, backlog=64)
            self.silent.append(sock)
            return sock.getsockname()[1]
        if kind in ("tls", "smtp", "smtp_no_starttls", "sni_reject") and context is None:
            raise ValueError(f"{kind} needs a context")
        if kind == "sni_reject":
            context.sni_callback = self._sni_checker(server_name)
        listener = _Listener(self._listen(host, port, reuse_port=reuse_port), kind, context, server_name)
        self.listeners.append(listener)
        self.selector.register(listener.sock, selectors.EVENT_READ, listener)
        return listener.port

    @staticmethod
    def _sni_checker(expected: str | None):
        def check(ssl_object, server_name, _context):
            if server_name != expected:
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            return None

        return check

    # -- loop

    def start(self) -> "RangeServer":
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="scan-range", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop and close every socket."""
        self._stop = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(10)
        for key in list(self.selector.get_map().values()):
            try:
                key.fileobj.close()
            except OSError:
                pass
        for sock in self.silent:
            sock.close()
        self.selector.close()
        self._wake_w.close()

    def __enter__(self) -> "RangeServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """The loop: accept, then drive each connection's state machine."""
        while not self._stop:
            for key, events in self.selector.select(1.0):
                data = key.data
                if data is None:
                    try:
                        self._wake_r.recv(64)
                    except OSError:
                        pass
                    continue
                if isinstance(data, _Listener):
                    self._accept(data)
                else:
                    self._step(data)

    def _accept(self, listener: _Listener) -> None:
        for _attempt in range(64):
            try:
                sock, _addr = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            # OpenSSL writes a flight as several records: without this, Nagle holds the later ones
            # until the client's (delayed) ACK arrives.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            kind = listener.kind
            if kind == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
                continue
            conn = _Conn(sock, kind, listener)
            if kind == "http":
                conn.state = "http"
                self.selector.register(sock, selectors.EVENT_READ, conn)
            elif kind in ("smtp", "smtp_no_starttls"):
                conn.state = "smtp"
                conn.out = b"220 scan.test ESMTP certfleet scan range\r\n"
                self.selector.register(sock, selectors.EVENT_WRITE, conn)
            else:
                self._start_tls(conn)

    def _start_tls(self, conn: _Conn) -> None:
        try:
            conn.sock = conn.listener.context.wrap_socket(conn.sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):
            self._close(conn)
            return
        conn.state = "tls"
        try:
            self.selector.register(conn.sock, selectors.EVENT_READ, conn)
        except (KeyError, ValueError):
            self.selector.modify(conn.sock, selectors.EVENT_READ, conn)
        self._step(conn)

    def _close(self, conn: _Conn) -> None:
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        try:
            conn.sock.close()
        except OSError:
            pass

    def _step(self, conn: _Conn) -> None:
        if conn.state == "tls":
            try:
                conn.sock.do_handshake()
            except ssl.SSLWantReadError:
                self.selector.modify(conn.sock, selectors.EVENT_READ, conn)
                return
            except ssl.SSLWantWriteError:
                self.selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
                return
            except (ssl.SSLError, OSError):
                self.failures += 1
                self._close(conn)
                return
            self.handshakes += 1
            self._close(conn)
            return
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close(conn)
                return
            conn.out = conn.out[sent:]
            if conn.out:
                return
            if conn.state == "http_done":
                self._close(conn)
                return
            if conn.state == "starttls":
                self.selector.unregister(conn.sock)
                self._start_tls(conn)
                return
            self.selector.modify(conn.sock, selectors.EVENT_READ, conn)
            return
        try:
            data = conn.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        if conn.state == "http":
            conn.state = "http_done"
            conn.out = _HTTP_ANSWER
            self.selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
            return
        conn.buffer += data
        if len(conn.buffer) > 65536:
            self._close(conn)
            return
        while b"\n" in conn.buffer:
            line, _sep, conn.buffer = conn.buffer.partition(b"\n")
            command = line.strip().split(b" ", 1)[0].upper()
            if command in (b"EHLO", b"HELO"):
                extensions = [b"scan.test", b"PIPELINING", b"SIZE 10240000"]
                if conn.kind == "smtp":
                    extensions.append(b"STARTTLS")
                conn.out += b"".join(b"250-" + item + b"\r\n" for item in extensions[:-1]) + b"250 " + extensions[-1] + b"\r\n"
            elif command == b"STARTTLS" and conn.kind == "smtp":
                conn.out += b"220 2.0.0 Ready to start TLS\r\n"
                conn.state = "starttls"
                conn.buffer = b""
                break
            elif command == b"QUIT":
                conn.out += b"221 2.0.0 Bye\r\n"
                conn.state = "http_done"
                break
            else:
                conn.out += b"502 5.5.1 Command not implemented\r\n"
        if conn.out:
            self.selector.modify(conn.sock, selectors.EVENT_WRITE, conn)


# --------------------------------------------------------------------------------------------
# benchmark server process


def _serve_spec(spec: dict) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = RangeServer(spec.get("host", "127.0.0.1"))
    contexts: dict[tuple, ssl.SSLContext] = {}
    ports = []
    for entry in spec["listeners"]:
        context = None
        if entry.get("cert"):
            key = (entry["cert"], entry["key"], bool(entry.get("weak")))
            if key not in contexts:
                contexts[key] = server_context(entry["cert"], entry["key"], weak=bool(entry.get("weak")))
            context = contexts[key]
        ports.append(server.add(entry.get("kind", "tls"), context=context, port=entry.get("port", 0),
                                reuse_port=bool(spec.get("reuse_port"))))
    # One line: the ports in spec order (port 0 = the kernel chose), so a caller can start more
    # workers on the same ports (reuse_port) or aim its scan at them.
    print("ready " + json.dumps(ports), flush=True)

    def watch_stdin() -> None:
        sys.stdin.read()
        server._stop = True  # pylint: disable=protected-access
        server._wake_w.send(b"x")  # pylint: disable=protected-access

    threading.Thread(target=watch_stdin, daemon=True).start()
    started = time.process_time()
    server.serve_forever()
    report = {"handshakes": server.handshakes, "failures": server.failures, "cpu_seconds": time.process_time() - started,
              "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "pid": os.getpid()}
    print(json.dumps(report), flush=True)


def main(argv: list[str] | None = None) -> None:
    """``server.py --spec spec.json``: serve until stdin is closed, then print a JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="JSON: {host, reuse_port, listeners: [{port (0 = any), kind, cert, key, weak}]}")
    args = parser.parse_args(argv)
    with open(args.spec, encoding="utf-8") as handle:
        _serve_spec(json.load(handle))


if __name__ == "__main__":
    main()
