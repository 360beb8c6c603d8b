# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_notify: subjects, bodies, payloads and messages built from scan summaries (pure functions, tables)."""

from __future__ import annotations

import datetime
import email
import email.policy
import json

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._report import notify as _notify
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

NOW = datetime.datetime(2026, 12, 3, 6, 30, 0, tzinfo=datetime.timezone.utc)
GENERATED = "2026-12-03T06:30:00Z"


def counts(total=10, ok=10, warning=0, critical=0, expired=0, expiring=0) -> dict:
    return {"total": total, "ok": ok, "warning": warning, "critical": critical, "expired": expired, "expiring": expiring}


def endpoint(name, status, days_left=None, problems=None, host=None, port=443) -> dict:
    return {"name": name, "host": host or f"{name}.example.test", "port": port, "status": status, "days_left": days_left,
            "problems": problems if problems is not None else [f"expiry: {name} problem"]}


HOSTILE = "evil</td><script>alert(1)</script>\r\nBcc: victim@example.test\u202e"


# --- summary and subject -----------------------------------------------------------------

@pytest.mark.parametrize("summary, expected", [
    (counts(), counts()),
    ({"total": 3, "ok": 1, "warning": 1, "critical": 1}, counts(3, 1, 1, 1)),
    ({"total": "3", "ok": 3, "warning": 0, "critical": 0, "expired": None}, counts(3, 3)),
    (dict(counts(), by_outcome={"ok": 10}, worst=[]), counts()),
])
def test_normalize_summary(summary, expected):
    assert _notify.normalize_summary(summary) == expected


@pytest.mark.parametrize("summary, message", [
    ({"total": 1, "ok": 1}, "summary: missing warning, critical"),
    (dict(counts(), critical=-1), "summary.critical: -1 is not a non-negative whole number"),
    (dict(counts(), warning="many"), "summary.warning: 'many' is not"),
    (dict(counts(), ok=True), "summary.ok: True is not"),
    (dict(counts(), expired=1.5), "summary.expired: 1.5 is not"),
    ("total=3", "summary must be a dict"),
])
def test_normalize_summary_rejects(summary, message):
    with pytest.raises(CertfleetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _notify.normalize_summary(summary)


@pytest.mark.parametrize("values, status, problems, subject", [
    (counts(120, 115, 2, 3), "critical", True, "[CRITICAL] certfleet: 3 critical, 2 warning of 120 endpoints"),
    (counts(120, 118, 2, 0), "warning", True, "[WARNING] certfleet: 0 critical, 2 warning of 120 endpoints"),
    (counts(5, 4, 0, 1), "critical", True, "[CRITICAL] certfleet: 1 critical, 0 warning of 5 endpoints"),
    (counts(120, 120), "ok", False, "[OK] certfleet: all 120 endpoints ok"),
    (counts(1, 1), "ok", False, "[OK] certfleet: all 1 endpoint ok"),
    (counts(0, 0), "ok", False, "[OK] certfleet: all 0 endpoints ok"),
])
def test_status_and_subject(values, status, problems, subject):
    assert _notify.overall_status(values) == status
    assert _notify.has_problems(values) is problems
    assert _notify.build_subject(values) == subject


# --- endpoints: filter, worst first, cap ---------------------------------------------------

WORST_FIRST_CASES = [
    # given order -> expected names
    ([endpoint("w20", "warning", 20), endpoint("c10", "critical", 10), endpoint("ok", "ok", 300)], ["c10", "w20"], 0),
    ([endpoint("c10", "critical", 10), endpoint("exp", "critical", -3), endpoint("down", "critical", None)],
     ["exp", "c10", "down"], 0),
    ([endpoint("w25", "warning", 25), endpoint("w5", "warning", 5), endpoint("down", "critical")], ["down", "w5", "w25"], 0),
    # ties keep the given order (stable)
    ([endpoint("a", "critical"), endpoint("b", "critical"), endpoint("c", "critical")], ["a", "b", "c"], 0),
    ([endpoint("ok1", "ok", 90), endpoint("ok2", "OK", 80)], [], 0),
    ([], [], 0),
]


@pytest.mark.parametrize("given, names, omitted", WORST_FIRST_CASES)
def test_select_endpoints_worst_first(given, names, omitted):
    listed, left_out = _notify.select_endpoints(given, max_items=50)
    assert [item["name"] for item in listed] == names
    assert left_out == omitted


@pytest.mark.parametrize("count, max_items, listed, omitted", [(60, 50, 50, 10), (10, 50, 10, 0), (5, 0, 0, 5), (3, 3, 3, 0)])
def test_select_endpoints_cap(count, max_items, listed, omitted):
    given = [endpoint(f"e{index}", "critical", index) for index in range(count)]
    selected, left_out = _notify.select_endpoints(given, max_items=max_items)
    assert (len(selected), left_out) == (listed, omitted)
    assert [item["days_left"] for item in selected] == list(range(listed))


@pytest.mark.parametrize("given, message", [
    ("web1", "endpoints must be a list"),
    (["web1"], r"endpoints\[0\] must be a dict"),
    ([{"name": "x", "status": "broken"}], r"endpoints\[0\].status: 'broken' is not one of ok, warning, critical"),
    ([{"name": "x"}], r"endpoints\[0\].status: None"),
])
def test_select_endpoints_rejects(given, message):
    with pytest.raises(CertfleetError, match=message):
        _notify.select_endpoints(given, max_items=5)


@pytest.mark.parametrize("item, label", [
    ({"name": "shop", "host": "192.0.2.10", "port": 443}, "shop (192.0.2.10:443)"),
    ({"host": "www.example.test", "port": 8443}, "www.example.test:8443"),
    ({"name": "www.example.test", "host": "www.example.test", "port": 443}, "www.example.test:443"),
    ({"host": "2001:db8::10", "port": 443}, "[2001:db8::10]:443"),
    ({"name": "only-a-name"}, "only-a-name"),
    ({}, "(unnamed endpoint)"),
    ({"name": "a\nb\u202ec", "host": "h", "port": 1}, "a?b?c (h:1)"),
])
def test_endpoint_label(item, label):
    assert _notify.endpoint_label(item) == label


@pytest.mark.parametrize("value, limit, expected", [
    ("plain", 200, "plain"),
    ("line\r\nbreak\ttab\x00nul", 200, "line??break?tab?nul"),
    ("rtl\u202eoverride\u200bzero-width", 200, "rtl?override?zero-width"),
    ("x" * 10, 5, "xxxx\u2026"),
    (None, 200, ""),
    (42, 200, "42"),
    ("日本語 OK", 200, "日本語 OK"),
])
def test_clean(value, limit, expected):
    assert _notify.clean(value, limit=limit) == expected


@pytest.mark.parametrize("name, secret", [
    ("Authorization", True), ("authorization", True), ("Proxy-Authorization", True), ("X-Api-Key", True),
    ("X-Auth-Token", True), ("X-Gitlab-Token", True), ("X-Webhook-Secret", True), ("api_key", True),
    ("Content-Type", False), ("X-Source", False), ("User-Agent", False),
])
def test_is_secret_header(name, secret):
    assert _notify.is_secret_header(name) is secret


@pytest.mark.parametrize("text, secrets, expected", [
    ("user bob password hunter2 rejected", ["hunter2"], "user bob password ******** rejected"),
    ("nothing here", ["hunter2", None, ""], "nothing here"),
    ("Bearer abc and abc", ["Bearer abc", "abc"], "******** and ********"),
])
def test_redact(text, secrets, expected):
    assert _notify.redact(text, secrets) == expected


# --- bodies ------------------------------------------------------------------------------

def content(**extra) -> dict:
    listed, omitted = _notify.select_endpoints(extra.pop("endpoints", [
        endpoint("web1", "warning", 20, ["expiry: 20 days left (warning below 30)"]),
        endpoint("web2", "critical", -2, ["expiry: expired 2 days ago", "trust: no path to a trusted CA"]),
    ]), max_items=extra.pop("max_items", 50))
    values = {"title": "Fleet TLS", "counts": counts(12, 10, 1, 1, 1, 1), "endpoints": listed, "omitted": omitted,
              "report_url": "https://reports.example.test/latest.html", "generated_at": GENERATED}
    values.update(extra)
    return values


def test_text_body_counts_endpoints_and_link():
    text = _notify.build_text_body(**content())
    assert text.startswith("Fleet TLS\n=========\n")
    assert "Status: CRITICAL    Generated: 2026-12-03T06:30:00Z" in text
    for line in ("Endpoints: 12", "OK:        10", "Warning:   1", "Critical:  1", "Expired:   1", "Expiring:  1"):
        assert line in text
    assert text.index("web2") < text.index("web1")  # worst first
    assert "* [CRITICAL] web2 (web2.example.test:443) - expired 2 day(s) ago" in text
    assert "    - trust: no path to a trusted CA" in text
    assert "* [WARNING] web1 (web1.example.test:443) - 20 day(s) left" in text
    assert "Full report: https://reports.example.test/latest.html" in text


@pytest.mark.parametrize("extra, present, absent", [
    ({"endpoints": [], "counts": counts()}, ["No endpoint has a problem.", "Status: OK"], ["Problem endpoints"]),
    ({"endpoints": []}, ["The problem endpoints are listed in the full report."], ["No endpoint has a problem."]),
    ({"endpoints": [endpoint(f"e{i}", "critical", i) for i in range(7)], "max_items": 3},
     ["3 listed", "... and 4 more problem endpoint(s)"], ["e3 "]),
    ({"report_url": None}, [], ["Full report"]),
    ({"endpoints": [endpoint("many", "critical", 1, [f"p{i}" for i in range(14)])]}, ["    - p9", "... and 4 more"], ["p10"]),
])
def test_text_body_variants(extra, present, absent):
    text = _notify.build_text_body(**content(**extra))
    for snippet in present:
        assert snippet in text
    for snippet in absent:
        assert snippet not in text


def test_text_body_keeps_hostile_names_on_one_line():
    text = _notify.build_text_body(**content(endpoints=[endpoint(HOSTILE, "critical", 1, [HOSTILE])]))
    assert "\nBcc:" not in text and "\r" not in text and "\u202e" not in text
    assert "evil</td><script>alert(1)</script>??Bcc: victim@example.test?" in text


def test_html_body_escapes_everything_from_endpoints():
    body = _notify.build_html_body(**content(endpoints=[endpoint(HOSTILE, "critical", 1, [HOSTILE, '"><img src=x onerror=alert(1)>'])],
                                             title="<b>Fleet</b>"))
    assert "<script>" not in body and "<img" not in body and "</td><script>" not in body
    assert "evil&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;??Bcc: victim@example.test?" in body
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in body
    assert "<h1>&lt;b&gt;Fleet&lt;/b&gt;</h1>" in body
    assert body.count("<tr>") == 6 + 2  # six counts, header row, one endpoint


@pytest.mark.parametrize("url, link", [
    ("https://reports.example.test/a?b=1&c=2", '<a href="https://reports.example.test/a?b=1&amp;c=2">'),
    ("http://reports.example.test/x", '<a href="http://reports.example.test/x">'),
    ("javascript:alert(1)", None),
    ("file:///srv/reports/latest.html", None),
])
def test_html_report_link_only_for_http(url, link):
    body = _notify.build_html_body(**content(report_url=url))
    if link:
        assert link in body
    else:
        assert "<a " not in body and f"Full report: {url}" in body


def test_html_body_counts_and_order():
    body = _notify.build_html_body(**content())
    assert "<th " in body and ">12</td>" in body
    assert body.index("web2") < body.index("web1")
    assert "<li>trust: no path to a trusted CA</li>" in body
    assert body.startswith("<!DOCTYPE html>") and body.rstrip().endswith("</html>")


# --- webhook payload ---------------------------------------------------------------------

def test_webhook_payload():
    values = content()
    summary = dict(values["counts"], by_outcome={"ok": 11, "refused": 1}, worst=[{"name": "dropped"}], elapsed_seconds=1.5)
    payload = _notify.build_webhook_payload(summary=summary, **values)
    assert set(payload) == {"title", "status", "summary", "endpoints", "endpoints_omitted", "report_url", "generated_at"}
    assert payload["title"] == "Fleet TLS" and payload["status"] == "critical"
    assert payload["summary"] == dict(values["counts"], by_outcome={"ok": 11, "refused": 1}, elapsed_seconds=1.5)
    assert [item["name"] for item in payload["endpoints"]] == ["web2", "web1"]
    assert payload["endpoints"][0] == {"name": "web2", "host": "web2.example.test", "port": 443, "status": "critical",
                                       "days_left": -2, "problems": ["expiry: expired 2 days ago", "trust: no path to a trusted CA"],
                                       "failing_checks": ["expiry", "trust"]}
    assert payload["report_url"] == "https://reports.example.test/latest.html" and payload["generated_at"] == GENERATED
    assert json.loads(json.dumps(payload)) == payload


@pytest.mark.parametrize("extra, key, expected", [
    ({"endpoints": [dict(endpoint("x", "critical", 1), chain=[{"big": 1}], checks={}, subject="/CN=x")]},
     "endpoints", [{"name": "x", "host": "x.example.test", "port": 443, "status": "critical", "days_left": 1,
                    "problems": ["expiry: x problem"], "subject": "/CN=x", "failing_checks": ["expiry"]}]),
    ({"endpoints": [endpoint(f"e{i}", "warning", i) for i in range(5)], "max_items": 2}, "endpoints_omitted", 3),
    ({"report_url": None}, "report_url", None),
    ({"endpoints": [endpoint(HOSTILE, "critical", 1)]}, "endpoints",  # raw in JSON
     [dict(endpoint(HOSTILE, "critical", 1), failing_checks=["expiry"])]),
])
def test_webhook_payload_variants(extra, key, expected):
    values = content(**extra)
    payload = _notify.build_webhook_payload(summary=values["counts"], **values)
    assert payload[key] == expected


@pytest.mark.parametrize("url, message", [
    ("ftp://hooks.example.test/x", "must start with http:// or https://"),
    ("hooks.example.test/x", "must start with http:// or https://"),
    ("https:///path", "has no host name"),
    ("https://hooks.example.test:99999/x", "is not a valid URL"),
    ("http://hooks.example.test:0/x", "is not a valid URL"),
])
def test_validate_url(url, message):
    with pytest.raises(CertfleetError, match=message):
        _notify.validate_url(url)


@pytest.mark.parametrize("url, origin", [
    ("https://hooks.example.test/services/T000/B000/SECRET", "https://hooks.example.test:443"),
    ("http://127.0.0.1:8080/hook?token=abc", "http://127.0.0.1:8080"),
    ("https://user:pw@[2001:db8::1]:8443/x", "https://[2001:db8::1]:8443"),
])
def test_url_origin_hides_path_query_and_userinfo(url, origin):
    assert _notify.url_origin(url) == origin


# --- the email message -------------------------------------------------------------------

def message(**extra):
    values = content()
    args = {"from_address": "Cert monitor <certs@example.test>", "to": ["admin@example.test"], "cc": ["ops@example.test"],
            "subject": _notify.build_subject(values["counts"]), "text": _notify.build_text_body(**values),
            "html_body": _notify.build_html_body(**values), "attachments": [("report.csv", b"name,status\nweb2,critical\n", "text", "csv")]}
    args.update(extra)
    return _notify.build_message(**args)


def test_message_structure_round_trip():
    raw = message().as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["From"] == "Cert monitor <certs@example.test>"
    assert parsed["To"] == "admin@example.test" and parsed["Cc"] == "ops@example.test"
    assert parsed["Subject"] == "[CRITICAL] certfleet: 1 critical, 1 warning of 12 endpoints"
    assert parsed["Auto-Submitted"] == "auto-generated" and parsed["Message-ID"].endswith("@example.test>")
    assert parsed.get_content_type() == "multipart/mixed"
    assert "web2" in parsed.get_body(("plain",)).get_content()
    assert "<h1>Fleet TLS</h1>" in parsed.get_body(("html",)).get_content()
    attachments = list(parsed.iter_attachments())
    assert [(part.get_filename(), part.get_content_type(), part.get_payload(decode=True)) for part in attachments] == [
        ("report.csv", "text/csv", b"name,status\nweb2,critical\n")]


def test_message_without_attachments_is_alternative_and_utf8():
    values = content(title="証明書の監視")
    parsed = email.message_from_bytes(message(attachments=[], text=_notify.build_text_body(**values),
                                              html_body=_notify.build_html_body(**values)).as_bytes(), policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content_charset() == "utf-8"
    assert parsed.get_body(("plain",)).get_content().startswith("証明書の監視\n")


@pytest.mark.parametrize("extra, message_text", [
    ({"to": []}, "email.to: at least one recipient is needed"),
    ({"to": ["not-an-address"]}, "email.to: 'not-an-address' is not an email address"),
    ({"to": ["a@example.test\r\nBcc: x@example.test"]}, "email.to: an address must not contain line breaks"),
    ({"from_address": "nobody"}, "email.from_address: 'nobody' is not an email address"),
    ({"cc": ["@example.test"]}, "email.cc: '@example.test' is not an email address"),
    ({"subject": "hi\r\nBcc: x@example.test"}, "email.subject must be one line"),
])
def test_message_rejects(extra, message_text):
    with pytest.raises(CertfleetError, match=message_text):
        message(**extra)


@pytest.mark.parametrize("to, cc, expected", [
    (["A <a@example.test>"], [], ["a@example.test"]),
    (["a@example.test", "b@example.test"], ["a@example.test", "c@example.test"], ["a@example.test", "b@example.test", "c@example.test"]),
])
def test_recipients_of(to, cc, expected):
    assert _notify.recipients_of(to, cc) == expected


@pytest.mark.parametrize("name, content_type", [
    ("report.html", "text/html"), ("report.csv", "text/csv"), ("report.json", "application/json"),
    ("report.bin", "application/octet-stream"), ("report.csv.gz", "application/octet-stream"), ("README", "application/octet-stream"),
])
def test_read_attachments(tmp_path, name, content_type):
    path = tmp_path / name
    path.write_bytes(b"data")
    assert _notify.read_attachments([str(path)]) == [(name, b"data", *content_type.split("/"))]


@pytest.mark.parametrize("make, message_text", [
    (lambda tmp: str(tmp / "missing.csv"), "attachments: '.*missing.csv' does not exist"),
    (str, "is a directory, not a file"),
])
def test_read_attachments_rejects(tmp_path, make, message_text):
    with pytest.raises(CertfleetError, match=message_text):
        _notify.read_attachments([make(tmp_path)])


# --- prepare: the whole decision of one module call --------------------------------------

def params(**extra) -> dict:
    values = {"summary": dict(counts(3, 1, 1, 1), worst=[endpoint("w", "warning", 20), endpoint("c", "critical", 3)]),
              "endpoints": None, "max_items": 50, "title": _notify.DEFAULT_TITLE, "report_url": None, "attachments": [],
              "only_on_problems": False, "email": None, "webhook": None}
    values.update(extra)
    return values


EMAIL = {"host": "smtp.example.test", "port": None, "security": "starttls", "from_address": "certs@example.test",
         "to": ["admin@example.test"], "cc": [], "subject": None}


@pytest.mark.parametrize("extra, status, skipped, names", [
    ({}, "critical", False, ["c", "w"]),
    ({"endpoints": [endpoint("x", "warning", 1)]}, "critical", False, ["x"]),  # endpoints win over summary.worst
    ({"only_on_problems": True}, "critical", False, ["c", "w"]),
    ({"only_on_problems": True, "summary": counts(3, 3)}, "ok", True, []),
    ({"only_on_problems": False, "summary": counts(3, 3)}, "ok", False, []),
])
def test_prepare_decides(extra, status, skipped, names):
    plan = _notify.prepare(params(email=EMAIL, **extra), now=NOW)
    assert (plan["status"], plan["skipped"]) == (status, skipped)
    assert [item["name"] for item in plan["endpoints"]] == names


@pytest.mark.parametrize("security, port", [("starttls", 587), ("ssl", 465), ("none", 25)])
def test_prepare_default_ports(security, port):
    plan = _notify.prepare(params(email=dict(EMAIL, security=security)), now=NOW)
    assert plan["email"]["port"] == port and plan["email"]["security"] == security


def test_prepare_email_and_webhook():
    plan = _notify.prepare(params(email=dict(EMAIL, cc=["ops@example.test"], subject="Daily"),
                                  webhook={"url": "https://hooks.example.test/T/B/secret"}), now=NOW)
    assert plan["email"]["subject"] == "Daily" and plan["email"]["recipients"] == ["admin@example.test", "ops@example.test"]
    assert plan["email"]["message"]["Date"].startswith("Thu, 03 Dec 2026 06:30:00")
    assert plan["webhook"]["origin"] == "https://hooks.example.test:443"
    assert plan["webhook"]["payload"]["generated_at"] == GENERATED
    assert [item["name"] for item in plan["webhook"]["payload"]["endpoints"]] == ["c", "w"]


# --- cert_scan-shaped results: failing checks, SNI, counts without a summary ---------------

def scan_result(name, status, days_left, checks: dict, server_name=None, outcome="ok") -> dict:
    """An endpoint the way cert_scan returns it (checks by name, problems as 'check: message')."""
    return {"name": name, "host": f"{name}.example.test", "port": 443, "server_name": server_name, "outcome": outcome,
            "status": status, "days_left": days_left,
            "checks": {check: {"status": level, "message": f"{check} is {level}"} for check, level in checks.items()},
            "problems": [f"{check}: {check} is {level}" for check, level in checks.items() if level != "ok"]}


SCAN_RESULTS = [
    scan_result("healthy", "ok", 200, {"connect": "ok", "expiry": "ok", "trust": "ok"}, server_name="healthy.example.test"),
    scan_result("soon", "warning", 20, {"connect": "ok", "expiry": "warning", "trust": "ok"}, server_name="soon.example.test"),
    scan_result("old", "critical", -3, {"connect": "ok", "expiry": "critical", "trust": "critical", "hostname": "ok"},
                server_name="www.old.example.test"),
    scan_result("order", "warning", 90, {"connect": "ok", "expiry": "ok", "chain_order": "warning"}),
    scan_result("closed", "critical", None, {"connect": "critical"}, outcome="refused"),
]


@pytest.mark.parametrize("item, names", [
    (SCAN_RESULTS[0], []),
    (SCAN_RESULTS[2], ["expiry", "trust"]),
    (SCAN_RESULTS[4], ["connect"]),
    # no checks dict (cert_report's worst): the 'check:' prefixes, once each, free text ignored
    ({"problems": ["expiry: expired", "trust: no path", "expiry: again", "Something odd: here", "no colon"]}, ["expiry", "trust"]),
    ({"problems": "key_size: 1024 bits"}, ["key_size"]),
    ({"checks": {}, "problems": ["signature: SHA-1"]}, ["signature"]),
    ({}, []),
])
def test_failing_checks(item, names):
    assert _notify.failing_checks(item) == names


@pytest.mark.parametrize("item, text", [
    ({"server_name": "www.example.test"}, "www.example.test"),
    ({"server_name": None}, "none"),
    ({}, "none"),
    ({"server_name": "evil\r\nBcc: x"}, "evil??Bcc: x"),
])
def test_sni_text(item, text):
    assert _notify.sni_text(item) == text


def test_summary_from_endpoints_counts_like_cert_scan():
    # The same endpoints through cert_scan's own Summary: the notification must not count differently.
    from ansible_collections.certfleet.tls.plugins.module_utils._scan.checks import Summary  # pylint: disable=import-outside-toplevel
    reference = Summary()
    for item in SCAN_RESULTS:
        reference.add(item)
    expected = {key: reference.as_dict()[key] for key in _notify.COUNT_KEYS}
    assert _notify.summary_from_endpoints(SCAN_RESULTS) == expected == counts(5, 1, 2, 2, expired=1, expiring=1)


@pytest.mark.parametrize("given, message", [
    ("x", "endpoints must be a list"),
    ([{"name": "x", "status": "bad"}], r"endpoints\[0\].status: 'bad'"),
])
def test_summary_from_endpoints_rejects(given, message):
    with pytest.raises(CertfleetError, match=message):
        _notify.summary_from_endpoints(given)


def test_text_body_lists_sni_days_and_failing_checks_of_scan_results():
    listed, omitted = _notify.select_endpoints(SCAN_RESULTS, max_items=50)
    text = _notify.build_text_body(title="Fleet", counts=_notify.summary_from_endpoints(SCAN_RESULTS), endpoints=listed,
                                   omitted=omitted, generated_at=GENERATED)
    lines = text.splitlines()
    first = lines.index("* [CRITICAL] old (old.example.test:443) - expired 3 day(s) ago")
    assert lines[first + 1] == "    SNI: www.old.example.test    Failing checks: expiry, trust"
    assert lines[first + 2:first + 4] == ["    - expiry: expiry is critical", "    - trust: trust is critical"]
    closed = lines.index("* [CRITICAL] closed (closed.example.test:443) - no certificate read")
    assert lines[closed + 1] == "    SNI: none    Failing checks: connect"
    assert [line.split(" - ")[0] for line in lines if line.startswith("* ")] == [
        "* [CRITICAL] old (old.example.test:443)", "* [CRITICAL] closed (closed.example.test:443)",
        "* [WARNING] soon (soon.example.test:443)", "* [WARNING] order (order.example.test:443)"]
    assert "healthy" not in text


def test_html_body_has_sni_and_failing_checks_columns():
    listed, _omitted = _notify.select_endpoints(SCAN_RESULTS, max_items=50)
    body = _notify.build_html_body(title="Fleet", counts=_notify.summary_from_endpoints(SCAN_RESULTS), endpoints=listed,
                                   generated_at=GENERATED)
    assert ">SNI</th>" in body and ">Failing checks</th>" in body
    assert ">www.old.example.test</td>" in body and ">expiry, trust</td>" in body and ">chain_order</td>" in body


def test_message_parts_are_quoted_printable_ascii_on_the_wire():
    values = content(title="証明書の監視")
    raw = message(attachments=[], text=_notify.build_text_body(**values), html_body=_notify.build_html_body(**values)).as_bytes()
    raw.decode("ascii")  # no 8bit data: servers without 8BITMIME take it too
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert [part["Content-Transfer-Encoding"] for part in parsed.iter_parts()] == ["quoted-printable", "quoted-printable"]
    assert parsed.get_body(("plain",)).get_content().startswith("証明書の監視\n")


@pytest.mark.parametrize("extra, total, names", [
    ({"summary": None, "endpoints": SCAN_RESULTS}, 5, ["old", "closed", "soon", "order"]),
    ({"endpoints": SCAN_RESULTS}, 3, ["old", "closed", "soon", "order"]),  # a given summary wins for the counts
])
def test_prepare_counts_from_endpoints_when_no_summary(extra, total, names):
    plan = _notify.prepare(params(email=EMAIL, **extra), now=NOW)
    assert plan["counts"]["total"] == total and plan["status"] == "critical"
    assert [item["name"] for item in plan["endpoints"]] == names


def test_prepare_needs_summary_or_endpoints():
    with pytest.raises(CertfleetError, match="one of summary and endpoints is needed"):
        _notify.prepare(params(email=EMAIL, summary=None), now=NOW)


def test_prepare_check_mode_view_has_no_secrets():
    plan = _notify.prepare(params(email=dict(EMAIL, username="u", password="Secret-Pw-1"),
                                  webhook={"url": "https://hooks.example.test/T/B/secret", "headers": {"Authorization": "Bearer tok-123"}}),
                           now=NOW)
    shown = json.dumps({"payload": plan["webhook"]["payload"], "origin": plan["webhook"]["origin"],
                        "text": plan["email"]["message"].as_string()})
    for secret in ("Secret-Pw-1", "tok-123", "/T/B/secret"):
        assert secret not in shown
