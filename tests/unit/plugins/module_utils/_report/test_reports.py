# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_reports: ordering, counts, every format's content and escaping, JSON lines errors, idempotence (pure functions)."""

from __future__ import annotations

import base64
import copy
import csv
import datetime
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._scan import checks as _endpoint_checks

from ansible_collections.certfleet.tls.plugins.module_utils._report import reports as _reports
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils.report_samples import HOSTILE_SUBJECT, endpoint, fleet

GENERATED = "2026-12-04T09:00:00Z"
LATER = "2026-12-05T09:00:00Z"
WORST_FIRST = ["expired", "soon", "untrusted", "closed", "expiring", "order", "healthy2", "healthy"]
# One sample line of the Prometheus text format 0.0.4: name, optional labels with escaped values, an integer value.
PROM_SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:\\[\\"n]|[^"\\\n])*"'
                         r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:\\[\\"n]|[^"\\\n])*")*\})? -?[0-9]+$')


def endpoint_set(items=None) -> _reports.EndpointSet:
    return _reports.EndpointSet(results=fleet() if items is None else items)


def rendered(fmt: str, items=None, summary=None, **options) -> str:
    endpoints = endpoint_set(items)
    summary = summary or _reports.report_summary(endpoints.counts.as_dict())
    options.setdefault("title", _reports.DEFAULT_TITLE)
    options.setdefault("generated_at", GENERATED)
    return _reports.render(fmt, endpoints, summary, **options)


def write_lines(path, lines) -> str:
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def epoch(text: str) -> int:
    return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


# --- order and counts ---------------------------------------------------------------------

def test_worst_first_critical_warning_ok_then_fewest_days_unknown_last():
    assert [item["name"] for item in endpoint_set()] == WORST_FIRST


def test_ties_ordered_by_name_host_port():
    items = [endpoint("b", port=2, index=0), endpoint("a", port=9, index=1), endpoint("b", port=1, index=2),
             endpoint("a", host="192.0.2.1", port=9, index=3)]
    assert [(item["name"], item["host"], item["port"]) for item in endpoint_set(items)] == [
        ("a", "192.0.2.1", 9), ("a", "192.0.2.10", 9), ("b", "192.0.2.10", 1), ("b", "192.0.2.10", 2)]


def test_iterates_more_than_once_and_merges_results_with_a_file(tmp_path):
    items = fleet()
    path = write_lines(tmp_path / "scan.jsonl", [json.dumps(item) for item in items[:4]])
    endpoints = _reports.EndpointSet(results=items[4:], results_path=path)
    first = [item["name"] for item in endpoints]
    assert first == WORST_FIRST and [item["name"] for item in endpoints] == first and len(endpoints) == 8


def test_counts_follow_the_same_rules_as_cert_scan_summary():
    scan_summary = _endpoint_checks.Summary()
    for item in fleet():
        scan_summary.add(item)
    counts = endpoint_set().counts.as_dict()
    assert counts == scan_summary.as_dict()
    assert {key: counts[key] for key in _reports.COUNT_KEYS} == {
        "total": 8, "ok": 2, "warning": 2, "critical": 4, "expired": 1, "expiring": 2}
    assert counts["by_outcome"] == {"ok": 7, "refused": 1}
    assert counts["by_check"]["expiry"] == {"warning": 1, "critical": 2} and counts["by_check"]["trust"] == {"warning": 0, "critical": 1}


def test_summary_computed_when_none_given():
    summary = _reports.report_summary(endpoint_set().counts.as_dict())
    assert (summary["total"], summary["critical"], summary["listed"]) == (8, 4, 8)


def test_summary_given_wins_timing_and_derived_keys_dropped():
    counts = endpoint_set().counts.as_dict()
    given = {"total": 1000, "ok": 990, "warning": 4, "critical": 6, "expired": 2, "expiring": 3, "backend": "native",
             "elapsed_seconds": 1.9, "endpoints_per_second": 526.3, "listed": 3, "worst": [{"name": "stale"}]}
    summary = _reports.report_summary(counts, given)
    assert (summary["total"], summary["ok"], summary["critical"], summary["backend"]) == (1000, 990, 6, "native")
    assert summary["listed"] == 8, "listed is always what the results hold"
    assert not {"elapsed_seconds", "endpoints_per_second", "worst"} & set(summary)


@pytest.mark.parametrize("given, message", [
    ({"total": 5}, "summary: total is 5, but the results hold 8"),
    ({"critical": 1}, "summary: critical is 1, but the results hold 4"),
    ({"ok": -1}, "summary: ok must be a non-negative integer, not -1"),
    ({"warning": True}, "summary: warning must be a non-negative integer, not True"),
    ({"total": "many"}, "summary: total must be a non-negative integer, not 'many'"),
])
def test_summary_that_cannot_belong_to_these_results(given, message):
    with pytest.raises(CertfleetError, match=re.escape(message)):
        _reports.report_summary(endpoint_set().counts.as_dict(), given)


def test_worst_endpoints_only_problems_worst_first_limited():
    worst = _reports.worst_endpoints(endpoint_set(), limit=5)
    assert [item["name"] for item in worst] == WORST_FIRST[:5]
    assert worst[0]["problems"] == ["expiry: expired on 2026-11-28T00:00:00Z (5 day(s) ago)"] and worst[0]["days_left"] == -5
    assert [item["name"] for item in _reports.worst_endpoints(endpoint_set())] == WORST_FIRST[:6]
    assert _reports.worst_endpoints(endpoint_set([endpoint("fine")])) == []


@pytest.mark.parametrize("item, message", [
    ("text", "results[0]: an endpoint result must be a JSON object (dict), not str"),
    ({"host": "a"}, "results[0]: status must be one of ok, warning, critical, not None"),
    ({"status": "bad"}, "results[0]: status must be one of ok, warning, critical, not 'bad'"),
    ({"status": "ok", "port": "443"}, "results[0]: port must be an integer, not '443'"),
    ({"status": "ok", "days_left": 1.5}, "results[0]: days_left must be an integer or null, not 1.5"),
    ({"status": "ok", "problems": "x"}, "results[0]: problems must be a list of strings, not str"),
    ({"status": "ok", "checks": []}, "results[0]: checks must be a dict of check results, not list"),
    ({"status": "ok", "not_after": "soon"}, "results[0]: not_after: 'soon' is not an ISO 8601 date and time"),
])
def test_bad_endpoint_results_name_where(item, message):
    with pytest.raises(CertfleetError, match=re.escape(message)):
        _reports.EndpointSet(results=[item])


# --- files: JSON lines and JSON documents -------------------------------------------------

def test_json_lines_blank_lines_skipped(tmp_path):
    items = fleet()
    path = write_lines(tmp_path / "scan.jsonl", [json.dumps(items[0]), "", "   ", *map(json.dumps, items[1:])])
    endpoints = _reports.EndpointSet(results_path=path)
    assert [item["name"] for item in endpoints] == WORST_FIRST
    assert endpoints.counts.as_dict()["total"] == 8 and endpoints.file_summary is None


@pytest.mark.parametrize("bad_line, message", [
    ('{"status": "ok", "name": "cut', "line 3 is not JSON"),
    ("[1, 2]", "line 3: an endpoint result must be a JSON object (dict), not list"),
    ('{"name": "x"}', "line 3: status must be one of ok, warning, critical, not None"),
    ('{"status": "ok", "not_before": "yesterday"}', "line 3: not_before: 'yesterday' is not an ISO 8601"),
])
def test_json_lines_errors_name_the_line(tmp_path, bad_line, message):
    items = fleet()
    path = write_lines(tmp_path / "scan.jsonl", [json.dumps(items[0]), "", bad_line, json.dumps(items[1])])
    with pytest.raises(CertfleetError) as caught:
        _reports.EndpointSet(results_path=path)
    assert str(caught.value).startswith(f"results_path: {path} ") and message in str(caught.value)


def test_json_document_list_and_saved_scan_result(tmp_path):
    items = fleet()
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps(items, indent=2))
    assert [item["name"] for item in _reports.EndpointSet(results_path=str(as_list))] == WORST_FIRST
    saved = tmp_path / "scan.json"
    saved.write_text(json.dumps({"changed": False, "summary": {"total": 20, "ok": 12}, "endpoints": items}))
    endpoints = _reports.EndpointSet(results_path=str(saved))
    assert endpoints.file_summary == {"total": 20, "ok": 12} and len(endpoints) == 8


def test_own_json_report_reads_back(tmp_path):
    report = tmp_path / "report.json"
    report.write_text(rendered("json"))
    endpoints = _reports.EndpointSet(results_path=str(report))
    assert [item["name"] for item in endpoints] == WORST_FIRST and endpoints.file_summary["critical"] == 4


@pytest.mark.parametrize("content, message", [
    ("not json at all\n", "is neither JSON lines"),
    ('{"a": 1}', "line 1: status must be one of"),
    ('"text"', "line 1: an endpoint result must be a JSON object (dict), not str"),
    ('{"endpoints": {"a": 1}}', "line 1: status must be one of"),
    ('{\n "endpoints": 3\n}', "must be a list of endpoint results or an object with an 'endpoints' list"),
])
def test_file_that_is_no_results(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CertfleetError, match=re.escape(message)):
        _reports.EndpointSet(results_path=str(path))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CertfleetError, match=r"results_path: '.*/nope.jsonl' does not exist"):
        _reports.EndpointSet(results_path=str(tmp_path / "nope.jsonl"))
    with pytest.raises(CertfleetError, match="is a directory"):
        _reports.EndpointSet(results_path=str(tmp_path))


def test_empty_file_is_an_empty_fleet(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    endpoints = _reports.EndpointSet(results_path=str(path))
    assert len(endpoints) == 0 and endpoints.counts.as_dict()["total"] == 0


# --- JSON ---------------------------------------------------------------------------------

def test_json_report_content():
    document = json.loads(rendered("json", title="Prod"))
    assert (document["generated_at"], document["title"]) == (GENERATED, "Prod")
    assert [item["name"] for item in document["endpoints"]] == WORST_FIRST
    assert document["summary"]["critical"] == 4 and document["summary"]["listed"] == 8
    assert all("elapsed_ms" not in item for item in document["endpoints"])
    assert document["endpoints"][0]["checks"]["expiry"]["status"] == "critical"


def test_timing_of_the_scan_does_not_change_reports():
    items = fleet()
    slower = copy.deepcopy(items)
    for item in slower:
        item["elapsed_ms"] += 250.0
    summary = dict(_reports.report_summary(endpoint_set(items).counts.as_dict()), elapsed_seconds=1.0)
    slower_summary = dict(summary, elapsed_seconds=9.0, endpoints_per_second=1.0)
    for fmt in _reports.FORMATS:
        assert rendered(fmt, items, _reports.report_summary(endpoint_set(items).counts.as_dict(), summary)) == \
            rendered(fmt, slower, _reports.report_summary(endpoint_set(slower).counts.as_dict(), slower_summary)), fmt


# --- CSV ----------------------------------------------------------------------------------

def csv_rows(text: str) -> list:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_rows_worst_first_with_plain_values():
    text = rendered("csv")
    assert text.splitlines()[0] == ",".join(_reports.CSV_COLUMNS)
    rows = csv_rows(text)
    assert [row["name"] for row in rows] == WORST_FIRST
    expired = rows[0]
    assert (expired["days_left"], expired["trusted"], expired["matches_expected"]) == ("-5", "true", "")
    assert expired["problems"] == "expiry: expired on 2026-11-28T00:00:00Z (5 day(s) ago)"
    closed = rows[3]
    assert (closed["outcome"], closed["subject"], closed["days_left"]) == ("refused", "", "")


@pytest.mark.parametrize("subject, cell", [
    ("=HYPERLINK(\"http://evil.test\",\"x\")", "'=HYPERLINK(\"http://evil.test\",\"x\")"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("\uff1d1+1", "'\uff1d1+1"),
    ("/C=JP/CN=a=b", "/C=JP/CN=a=b"),
    ("CN=x, O=\"Q\"\nnext", "CN=x, O=\"Q\"\nnext"),
])
def test_csv_formula_injection_escaped(subject, cell):
    rows = csv_rows(rendered("csv", [endpoint("x", subject=subject)]))
    assert rows[0]["subject"] == cell
    assert rows[0]["days_left"] == "200"


@pytest.mark.parametrize("lead", [" ", "  ", "\t", "\u3000", "\u00a0", "\u2003", "\u200b", "\ufeff", "\n", " \u3000\t"])
@pytest.mark.parametrize("formula", ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\uff1d1+1"])
def test_csv_formula_injection_escaped_after_leading_whitespace(lead, formula):
    # Spreadsheets skip leading blanks (ASCII, ideographic U+3000, NBSP, zero-width) before a formula.
    rows = csv_rows(rendered("csv", [endpoint("x", subject=lead + formula, issuer=lead + formula, server_name=lead + formula)]))
    for column in ("subject", "issuer", "server_name"):
        assert rows[0][column] == "'" + lead + formula, column


def test_csv_negative_numbers_stay_numbers():
    assert csv_rows(rendered("csv", [endpoint("x", days_left=-3)]))[0]["days_left"] == "-3"


# --- HTML ---------------------------------------------------------------------------------

def test_html_is_self_contained_with_a_csp_that_pins_its_only_script():
    page = rendered("html")
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 1 and page.count("<script") == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode("utf-8")).digest()).decode("ascii")
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page).group(1)
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    assert not re.search(r"\s(src|href)=", page), "the page must load nothing"
    assert "http://" not in page and "https://" not in page


def test_html_summary_counts_rows_worst_first_and_colours():
    page = rendered("html")
    for key, value in (("total", 8), ("ok", 2), ("warning", 2), ("critical", 4), ("expired", 1), ("expiring", 2)):
        assert f'id="count-{key}" data-count="{value}">{value}</span>' in page, key
    assert page.index('id="summary"') < page.index('<table id="endpoints"')
    assert re.findall(r'<tr class="(\w+)" data-status="\1"', page) == ["critical"] * 4 + ["warning"] * 2 + ["ok"] * 2
    days = dict(re.findall(r'<td class="(days[^"]*)" data-sort="(-?\d+)">', page)[i][::-1] for i in range(8))
    assert (days["-5"], days["9"], days["20"], days["300"], days["1000000000"]) == ("days neg", "days crit", "days warn", "days", "days")
    assert '<span class="badge critical">CRITICAL</span>' in page and '<span class="badge ok">OK</span>' in page


def test_html_escapes_hostile_subjects_names_and_title():
    hostile_name = 'x" onmouseover="alert(1)'
    page = rendered("html", [endpoint(hostile_name, subject=HOSTILE_SUBJECT, issuer="</td></tr><img src=x onerror=alert(2)>",
                                      failing={"trust": ("critical", "<b>bold</b> & \"quoted\"")})],
                    title="<Prod> & 'ops'")
    assert "<script>alert(1)" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;/td&gt;&lt;/tr&gt;&lt;img src=x" in page
    assert 'data-sort="x&quot; onmouseover=&quot;alert(1)"' in page and 'onmouseover="alert' not in page
    assert "<title>&lt;Prod&gt; &amp; &#x27;ops&#x27;</title>" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;" in page


def test_html_says_when_it_lists_fewer_than_the_scan_counted():
    endpoints = endpoint_set()
    summary = _reports.report_summary(endpoints.counts.as_dict(), {"total": 500, "ok": 494})
    page = _reports.render("html", endpoints, summary, title="t", generated_at=GENERATED)
    assert "500 endpoint(s) scanned &middot; 8 listed here" in page and 'data-count="494">494<' in page


def test_html_without_endpoints():
    page = rendered("html", [])
    assert "No endpoints in these results." in page and 'id="count-total" data-count="0">0<' in page


def test_html_ipv6_and_sni():
    page = rendered("html", [endpoint("v6", host="2001:db8::1", server_name="www.example.test")])
    assert "[2001:db8::1]:443" in page and "SNI www.example.test" in page


# --- Prometheus ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, escaped", [
    ("plain", "plain"),
    ('say "hi"', 'say \\"hi\\"'),
    ("back\\slash", "back\\\\slash"),
    ("two\nlines", "two\\nlines"),
    (None, ""),
    (443, "443"),
])
def test_prometheus_label_value_escaping(value, escaped):
    assert _reports.escape_label_value(value) == escaped


def prom_samples(text: str) -> list:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_prometheus_every_line_is_valid_exposition_text_even_with_hostile_labels():
    items = fleet() + [endpoint("evil\"\n\\", subject=HOSTILE_SUBJECT, issuer='/CN=a"b', index=8)]
    text = rendered("prometheus", items)
    for line in prom_samples(text):
        assert PROM_SAMPLE.match(line), line
    evil = next(line for line in prom_samples(text) if line.startswith("x509_cert_not_after") and "evil" in line)
    assert 'name="evil\\"\\n\\\\"' in evil
    assert 'subject_CN="<script>alert(1)</script>"' in evil and 'subject_O="Evil \\"Corp\\" & Co\\\\"' in evil
    assert 'subject_OU="line1\\nline2"' in evil and 'issuer_CN="a\\"b"' in evil


def test_prometheus_families_help_type_and_exporter_names():
    text = rendered("prometheus")
    helps = re.findall(r"^# HELP (\S+) ", text, re.M)
    types = re.findall(r"^# TYPE (\S+) gauge$", text, re.M)
    assert helps == types == [name for name, _help in _reports.PROMETHEUS_FAMILIES]
    assert {"x509_cert_not_before", "x509_cert_not_after", "x509_cert_expired"} <= set(helps)
    assert {line.split("{")[0].split(" ")[0] for line in prom_samples(text)} <= set(helps)
    assert text.startswith(f"# certfleet.tls cert_report generated_at {GENERATED}\n") and text.endswith("\n")


def test_prometheus_values_and_labels():
    samples = prom_samples(rendered("prometheus"))
    expired = next(line for line in samples if line.startswith('x509_cert_not_after{name="expired"'))
    assert expired.endswith(f" {epoch('2026-11-28T00:00:00Z')}")
    assert ('serial_number="6699"' in expired and 'subject_CN="expired.example.test"' in expired and 'subject_ST=""' in expired
            and 'issuer_CN="Example Issuing CA"' in expired and 'issuer_O="Example Co.,Ltd."' in expired)
    assert [line.rsplit(" ", 1)[1] for line in samples if line.startswith("x509_cert_expired")] == ["1"] + ["0"] * 6
    assert not any(line.startswith("x509_cert") and 'name="closed"' in line for line in samples), "no certificate, no x509 series"
    assert 'certfleet_endpoint_up{name="closed",host="192.0.2.10",port="8443",server_name="closed.example.test"} 0' in samples
    assert 'certfleet_endpoint_status{name="closed",host="192.0.2.10",port="8443",server_name="closed.example.test"} 2' in samples
    assert 'certfleet_endpoint_status{name="order",host="192.0.2.10",port="443",server_name="order.example.test"} 1' in samples
    assert ('certfleet_endpoint_problem{name="untrusted",host="192.0.2.10",port="443",server_name="untrusted.example.test",'
            'check="trust",severity="critical"} 2') in samples
    assert ('certfleet_endpoint_problem{name="order",host="192.0.2.10",port="443",server_name="order.example.test",'
            'check="chain_order",severity="warning"} 1') in samples
    assert not any(line.startswith("certfleet_endpoint_problem") and 'name="healthy' in line for line in samples)
    assert {'certfleet_scan_endpoints{status="ok"} 2', 'certfleet_scan_endpoints{status="warning"} 2',
            'certfleet_scan_endpoints{status="critical"} 4', "certfleet_scan_expired_endpoints 1",
            "certfleet_scan_expiring_endpoints 2", f"certfleet_report_generated_timestamp_seconds {epoch(GENERATED)}"} <= set(samples)


def test_prometheus_scan_counts_from_the_given_summary():
    endpoints = endpoint_set()
    summary = _reports.report_summary(endpoints.counts.as_dict(), {"total": 900, "ok": 880, "warning": 9, "critical": 11})
    samples = prom_samples(_reports.render("prometheus", endpoints, summary, title="t", generated_at=GENERATED))
    assert 'certfleet_scan_endpoints{status="ok"} 880' in samples and 'certfleet_scan_endpoints{status="critical"} 11' in samples


def test_prometheus_duplicate_endpoints_get_a_discriminator():
    samples = prom_samples(rendered("prometheus", [endpoint("same", index=0), endpoint("same", index=1)]))
    status = [line for line in samples if line.startswith("certfleet_endpoint_status")]
    assert len(status) == 2 and 'discriminator="2"' in status[1] and "discriminator" not in status[0]
    assert len(set(line.rsplit(" ", 1)[0] for line in samples)) == len(samples), "duplicate series"


@pytest.mark.parametrize("dn, fields", [
    ("/C=JP/O=Example Co.,Ltd./CN=www.example.co.jp", {"C": "JP", "O": "Example Co.,Ltd.", "CN": "www.example.co.jp"}),
    ("/CN=a/OU=x/OU=y", {"CN": "a", "OU": "x,y"}),
    ("/CN=path/with/slashes", {"CN": "path/with/slashes"}),
    ("/2.5.4.97=VATJP-1/CN=a", {"2.5.4.97": "VATJP-1", "CN": "a"}),
    (None, {}),
])
def test_dn_fields(dn, fields):
    assert _reports.dn_fields(dn) == fields


# --- JUnit --------------------------------------------------------------------------------

def junit(text: str):
    root = ET.fromstring(text.encode("utf-8"))
    suite = root.find("testsuite")
    return root, suite, {case.get("name").split(" (")[0]: case for case in suite.findall("testcase")}


def test_junit_criticals_fail_warnings_go_to_system_out():
    root, suite, cases = junit(rendered("junit", title="Prod TLS"))
    assert (root.get("tests"), root.get("failures"), suite.get("name")) == ("8", "4", "Prod TLS")
    assert suite.get("timestamp") == GENERATED[:-1]
    assert list(cases) == WORST_FIRST
    assert [name for name, case in cases.items() if case.find("failure") is not None] == WORST_FIRST[:4]
    failure = cases["closed"].find("failure")
    assert failure.get("type") == "critical" and failure.get("message") == "connect: refused: connection refused"
    assert cases["expiring"].find("failure") is None
    assert cases["expiring"].find("system-out").text == "warning: expiry: 20 day(s) left (< 30)"
    assert len(cases["healthy"]) == 0
    assert cases["soon"].get("name") == "soon (192.0.2.10:443 SNI soon.example.test)"
    properties = {prop.get("name"): prop.get("value") for prop in suite.find("properties")}
    assert properties["certfleet.critical"] == "4" and properties["certfleet.warnings_fail"] == "false"


def test_junit_warnings_fail():
    root, _suite, cases = junit(rendered("junit", junit_warnings_fail=True))
    assert root.get("failures") == "6" and cases["order"].find("failure").get("type") == "warning"


def test_junit_many_problems_message_counts_the_rest():
    item = endpoint("many", failing={"trust": ("critical", "untrusted"), "hostname": ("critical", "wrong host"),
                                     "key_size": ("warning", "small")})
    _root, _suite, cases = junit(rendered("junit", [item]))
    failure = cases["many"].find("failure")
    assert failure.get("message") == "trust: untrusted (and 2 more)"
    assert failure.text.splitlines() == ["trust: untrusted", "hostname: wrong host", "key_size: small"]


def test_junit_hostile_text_stays_well_formed():
    message = 'bad <tag> & "quote"\nsecond line \x01\x1b end ]]>'
    item = endpoint('n<a>"&', subject=HOSTILE_SUBJECT, failing={"trust": ("critical", message)})
    text = rendered("junit", [item], title='T "<&>"')
    root, suite, cases = junit(text)
    assert suite.get("name") == 'T "<&>"' and root.get("name") == 'T "<&>"'
    failure = cases['n<a>"&'].find("failure")
    assert failure.get("message") == 'trust: bad <tag> & "quote"\nsecond line \ufffd\ufffd end ]]>'
    assert "\x01" not in text and "<tag>" not in text


# --- generated_at and idempotence ---------------------------------------------------------

@pytest.mark.parametrize("fmt", _reports.FORMATS)
def test_embedded_generated_at(fmt):
    expected = None if fmt == "csv" else GENERATED
    assert _reports.embedded_generated_at(fmt, rendered(fmt).encode("utf-8")) == expected


def decide(fmt, existing, items=None, **options):
    endpoints = endpoint_set(items)
    summary = _reports.report_summary(endpoints.counts.as_dict())
    return _reports.decide_content(fmt, existing, endpoints, summary, title="t", **options)


@pytest.mark.parametrize("fmt", _reports.FORMATS)
def test_only_generated_at_differs_keeps_the_report(fmt):
    first = decide(fmt, None, generated_at=GENERATED)
    assert first == rendered(fmt, title="t").encode("utf-8")
    assert decide(fmt, first, generated_at=GENERATED) is None
    assert decide(fmt, first, generated_at=LATER) is None, "a new time alone must not rewrite the report"


@pytest.mark.parametrize("fmt", ["json", "html", "prometheus", "junit"])
def test_a_given_time_is_content(fmt):
    first = decide(fmt, None, generated_at=GENERATED)
    again = decide(fmt, first, generated_at=LATER, keep_generated_at=False)
    assert again is not None and _reports.embedded_generated_at(fmt, again) == LATER
    assert decide(fmt, again, generated_at=LATER, keep_generated_at=False) is None


@pytest.mark.parametrize("fmt", _reports.FORMATS)
def test_changed_content_is_rewritten_with_the_new_time(fmt):
    first = decide(fmt, None, generated_at=GENERATED)
    items = fleet()
    items[0] = endpoint("healthy", days_left=200, index=0, failing={"hostname": ("critical", "name mismatch")})
    second = decide(fmt, first, items, generated_at=LATER)
    assert second is not None and second != first
    assert _reports.embedded_generated_at(fmt, second) == (None if fmt == "csv" else LATER)


def test_junit_option_is_content():
    first = decide("junit", None, generated_at=GENERATED)
    assert decide("junit", first, generated_at=LATER, junit_warnings_fail=True) is not None


# --- paths and diffs ----------------------------------------------------------------------

def test_report_paths():
    assert _reports.report_paths("/r", "fleet", _reports.FORMATS) == {
        "json": "/r/fleet.json", "csv": "/r/fleet.csv", "html": "/r/fleet.html", "prometheus": "/r/fleet.prom",
        "junit": "/r/fleet.junit.xml"}
    assert _reports.report_paths("/r", "f", ["prometheus", "html"], prometheus_path="/t/c.prom") == {
        "prometheus": "/t/c.prom", "html": "/r/f.html"}
    assert _reports.report_paths("/r", "f", ["prometheus"], prometheus_path="/r/f.prom") == {"prometheus": "/r/f.prom"}


@pytest.mark.parametrize("basename, formats, prometheus_path, message", [
    ("a/b", ["json"], None, "basename: 'a/b' must be a plain file name"),
    ("..", ["json"], None, "basename: '..' must be a plain file name"),
    ("", ["json"], None, "basename: '' must be a plain file name"),
    ("f", ["pdf"], None, "formats: unknown format 'pdf'"),
    ("f", ["json", "prometheus"], "/r/f.json", "prometheus_path: '/r/f.json' is where another report goes"),
])
def test_report_paths_errors(basename, formats, prometheus_path, message):
    with pytest.raises(CertfleetError, match=re.escape(message)):
        _reports.report_paths("/r", basename, formats, prometheus_path=prometheus_path)


def test_file_diff():
    assert _reports.file_diff("/r/a", None, b"new") == {
        "before_header": "/r/a (absent)", "after_header": "/r/a", "before": "", "after": "new"}
    assert _reports.file_diff("/r/a", b"old", b"x" * 11, limit=10) == {
        "before_header": "/r/a", "after_header": "/r/a", "src_larger": 10}
    assert "dst_larger" in _reports.file_diff("/r/a", b"x" * 11, b"new", limit=10)


@pytest.mark.parametrize("items, verdict", [
    (None, '<p class="verdict critical" id="verdict">Action needed: 4 critical, 2 warning</p>'),
    ([endpoint("a"), endpoint("b", failing={"key_size": ("warning", "small")})],
     '<p class="verdict warning" id="verdict">1 warning, nothing critical</p>'),
    ([endpoint("a"), endpoint("b")], '<p class="verdict ok" id="verdict">All 2 endpoint(s) ok</p>'),
])
def test_html_verdict_under_the_title(items, verdict):
    assert verdict in rendered("html", items)


# --- DN attributes come from the certificate's name, never from splitting the joined string -------

def _scanned(cn: str, issuer_cn: str, **attributes) -> dict:
    """A cert_scan endpoint result of a real certificate (ChainAnalyzer facts through endpoint_report)."""
    import types
    from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

    root = pb.make_root(issuer_cn)
    leaf = pb.issue(pb.name(cn, **attributes), public_key=pb.make_key("ec256").public_key(), issuer_name=root.cert.subject,
                    signing_key=root.key, signing_key_type=root.key_type, aki_key=root.key.public_key(), ca=False)
    report = _endpoint_checks.ChainAnalyzer().analyze([leaf])
    endpoint = types.SimpleNamespace(index=0, host="192.0.2.7", port=443, starttls=None)
    result = types.SimpleNamespace(endpoint=endpoint, server_name=None, address="192.0.2.7", outcome="ok", message="",
                                   protocol="TLSv1.3", cipher="X", elapsed=0.01, notes=[])
    return dict(_endpoint_checks.endpoint_report(result, report, include_chain=False), name="evil")


def test_prometheus_dn_labels_from_name_attributes_not_the_joined_string():
    item = _scanned("evil.example/O=Trusted Corp", "Root/CN=Fake Root/OU=x", C="JP")
    assert item["subject"] == "/C=JP/CN=evil.example/O=Trusted Corp"  # the joined string alone is ambiguous
    assert item["subject_attributes"] == {"CN": "evil.example/O=Trusted Corp", "C": "JP"}
    assert item["issuer_attributes"] == {"CN": "Root/CN=Fake Root/OU=x"}
    labels = prom_samples(rendered("prometheus", [item]))
    expiry = next(line for line in labels if line.startswith("x509_cert_not_after{"))
    assert 'subject_O=""' in expiry and 'subject_O="Trusted Corp"' not in expiry
    assert 'subject_CN="evil.example/O=Trusted Corp"' in expiry and 'subject_C="JP"' in expiry
    assert 'issuer_CN="Root/CN=Fake Root/OU=x"' in expiry and 'issuer_OU=""' in expiry


def test_prometheus_repeated_attributes_and_a_malformed_attribute_map():
    item = endpoint("x", subject="/OU=a/OU=b/CN=c", subject_attributes={"OU": ["a", "b/O=z"], "CN": "c"})
    expiry = next(line for line in prom_samples(rendered("prometheus", [item])) if line.startswith("x509_cert_not_after{"))
    assert 'subject_OU="a,b/O=z"' in expiry and 'subject_O=""' in expiry
    with pytest.raises(CertfleetError, match="subject_attributes must be a dict of DN attribute names to strings"):
        rendered("prometheus", [endpoint("x", subject_attributes="/CN=x")])
