# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cert_report run in-process: files and modes, check mode, idempotence, diff, clean failures that write nothing."""

from __future__ import annotations

import json
import os
import stat
from unittest import mock

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._common import files as _files
from ansible_collections.certfleet.tls.plugins.modules import cert_report
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils.report_samples import endpoint, fleet

SUFFIXES = (".json", ".csv", ".html", ".prom", ".junit.xml")


def args(dest, **extra) -> dict:
    values = {"results": fleet(), "dest": str(dest)}
    values.update(extra)
    return {key: value for key, value in values.items() if value is not None}


def snapshot(directory) -> dict:
    """Every file under directory: relative path -> (bytes, mode, mtime_ns)."""
    found = {}
    for root, _dirs, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            info = os.stat(path)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, directory)] = (handle.read(), stat.S_IMODE(info.st_mode), info.st_mtime_ns)
    return found


def write_lines(path, items) -> str:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return str(path)


def test_writes_every_report_0644_into_a_new_directory(run_module, tmp_path):
    dest = tmp_path / "reports" / "daily"
    result = run_module(cert_report.main, args(dest))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and result["dest"] == str(dest)
    expected = {fmt: str(dest / f"certfleet-report{suffix}") for fmt, suffix in zip(("json", "csv", "html", "prometheus", "junit"), SUFFIXES)}
    assert result["files"] == expected and sorted(result["changed_files"]) == sorted(expected.values())
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o755
    for path in expected.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path
    assert sorted(os.listdir(dest)) == sorted(os.path.basename(path) for path in expected.values()), "no temporary files left"
    summary = result["summary"]
    assert (summary["total"], summary["ok"], summary["warning"], summary["critical"], summary["listed"]) == (8, 2, 2, 4, 8)
    assert [item["name"] for item in summary["worst"]] == ["expired", "soon", "untrusted", "closed", "expiring", "order"]
    assert json.loads((dest / "certfleet-report.json").read_text())["summary"]["critical"] == 4
    assert "diff" not in result


def test_second_run_changes_nothing_and_keeps_the_files(run_module, tmp_path):
    first = run_module(cert_report.main, args(tmp_path, generated_at="2026-12-04T09:00:00Z"))
    before = snapshot(tmp_path)
    # No time given: now, which differs from the reports' time; nothing else differs.
    again = run_module(cert_report.main, args(tmp_path))
    assert first["changed"] is True
    assert again["changed"] is False and again["changed_files"] == [], again["changed_files"]
    assert snapshot(tmp_path) == before
    assert "2026-12-04 09:00:00 UTC" in (tmp_path / "certfleet-report.html").read_text()


def test_a_given_time_is_written_and_repeating_it_is_idempotent(run_module, tmp_path):
    run_module(cert_report.main, args(tmp_path, generated_at="2026-12-04T09:00:00Z"))
    same = run_module(cert_report.main, args(tmp_path, generated_at="2026-12-04T18:00:00+09:00"))
    later = run_module(cert_report.main, args(tmp_path, generated_at="2026-12-05T09:00:00Z"))
    assert same["changed"] is False
    assert later["changed"] is True
    assert sorted(later["changed_files"]) == sorted(path for fmt, path in later["files"].items() if fmt != "csv")
    assert json.loads((tmp_path / "certfleet-report.json").read_text())["generated_at"] == "2026-12-05T09:00:00Z"


def test_check_mode_writes_nothing(run_module, tmp_path):
    dest = tmp_path / "new"
    result = run_module(cert_report.main, args(dest, _ansible_check_mode=True))
    assert result["changed"] is True and len(result["changed_files"]) == 5
    assert not dest.exists(), "check mode created the directory"
    run_module(cert_report.main, args(dest))
    before = snapshot(dest)
    items = fleet()
    items[0] = endpoint("healthy", index=0, failing={"trust": ("critical", "not trusted")})
    checked = run_module(cert_report.main, args(dest, results=items, _ansible_check_mode=True))
    assert checked["changed"] is True and checked["summary"]["critical"] == 5
    assert str(dest / "certfleet-report.csv") in checked["changed_files"]
    assert snapshot(dest) == before
    unchanged = run_module(cert_report.main, args(dest, _ansible_check_mode=True))
    assert unchanged["changed"] is False


def test_mode_drift_is_repaired_and_reported(run_module, tmp_path):
    run_module(cert_report.main, args(tmp_path))
    html = tmp_path / "certfleet-report.html"
    os.chmod(html, 0o600)
    result = run_module(cert_report.main, args(tmp_path))
    assert result["changed"] is True and result["changed_files"] == [str(html)]
    assert stat.S_IMODE(os.stat(html).st_mode) == 0o644


def test_formats_basename_and_prometheus_path(run_module, tmp_path):
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    other = tmp_path / "certfleet-report.csv"
    other.write_text("left alone\n")
    result = run_module(cert_report.main, args(tmp_path, formats=["prometheus", "html"], basename="prod",
                                               prometheus_path=str(textfile / "certfleet.prom"), title="Prod <TLS>"))
    assert result["files"] == {"prometheus": str(textfile / "certfleet.prom"), "html": str(tmp_path / "prod.html")}
    assert other.read_text() == "left alone\n"
    assert "certfleet_scan_endpoints{status=\"critical\"} 4" in (textfile / "certfleet.prom").read_text()
    assert "<title>Prod &lt;TLS&gt;</title>" in (tmp_path / "prod.html").read_text()


def test_results_path_and_the_scan_summary(run_module, tmp_path):
    problems = [item for item in fleet() if item["status"] != "ok"]
    path = write_lines(tmp_path / "scan.jsonl", problems)
    scan_summary = {"total": 250, "ok": 244, "warning": 2, "critical": 4, "expired": 1, "expiring": 2, "elapsed_seconds": 0.8,
                    "by_outcome": {"ok": 249, "refused": 1}}
    result = run_module(cert_report.main, {"results_path": path, "summary": scan_summary, "dest": str(tmp_path / "out")})
    assert not result.get("failed"), result.get("msg")
    assert (result["summary"]["total"], result["summary"]["ok"], result["summary"]["listed"]) == (250, 244, 6)
    assert "elapsed_seconds" not in result["summary"]
    page = (tmp_path / "out" / "certfleet-report.html").read_text()
    assert "250 endpoint(s) scanned &middot; 6 listed here" in page


def test_diff_mode(run_module, tmp_path):
    result = run_module(cert_report.main, args(tmp_path, formats=["csv", "html"], _ansible_diff=True))
    by_file = {entry["after_header"]: entry for entry in result["diff"]}
    csv_entry = by_file[str(tmp_path / "certfleet-report.csv")]
    assert csv_entry["before"] == "" and csv_entry["after"].startswith("name,host,port")
    again = run_module(cert_report.main, args(tmp_path, formats=["csv", "html"], _ansible_diff=True))
    assert "diff" not in again


@pytest.mark.parametrize("case, build, message", [
    ("results_path missing", lambda t: {"results_path": str(t / "nope.jsonl")}, "results_path: '{t}/nope.jsonl' does not exist"),
    ("results_path a directory", lambda t: {"results_path": str(t)}, "results_path: '{t}' is a directory"),
    ("results_path bad line", lambda t: {"results_path": write_lines(t / "scan.jsonl", fleet()[:2]) and _append(t / "scan.jsonl", "{oops\n")},
     "results_path: {t}/scan.jsonl line 3 is not JSON"),
    ("results bad status", lambda t: {"results": [{"status": "fine"}]}, "results[0]: status must be one of ok, warning, critical"),
    ("dest is a file", lambda t: {"dest": _touch(t / "file")}, "dest: '{t}/file' exists and is not a directory"),
    ("prometheus dir missing", lambda t: {"prometheus_path": str(t / "none" / "x.prom")}, "prometheus_path: directory '{t}/none' does not exist"),
    ("basename with slash", lambda t: {"basename": "a/b"}, "basename: 'a/b' must be a plain file name"),
    ("bad time", lambda t: {"generated_at": "tomorrow"}, "generated_at: 'tomorrow' is not an ISO 8601 date and time"),
    ("summary of another scan", lambda t: {"summary": {"total": 3}}, "summary: total is 3, but the results hold 8"),
    ("unknown format", lambda t: {"formats": ["pdf"]}, "value of formats must be one or more of"),
    ("no results at all", lambda t: {"results": None}, "one of the following is required: results, results_path"),
])
def test_bad_input_fails_cleanly_and_writes_nothing(run_module, tmp_path, case, build, message):
    work = tmp_path / "work"
    work.mkdir()
    dest = work / "reports"
    run_module(cert_report.main, args(dest))
    before = snapshot(work)
    options = args(dest)
    options.update(build(work))
    if "results_path" in options:
        options.pop("results")
    options = {key: value for key, value in options.items() if value is not None}
    result = run_module(cert_report.main, options)
    assert result.get("failed") is True, case
    assert message.format(t=work) in result["msg"], (case, result["msg"])
    assert "exception" not in result and "Traceback" not in result["msg"] and "unexpected error" not in result["msg"]
    after = snapshot(work)
    after.pop("scan.jsonl", None)
    after.pop("file", None)
    assert after == before, f"{case}: files changed"


def _append(path, text) -> str:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)
    return str(path)


def _touch(path) -> str:
    path.write_text("")
    return str(path)


def test_a_failed_write_leaves_each_report_whole(run_module, tmp_path):
    run_module(cert_report.main, args(tmp_path, generated_at="2026-12-04T09:00:00Z"))
    before = snapshot(tmp_path)
    real_replace = os.replace
    calls = []

    def failing_replace(source, target):
        calls.append(target)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    items = fleet()
    items[0] = endpoint("healthy", index=0, failing={"hostname": ("critical", "wrong host")})
    with mock.patch.object(_files.os, "replace", side_effect=failing_replace):
        result = run_module(cert_report.main, args(tmp_path, results=items, generated_at="2026-12-05T09:00:00Z"))
    assert result["failed"] is True and result["msg"].startswith("dest: no space left to write") and "exception" not in result
    after = snapshot(tmp_path)
    assert sorted(after) == sorted(before), "a temporary file was left behind"
    rewritten = [name for name in after if after[name][0] != before[name][0]]
    assert len(rewritten) == 2 and os.path.basename(calls[2]) not in rewritten
    complete = run_module(cert_report.main, args(tmp_path, results=items, generated_at="2026-12-05T09:00:00Z"))
    assert sorted(complete["changed_files"]) == sorted(str(tmp_path / name) for name in after if name not in rewritten)
