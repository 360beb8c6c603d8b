"""Debian's pebble (Let's Encrypt's ACME test server) and pebble-challtestsrv, started on loopback for one test run.

``start_pebble`` makes a TLS certificate for 127.0.0.1 (pebble ships none), picks free ports (the suite runs
with ``-n 2``), starts challtestsrv as pebble's DNS server (every name resolves to 127.0.0.1) and pebble with
``PEBBLE_VA_NOSLEEP=1``. Pebble's nonce rejection (5 % of good nonces) stays on, so the provider's badNonce
retry is exercised by every test. A missing binary is a failure, never a skip.
"""
from __future__ import annotations

import base64
import contextlib
import datetime
import http.client
import http.server
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PEBBLE = "/usr/bin/pebble"
CHALLTESTSRV = "/usr/bin/pebble-challtestsrv"
# An EAB key pebble accepts (kid -> base64url HMAC key), for the binding tests.
EAB_KID = "kid-certfleet"
EAB_HMAC_KEY = base64.urlsafe_b64encode(b"certfleet-eab-hmac-key-for-tests-0123456789").decode().rstrip("=")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_tls(directory: str) -> dict:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost signed by it; returns the paths."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certfleet pebble TLS test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {"ca": os.path.join(directory, "tls-ca.pem"), "cert": os.path.join(directory, "tls-cert.pem"),
             "key": os.path.join(directory, "tls-key.pem")}
    with open(paths["ca"], "wb") as handle:
        handle.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["cert"], "wb") as handle:
        handle.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(paths["key"], "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return paths


def wait_for_port(port: int, process: subprocess.Popen, *, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}: {process.stdout.read()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


@dataclass
class Pebble:
    directory_url: str
    ca_bundle: str
    tls: dict
    http_port: int
    management_port: int
    challtestsrv_management: int = 0  # set-txt / clear-txt for dns-01
    processes: list = field(default_factory=list)

    def management(self, path: str) -> tuple[int, bytes, dict]:
        """GET on pebble's management interface (roots, intermediates, cert status)."""
        context = ssl.create_default_context(cafile=self.ca_bundle)
        connection = http.client.HTTPSConnection("127.0.0.1", self.management_port, context=context, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            connection.close()

    def root_pem(self, number: int = 0) -> bytes:
        status, body, _headers = self.management(f"/roots/{number}")
        assert status == 200, body
        return body

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


def start_pebble(directory: str, *, env: dict | None = None, eab: bool = False) -> Pebble:
    """Start challtestsrv and pebble on free loopback ports; the caller stops them (``Pebble.stop``)."""
    for binary in (PEBBLE, CHALLTESTSRV):
        assert shutil.which(binary), f"{binary} is missing: install Debian's pebble package (scripts/setup.sh does)"
    os.makedirs(directory, exist_ok=True)
    tls = make_tls(directory)
    dns_port, challtest_management = free_port(), free_port()
    listen, management, http_port, tls_port = free_port(), free_port(), free_port(), free_port()
    config = {"pebble": {"listenAddress": f"127.0.0.1:{listen}", "managementListenAddress": f"127.0.0.1:{management}",
                         "certificate": tls["cert"], "privateKey": tls["key"], "httpPort": http_port, "tlsPort": tls_port,
                         "ocspResponderURL": "", "externalAccountBindingRequired": eab}}
    if eab:
        config["pebble"]["externalAccountMACKeys"] = {EAB_KID: EAB_HMAC_KEY}
    config_path = os.path.join(directory, "pebble-config.json")
    with open(config_path, "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    server = Pebble(directory_url=f"https://127.0.0.1:{listen}/dir", ca_bundle=tls["ca"], tls=tls, http_port=http_port,
                    management_port=management, challtestsrv_management=challtest_management)
    try:
        challtestsrv = subprocess.Popen(
            [CHALLTESTSRV, "-dns01", f"127.0.0.1:{dns_port}", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
             "-http01", "", "-https01", "", "-tlsalpn01", "", "-management", f"127.0.0.1:{challtest_management}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        server.processes.append(challtestsrv)
        wait_for_port(challtest_management, challtestsrv, what="pebble-challtestsrv")
        pebble_env = dict(os.environ, PEBBLE_VA_NOSLEEP="1")
        pebble_env.update(env or {})
        pebble = subprocess.Popen([PEBBLE, "-config", config_path, "-dnsserver", f"127.0.0.1:{dns_port}"], env=pebble_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=directory)
        server.processes.append(pebble)
        wait_for_port(listen, pebble, what="pebble")
        wait_for_port(management, pebble, what="pebble management")
    except BaseException:
        server.stop()
        raise
    return server


class RateLimitingProxy:
    """A TLS reverse proxy in front of pebble that answers the first ``count`` newOrder requests with HTTP 429
    (``rateLimited``, Retry-After) and forwards everything else unchanged, Host header included - pebble builds
    its URLs from the Host header, so the client talks to the proxy throughout and its JWS URLs match."""

    def __init__(self, pebble: Pebble, *, count: int = 1, retry_after: str = "2"):
        self.pebble = pebble
        self.remaining = count
        self.retry_after = retry_after
        self.limited: list[float] = []
        upstream_port = int(pebble.directory_url.split(":")[2].split("/")[0])
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "POST" and "order-plz" in self.path and proxy.remaining > 0:
                    proxy.remaining -= 1
                    proxy.limited.append(time.monotonic())
                    problem = json.dumps({"type": "urn:ietf:params:acme:error:rateLimited",
                                          "detail": "too many new orders recently", "status": 429}).encode()
                    self.send_response(429)
                    self.send_header("Content-Type", "application/problem+json")
                    self.send_header("Retry-After", proxy.retry_after)
                    self.send_header("Content-Length", str(len(problem)))
                    self.end_headers()
                    self.wfile.write(problem)
                    return
                context = ssl.create_default_context(cafile=pebble.ca_bundle)
                upstream = http.client.HTTPSConnection("127.0.0.1", upstream_port, context=context, timeout=30)
                try:
                    headers = {key: value for key, value in self.headers.items() if key.lower() != "connection"}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                    self.send_response(response.status)
                    for key, value in response.getheaders():
                        if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    upstream.close()

            do_GET = do_POST = do_HEAD = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pebble.tls["cert"], pebble.tls["key"])
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.directory_url = f"https://127.0.0.1:{self.port}/dir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
