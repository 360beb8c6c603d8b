#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cert_report
short_description: Turn cert_scan endpoint results into JSON, CSV, HTML, Prometheus and JUnit reports
version_added: 0.2.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Reads the endpoint results of M(certfleet.tls.cert_scan) - the RV(certfleet.tls.cert_scan#module:endpoints) list, the
    JSON lines file of its O(certfleet.tls.cert_scan#module:results_path), or both - and writes reports into O(dest),
    worst endpoint first (critical, warning, ok, then fewest days left).
  - V(json) - the summary and every endpoint result; V(csv) - one row per endpoint; V(html) - one self-contained page
    (inline CSS and JavaScript, no external resource) with the counts at the top and a colour-coded table that sorts by
    clicking a column; V(prometheus) - textfile metrics for the node_exporter textfile collector with the metric and
    label names of the x509-certificate-exporter plus C(certfleet_*) endpoint and scan metrics; V(junit) - JUnit XML
    with one test case per endpoint for CI and AWX.
  - A JSON lines file is read once to validate and index it and then line by line per report, so 10,000 endpoints do not
    sit in memory at once.
  - Every file is written through a temporary file in its directory and renamed into place, mode C(0644), so a reader
    (a web server, the textfile collector) sees the old report or the new one, never part of one. Every destination is
    checked before the first file is written. A report whose content would only differ by its generation time is not
    rewritten (see O(generated_at)).
attributes:
  check_mode:
    details: Renders every report and returns what would change in RV(changed_files); writes nothing and creates no directory.
  diff_mode:
    support: full
    details: One diff per report that changes; a report larger than 100 KiB (Ansible's limit for file diffs) is named, not
      shown.
extends_documentation_fragment:
  - certfleet.tls.attributes
options:
  results:
    description:
      - Endpoint results as RV(certfleet.tls.cert_scan#module:endpoints) returns them.
      - Each needs C(status) (V(ok), V(warning) or V(critical)); every other key is optional and shown when present.
      - With O(results_path) too, the reports hold both.
    type: list
    elements: dict
  results_path:
    description:
      - A JSON lines file written by O(certfleet.tls.cert_scan#module:results_path), one endpoint result per line.
        Blank lines are skipped; a line that is not a JSON endpoint object fails the task, naming the line number.
      - A JSON document works too - a list of endpoint results, or an object with an C(endpoints) list such as a saved
        cert_scan result or the JSON report of this module; its C(summary), if any, is used when O(summary) is not given.
    type: path
  summary:
    description:
      - The RV(certfleet.tls.cert_scan#module:summary) of the same scan. Its counts (C(total), C(ok), C(warning),
        C(critical), C(expired), C(expiring)) are the ones shown, so a scan with
        O(certfleet.tls.cert_scan#module:return_endpoints=problems) reports the whole fleet's counts while listing only the
        problems. Its C(by_outcome), C(by_check), C(backend) ... go into the JSON report; its timing keys
        (C(elapsed_seconds), C(endpoints_per_second)) are left out.
      - Without it, the counts are computed over the endpoints given.
    type: dict
  dest:
    description: Directory for the reports; created with mode C(0755) (and its parents) when missing.
    type: path
    required: true
  formats:
    description: Reports to write.
    type: list
    elements: str
    choices: [json, csv, html, prometheus, junit]
    default: [json, csv, html, prometheus, junit]
  basename:
    description:
      - File name without suffix - C(<basename>.json), C(<basename>.csv), C(<basename>.html), C(<basename>.prom) and
        C(<basename>.junit.xml).
    type: str
    default: certfleet-report
  prometheus_path:
    description:
      - Write the metrics here instead of C(<dest>/<basename>.prom), typically into the textfile collector directory of
        node_exporter (its name must end in C(.prom) for the collector to read it). The directory must exist.
    type: path
  title:
    description: Title of the HTML page and name of the JUnit test suite.
    type: str
    default: certfleet TLS certificate report
  generated_at:
    description:
      - ISO 8601 time the reports say they were generated (C(Z) or an offset; without one, UTC), to the second.
      - The reports carry it (JSON C(generated_at), HTML header, C(certfleet_report_generated_timestamp_seconds), JUnit
        C(timestamp); the CSV has rows only).
      - When not given, the time is now, but an existing report that is the same apart from its time is kept as it is,
        with its older time - which is then the time its content last changed - and the task reports no change.
      - When given, it is part of the content like everything else - the same time gives the same reports, a new time
        rewrites every report that carries one.
    type: str
  junit_warnings_fail:
    description:
      - Make endpoints with status V(warning) JUnit failures too. By default only V(critical) endpoints are failures and
        the warnings of a passing test case are written to its C(system-out).
    type: bool
    default: false
notes:
  - Certificate subjects, issuers and messages come from the scanned servers and are treated as hostile - HTML-escaped
    in the page (whose Content-Security-Policy allows only its own inline script and style), XML-escaped in JUnit,
    escaped per the Prometheus text format in labels, and prefixed with C(') in the CSV when a spreadsheet would read
    them as a formula (C(=), C(+), C(-), C(@)).
  - Reports of formats not listed in O(formats) are left alone.
seealso:
  - module: certfleet.tls.cert_scan
  - name: docs/reports.md
    description: Every format, the metric names and labels, and a playbook from scan to report.
    link: https://github.com/certfleet/certfleet.tls/blob/main/docs/reports.md
"""

EXAMPLES = r"""
- name: Scan the fleet, streaming the results to a file
  certfleet.tls.cert_scan:
    targets: "{{ certfleet_monitor_targets }}"
    results_path: /var/lib/certfleet/scan.jsonl
  register: scan
  delegate_to: localhost

- name: Reports from the scan
  certfleet.tls.cert_report:
    results_path: /var/lib/certfleet/scan.jsonl
    summary: "{{ scan.summary }}"
    dest: /var/www/certfleet
    title: TLS certificates - production
  register: report
  delegate_to: localhost

- name: Metrics only, into node_exporter's textfile directory
  certfleet.tls.cert_report:
    results: "{{ scan.endpoints }}"
    summary: "{{ scan.summary }}"
    dest: /var/lib/certfleet/reports
    formats: [prometheus]
    prometheus_path: /var/lib/node_exporter/textfile_collector/certfleet.prom

- name: JUnit for the CI job, warnings count as failures
  certfleet.tls.cert_report:
    results_path: "{{ playbook_dir }}/scan.jsonl"
    dest: "{{ playbook_dir }}/reports"
    formats: [junit, html]
    junit_warnings_fail: true

- name: Show the worst endpoints
  ansible.builtin.debug:
    msg: "{{ report.summary.worst | map(attribute='problems') | list }}"
  when: report.summary.critical > 0
"""

RETURN = r"""
files:
  description: Path of each report requested, by format, whether it changed or not.
  returned: success
  type: dict
  sample: {"json": "/var/www/certfleet/certfleet-report.json", "csv": "/var/www/certfleet/certfleet-report.csv",
           "html": "/var/www/certfleet/certfleet-report.html", "prometheus": "/var/www/certfleet/certfleet-report.prom",
           "junit": "/var/www/certfleet/certfleet-report.junit.xml"}
dest:
  description: O(dest) as an absolute path.
  returned: success
  type: str
  sample: /var/www/certfleet
changed_files:
  description: Paths of the reports written (in check mode, that would be written), content or mode changed.
  returned: success
  type: list
  elements: str
  sample: ["/var/www/certfleet/certfleet-report.html"]
summary:
  description: The counts the reports show.
  returned: success
  type: dict
  contains:
    total:
      description: Endpoints scanned (from O(summary) when given, else the endpoints in the results).
      type: int
    ok:
      description: Endpoints whose every check is V(ok).
      type: int
    warning:
      description: Endpoints whose worst check is a V(warning).
      type: int
    critical:
      description: Endpoints with a V(critical) check.
      type: int
    expired:
      description: Endpoints whose leaf had expired.
      type: int
    expiring:
      description: Endpoints whose leaf is inside the warning or critical window, not yet expired.
      type: int
    listed:
      description: Endpoints in the results (fewer than RV(summary.total) when cert_scan returned only problems).
      type: int
    by_outcome:
      description: Endpoints per network outcome.
      type: dict
      sample: {"ok": 250, "refused": 3}
    by_check:
      description: For each check, endpoints with it at V(warning) and V(critical).
      type: dict
      sample: {"expiry": {"warning": 2, "critical": 1}}
    worst:
      description: The first 10 endpoints that are not V(ok), worst first.
      type: list
      elements: dict
      contains:
        name:
          description: The target's name, if any.
          type: str
        host:
          description: Host scanned.
          type: str
        port:
          description: Port.
          type: int
        server_name:
          description: SNI sent.
          type: str
        status:
          description: V(warning) or V(critical).
          type: str
        outcome:
          description: Network outcome.
          type: str
        days_left:
          description: Days left on the leaf (null when none was presented).
          type: int
        problems:
          description: C(check - message) of each check that is not V(ok).
          type: list
          elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._report import reports as _reports
from ansible_collections.certfleet.tls.plugins.module_utils._common.files import check_writable_directory, read_file, write_file_atomic
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import run_or_fail
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso, parse_timestamp, utc_now
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

DIRECTORY_MODE = 0o755
FILE_MODE = "0644"


def _check_destinations(dest: str, paths: dict, options: dict) -> bool:
    """Fail before anything is read or written when a destination cannot take its report; True when dest must be made."""
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise CertfleetError(f"dest: '{dest}' exists and is not a directory")
    for fmt, path in paths.items():
        if os.path.dirname(path) == dest and not os.path.isdir(dest):
            continue  # made below, then writable
        check_writable_directory(path, option=options[fmt])
    return not os.path.isdir(dest)


def report(module: AnsibleModule) -> dict:
    """Validate everything and decide each report first, then write those that changed (unless check mode)."""
    params = module.params
    dest = os.path.abspath(params["dest"])
    prometheus_path = os.path.abspath(params["prometheus_path"]) if params["prometheus_path"] else None
    paths = _reports.report_paths(dest, params["basename"], params["formats"], prometheus_path=prometheus_path)
    options = {fmt: "prometheus_path" if fmt == "prometheus" and prometheus_path else "dest" for fmt in paths}
    make_dest = _check_destinations(dest, paths, options)
    given_time = params["generated_at"]
    generated_at = iso(parse_timestamp(given_time or utc_now(), what="generated_at"))
    endpoints = _reports.EndpointSet(results=params["results"], results_path=params["results_path"])
    summary = _reports.report_summary(endpoints.counts.as_dict(), params["summary"] or endpoints.file_summary)
    if make_dest and not module.check_mode:
        try:
            os.makedirs(dest, mode=DIRECTORY_MODE)
            os.chmod(dest, DIRECTORY_MODE)
        except OSError as exc:
            raise CertfleetError(f"dest: cannot create directory '{dest}' ({exc.strerror})") from None
    changed_files, diff = [], []
    # One report at a time: 10,000 endpoints make reports of megabytes, only one is held at once.
    for fmt, path in paths.items():
        existing = read_file(path, option=options[fmt])
        content = _reports.decide_content(fmt, existing, endpoints, summary, title=params["title"], generated_at=generated_at,
                                          keep_generated_at=not given_time, junit_warnings_fail=params["junit_warnings_fail"])
        file_changed = content is not None
        if file_changed and not module.check_mode:
            write_file_atomic(path, content, option=options[fmt])
        if os.path.exists(path):
            # In check mode this only says whether the mode would change.
            file_changed = module.set_mode_if_different(path, FILE_MODE, file_changed)
        if file_changed:
            changed_files.append(path)
        if content is not None and module._diff:  # pylint: disable=protected-access
            diff.append(_reports.file_diff(path, existing, content))
    summary["worst"] = _reports.worst_endpoints(endpoints)
    result = {"changed": make_dest or bool(changed_files), "files": paths, "changed_files": changed_files, "summary": summary,
              "dest": dest}
    if diff:
        result["diff"] = diff
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            results=dict(type="list", elements="dict"),
            results_path=dict(type="path"),
            summary=dict(type="dict"),
            dest=dict(type="path", required=True),
            formats=dict(type="list", elements="str", choices=list(_reports.FORMATS), default=list(_reports.FORMATS)),
            basename=dict(type="str", default="certfleet-report"),
            prometheus_path=dict(type="path"),
            title=dict(type="str", default=_reports.DEFAULT_TITLE),
            generated_at=dict(type="str"),
            junit_warnings_fail=dict(type="bool", default=False),
        ),
        required_one_of=[("results", "results_path")],
        supports_check_mode=True,
    )
    result = run_or_fail(module, lambda: report(module), doing="while writing the reports")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
