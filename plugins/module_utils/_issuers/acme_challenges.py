# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Challenge responders of the ACME provider: http-01 by a standalone HTTP server or by token files in a webroot,
dns-01 by a command hook.

This module is private to the certfleet.tls collection: its API may change
without notice. A responder is a context manager holding tokens (``add(token, key_authorization)``)
while the ACME server validates (RFC 8555 section 8.3): the token is served at
``/.well-known/acme-challenge/<token>`` as ``text/plain``. Tokens come from the ACME server, so
each is checked to be base64url (RFC 8555 section 8.1) before it names a URL path or a file.
The dns-01 hook gets ``add <name> <value>`` before validation and ``remove <name> <value>``
afterwards (RFC 8555 section 8.4: a TXT record at ``_acme-challenge.<domain>``).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import subprocess
import threading

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

CHALLENGE_PATH = "/.well-known/acme-challenge/"
# base64url without padding; 128 characters is far more than the 128 bits RFC 8555 asks for.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}\Z")
MAX_KEY_AUTHORIZATION = 512
# A validation request that does not arrive whole in this many seconds is dropped.
REQUEST_TIMEOUT = 10


def check_token(token: str, key_authorization: str) -> None:
    """A token and its key authorization as the server sent them, safe as a URL path and a file name."""
    if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
        raise CertfleetError(f"the ACME server sent a challenge token that is not base64url ({token!r:.40}); refused")
    if not key_authorization.startswith(token + ".") or len(key_authorization) > MAX_KEY_AUTHORIZATION:
        raise CertfleetError("the key authorization does not belong to its token")


class StandaloneResponder:
    """A small HTTP server on the controller that answers http-01 validation requests, and nothing else."""

    def __init__(self, address: str, port: int):
        self.address = address
        self.port = port
        self.tokens: dict[str, str] = {}
        self.requests: list[str] = []
        self._server = None
        self._thread = None

    def add(self, token: str, key_authorization: str) -> None:
        check_token(token, key_authorization)
        self.tokens[token] = key_authorization

    def __enter__(self):
        responder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "certfleet-acme-responder"
            sys_version = ""
            timeout = REQUEST_TIMEOUT

            def log_message(self, *args):  # pylint: disable=arguments-differ
                """No stderr output from the controller."""

            def do_GET(self):  # pylint: disable=invalid-name
                token = self.path[len(CHALLENGE_PATH):] if self.path.startswith(CHALLENGE_PATH) else None
                body = responder.tokens.get(token) if token else None
                responder.requests.append(self.path[:200])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode("ascii")
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        try:
            server = http.server.ThreadingHTTPServer((self.address, self.port), Handler)
        except OSError as exc:
            raise CertfleetError(f"issuer.challenge: the standalone http-01 responder cannot listen on "
                                 f"{self.address or '*'}:{self.port} ({exc.strerror})") from None
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=REQUEST_TIMEOUT)
        self.tokens.clear()


class WebrootResponder:
    """Token files in ``<webroot>/.well-known/acme-challenge/`` that a web server already serves; removed afterwards."""

    def __init__(self, webroot: str):
        self.webroot = webroot
        self.directory = os.path.join(webroot, *CHALLENGE_PATH.strip("/").split("/"))
        self.written: list[str] = []
        self._created: list[str] = []

    def add(self, token: str, key_authorization: str) -> None:
        check_token(token, key_authorization)
        path = os.path.join(self.directory, token)
        try:
            with open(path, "w", encoding="ascii") as handle:
                handle.write(key_authorization)
            os.chmod(path, 0o644)  # the web server's user reads it
        except OSError as exc:
            raise CertfleetError(f"issuer.challenge.webroot: cannot write {path} ({exc.strerror})") from None
        self.written.append(path)

    def __enter__(self):
        if not os.path.isdir(self.webroot):
            raise CertfleetError(f"issuer.challenge.webroot: {self.webroot} is not a directory")
        current = self.webroot
        for part in CHALLENGE_PATH.strip("/").split("/"):
            current = os.path.join(current, part)
            if os.path.islink(current):
                raise CertfleetError(f"issuer.challenge.webroot: {current} is a symbolic link; refused")
            if not os.path.isdir(current):
                try:
                    os.mkdir(current, 0o755)
                except OSError as exc:
                    raise CertfleetError(f"issuer.challenge.webroot: cannot create {current} ({exc.strerror})") from None
                self._created.append(current)
        return self

    def __exit__(self, *exc_info):
        for path in self.written:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        for path in reversed(self._created):
            with contextlib.suppress(OSError):
                os.rmdir(path)  # only when empty
        self.written.clear()


DNS_NAME_PATTERN = re.compile(r"^_acme-challenge(\.[A-Za-z0-9_-]{1,63})+\Z")
TXT_VALUE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}\Z")  # base64url of a SHA-256 digest
MAX_HOOK_OUTPUT = 500


class CommandResponder:
    """dns-01 through a command hook: ``<command...> add|remove <name> <value>``, no shell, bounded in time."""

    def __init__(self, command: list, timeout: float):
        self.command = list(command)
        self.timeout = timeout
        self.added: list[tuple[str, str]] = []

    def _run(self, action: str, name: str, value: str) -> None:
        argv = self.command + [action, name, value]
        try:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise CertfleetError(f"issuer.challenge.command {action} {name} did not finish within {self.timeout:g} s") from None
        except OSError as exc:
            raise CertfleetError(f"issuer.challenge.command {self.command[0]} cannot run ({exc.strerror})") from None
        if result.returncode != 0:
            output = (result.stderr or result.stdout).decode("utf-8", "replace").strip()[:MAX_HOOK_OUTPUT]
            raise CertfleetError(f"issuer.challenge.command {action} {name} failed with exit code {result.returncode}"
                                 f"{': ' + output if output else ''}")

    def add(self, name: str, value: str) -> None:
        if not DNS_NAME_PATTERN.fullmatch(name) or len(name) > 253:
            raise CertfleetError(f"dns-01 record name {name!r:.80} is not a DNS name; refused")
        if not TXT_VALUE_PATTERN.fullmatch(value):
            raise CertfleetError("the dns-01 validation value is not base64url SHA-256; refused")
        self._run("add", name, value)
        self.added.append((name, value))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        added, self.added = self.added, []
        for name, value in added:
            try:
                self._run("remove", name, value)
            except CertfleetError:
                if exc_info[0] is None:
                    raise


def responder_for(challenge: dict):
    """The responder a definition's ``issuer.challenge`` asks for (already checked by ``acme.acme_settings``)."""
    if challenge["responder"] == "command":
        return CommandResponder(challenge["command"], challenge["timeout"])
    if challenge["responder"] == "webroot":
        return WebrootResponder(challenge["webroot"])
    return StandaloneResponder(challenge["address"], challenge["port"])
