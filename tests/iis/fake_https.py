"""http.sys of the fake Windows hosts: real TLS listeners on loopback that serve, for each handshake,
the certificate the host's JSON state binds to that endpoint right now (host:port entry for the SNI
name, else the IP:port entry, as http.sys picks), with the intermediates of its CA store, and only when
the certificate reaches a machine-stored key (HasPrivateKey). The deploy check then makes a real
handshake against what the fake bindings say."""
from __future__ import annotations

import json
import socket
import ssl
import tempfile
import threading
from pathlib import Path

from cryptography import x509


class FakeHttpSys:
    """Listeners on (address, port) for each fake host; state_of[address] is that host's state file."""

    def __init__(self):
        self.state_of: dict[str, Path] = {}
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._contexts: dict[tuple, ssl.SSLContext] = {}
        self._scratch = tempfile.TemporaryDirectory(prefix="fake-httpsys-")  # pylint: disable=consider-using-with
        self.handshakes = 0

    def listen(self, address: str, port: int, state: Path) -> None:
        self.state_of[address] = state
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, port))
        listener.listen(32)
        listener.settimeout(0.2)
        self._sockets.append(listener)
        threading.Thread(target=self._accept, args=(listener, address, port), daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        for listener in self._sockets:
            listener.close()
        self._scratch.cleanup()

    def _accept(self, listener: socket.socket, address: str, port: int) -> None:
        while not self._stop.is_set():
            try:
                connection, _peer = listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection, address, port), daemon=True).start()

    def _context_for(self, state: dict, address: str, port: int, server_name: str | None) -> ssl.SSLContext | None:
        entries = state["sslcert"]
        entry = None
        if server_name:
            entry = next((item for item in entries if item.get("host_port") == f"{server_name}:{port}"), None)
        if entry is None:
            entry = next((item for item in entries if item.get("ip_port") in (f"{address}:{port}", f"0.0.0.0:{port}")), None)
        if entry is None:
            return None
        # fault: the endpoint serves another certificate than http.sys's table says (the deploy check must see it)
        if state.get("faults", {}).get("tls_serves"):
            entry = dict(entry, thumbprint=state["faults"]["tls_serves"])
        leaf = next((item for item in state["stores"]["My"] if item["thumbprint"] == entry["thumbprint"]), None)
        key = state.get("keys", {}).get(entry["thumbprint"])
        # no key, a lost association or a user-profile key: IIS cannot use it, the handshake fails
        if leaf is None or key is None or not leaf.get("has_key") or key.get("storage") != "machine":
            return None
        chain, current = [], x509.load_pem_x509_certificate(leaf["pem"].encode())
        for _depth in range(5):
            parent = next((item for item in state["stores"]["CA"]
                           if x509.load_pem_x509_certificate(item["pem"].encode()).subject == current.issuer), None)
            if parent is None or current.issuer == current.subject:
                break
            chain.append(parent["pem"])
            current = x509.load_pem_x509_certificate(parent["pem"].encode())
        cache_key = (entry["thumbprint"], tuple(chain))
        if cache_key not in self._contexts:
            scratch = Path(self._scratch.name)
            cert_file, key_file = scratch / f"{entry['thumbprint']}-{len(self._contexts)}.pem", scratch / f"{entry['thumbprint']}.key"
            cert_file.write_text(leaf["pem"] + "".join(chain))
            key_file.write_text(key["pem"])
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_file, key_file)
            self._contexts[cache_key] = context
        return self._contexts[cache_key]

    def _serve(self, connection: socket.socket, address: str, port: int) -> None:
        state = json.loads(self.state_of[address].read_text())

        def pick(tls_socket, server_name, _base):
            context = self._context_for(state, address, port, server_name)
            if context is None:
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME if server_name else ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
            tls_socket.context = context
            return None

        base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        base.sni_callback = pick
        connection.settimeout(10)
        try:
            with base.wrap_socket(connection, server_side=True) as tls:
                self.handshakes += 1
                tls.settimeout(2)
                try:
                    tls.recv(1024)
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass
        except (ssl.SSLError, OSError):
            connection.close()
