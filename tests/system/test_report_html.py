"""cert_scan -> cert_report through a real ansible-playbook run, the HTML page opened in headless Chromium."""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from html.parser import HTMLParser

import pytest
import yaml

from playbook_helpers import recap

from collection_link import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT_COPY = "/tmp/certfleet-report.png"
# Everything that could reach the network is off: the page must render from the file alone.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND"]
WINDOW = (1400, 1000)
# The summary cards' numbers, as the page colours them (CSS --crit, --ok, --warn).
CARD_COLOURS = {"critical": (0xC6, 0x28, 0x28), "ok": (0x1A, 0x7F, 0x37), "warning": (0x9A, 0x67, 0x00)}


@pytest.fixture(scope="module")
def chromium():
    # A required peer of this test: CI must fail, not skip, when it is missing.
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install it (apt-get install -y chromium); the HTML report test needs a browser")
    return CHROMIUM


@pytest.fixture(scope="module")
def report(tmp_path_factory, scan_range):
    """Scan every scenario of the range into a JSON lines file, then cert_report it; returns paths and registered data."""
    work = tmp_path_factory.mktemp("report_playbook")
    targets = scan_range.scan_targets()
    results = work / "scan.jsonl"
    reports = work / "reports"
    tasks = [
        {"name": "Scan the range", "certfleet.tls.cert_scan": {
            "targets": targets, "timeout": 1.5, "results_path": str(results),
            "trusted_ca_sets": {"default": {"system": False, "certificates": [scan_range.trust_path]}}},
         "register": "scan"},
        {"name": "Reports", "certfleet.tls.cert_report": {
            "results_path": str(results), "summary": "{{ scan.summary }}", "dest": str(reports),
            "title": "Scan range <test> & co"}, "register": "written"},
        {"name": "Reports again", "certfleet.tls.cert_report": {
            "results_path": str(results), "summary": "{{ scan.summary }}", "dest": str(reports),
            "title": "Scan range <test> & co"}, "register": "again"},
        {"name": "Keep what was registered", "ansible.builtin.copy": {
            "content": "{{ {'scan': scan.summary, 'written': written, 'again': again} | to_json }}",
            "dest": str(work / "registered.json"), "mode": "0600"}},
    ]
    playbook = work / "playbook.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Report test", "hosts": "localhost", "connection": "local",
                                         "gather_facts": False, "tasks": tasks}], sort_keys=False))
    return {"work": work, "playbook": playbook, "results": results, "reports": reports, "names": list(scan_range.endpoints),
            "scan_range": scan_range}


def run_playbook(ansible_playbook, report) -> dict:
    """Run the playbook once per test module; the registered results of that run."""
    if "registered" not in report:
        run = ansible_playbook([str(report["playbook"])], cwd=report["work"])
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-4000:]
        assert "Traceback" not in output
        assert recap(run.stdout)["failed"] == 0
        report["registered"] = json.loads((report["work"] / "registered.json").read_text())
    return report["registered"]


class _Dom(HTMLParser):
    """The counts, the header sort state and the table rows of a dumped report DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict = {}
        self.sorted: dict = {}
        self.rows: list = []
        self.scripts = self.external = 0
        self._count = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in ("link", "img", "iframe", "object", "embed") or (tag == "script" and attributes.get("src")):
            self.external += 1
        self.scripts += tag == "script"
        if tag == "span" and (attributes.get("id") or "").startswith("count-"):
            self._count = attributes["id"][len("count-"):]
            self.counts[self._count] = {"data": int(attributes["data-count"]), "text": ""}
        if tag == "th" and attributes.get("aria-sort"):
            self.sorted[attributes["data-key"]] = attributes["aria-sort"]
        if tag == "tr" and attributes.get("data-status"):
            self.rows.append({"status": attributes["data-status"], "rank": int(attributes["data-rank"]), "cells": []})
        if tag == "td" and self.rows:
            self.rows[-1]["cells"].append(attributes.get("data-sort"))

    def handle_data(self, data):
        if self._count:
            self.counts[self._count]["text"] += data

    def handle_endtag(self, tag):
        if tag == "span":
            self._count = None


def browse(chromium, url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="certfleet-report-chromium-")
    try:
        return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def png_rows(path, count: int) -> tuple:
    """(width, height, the first ``count`` rows as lists of RGB tuples) of an 8-bit RGB/RGBA, non-interlaced PNG."""
    with open(path, "rb") as handle:
        data = handle.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat, header = 8, [], None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        chunk = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        position += 12 + length
    width, height, depth, colour, _compression, _filter, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    stride = width * channels
    raw = zlib.decompressobj().decompress(b"".join(idat), (stride + 1) * count)
    rows, previous = [], bytearray(stride)
    for number in range(min(count, height)):
        kind, line = raw[number * (stride + 1)], bytearray(raw[number * (stride + 1) + 1:(number + 1) * (stride + 1)])
        for index in range(stride):
            left = line[index - channels] if index >= channels else 0
            up = previous[index]
            upper_left = previous[index - channels] if index >= channels else 0
            if kind == 1:
                line[index] = (line[index] + left) & 0xFF
            elif kind == 2:
                line[index] = (line[index] + up) & 0xFF
            elif kind == 3:
                line[index] = (line[index] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - upper_left
                distances = (abs(estimate - left), abs(estimate - up), abs(estimate - upper_left))
                line[index] = (line[index] + (left, up, upper_left)[distances.index(min(distances))]) & 0xFF
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, channels)])
        previous = line
    return width, height, rows


def colour_pixels(rows, colour, *, top: int, bottom: int, tolerance: int = 24) -> int:
    """Pixels within ``tolerance`` of ``colour`` in rows top..bottom."""
    return sum(1 for row in rows[top:bottom] for pixel in row
               if all(abs(channel - wanted) <= tolerance for channel, wanted in zip(pixel, colour)))


def test_scan_report_in_a_browser(ansible_playbook, report, chromium, tmp_path):
    registered = run_playbook(ansible_playbook, report)
    scan, written, again = registered["scan"], registered["written"], registered["again"]
    html_path = written["files"]["html"]
    assert written["changed"] is True and sorted(written["changed_files"]) == sorted(written["files"].values())
    assert again["changed"] is False and again["changed_files"] == [], "second run rewrote reports"
    for key in ("total", "ok", "warning", "critical", "expired", "expiring"):
        assert written["summary"][key] == scan[key], key
    # The range has every class: the page must show critical, warning and ok rows.
    assert scan["critical"] > 0 and scan["warning"] > 0 and scan["ok"] > 0
    assert written["summary"]["worst"][0]["status"] == "critical" and len(written["summary"]["worst"]) == 10

    screenshot = tmp_path / "report.png"
    shot = browse(chromium, f"file://{html_path}", f"--screenshot={screenshot}", f"--window-size={WINDOW[0]},{WINDOW[1]}")
    assert screenshot.is_file(), shot.stderr[-2000:]
    shutil.copyfile(screenshot, SCREENSHOT_COPY)
    width, height, rows = png_rows(screenshot, 240)
    assert (width, height) == WINDOW
    # The summary (title, verdict and count cards) fills the top 230 pixels: each status count is drawn in its colour there.
    for status, colour in CARD_COLOURS.items():
        assert colour_pixels(rows, colour, top=60, bottom=230) > 40, f"no {status} count drawn in the summary ({SCREENSHOT_COPY})"
    assert len({pixel for row in rows[:230] for pixel in row}) > 50, "summary area is blank"

    dumped = browse(chromium, f"file://{html_path}", "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = _Dom()
    dom.feed(dumped.stdout)
    for key in ("total", "ok", "warning", "critical", "expired", "expiring"):
        assert dom.counts[key]["data"] == scan[key] and dom.counts[key]["text"].strip() == str(scan[key]), key
    assert dom.external == 0 and dom.scripts == 1, "the page must hold one inline script and load nothing"
    statuses = [row["status"] for row in dom.rows]
    assert len(statuses) == scan["total"]
    assert statuses == sorted(statuses, key=["critical", "warning", "ok"].index), "not worst first"
    assert "Scan range &lt;test&gt; &amp; co" in dumped.stdout and "<test>" not in dumped.stdout


def test_sort_by_clicking_runs_in_the_browser(ansible_playbook, report, chromium):
    registered = run_playbook(ansible_playbook, report)
    html_path = registered["written"]["files"]["html"]
    # A sort in the URL fragment is replayed as clicks on that header (one: ascending, two: descending), so this
    # runs the page's click handler in the browser.
    for key, direction in (("days_left", "asc"), ("days_left", "desc"), ("endpoint", "asc"), ("not_after", "desc")):
        dumped = browse(chromium, f"file://{html_path}#sort={key}-{direction}", "--dump-dom")
        dom = _Dom()
        dom.feed(dumped.stdout)
        assert dom.sorted == {key: "ascending" if direction == "asc" else "descending"}, dumped.stdout[-1500:]
        column = {"days_left": 2, "endpoint": 1, "not_after": 3}[key]
        values = [row["cells"][column] for row in dom.rows]
        if key == "days_left":
            values = [float(value) for value in values]
        assert values == sorted(values, reverse=direction == "desc"), (key, direction, values)
        assert len(dom.rows) == len(report["names"])


def test_the_playbook_of_docs_reports_md(ansible_playbook, scan_range, tmp_path):
    text = (REPO_ROOT / "docs" / "reports.md").read_text(encoding="utf-8")
    section = text.split("## From scan to report", 1)[1]
    playbook = tmp_path / "scan-and-report.yml"
    playbook.write_text(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps({
        "scan_targets": scan_range.scan_targets(), "report_dir": str(tmp_path / "reports"),
        "scan_trusted_ca_sets": {"default": {"system": False, "certificates": [scan_range.trust_path]}}}))
    run = ansible_playbook([str(playbook), "-e", f"@{variables}"], cwd=tmp_path)
    output = run.stdout + run.stderr
    # The range has critical endpoints: the last task fails the run, naming their problems, as AWX needs.
    assert run.returncode == 2 and "Traceback" not in output, output[-4000:]
    assert recap(run.stdout)["failed"] == 1 and "expiry: expired on" in run.stdout, run.stdout[-3000:]
    reports = sorted(os.listdir(tmp_path / "reports"))
    assert reports == sorted(["scan.jsonl"] + [f"certfleet-report{suffix}" for suffix in (".json", ".csv", ".html", ".prom", ".junit.xml")])
    listed = json.loads((tmp_path / "reports" / "certfleet-report.json").read_text())
    assert len(listed["endpoints"]) == listed["summary"]["total"] == len(scan_range.endpoints)
