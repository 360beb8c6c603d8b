# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports over cert_scan endpoint results: JSON, CSV, HTML, Prometheus textfile metrics and JUnit XML.

This module is private to the certfleet.tls collection: its API may change
without notice.

Pure functions: endpoints in (dicts shaped like cert_scan's ``endpoints`` / ``results_path``
lines, docs/scanning.md), text out. ``EndpointSet`` validates and orders them worst first;
for a JSON lines file it keeps only the sort key and byte offset of each line and parses the
lines again as each renderer walks them, so 10,000 endpoints with their chains never sit in
memory at once. Every string from an endpoint is attacker-controlled (a certificate subject
is whatever the server's owner typed), so each renderer escapes for its own format.

The only time-dependent input of a renderer is ``generated_at``; everything else comes from
the scan (``x509_cert_expired`` is ``days_left < 0`` as the scan saw it), so rendering with
an older report's timestamp reproduces that report byte for byte when nothing else changed
(``decide_content``: how cert_report stays idempotent while still dating its reports).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import os
import re
import unicodedata
from typing import Iterable, Iterator

from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso, parse_timestamp
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

STATUSES = ("ok", "warning", "critical")
STATUS_RANK = {"critical": 0, "warning": 1, "ok": 2}
STATUS_VALUE = {"ok": 0, "warning": 1, "critical": 2}
FORMATS = ("json", "csv", "html", "prometheus", "junit")
SUFFIXES = {"json": ".json", "csv": ".csv", "html": ".html", "prometheus": ".prom", "junit": ".junit.xml"}
DEFAULT_TITLE = "certfleet TLS certificate report"
WORST_LIMIT = 10
# Timing of the scan itself: different on every run, no fact about the certificates. Left out so
# that an unchanged fleet gives unchanged reports (cert_report's idempotence).
VOLATILE_ENDPOINT_KEYS = ("elapsed_ms",)
VOLATILE_SUMMARY_KEYS = ("elapsed_seconds", "endpoints_per_second")
# What cert_report adds to a summary: recomputed, never taken from a summary given back to it.
DERIVED_SUMMARY_KEYS = ("listed", "worst")
COUNT_KEYS = ("total", "ok", "warning", "critical", "expired", "expiring")
CSV_COLUMNS = ("name", "host", "port", "server_name", "status", "outcome", "subject", "issuer", "not_after", "days_left",
               "sha256", "matches_expected", "chain_complete", "trusted", "hostname_ok", "problems")
# DN attributes the x509-certificate-exporter labels carry (subject_C ... issuer_CN).
DN_LABEL_FIELDS = ("C", "ST", "L", "O", "OU", "CN")
_DN_SPLIT = re.compile(r"/(?=(?:[A-Za-z][A-Za-z0-9]*|[0-9]+(?:\.[0-9]+)+)=)")
# XML 1.0 forbids most C0 controls even as character references; a hostile subject may hold them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# OWASP "CSV injection": a cell starting with one of these is a formula to Excel / LibreOffice / Sheets. The
# full-width forms too, defensively (subjects here are often Japanese): a leading ' only ever shows as text.
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


# --------------------------------------------------------------------------------------------
# timestamps


def _epoch(text: str) -> int:
    return int(parse_timestamp(text, what="time").timestamp())


# --------------------------------------------------------------------------------------------
# validation, ordering and counting


def _check_endpoint(item, *, where: str) -> dict:
    """The endpoint itself when it has the shape the renderers need; else CertfleetError naming ``where``."""
    if not isinstance(item, dict):
        raise CertfleetError(f"{where}: an endpoint result must be a JSON object (dict), not {type(item).__name__}")
    status = item.get("status")
    if status not in STATUSES:
        raise CertfleetError(f"{where}: status must be one of {', '.join(STATUSES)}, not {status!r}")
    port = item.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        raise CertfleetError(f"{where}: port must be an integer, not {port!r}")
    left = item.get("days_left")
    if left is not None and (isinstance(left, bool) or not isinstance(left, int)):
        raise CertfleetError(f"{where}: days_left must be an integer or null, not {left!r}")
    problems = item.get("problems")
    if problems is not None and not isinstance(problems, list):
        raise CertfleetError(f"{where}: problems must be a list of strings, not {type(problems).__name__}")
    checks = item.get("checks")
    if checks is not None and not isinstance(checks, dict):
        raise CertfleetError(f"{where}: checks must be a dict of check results, not {type(checks).__name__}")
    for key in ("not_before", "not_after"):
        if item.get(key) is not None:
            parse_timestamp(item[key], what=f"{where}: {key}")
    for key in ("subject_attributes", "issuer_attributes"):
        attributes = item.get(key)
        if attributes is not None and not (isinstance(attributes, dict) and all(
                isinstance(value, str) or (isinstance(value, list) and all(isinstance(part, str) for part in value))
                for value in attributes.values())):
            raise CertfleetError(f"{where}: {key} must be a dict of DN attribute names to strings (or lists of strings), "
                                 f"not {type(attributes).__name__}")
    return item


def sort_key(item: dict) -> tuple:
    """Worst first: critical, warning, ok; then fewest days left (unknown last); then name, host, port, plan index."""
    left = item.get("days_left")
    return (STATUS_RANK[item["status"]], left is None, left if left is not None else 0, str(item.get("name") or ""),
            str(item.get("host") or ""), item.get("port") or 0, item.get("index") if isinstance(item.get("index"), int) else 0)


class Counts:
    """The counts of cert_scan's summary over a stream of endpoints (same rules as ``_scan.checks.Summary``)."""

    def __init__(self) -> None:
        self.values = {key: 0 for key in COUNT_KEYS}
        self.by_outcome: dict = {}
        self.by_check: dict = {}

    def add(self, item: dict) -> None:
        """Count one endpoint."""
        self.values["total"] += 1
        self.values[item["status"]] += 1
        outcome = str(item.get("outcome") or "unknown")
        self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1
        checks = item.get("checks") or {}
        for name, check in checks.items():
            status = check.get("status") if isinstance(check, dict) else None
            if status in ("warning", "critical"):
                entry = self.by_check.setdefault(name, {"warning": 0, "critical": 0})
                entry[status] += 1
        left = item.get("days_left")
        if left is not None and left < 0:
            self.values["expired"] += 1
        else:
            expiry = checks.get("expiry")
            if isinstance(expiry, dict) and expiry.get("status") in ("warning", "critical"):
                self.values["expiring"] += 1

    def as_dict(self) -> dict:
        """The counts as plain data."""
        result = dict(self.values)
        result["by_outcome"] = dict(sorted(self.by_outcome.items()))
        result["by_check"] = dict(sorted(self.by_check.items()))
        return result


class EndpointSet:
    """Validated endpoints from a list and/or a file, iterable (more than once) worst first.

    The file is JSON lines (cert_scan's ``results_path``): read once to validate, count and
    index (sort key + byte offset per line); each iteration then seeks to the lines in order and
    parses them one at a time. A JSON document instead (a list of endpoint results, or an object
    with ``endpoints`` such as a saved cert_scan result or cert_report's own JSON report) is
    loaded whole; its ``summary``, if any, is kept in ``file_summary``.
    """

    def __init__(self, *, results: list | None = None, results_path: str | None = None) -> None:
        self.counts = Counts()
        self.file_summary: dict | None = None
        self._results = []
        self._path = results_path
        index = []
        for number, item in enumerate(results or []):
            index.append(self._add(item, where=f"results[{number}]"))
        if results_path:
            index.extend(self._index_file(results_path))
        index.sort()
        self._order = [(source, position) for _key, source, position in index]

    def _add(self, item, *, where: str) -> tuple:
        _check_endpoint(item, where=where)
        self.counts.add(item)
        self._results.append(item)
        return (sort_key(item), 0, len(self._results) - 1)

    def _index_file(self, path: str) -> list:
        if not os.path.exists(path):
            raise CertfleetError(f"results_path: '{path}' does not exist")
        if os.path.isdir(path):
            raise CertfleetError(f"results_path: '{path}' is a directory, not a JSON lines or JSON file")
        try:
            if _file_kind(path) == "document":
                return self._load_document(path)
            entries = []
            offset = 0
            with open(path, "rb") as handle:
                for number, line in enumerate(handle, start=1):
                    start, offset = offset, offset + len(line)
                    if not line.strip():
                        continue
                    item = _parse_line(line, path=path, number=number)
                    self.counts.add(item)
                    entries.append((sort_key(item), 1, start))
        except OSError as exc:
            raise CertfleetError(f"results_path: cannot read '{path}' ({exc.strerror})") from None
        return entries

    def _load_document(self, path: str) -> list:
        with open(path, "rb") as handle:
            try:
                document = json.load(handle)
            except ValueError as exc:
                raise CertfleetError(f"results_path: '{path}' is neither JSON lines (one endpoint result per line, as "
                                     f"cert_scan's results_path writes) nor a JSON document ({exc})") from None
        if isinstance(document, dict) and isinstance(document.get("endpoints"), list):
            if isinstance(document.get("summary"), dict):
                self.file_summary = document["summary"]
            document = document["endpoints"]
        if not isinstance(document, list):
            raise CertfleetError(f"results_path: the JSON document '{path}' must be a list of endpoint results or an "
                                 f"object with an 'endpoints' list (a saved cert_scan result or a cert_report JSON report)")
        return [self._add(item, where=f"results_path: {path} endpoints[{number}]") for number, item in enumerate(document)]

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[dict]:
        handle = None
        try:
            for source, position in self._order:
                if source == 0:
                    yield self._results[position]
                    continue
                if handle is None:
                    handle = open(self._path, "rb")  # pylint: disable=consider-using-with
                handle.seek(position)
                yield json.loads(handle.readline())
        finally:
            if handle is not None:
                handle.close()


def _file_kind(path: str) -> str:
    """``lines`` for JSON lines (the first line is one endpoint object), ``document`` for one JSON value."""
    with open(path, "rb") as handle:
        for line in handle:
            text = line.strip()
            if not text:
                continue
            if text.startswith(b"["):
                return "document"
            try:
                first = json.loads(text)
            except ValueError:
                # A pretty-printed document spans lines (or the file is not JSON at all: the
                # document parser then names both forms).
                return "document"
            if isinstance(first, dict) and "status" not in first and isinstance(first.get("endpoints"), list):
                return "document"
            return "lines"
    return "lines"


def _parse_line(line: bytes, *, path: str, number: int) -> dict:
    where = f"results_path: {path} line {number}"
    try:
        item = json.loads(line)
    except ValueError as exc:
        raise CertfleetError(f"{where} is not JSON ({exc})") from None
    return _check_endpoint(item, where=where)


def report_summary(counts: dict, given: dict | None = None) -> dict:
    """The summary the reports show: cert_scan's own ``summary`` when given (it may count more endpoints than were
    returned, with ``return_endpoints: problems``), else the counts over the endpoints. Timing keys are dropped."""
    summary = dict(counts)
    if given:
        if not isinstance(given, dict):
            raise CertfleetError("summary: must be the summary dict cert_scan returns")
        for key in COUNT_KEYS:
            if key not in given:
                continue
            value = given[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CertfleetError(f"summary: {key} must be a non-negative integer, not {value!r}")
            if value < counts[key]:
                raise CertfleetError(f"summary: {key} is {value}, but the results hold {counts[key]} such endpoint(s); "
                                     f"is the summary from another scan?")
        summary.update({key: value for key, value in given.items() if key not in VOLATILE_SUMMARY_KEYS + DERIVED_SUMMARY_KEYS})
    summary["listed"] = counts["total"]
    return summary


def worst_endpoints(endpoints: Iterable[dict], *, limit: int = WORST_LIMIT) -> list:
    """The first ``limit`` endpoints whose status is not ok (endpoints already worst first), in short form."""
    worst = []
    for item in endpoints:
        if item["status"] == "ok" or len(worst) >= limit:
            break
        worst.append({key: item.get(key) for key in ("name", "host", "port", "server_name", "status", "outcome", "days_left")})
        worst[-1]["problems"] = [str(problem) for problem in item.get("problems") or []]
    return worst


def _clean(item: dict) -> dict:
    return {key: value for key, value in item.items() if key not in VOLATILE_ENDPOINT_KEYS}


def _text(value) -> str:
    return "" if value is None else str(value)


def _where(item: dict) -> str:
    """``host:port``, an IPv6 host in brackets."""
    host = _text(item.get("host"))
    return f"[{host}]:{_text(item.get('port'))}" if ":" in host else f"{host}:{_text(item.get('port'))}"


def _sni(item: dict) -> str | None:
    """The SNI sent when it differs from the host (else nothing worth showing)."""
    server_name = item.get("server_name")
    return str(server_name) if server_name and server_name != item.get("host") else None


def _label(item: dict) -> str:
    """``name (host:port)`` or ``host:port`` with IPv6 in brackets, plus the SNI when it differs from the host."""
    where = _where(item)
    if _sni(item):
        where += f" SNI {_sni(item)}"
    return f"{item['name']} ({where})" if item.get("name") else where


# --------------------------------------------------------------------------------------------
# JSON


def render_json(endpoints: Iterable[dict], summary: dict, *, title: str = DEFAULT_TITLE, generated_at: str) -> str:
    """``{"generated_at", "title", "summary", "endpoints": [...]}``, one endpoint per line, worst first."""
    head = json.dumps({"generated_at": generated_at, "title": title})[:-1]
    parts = [head, ', "summary": ', json.dumps(_clean_summary(summary), sort_keys=True), ',\n"endpoints": [']
    first = True
    for item in endpoints:
        parts.append("\n" if first else ",\n")
        parts.append(json.dumps(_clean(item), sort_keys=True))
        first = False
    parts.append("\n]}\n" if not first else "]}\n")
    return "".join(parts)


def _clean_summary(summary: dict) -> dict:
    return {key: value for key, value in summary.items() if key not in VOLATILE_SUMMARY_KEYS and key != "worst"}


# --------------------------------------------------------------------------------------------
# CSV


def _csv_cell(value) -> str:
    """Booleans as true / false, null as empty; text that a spreadsheet would run as a formula gets a leading '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    # Spreadsheets skip leading blanks before a formula: ASCII and Unicode whitespace (U+3000, NBSP, ...)
    # and invisible format characters (zero-width space, BOM), so look past them.
    start = next((char for char in text if not (char.isspace() or unicodedata.category(char) == "Cf")), "")
    if text.startswith(_CSV_FORMULA_START) or start.startswith(_CSV_FORMULA_START):
        return "'" + text
    return text


def render_csv(endpoints: Iterable[dict], summary: dict | None = None, *, title: str = DEFAULT_TITLE,  # pylint: disable=unused-argument
               generated_at: str | None = None) -> str:
    """One row per endpoint (``CSV_COLUMNS``), header first, RFC 4180 quoting. No timestamp: rows only."""
    stream = io.StringIO()
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    for item in endpoints:
        row = []
        for column in CSV_COLUMNS:
            value = item.get(column)
            if column == "problems":
                value = "; ".join(str(problem) for problem in value or [])
            row.append(_csv_cell(value))
        writer.writerow(row)
    return stream.getvalue()


# --------------------------------------------------------------------------------------------
# Prometheus textfile (node_exporter textfile collector), x509-certificate-exporter names


def escape_label_value(value) -> str:
    """Label value escaping of the Prometheus text format: backslash, double quote, line feed."""
    return _text(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple]) -> str:
    return "{" + ",".join(f'{key}="{escape_label_value(value)}"' for key, value in pairs) + "}"


def dn_fields(dn: str | None) -> dict:
    """``/C=JP/O=Example/CN=www`` -> ``{"C": "JP", "O": "Example", "CN": "www"}``; repeated attributes joined with ``,``."""
    fields: dict = {}
    if not dn:
        return fields
    for part in _DN_SPLIT.split(dn.lstrip("/") if dn.startswith("/") else dn):
        key, sep, value = part.partition("=")
        if not sep:
            continue
        fields[key] = f"{fields[key]},{value}" if key in fields else value
    return fields


def dn_attributes(item: dict, which: str) -> dict:
    """{short name: value} of an endpoint's ``subject`` or ``issuer`` for labels; repeated attributes joined with ``,``.

    Taken from ``<which>_attributes`` (the name's own attributes, as cert_scan returns them): a value may hold
    ``/O=...`` itself, so the joined string cannot be split back. Only results without them (made before
    cert_scan returned attributes, or by hand) fall back to ``dn_fields`` of the string.
    """
    attributes = item.get(f"{which}_attributes")
    if attributes is None:
        return dn_fields(item.get(which))
    return {str(key): ",".join(value) if isinstance(value, list) else value for key, value in attributes.items()}


def _serial_decimal(serial) -> str:
    """Decimal serial (the exporter's ``serial_number``) from cert_scan's hex; empty when unknown."""
    if serial is None:
        return ""
    try:
        return str(int(str(serial).replace(":", ""), 16))
    except ValueError:
        return str(serial)


PROMETHEUS_FAMILIES = (
    ("x509_cert_not_before", "Unix time of the notBefore of the certificate the endpoint presented."),
    ("x509_cert_not_after", "Unix time of the notAfter of the certificate the endpoint presented."),
    ("x509_cert_expired", "1 when the certificate the endpoint presented had expired at scan time, else 0."),
    ("certfleet_endpoint_status", "Worst check status of the endpoint: 0 ok, 1 warning, 2 critical."),
    ("certfleet_endpoint_up", "1 when the TLS handshake with the endpoint completed, else 0."),
    ("certfleet_endpoint_problem", "One series per check that is not ok: 1 warning, 2 critical."),
    ("certfleet_scan_endpoints", "Endpoints of the scan by status."),
    ("certfleet_scan_expired_endpoints", "Endpoints whose certificate had expired."),
    ("certfleet_scan_expiring_endpoints", "Endpoints whose certificate is inside the warning or critical window."),
    ("certfleet_report_generated_timestamp_seconds",
     "Unix time of the report's generated_at: the time given to cert_report, else the time its content last changed."),
)


def render_prometheus(endpoints: Iterable[dict], summary: dict, *, title: str = DEFAULT_TITLE,  # pylint: disable=unused-argument
                      generated_at: str) -> str:
    """Text exposition format 0.0.4 for the node_exporter textfile collector, HELP and TYPE for every family.

    Endpoint labels: ``name``, ``host``, ``port``, ``server_name``; ``x509_cert_*`` add the exporter's
    ``serial_number`` (decimal), ``subject_C`` ... ``subject_CN`` and ``issuer_C`` ... ``issuer_CN`` (empty when the
    DN has no such attribute, as the exporter does). Two endpoints with the same identity get a ``discriminator``
    label (2, 3, ...) on the later ones: the collector rejects a whole file with duplicate series.
    """
    samples: dict = {name: [] for name, _help in PROMETHEUS_FAMILIES}
    seen: dict = {}
    for item in endpoints:
        identity = [("name", item.get("name")), ("host", item.get("host")), ("port", item.get("port")),
                    ("server_name", item.get("server_name"))]
        key = tuple(_text(value) for _name, value in identity)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            identity.append(("discriminator", seen[key]))
        endpoint_labels = _labels(identity)
        samples["certfleet_endpoint_status"].append(f"certfleet_endpoint_status{endpoint_labels} {STATUS_VALUE[item['status']]}")
        samples["certfleet_endpoint_up"].append(f"certfleet_endpoint_up{endpoint_labels} {1 if item.get('outcome') == 'ok' else 0}")
        for check, severity in _failing_checks(item):
            samples["certfleet_endpoint_problem"].append(
                f"certfleet_endpoint_problem{_labels(identity + [('check', check), ('severity', severity)])} {STATUS_VALUE[severity]}")
        if not item.get("not_after"):
            continue
        subject, issuer = dn_attributes(item, "subject"), dn_attributes(item, "issuer")
        cert_labels = _labels(identity + [("serial_number", _serial_decimal(item.get("serial")))]
                              + [(f"subject_{field}", subject.get(field)) for field in DN_LABEL_FIELDS]
                              + [(f"issuer_{field}", issuer.get(field)) for field in DN_LABEL_FIELDS])
        if item.get("not_before"):
            samples["x509_cert_not_before"].append(f"x509_cert_not_before{cert_labels} {_epoch(item['not_before'])}")
        samples["x509_cert_not_after"].append(f"x509_cert_not_after{cert_labels} {_epoch(item['not_after'])}")
        left = item.get("days_left")
        expired = left < 0 if left is not None else _epoch(item["not_after"]) < _epoch(generated_at)
        samples["x509_cert_expired"].append(f"x509_cert_expired{cert_labels} {1 if expired else 0}")
    for status in STATUSES:
        samples["certfleet_scan_endpoints"].append(f'certfleet_scan_endpoints{{status="{status}"}} {int(summary.get(status, 0))}')
    samples["certfleet_scan_expired_endpoints"].append(f"certfleet_scan_expired_endpoints {int(summary.get('expired', 0))}")
    samples["certfleet_scan_expiring_endpoints"].append(f"certfleet_scan_expiring_endpoints {int(summary.get('expiring', 0))}")
    samples["certfleet_report_generated_timestamp_seconds"].append(
        f"certfleet_report_generated_timestamp_seconds {_epoch(generated_at)}")
    lines = [f"# certfleet.tls cert_report generated_at {generated_at}"]
    for name, help_text in PROMETHEUS_FAMILIES:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(samples[name])
    return "\n".join(lines) + "\n"


def _failing_checks(item: dict) -> list:
    """(check, status) of every check that is not ok, by check name; from ``problems`` when there is no ``checks``."""
    checks = item.get("checks")
    if isinstance(checks, dict) and checks:
        return sorted((str(name), check["status"]) for name, check in checks.items()
                      if isinstance(check, dict) and check.get("status") in ("warning", "critical"))
    if item["status"] == "ok":
        return []
    # Only "check: message" problems name a check; the endpoint's own status is the best severity known.
    names = {str(problem).partition(":")[0] for problem in item.get("problems") or [] if ":" in str(problem)}
    return sorted((name, item["status"]) for name in names if re.fullmatch(r"[a-z][a-z0-9_]*", name))


# --------------------------------------------------------------------------------------------
# JUnit XML


def xml_text(value) -> str:
    """Text safe inside an XML 1.0 element or a double-quoted attribute (controls XML forbids become U+FFFD)."""
    text = _XML_INVALID.sub("\ufffd", _text(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("\n", "&#10;")


def _xml_body(value) -> str:
    return xml_text(value).replace("&#10;", "\n")


def render_junit(endpoints: Iterable[dict], summary: dict, *, title: str = DEFAULT_TITLE, generated_at: str,  # pylint: disable=unused-argument
                 warnings_fail: bool = False) -> str:
    """One testcase per endpoint; critical is a failure, warning too when ``warnings_fail`` (else system-out)."""
    cases = []
    tests = failures = 0
    for item in endpoints:
        tests += 1
        problems = [str(problem) for problem in item.get("problems") or []]
        name = _label(item)
        case = f'    <testcase classname="certfleet.tls.cert_scan" name="{xml_text(name)}">'
        status = item["status"]
        if status == "critical" or (status == "warning" and warnings_fail):
            failures += 1
            message = problems[0] if problems else f"status {status}"
            if len(problems) > 1:
                message += f" (and {len(problems) - 1} more)"
            case += (f'\n      <failure type="{status}" message="{xml_text(message)}">'
                     f'{_xml_body(chr(10).join(problems) or "status " + status)}</failure>\n    </testcase>')
        elif problems:
            case += f'\n      <system-out>{_xml_body("warning: " + (chr(10) + "warning: ").join(problems))}</system-out>\n    </testcase>'
        else:
            case = case[:-1] + " />"
        cases.append(case)
    # The schema's timestamp has no zone: UTC is meant.
    stamp = generated_at[:-1] if generated_at.endswith("Z") else generated_at
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- certfleet.tls cert_report generated_at {generated_at} -->\n'
            f'<testsuites name="{xml_text(title)}" tests="{tests}" failures="{failures}" errors="0" skipped="0">\n'
            f'  <testsuite name="{xml_text(title)}" tests="{tests}" failures="{failures}" errors="0" skipped="0" '
            f'timestamp="{stamp}" hostname="localhost">')
    # The scan's counts (which may cover more endpoints than are listed) as suite properties.
    properties = ["    <properties>"] + [
        f'      <property name="certfleet.{key}" value="{int(summary.get(key, 0) or 0)}" />' for key in COUNT_KEYS
    ] + [f'      <property name="certfleet.warnings_fail" value="{"true" if warnings_fail else "false"}" />', "    </properties>"]
    return "\n".join([head] + properties + cases + ["  </testsuite>", "</testsuites>"]) + "\n"


# --------------------------------------------------------------------------------------------
# HTML


_CSS = """
:root{--ok:#1a7f37;--ok-bg:#e9f7ee;--warn:#9a6700;--warn-bg:#fff5d6;--crit:#c62828;--crit-bg:#fdecec;--ink:#1f2328;--muted:#59636e;--line:#d8dee4}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--ink);background:#f6f8fa}
header{padding:18px 28px 10px;background:#fff;border-bottom:1px solid var(--line)}
h1{margin:0 0 4px;font-size:22px}
.meta{margin:0;color:var(--muted)}
.verdict{display:inline-block;margin:0 0 6px;padding:2px 10px;border-radius:6px;font-weight:700;color:#fff}
.verdict.ok{background:var(--ok)}.verdict.warning{background:#bf8700}.verdict.critical{background:var(--crit)}
.cards{display:flex;flex-wrap:wrap;gap:12px;padding:16px 28px}
.card{min-width:130px;padding:10px 16px;border-radius:8px;background:#fff;border:1px solid var(--line);border-top:5px solid #8c959f}
.card[data-filter]{cursor:pointer}.card[data-filter]:hover{box-shadow:0 1px 4px rgba(0,0,0,.15)}
.card .num{display:block;font-size:30px;font-weight:700;line-height:1.1}
.card .label{color:var(--muted);font-weight:600;text-transform:uppercase;font-size:12px;letter-spacing:.04em}
.card.ok{border-top-color:var(--ok)}.card.ok .num{color:var(--ok)}
.card.warning{border-top-color:#d4a72c}.card.warning .num{color:var(--warn)}
.card.critical{border-top-color:var(--crit)}.card.critical .num{color:var(--crit)}
.card.expired{border-top-color:var(--crit)}.card.expiring{border-top-color:#d4a72c}
.card.expired .num,.card.expiring .num{color:var(--ink)}
.card.zero{border-top-color:#d0d7de}
.card.zero .num{color:#8c959f}
.card.active{outline:2px solid #0969da}
.toolbar{display:flex;gap:12px;align-items:center;padding:0 28px 10px}
.toolbar input{width:320px;padding:6px 10px;border:1px solid var(--line);border-radius:6px;font:inherit}
.toolbar span{color:var(--muted)}
.wrap{padding:0 28px 28px}
table{width:100%;min-width:1100px;table-layout:fixed;border-collapse:collapse;background:#fff;border:1px solid var(--line)}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}
th{position:sticky;top:0;background:#eef1f4;cursor:pointer;user-select:none;white-space:nowrap}
th::after{content:" \\2195";color:#8c959f}
th[aria-sort=ascending]::after{content:" \\25B2";color:var(--ink)}
th[aria-sort=descending]::after{content:" \\25BC";color:var(--ink)}
tr.critical td{background:var(--crit-bg)}tr.critical td:first-child{box-shadow:inset 5px 0 var(--crit)}
tr.warning td{background:var(--warn-bg)}tr.warning td:first-child{box-shadow:inset 5px 0 #d4a72c}
tr.ok td:first-child{box-shadow:inset 5px 0 var(--ok)}
.badge{display:inline-block;min-width:72px;padding:2px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:700;text-align:center}
.badge.ok{background:var(--ok)}.badge.warning{background:#bf8700}.badge.critical{background:var(--crit)}
.ep{font-weight:600}.sub{color:var(--muted);font-size:12px}
.days{font-weight:700;text-align:right;white-space:nowrap}
.days.neg,.days.crit{color:var(--crit)}.days.warn{color:var(--warn)}
.dn{overflow-wrap:anywhere;font-size:12px}
.date{white-space:nowrap}
.fp{margin-top:2px;font:11px ui-monospace,SFMono-Regular,Menlo,monospace;color:var(--muted);word-break:break-all}
ul.problems{margin:0;padding-left:16px}
.none{color:var(--muted)}
footer{padding:0 28px 20px;color:var(--muted);font-size:12px}
""".strip()

_JS = """
(function(){
var table=document.getElementById("endpoints"),body=table.tBodies[0],heads=table.tHead.rows[0].cells;
var filter=document.getElementById("filter"),shown=document.getElementById("shown"),only="";
function value(row,i,num){var c=row.cells[i],v=c.getAttribute("data-sort");if(v===null)v=c.textContent.trim();return num?parseFloat(v):v.toLowerCase();}
function sortBy(key,dir){
 var i=-1;for(var k=0;k<heads.length;k++){if(heads[k].getAttribute("data-key")===key)i=k;heads[k].removeAttribute("aria-sort");}
 if(i<0)return;var num=heads[i].getAttribute("data-type")==="num",sign=dir==="desc"?-1:1;
 var rows=Array.prototype.slice.call(body.rows);
 rows.sort(function(a,b){var x=value(a,i,num),y=value(b,i,num);if(x<y)return -sign;if(x>y)return sign;
  return parseFloat(a.getAttribute("data-rank"))-parseFloat(b.getAttribute("data-rank"));});
 rows.forEach(function(r){body.appendChild(r);});
 heads[i].setAttribute("aria-sort",dir==="desc"?"descending":"ascending");
 try{history.replaceState(null,"","#sort="+key+"-"+dir);}catch(e){}
}
function applyFilter(){
 var q=filter.value.toLowerCase(),n=0;
 Array.prototype.forEach.call(body.rows,function(r){
  var on=(!only||r.getAttribute("data-status")===only)&&(!q||r.textContent.toLowerCase().indexOf(q)>=0);r.hidden=!on;if(on)n++;});
 shown.textContent=n+" of "+body.rows.length+" shown";
}
Array.prototype.forEach.call(heads,function(h){h.addEventListener("click",function(){
 sortBy(h.getAttribute("data-key"),h.getAttribute("aria-sort")==="ascending"?"desc":"asc");});});
Array.prototype.forEach.call(document.querySelectorAll(".card[data-filter]"),function(c){c.addEventListener("click",function(){
 var f=c.getAttribute("data-filter");only=(only===f)?"":f;
 Array.prototype.forEach.call(document.querySelectorAll(".card"),function(o){o.classList.toggle("active",!!only&&o===c);});applyFilter();});});
filter.addEventListener("input",applyFilter);
var m=/^#sort=([a-z_]+)-(asc|desc)$/.exec(location.hash);
if(m)Array.prototype.forEach.call(heads,function(h){if(h.getAttribute("data-key")===m[1]){h.click();if(m[2]==="desc")h.click();}});
applyFilter();
})();
""".strip()

# The page allows its own inline style and exactly this script, and nothing from anywhere else: an
# attribute or text that escaped escaping still could not load or run anything.
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-"
        + base64.b64encode(hashlib.sha256(_JS.encode("utf-8")).digest()).decode("ascii") + "'; img-src data:; base-uri 'none'; "
        "form-action 'none'")

# (key, header, sort type, width): fixed widths so the problems, the column people read, get the rest.
_COLUMNS = (("status", "Status", "num", "106px"), ("endpoint", "Endpoint", "text", "14%"), ("days_left", "Days left", "num", "88px"),
            ("not_after", "Expires (UTC)", "text", "132px"), ("outcome", "Outcome", "text", "8%"),
            ("subject", "Subject", "text", "13%"), ("issuer", "Issuer", "text", "12%"), ("problems", "Problems", "num", ""))


def _e(value) -> str:
    return html.escape(_text(value), quote=True)


def _days_class(item: dict) -> str:
    """Coloured by the expiry check, not by the endpoint's status (a trust failure does not make 300 days red)."""
    left = item.get("days_left")
    expiry = (item.get("checks") or {}).get("expiry")
    expiry_status = expiry.get("status") if isinstance(expiry, dict) else None
    if left is not None and left < 0:
        return "days neg"
    if left is not None and expiry_status in ("critical", "warning"):
        return "days " + ("crit" if expiry_status == "critical" else "warn")
    return "days"


def _html_row(item: dict, rank: int) -> str:
    status = item["status"]
    where = _where(item)
    name = item.get("name")
    endpoint = (f'<span class="ep">{_e(name)}</span><br><span class="sub">{_e(where)}</span>' if name
                else f'<span class="ep">{_e(where)}</span>')
    if _sni(item):
        endpoint += f'<br><span class="sub">SNI {_e(_sni(item))}</span>'
    left = item.get("days_left")
    days = "&mdash;" if left is None else _e(left)
    date, _sep, time_of_day = _text(item.get("not_after")).partition("T")
    not_after = f'{_e(date)}<br><span class="sub">{_e(time_of_day.rstrip("Z"))}</span>' if time_of_day else _e(date)
    problems = [str(problem) for problem in item.get("problems") or []]
    problem_cell = ('<ul class="problems">' + "".join(f"<li>{_e(problem)}</li>" for problem in problems) + "</ul>"
                    if problems else '<span class="none">none</span>')
    outcome = _e(item.get("outcome"))
    if item.get("outcome") not in (None, "ok") and item.get("outcome_message"):
        outcome += f'<br><span class="sub">{_e(item["outcome_message"])}</span>'
    sha256 = _text(item.get("sha256"))
    fingerprint = (f'<div class="fp" title="SHA-256 {_e(sha256)}">SHA-256 {_e(sha256[:23])}{"&hellip;" if len(sha256) > 23 else ""}</div>'
                   if sha256 else "")
    sort_days = left if left is not None else 10 ** 9
    return (f'<tr class="{status}" data-status="{status}" data-rank="{rank}">'
            f'<td data-sort="{rank}"><span class="badge {status}">{status.upper()}</span></td>'
            f'<td data-sort="{_e(name or where)}">{endpoint}</td>'
            f'<td class="{_days_class(item)}" data-sort="{sort_days}">{days}</td>'
            f'<td class="date" data-sort="{_e(item.get("not_after") or "~")}">{not_after}</td><td>{outcome}</td>'
            f'<td class="dn">{_e(item.get("subject"))}{fingerprint}</td><td class="dn">{_e(item.get("issuer"))}</td>'
            f'<td data-sort="{len(problems)}">{problem_cell}</td></tr>')


def _verdict(summary: dict) -> tuple:
    """(status, sentence) for the line under the title: what needs doing, in one look."""
    critical, warning = int(summary.get("critical", 0) or 0), int(summary.get("warning", 0) or 0)
    if critical:
        return "critical", f"Action needed: {critical} critical" + (f", {warning} warning" if warning else "")
    if warning:
        return "warning", f"{warning} warning, nothing critical"
    return "ok", f"All {int(summary.get('total', 0) or 0)} endpoint(s) ok"


def render_html(endpoints: Iterable[dict], summary: dict, *, title: str = DEFAULT_TITLE, generated_at: str) -> str:
    """One self-contained page (inline CSS and JS, no external resource): counts, then the table worst first."""
    rows = [_html_row(item, rank) for rank, item in enumerate(endpoints)]
    cards = []
    for key, label, status_filter in (("total", "Total", ""), ("ok", "OK", "ok"), ("warning", "Warning", "warning"),
                                      ("critical", "Critical", "critical"), ("expired", "Expired", ""),
                                      ("expiring", "Expiring", "")):
        count = int(summary.get(key, 0) or 0)
        classes = f"card {key}" + (" zero" if count == 0 and key != "total" else "")
        data_filter = f' data-filter="{status_filter}"' if status_filter else ' data-filter=""' if key == "total" else ""
        cards.append(f'<div class="{classes}"{data_filter}><span class="num" id="count-{key}" data-count="{count}">{count}</span>'
                     f'<span class="label">{label}</span></div>')
    listed = len(rows)
    total = int(summary.get("total", listed) or 0)
    verdict = _verdict(summary)
    meta = f"Generated {_e(generated_at.replace('T', ' ').rstrip('Z'))} UTC &middot; {total} endpoint(s) scanned"
    if listed != total:
        meta += f" &middot; {listed} listed here"
    head_cells = "".join(f'<th data-key="{key}" data-type="{kind}" scope="col">{label}</th>' for key, label, kind, _width in _COLUMNS)
    columns = "".join(f'<col style="width:{width}">' if width else "<col>" for _key, _label, _kind, width in _COLUMNS)
    empty = '<tr><td colspan="8" class="none">No endpoints in these results.</td></tr>' if not rows else ""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="certfleet.tls cert_report">',
        f'<meta name="certfleet-generated-at" content="{_e(generated_at)}">',
        f"<title>{_e(title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        f'<header><h1>{_e(title)}</h1><p class="verdict {verdict[0]}" id="verdict">{verdict[1]}</p>'
        f'<p class="meta">{meta}</p></header>',
        '<section class="cards" id="summary">' + "".join(cards) + "</section>",
        '<div class="toolbar"><input type="search" id="filter" placeholder="Filter by name, host, subject, problem&hellip;" '
        f'aria-label="Filter"><span id="shown">{listed} of {listed} shown</span></div>',
        '<div class="wrap"><table id="endpoints">',
        f"<colgroup>{columns}</colgroup>",
        f"<thead><tr>{head_cells}</tr></thead>",
        "<tbody>",
        *rows,
        *([empty] if empty else []),
        "</tbody></table></div>",
        "<footer>Worst first: critical, warning, ok, then fewest days left. Click a column to sort, a count to filter.</footer>",
        f"<script>{_JS}</script>",
        "</body>",
        "</html>",
        "",
    ])


# --------------------------------------------------------------------------------------------
# the report set


RENDERERS = {"json": render_json, "csv": render_csv, "html": render_html, "prometheus": render_prometheus, "junit": render_junit}
# Where each format keeps generated_at (in its first lines), to re-render an existing report with its own time.
_GENERATED_AT = {
    "json": re.compile(r'^\{"generated_at": "([^"]+)"'),
    "html": re.compile(r'<meta name="certfleet-generated-at" content="([^"]+)">'),
    "prometheus": re.compile(r"^# certfleet\.tls cert_report generated_at (\S+)"),
    "junit": re.compile(r"<!-- certfleet\.tls cert_report generated_at (\S+) -->"),
}


def embedded_generated_at(fmt: str, content: bytes | None) -> str | None:
    """The generated_at an existing report of format ``fmt`` carries, or None."""
    pattern = _GENERATED_AT.get(fmt)
    if pattern is None or not content:
        return None
    match = pattern.search(content[:4096].decode("utf-8", "replace"))
    if not match:
        return None
    try:
        return iso(parse_timestamp(match.group(1), what="generated_at"))
    except CertfleetError:
        return None


def render(fmt: str, endpoints: Iterable[dict], summary: dict, *, title: str, generated_at: str, junit_warnings_fail: bool = False) -> str:
    """Text of one format."""
    if fmt not in RENDERERS:
        raise CertfleetError(f"formats: unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt == "junit":
        return render_junit(endpoints, summary, title=title, generated_at=generated_at, warnings_fail=junit_warnings_fail)
    return RENDERERS[fmt](endpoints, summary, title=title, generated_at=generated_at)


def decide_content(fmt: str, existing: bytes | None, endpoints: Iterable[dict], summary: dict, *, title: str,
                   generated_at: str, keep_generated_at: bool = True, junit_warnings_fail: bool = False) -> bytes | None:
    """The bytes to write, or None when ``existing`` already is this report.

    With ``keep_generated_at`` (no time given by the user) the existing report is first re-rendered
    with the timestamp it carries; if that reproduces it, the report keeps its file and its
    timestamp, which is then the time its content last changed. Without it ``generated_at`` is part
    of the content like anything else.
    """
    options = {"title": title, "junit_warnings_fail": junit_warnings_fail}
    previous = embedded_generated_at(fmt, existing) if keep_generated_at else None
    if previous and previous != generated_at:
        if render(fmt, endpoints, summary, generated_at=previous, **options).encode("utf-8") == existing:
            return None
    content = render(fmt, endpoints, summary, generated_at=generated_at, **options).encode("utf-8")
    return None if content == existing else content


# Ansible's own limit for diffs of files (MAX_FILE_SIZE_FOR_DIFF): larger reports are named, not shown.
MAX_DIFF_SIZE = 104448


def file_diff(path: str, before: bytes | None, after: bytes, *, limit: int = MAX_DIFF_SIZE) -> dict:
    """One entry of a module's ``diff`` list for a file that changes from ``before`` (None: absent) to ``after``."""
    entry = {"before_header": path if before is not None else f"{path} (absent)", "after_header": path}
    if before is not None and len(before) > limit:
        entry["dst_larger"] = limit
    elif after is not None and len(after) > limit:
        entry["src_larger"] = limit
    else:
        entry["before"] = (before or b"").decode("utf-8", "replace")
        entry["after"] = after.decode("utf-8", "replace")
    return entry


def report_paths(dest: str, basename: str, formats: Iterable[str], *, prometheus_path: str | None = None) -> dict:
    """Format -> file path: ``<dest>/<basename><suffix>``, the metrics at ``prometheus_path`` when given."""
    if not basename or "/" in basename or basename in (".", ".."):
        raise CertfleetError(f"basename: {basename!r} must be a plain file name without '/'")
    paths = {}
    for fmt in formats:
        if fmt not in SUFFIXES:
            raise CertfleetError(f"formats: unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        paths[fmt] = os.path.join(dest, basename + SUFFIXES[fmt])
    if prometheus_path and "prometheus" in paths:
        if prometheus_path in (path for fmt, path in paths.items() if fmt != "prometheus"):
            raise CertfleetError(f"prometheus_path: '{prometheus_path}' is where another report goes")
        paths["prometheus"] = prometheus_path
    return paths
