"""cert_notify's main() in-process: what its result (the -vvv ``invocation`` included) may show."""
from __future__ import annotations

import http.server
import json
import threading

import pytest

from ansible_collections.certfleet.tls.plugins.modules.cert_notify import main

SUMMARY = {"summary": {"total": 3, "ok": 1, "warning": 1, "critical": 1}}
# Header values that do not look secret by name, yet are credentials.
HEADER_VALUES = {"Cookie": "session=ck-51f0a2-do-not-leak", "X-Access-Key": "ak-7c33e9-do-not-leak",
                 "Authorization": "Bearer az-0b9d4c-do-not-leak", "X-Custom": "plain-1e2f3a-value"}


@pytest.fixture
def receiver():
    """A loopback webhook receiver answering 200 and recording the request headers."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", seen
    server.shutdown()
    server.server_close()


def _assert_no_header_value(result: dict) -> None:
    text = json.dumps(result)
    for value in HEADER_VALUES.values():
        assert value not in text
        for part in value.split():
            assert len(part) < 8 or part not in text
    assert "Traceback" not in text


@pytest.mark.parametrize("check_mode", [True, False])
def test_every_webhook_header_value_is_hidden_from_the_result_and_invocation(run_module, receiver, check_mode):
    url, seen = receiver
    result = run_module(main, dict(SUMMARY, _ansible_check_mode=check_mode, _ansible_verbosity=3,
                                   webhook={"url": url, "headers": dict(HEADER_VALUES)}))
    assert result.get("failed") is not True, result
    assert "invocation" in result  # what -vvv prints
    _assert_no_header_value(result)
    # The header names stay visible; only values are secret.
    if not check_mode:
        assert seen and all(seen[0][name] == value for name, value in HEADER_VALUES.items())


def test_header_values_are_hidden_when_the_webhook_fails(run_module):
    result = run_module(main, dict(SUMMARY, webhook={"url": "http://127.0.0.1:9/hook", "timeout": 2,
                                                     "headers": dict(HEADER_VALUES)}))
    assert result["failed"] is True
    _assert_no_header_value(result)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\r", "\n"])
def test_a_line_separator_in_the_subject_is_a_clear_error(run_module, separator):
    result = run_module(main, dict(SUMMARY, _ansible_check_mode=True,
                                   email={"host": "127.0.0.1", "from": "certs@notify.test", "to": ["a@notify.test"],
                                          "subject": f"TLS{separator}Bcc: victim@example.test"}))
    assert result["failed"] is True
    assert result["msg"] == "email.subject must be one line"
    assert "unexpected" not in result["msg"] and "exception" not in result


@pytest.mark.parametrize("check_mode", [True, False])
def test_a_line_separator_in_a_header_value_is_a_clear_error_without_the_value(run_module, receiver, check_mode):
    url, seen = receiver
    result = run_module(main, dict(SUMMARY, _ansible_check_mode=check_mode,
                                   webhook={"url": url, "headers": {"Cookie": "ck-77aa10-secret\u2028X-Evil: 1"}}))
    assert result["failed"] is True
    assert result["msg"] == "webhook.headers: 'Cookie' has a line break or control character in its name or value"
    assert "ck-77aa10-secret" not in json.dumps(result) and seen == []
