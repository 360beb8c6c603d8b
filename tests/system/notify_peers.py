# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real peers for cert_notify tests on 127.0.0.1: an aiosmtpd SMTP server and an http.server webhook receiver.

Both run in threads of the test process and record what they receive; the TLS certificates
come from a throw-away CA made with cryptography (pki_builder) when the test starts.
"""
from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import pytest
from ansible.module_utils import _internal, basic
from ansible.module_utils.common import warnings as module_warnings
from ansible.module_utils.common.text.converters import to_bytes
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

# The SMTP peer must be real: without aiosmtpd the tests fail (require_aiosmtpd), they are never skipped.
try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
except ImportError as _exc:  # pragma: no cover - depends on the environment
    Controller = AuthResult = None
    AIOSMTPD_ERROR: str | None = f"{type(_exc).__name__}: {_exc}"
else:
    AIOSMTPD_ERROR = None

SMTP_USER = "monitor"
SMTP_PASSWORD = "Pw-7f3c9a-SMTP-do-not-leak"
REFUSED_PREFIX = "nobody@"


def require_aiosmtpd() -> None:
    """Fail (not skip) the calling test when aiosmtpd cannot be imported."""
    if AIOSMTPD_ERROR:
        pytest.fail(f"aiosmtpd is required for the cert_notify system tests, which send mail to a real SMTP server "
                    f"on 127.0.0.1 ({AIOSMTPD_ERROR}). Install the development requirements: "
                    f"python -m pip install -r requirements-dev.txt", pytrace=False)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class NotifyPKI:
    """A CA, a server certificate for localhost / 127.0.0.1 under it, and the PEM files."""

    directory: Path
    ca_path: str = ""
    cert_path: str = ""
    key_path: str = ""

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def make_pki(directory: Path, label: str = "Notify Test CA") -> NotifyPKI:
    """Throw-away CA and a 127.0.0.1 / localhost server certificate, written as PEM files."""
    root = pb.make_root(label)
    key = pb.make_key("ec256")
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = pb.issue(pb.name("localhost"), public_key=key.public_key(), issuer_name=root.cert.subject, signing_key=root.key,
                    ca=False, aki_key=root.key.public_key(), days=30,
                    extra_extensions=[(san, False), (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)])
    directory.mkdir(parents=True, exist_ok=True)
    pki = NotifyPKI(directory, str(directory / "ca.pem"), str(directory / "server.pem"), str(directory / "server.key"))
    Path(pki.ca_path).write_bytes(root.pem)
    Path(pki.cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(pki.key_path).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    return pki


# --- SMTP ----------------------------------------------------------------------------------

@dataclass
class Received:
    """One message as the SMTP server got it."""

    mail_from: str
    rcpt_tos: list
    raw: bytes
    authenticated: bool
    tls: bool

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)


@dataclass
class RecordingHandler:
    """aiosmtpd handler: refuses recipients starting with nobody@, records every accepted message."""

    messages: list = field(default_factory=list)
    logins: list = field(default_factory=list)

    # pylint: disable-next=invalid-name,too-many-arguments,too-many-positional-arguments,unused-argument
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith(REFUSED_PREFIX):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    @staticmethod
    def tls_of(server, session) -> bool:
        """Whether the session runs over TLS (aiosmtpd sets session.ssl only after STARTTLS, not for implicit TLS)."""
        return session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None

    async def handle_DATA(self, server, session, envelope):  # pylint: disable=invalid-name,unused-argument
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                                      bool(session.authenticated), self.tls_of(server, session)))
        return "250 2.0.0 queued"

    # pylint: disable-next=too-many-arguments,too-many-positional-arguments,unused-argument
    def authenticator(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode()
        ok = login == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
        self.logins.append((mechanism, login, ok))
        # handled=False: aiosmtpd answers a failure with its 535 (with the default True it stays silent).
        return AuthResult(success=ok, handled=False)


@dataclass
class SMTPPeer:
    controller: Controller
    handler: RecordingHandler
    port: int

    def stop(self) -> None:
        self.controller.stop()


def start_smtp(pki: NotifyPKI | None, *, mode: str = "starttls", auth: bool = True) -> SMTPPeer:
    """aiosmtpd on 127.0.0.1: mode starttls (require_starttls), ssl (implicit TLS) or plain (no TLS offered)."""
    require_aiosmtpd()
    handler = RecordingHandler()
    kwargs = {"server_hostname": "smtp.notify.test", "ident": "certfleet notify test"}
    if auth:
        # auth_require_tls only knows STARTTLS: with implicit TLS (ssl_context) aiosmtpd would never offer AUTH.
        kwargs.update(authenticator=handler.authenticator, auth_required=True, auth_require_tls=mode == "starttls")
    if mode == "starttls":
        kwargs.update(tls_context=pki.server_context(), require_starttls=True)
    elif mode == "ssl":
        kwargs.update(ssl_context=pki.server_context())
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return SMTPPeer(controller, handler, port)


# --- webhook receiver ------------------------------------------------------------------------

@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8"))


class _Receiver(BaseHTTPRequestHandler):
    """/status/<code> answers that code, /redirect answers 302, anything else 200 {"ok": true}."""

    server_version = "NotifyReceiver/1.0"

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append(Request(self.command, self.path, dict(self.headers.items()), body))
        if self.path.startswith("/status/"):
            code = int(self.path.split("/")[2])
            answer = ("internal failure while storing the event " + "x" * 400).encode()
            self.send_response(code)
        elif self.path.startswith("/redirect"):
            answer = b""
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        else:
            answer = b'{"ok": true}'
            self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_POST = do_PUT = _handle  # noqa: N815 - http.server's naming

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


@dataclass
class HTTPPeer:
    server: ThreadingHTTPServer
    thread: threading.Thread
    scheme: str

    @property
    def requests(self) -> list:
        return self.server.requests

    def url(self, path: str = "/hook") -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_http(pki: NotifyPKI | None = None) -> HTTPPeer:
    """http.server in a thread on a free port; https when a PKI is given."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.requests = []
    server.daemon_threads = True
    if pki is not None:
        server.socket = pki.server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    return HTTPPeer(server, thread, "https" if pki else "http")


# --- the module in-process ---------------------------------------------------------------------

def run_in_process(main, args: dict, capsys) -> tuple[dict, str]:
    """Run a module's main() with real arguments; returns (result, raw stdout)."""
    payload = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)}))
    # is_controller: controller code imported earlier in the same worker would send warnings to Display.
    # The warning stores are process-wide: emptied, so a run reports only its own warnings.
    with mock.patch.object(basic, "_ANSIBLE_ARGS", payload), mock.patch.object(basic, "_ANSIBLE_PROFILE", "legacy", create=True), \
            mock.patch.object(_internal, "is_controller", False), \
            mock.patch.dict(module_warnings._global_warnings, clear=True), \
            mock.patch.dict(module_warnings._global_deprecations, clear=True):  # pylint: disable=protected-access
        with pytest.raises(SystemExit):
            main()
    out = capsys.readouterr().out
    return json.loads(out), out


def _result(name, host, port, server_name, status, days_left, checks: dict, outcome="ok") -> dict:
    """One endpoint the way cert_scan returns it (checks by name, problems as 'check: message')."""
    return {"name": name, "host": host, "port": port, "server_name": server_name, "outcome": outcome, "status": status,
            "days_left": days_left, "checks": {check: {"status": level, "message": text} for check, (level, text) in checks.items()},
            "problems": [f"{check}: {text}" for check, (level, text) in checks.items() if level != "ok"]}


def warning_texts(result: dict) -> list:
    """The warnings of a module result as text (ansible-core 2.19 returns them as WarningSummary dicts in-process)."""
    texts = []
    for warning in result.get("warnings") or []:
        if isinstance(warning, dict):
            warning = (warning.get("event") or {}).get("msg") or warning.get("msg") or json.dumps(warning)
        texts.append(str(warning))
    return texts


def scan_summary() -> dict:
    """A cert_scan-shaped summary and its endpoints (two critical, one warning, one ok; one hostile name)."""
    endpoints = [
        _result("ok-site", "ok.example.test", 443, "ok.example.test", "ok", 200,
                {"connect": ("ok", "TLSv1.3"), "expiry": ("ok", "200 days left")}),
        _result("shop", "192.0.2.10", 443, "shop.example.test", "warning", 21,
                {"connect": ("ok", "TLSv1.3"), "expiry": ("warning", "21 days left (warning below 30)")}),
        _result("legacy<b>", "legacy.example.test", 8443, "www.legacy.example.test", "critical", -4,
                {"connect": ("ok", "TLSv1.2"), "expiry": ("critical", "expired 4 days ago"),
                 "trust": ("critical", "no path to a trusted CA for /CN=<script>x</script>")}),
        _result("down", "down.example.test", 443, None, "critical", None,
                {"connect": ("critical", "connection refused")}, outcome="refused"),
    ]
    summary = {"total": 120, "ok": 117, "warning": 1, "critical": 2, "expired": 1, "expiring": 1,
               "by_outcome": {"ok": 119, "refused": 1}, "generated": datetime.date(2026, 12, 3).isoformat()}
    return {"summary": summary, "endpoints": endpoints}
