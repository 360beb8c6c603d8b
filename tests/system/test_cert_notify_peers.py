# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cert_notify against real peers on 127.0.0.1: an aiosmtpd SMTP server (STARTTLS, AUTH required) and an
http.server webhook receiver.

The module runs in-process (its real main() with real arguments) for the error cases, and once through a real
ansible-playbook run after a real cert_scan of the loopback scan range. Without aiosmtpd every SMTP test fails with
a message that says so; none is skipped.
"""
from __future__ import annotations

import json

import pytest
import yaml

from notify_peers import (REFUSED_PREFIX, SMTP_PASSWORD, SMTP_USER, free_port, make_pki, run_in_process,
                          scan_summary, start_http, start_smtp, warning_texts)
from playbook_helpers import recap

from ansible_collections.certfleet.tls.plugins.modules.cert_notify import main
from ansible_collections.certfleet.tls.tests.scan_range.range import start_range

TOKEN = "tok-9d1e77-webhook-do-not-leak"


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory):
    """A second CA: trusting it does not make the SMTP server's certificate valid."""
    return make_pki(tmp_path_factory.mktemp("notify_other_pki"), label="Unrelated Test CA")


@pytest.fixture
def notify(capsys):
    """notify(args) -> (result, raw stdout) of cert_notify's main() in this process."""
    return lambda args: run_in_process(main, args, capsys)


def email_args(smtp_peer, pki, **extra) -> dict:
    args = {"host": "127.0.0.1", "port": smtp_peer.port, "security": "starttls", "username": SMTP_USER,
            "password": SMTP_PASSWORD, "from": "Cert monitor <certs@notify.test>",
            "to": ["admin@notify.test", "Second Admin <admin2@notify.test>"], "cc": ["ops@notify.test"],
            "ca_path": pki.ca_path, "timeout": 10}
    args.update(extra)
    return args


def assert_no_secrets(out: str) -> None:
    assert SMTP_PASSWORD not in out
    assert TOKEN not in out
    assert "Traceback" not in out


# --- email ---------------------------------------------------------------------------------------

def test_email_summary_arrives_over_starttls_with_auth(smtp, pki, notify):
    result, out = notify(dict(scan_summary(), report_url="https://reports.notify.test/latest.html",
                              email=email_args(smtp, pki)))
    assert_no_secrets(out)
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["status"] == "critical" and result["skipped"] is False
    assert result["email"]["sent"] is True and result["email"]["refused"] == {}
    assert result["email"]["recipients"] == ["admin@notify.test", "admin2@notify.test", "ops@notify.test"]
    assert result["endpoints_listed"] == 3 and result["endpoints_omitted"] == 0
    assert [login[1:] for login in smtp.handler.logins] == [(SMTP_USER, True)]

    [received] = smtp.handler.messages
    assert received.tls is True and received.authenticated is True
    assert received.mail_from == "certs@notify.test"
    assert received.rcpt_tos == ["admin@notify.test", "admin2@notify.test", "ops@notify.test"]
    message = received.message
    assert message["Subject"] == "[CRITICAL] certfleet: 2 critical, 1 warning of 120 endpoints"
    assert message["Subject"] == result["email"]["subject"]
    assert message["From"] == "Cert monitor <certs@notify.test>"
    assert message["To"] == "admin@notify.test, Second Admin <admin2@notify.test>" and message["Cc"] == "ops@notify.test"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"

    text = message.get_body(("plain",)).get_content()
    lines = text.splitlines()
    for line in ("  Endpoints: 120", "  OK:        117", "  Warning:   1", "  Critical:  2", "  Expired:   1", "  Expiring:  1"):
        assert line in lines
    critical = lines.index("* [CRITICAL] legacy<b> (legacy.example.test:8443) - expired 4 day(s) ago")
    assert lines[critical + 1:critical + 4] == [
        "    SNI: www.legacy.example.test    Failing checks: expiry, trust",
        "    - expiry: expired 4 days ago",
        "    - trust: no path to a trusted CA for /CN=<script>x</script>"]
    down = lines.index("* [CRITICAL] down (down.example.test:443) - no certificate read")
    assert lines[down + 1:down + 3] == ["    SNI: none    Failing checks: connect", "    - connect: connection refused"]
    assert critical < down < lines.index("* [WARNING] shop (192.0.2.10:443) - 21 day(s) left")  # worst first
    assert "ok-site" not in text
    assert "Full report: https://reports.notify.test/latest.html" in lines

    html_body = message.get_body(("html",)).get_content()
    assert "legacy&lt;b&gt; (legacy.example.test:8443)" in html_body and "<script>" not in html_body
    assert ">www.legacy.example.test</td>" in html_body and ">expiry, trust</td>" in html_body
    assert '<a href="https://reports.notify.test/latest.html">' in html_body


def test_email_wrong_password_fails_clearly(smtp, pki, notify):
    wrong = "Wrong-" + SMTP_PASSWORD
    result, out = notify(dict(scan_summary(), email=email_args(smtp, pki, password=wrong)))
    assert result["failed"] is True
    assert f"the SMTP server 127.0.0.1:{smtp.port} rejected the username 'monitor' or its password" in result["msg"]
    assert "535" in result["msg"]
    assert wrong not in out and SMTP_PASSWORD not in out and "Traceback" not in out
    assert result["email"]["sent"] is False and smtp.handler.messages == []


def test_email_tls_verification_fails_without_ca_path(smtp, pki, notify):
    result, out = notify(dict(scan_summary(), email=email_args(smtp, pki, ca_path=None)))
    assert_no_secrets(out)
    assert result["failed"] is True
    assert f"email: certificate verification of the SMTP server 127.0.0.1:{smtp.port} failed" in result["msg"]
    assert "certificate verify failed" in result["msg"] or "unable to get local issuer certificate" in result["msg"]
    assert "email.ca_path" in result["msg"]
    assert smtp.handler.messages == [] and smtp.handler.logins == []  # nothing, not even the login, went out


def test_email_tls_verification_fails_with_the_wrong_ca(smtp, pki, other_pki, notify):
    result, _out = notify(dict(scan_summary(), email=email_args(smtp, pki, ca_path=other_pki.ca_path)))
    assert result["failed"] is True and "certificate verification" in result["msg"]
    assert smtp.handler.messages == []


def test_email_validate_certs_false_sends_with_a_warning(smtp, pki, notify):
    result, out = notify(dict(scan_summary(), email=email_args(smtp, pki, ca_path=None, validate_certs=False)))
    assert_no_secrets(out)
    assert result.get("failed") is not True, result
    assert result["email"]["sent"] is True and len(smtp.handler.messages) == 1
    assert warning_texts(result) == ["email.validate_certs is false: the SMTP server's certificate is not verified"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")  # aiosmtpd: implicit TLS is TLS
def test_email_implicit_tls(pki, notify):
    peer = start_smtp(pki, mode="ssl")
    try:
        result, out = notify(dict(scan_summary(), email=email_args(peer, pki, security="ssl")))
    finally:
        peer.stop()
    assert_no_secrets(out)
    assert result.get("failed") is not True, result
    [received] = peer.handler.messages
    assert received.tls is True and received.authenticated is True


def test_email_starttls_not_offered_sends_nothing(notify, pki):
    peer = start_smtp(None, mode="plain", auth=False)
    try:
        result, out = notify(dict(scan_summary(), email=email_args(peer, pki)))
    finally:
        peer.stop()
    assert_no_secrets(out)
    assert result["failed"] is True
    assert f"the SMTP server 127.0.0.1:{peer.port} does not offer STARTTLS" in result["msg"]
    assert peer.handler.messages == []


def test_email_connection_refused(notify, pki):
    port = free_port()
    result, out = notify(dict(scan_summary(), email={"host": "127.0.0.1", "port": port, "from": "certs@notify.test",
                                                     "to": ["admin@notify.test"], "username": SMTP_USER,
                                                     "password": SMTP_PASSWORD, "ca_path": pki.ca_path, "timeout": 5}))
    assert_no_secrets(out)
    assert result["failed"] is True
    assert result["msg"] == f"email: connection to the SMTP server 127.0.0.1:{port} refused (no SMTP server listens there)"


def test_email_auth_required_but_no_username(smtp, pki, notify):
    args = email_args(smtp, pki)
    del args["username"], args["password"]
    result, _out = notify(dict(scan_summary(), email=args))
    assert result["failed"] is True
    assert "refused the sender 'certs@notify.test'" in result["msg"] and "530" in result["msg"]
    assert smtp.handler.messages == []


def test_email_refused_recipient_is_a_warning(smtp, pki, notify):
    result, _out = notify(dict(scan_summary(), email=email_args(smtp, pki, to=["admin@notify.test", f"{REFUSED_PREFIX}notify.test"],
                                                                cc=[])))
    assert result.get("failed") is not True, result
    assert result["email"]["recipients"] == ["admin@notify.test"]
    assert list(result["email"]["refused"]) == [f"{REFUSED_PREFIX}notify.test"]
    assert "550" in result["email"]["refused"][f"{REFUSED_PREFIX}notify.test"]
    [warning] = warning_texts(result)
    assert warning.startswith(f"email: the SMTP server refused some recipients: {REFUSED_PREFIX}notify.test: 550")
    assert smtp.handler.messages[0].rcpt_tos == ["admin@notify.test"]


def test_check_mode_sends_nothing_and_shows_what_would_be_sent(smtp, pki, http_peer, notify):
    result, out = notify(dict(scan_summary(), _ansible_check_mode=True, email=email_args(smtp, pki),
                              webhook={"url": http_peer.url(), "headers": {"Authorization": f"Bearer {TOKEN}"}}))
    assert_no_secrets(out)
    assert result["changed"] is True and result.get("failed") is not True
    assert result["email"]["sent"] is False and result["webhook"]["sent"] is False
    assert result["email"]["subject"] == "[CRITICAL] certfleet: 2 critical, 1 warning of 120 endpoints"
    assert "    SNI: www.legacy.example.test    Failing checks: expiry, trust" in result["email"]["body"]
    assert [item["name"] for item in result["webhook"]["payload"]["endpoints"]] == ["legacy<b>", "down", "shop"]
    assert smtp.handler.messages == [] and smtp.handler.logins == [] and http_peer.requests == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_only_on_problems_skips_a_clean_scan(smtp, pki, notify, check_mode):
    clean = {"total": 3, "ok": 3, "warning": 0, "critical": 0}
    result, _out = notify({"summary": clean, "only_on_problems": True, "_ansible_check_mode": check_mode,
                           "email": email_args(smtp, pki)})
    assert result["skipped"] is True and result["changed"] is False and result["email"]["sent"] is False
    assert "nothing sent" in result["msg"]
    assert smtp.handler.messages == []


def test_ok_summary_is_sent_without_only_on_problems(smtp, pki, notify):
    result, _out = notify({"summary": {"total": 3, "ok": 3, "warning": 0, "critical": 0}, "email": email_args(smtp, pki)})
    assert result["email"]["sent"] is True
    message = smtp.handler.messages[0].message
    assert message["Subject"] == "[OK] certfleet: all 3 endpoints ok"
    assert "No endpoint has a problem." in message.get_body(("plain",)).get_content()


# --- webhook -------------------------------------------------------------------------------------

def test_webhook_post_has_the_json_and_headers(http_peer, notify):
    result, out = notify(dict(scan_summary(), title="Daily TLS", report_url="https://reports.notify.test/x.html",
                              webhook={"url": http_peer.url("/hook?team=tls"),
                                       "headers": {"Authorization": f"Bearer {TOKEN}", "X-Source": "certfleet"}}))
    assert_no_secrets(out)
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["webhook"] == {"sent": True, "status_code": 200}
    [request] = http_peer.requests
    assert (request.method, request.path) == ("POST", "/hook?team=tls")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}" and request.headers["X-Source"] == "certfleet"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    payload = request.json
    assert payload["title"] == "Daily TLS" and payload["status"] == "critical"
    assert payload["summary"] == dict(scan_summary()["summary"])
    assert payload["endpoints_omitted"] == 0 and payload["report_url"] == "https://reports.notify.test/x.html"
    assert payload["generated_at"].endswith("Z")
    assert payload["endpoints"][0] == {
        "name": "legacy<b>", "host": "legacy.example.test", "port": 8443, "server_name": "www.legacy.example.test",
        "status": "critical", "outcome": "ok", "days_left": -4, "failing_checks": ["expiry", "trust"],
        "problems": ["expiry: expired 4 days ago", "trust: no path to a trusted CA for /CN=<script>x</script>"]}
    assert [item["name"] for item in payload["endpoints"]] == ["legacy<b>", "down", "shop"]


def test_webhook_http_500_fails_clearly(http_peer, notify):
    result, out = notify(dict(scan_summary(), webhook={"url": http_peer.url("/status/500"),
                                                       "headers": {"Authorization": f"Bearer {TOKEN}"}}))
    assert_no_secrets(out)
    assert result["failed"] is True and result["webhook"]["sent"] is False
    port = http_peer.server.server_address[1]
    assert result["msg"].startswith(f"webhook: the webhook receiver http://127.0.0.1:{port} answered HTTP 500 "
                                    "Internal Server Error: internal failure while storing the event")
    assert "/status/500" not in result["msg"]  # the path of a webhook URL is often its secret
    assert len(http_peer.requests) == 1


@pytest.mark.parametrize("path, code", [("/status/404", 404), ("/status/401", 401), ("/redirect", 302)])
def test_webhook_other_failures(http_peer, notify, path, code):
    result, _out = notify(dict(scan_summary(), webhook={"url": http_peer.url(path)}))
    assert result["failed"] is True and f"answered HTTP {code}" in result["msg"]
    if code == 302:
        assert "redirects are not followed" in result["msg"]


def test_webhook_https_verified_with_ca_path_and_refused_without(pki, notify):
    peer = start_http(pki)
    try:
        trusted, _out = notify(dict(scan_summary(), webhook={"url": peer.url(), "ca_path": pki.ca_path}))
        untrusted, _out = notify(dict(scan_summary(), webhook={"url": peer.url()}))
    finally:
        peer.stop()
    assert trusted.get("failed") is not True, trusted
    assert trusted["webhook"]["status_code"] == 200
    assert untrusted["failed"] is True
    assert f"webhook: certificate verification of the webhook receiver https://127.0.0.1:{peer.server.server_address[1]} failed" \
        in untrusted["msg"] and "webhook.ca_path" in untrusted["msg"]
    assert len(peer.requests) == 1  # only the verified one got through


def test_webhook_connection_refused(notify):
    port = free_port()
    result, _out = notify(dict(scan_summary(), webhook={"url": f"http://127.0.0.1:{port}/hook", "timeout": 5}))
    assert result["failed"] is True
    assert result["msg"] == f"webhook: connection to the webhook receiver http://127.0.0.1:{port} refused (nothing listens there)"


def test_both_channels_one_fails(smtp, pki, http_peer, notify):
    result, out = notify(dict(scan_summary(), email=email_args(smtp, pki, password="bad-password"),
                              webhook={"url": http_peer.url(), "headers": {"X-Auth-Token": TOKEN}}))
    assert_no_secrets(out)
    assert result["failed"] is True and "rejected the username" in result["msg"]
    assert result["email"]["sent"] is False and result["webhook"]["sent"] is True
    assert http_peer.requests[0].headers["X-Auth-Token"] == TOKEN


# --- the whole path: ansible-playbook, a real scan, a real mail ----------------------------------

def test_playbook_scan_then_notify(tmp_path, ansible_playbook, pki, smtp, http_peer):
    (tmp_path / "range").mkdir()
    scan_range = start_range(str(tmp_path / "range"))
    try:
        names = ["healthy", "expired", "expiring_20_days", "wrong_host", "closed_port"]
        targets = []
        for name in names:
            host, port = scan_range.endpoints[name]
            targets.append({"name": name, "host": host, "port": port, "server_name": scan_range.scenario(name).server_name})
        playbook = tmp_path / "notify.yml"
        playbook.write_text(yaml.safe_dump([{
            "name": "Scan and notify", "hosts": "localhost", "connection": "local", "gather_facts": False,
            "vars": {"smtp_password": SMTP_PASSWORD, "webhook_token": TOKEN},
            "tasks": [
                {"name": "Scan", "register": "scan", "certfleet.tls.cert_scan": {
                    "targets": targets, "timeout": 2, "return_endpoints": "problems",
                    "trusted_ca_sets": {"default": {"system": False, "certificates": [scan_range.trust_path]}}}},
                {"name": "Notify", "register": "sent", "certfleet.tls.cert_notify": {
                    "summary": "{{ scan.summary }}", "endpoints": "{{ scan.endpoints }}", "only_on_problems": True,
                    "email": email_args(smtp, pki, password="{{ smtp_password }}", cc=[]),
                    "webhook": {"url": http_peer.url(), "headers": {"Authorization": "Bearer {{ webhook_token }}"}}}},
                {"name": "Keep the results", "ansible.builtin.copy": {
                    "content": "{{ {'scan': scan, 'sent': sent} | to_json }}", "dest": str(tmp_path / "registered.json"),
                    "mode": "0600"}},
            ]}], sort_keys=False))
        run = ansible_playbook([str(playbook), "-vvv"], cwd=tmp_path)
    finally:
        scan_range.stop()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert recap(run.stdout)["failed"] == 0
    assert SMTP_PASSWORD not in output and TOKEN not in output and "Traceback" not in output  # -vvv shows the invocation
    registered = json.loads((tmp_path / "registered.json").read_text())
    assert SMTP_PASSWORD not in json.dumps(registered["sent"]) and TOKEN not in json.dumps(registered["sent"])
    summary = registered["scan"]["summary"]
    assert (summary["total"], summary["ok"], summary["warning"], summary["critical"]) == (5, 1, 1, 3)

    [received] = smtp.handler.messages
    assert received.authenticated and received.tls
    assert received.rcpt_tos == ["admin@notify.test", "admin2@notify.test"]
    message = received.message
    assert message["Subject"] == "[CRITICAL] certfleet: 3 critical, 1 warning of 5 endpoints"
    lines = message.get_body(("plain",)).get_content().splitlines()
    scanned = {item["name"]: item for item in registered["scan"]["endpoints"]}
    host, port = scan_range.endpoints["expired"]
    assert scanned["expired"]["days_left"] < 0
    expired = lines.index(f"* [CRITICAL] expired ({host}:{port}) - expired {-scanned['expired']['days_left']} day(s) ago")
    assert lines[expired + 1] == f"    SNI: {scan_range.scenario('expired').server_name}    Failing checks: expiry"
    assert lines[expired + 2].startswith("    - expiry: ")
    host, port = scan_range.endpoints["closed_port"]
    assert f"* [CRITICAL] closed_port ({host}:{port}) - no certificate read" in lines
    headings = [line for line in lines if line.startswith("* ")]
    assert [line.split("]")[0] for line in headings] == ["* [CRITICAL"] * 3 + ["* [WARNING"]
    assert headings[0].startswith("* [CRITICAL] expired ")  # fewest days left first
    assert not any("healthy" in line for line in lines)

    [request] = http_peer.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    payload = request.json
    assert payload["status"] == "critical" and payload["summary"]["total"] == 5
    assert {item["name"] for item in payload["endpoints"]} == {"expired", "expiring_20_days", "wrong_host", "closed_port"}
    assert registered["sent"]["email"]["sent"] is True and registered["sent"]["webhook"]["status_code"] == 200
