# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One deployment's outcome on one host, the same for every deployment role, and what follows from it.

This module is private to the certfleet.tls collection: its API may change
without notice. A deployment role (apache_ssl; iis_ssl later) sets ``certfleet_deploy_result``
from ``deploy_result``; the playbooks (deploy, verify) read only that variable, so a second role
feeds the same summary and the same fleet table. The history events a deployment records are
built here too, never by rendering YAML text.
"""

from __future__ import annotations

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

ROW_KEYS = ("site", "certificate", "host", "port", "server_name", "sha256", "matches_expected", "chain_complete",
            "trusted", "days_left", "ok", "problems")
TABLE_HEADER = ["host", "site", "served = intended", "served SHA-256", "chain complete", "trusted", "days left", "check"]
NO_ROWS = "no site was checked (no host with apache_ssl_sites, or all unreachable)"


def check_failure(rows: list[dict]) -> str | None:
    """``deploy check failed: <site>: <problems> | ...`` for the sites that are not ok, None when all are."""
    bad = [row for row in rows if not row.get("ok")]
    if not bad:
        return None
    return "deploy check failed: " + " | ".join(f"{row.get('site')}: {'; '.join(row.get('problems') or [])}" for row in bad)


def deploy_result(rows: list[dict] | None, *, target: str, sites: list | None = None, failure: str | None = None,
                  deployed: bool = False, transaction: str | None = None, certificates: list | None = None,
                  host_problems: list | None = None, host_notes: list | None = None) -> dict:
    """The role-neutral result of one host: ok, the failure, whether files changed, and one row per checked site.

    rows: the deploy check's rows (``deploy_check``), None when no check ran. sites: the deployed sites
    ({name, certificate}), to name each row's certificate. A check row that is not ok is a failure
    when no other failure is given. host_problems: what is wrong with the host beyond its sites (a configuration
    that fails its test); each one fails the result, before the check's failure. host_notes: what could not be
    looked at (shown, not a failure).
    """
    if not isinstance(target, str) or not target:
        raise CertfleetError("deploy_result: target (the deployment role's name) is required")
    certificate_of = {site.get("name"): site.get("certificate") for site in sites or [] if isinstance(site, dict)}
    checked = [{key: (certificate_of.get(row.get("site")) if key == "certificate" else row.get(key)) for key in ROW_KEYS}
               for row in rows or []]
    if failure is None and rows is not None:
        failure = check_failure(checked)
    problems = [str(problem) for problem in host_problems or [] if problem]
    if problems:
        failure = " | ".join(problems + ([failure] if failure else []))
    return {
        "target": target,
        "ok": failure is None,
        "failure": failure,
        "deployed": bool(deployed),
        "checked": rows is not None,
        "transaction": transaction,
        "certificates": list(certificates or []),
        "sites": checked,
        "host_problems": problems,
        "host_notes": [str(note) for note in host_notes or [] if note],
    }


def deploy_events(result: dict, *, host: str, record_verified: bool) -> list[dict]:
    """History events of a result: ``deployed`` per certificate when files changed, then one per checked site.

    A site that is wrong always gets ``verify_failed``; a site that is right gets ``verified`` only with
    ``record_verified`` (something was deployed, or the check was asked for on its own), so an
    unchanged re-run that finds every site right records nothing.
    """
    events = []
    for problem in result.get("host_problems") or []:
        for certificate in sorted({row.get("certificate") for row in result.get("sites") or [] if row.get("certificate")}):
            events.append({"certificate": certificate, "event": "verify_failed", "host": host, "message": problem})
    if result.get("deployed"):
        events.extend({"certificate": item["name"], "event": "deployed", "host": host, "sha256": item.get("sha256"),
                       "message": f"transaction {result.get('transaction')}"} for item in result.get("certificates") or [])
    for row in result.get("sites") or []:
        if row["ok"] and not record_verified:
            continue
        message = f"served by {row['host']}:{row['port']} for {row['server_name']}"
        events.append({"certificate": row["certificate"], "event": "verified" if row["ok"] else "verify_failed",
                       "host": host, "site": row["site"], "port": row["port"], "sha256": row["sha256"],
                       "message": message if row["ok"] else f"{message}: {'; '.join(row['problems'])}"})
    return events


def deploy_failed_events(sites: list | None, *, host: str, message: str, ports: bool = True) -> list[dict]:
    """One ``deploy_failed`` event per site (sites with state absent are left out), each with the message."""
    events = []
    for site in sites or []:
        if not isinstance(site, dict) or (site.get("state") or "present") == "absent":
            continue
        event = {"certificate": site.get("certificate"), "event": "deploy_failed", "host": host, "site": site.get("name")}
        if ports and site.get("port") is not None:
            event["port"] = site["port"]
        event["message"] = message
        events.append(event)
    return events


def host_failure(failure: str | None, *, unreachable_before: bool = False, gone: bool = False,
                 deadline_over: bool = False, deadline: int | None = None) -> str:
    """The summary's and the history's words for a host whose deploy step failed, the cause first.

    unreachable_before: the first contact failed (nothing was attempted); deadline_over: the host's
    deploy step ran out of its ``deadline`` seconds; gone: the host stopped answering during its deploy.
    failure: the step's own message (the role's result, or the failed task's).
    """
    text = failure or "no answer"
    if unreachable_before:
        return f"host unreachable: {text}"
    if deadline_over:
        return f"deadline of {deadline} s (certfleet_deploy_host_timeout) exceeded: {text}"
    if gone:
        return f"host unreachable during its deploy: {text}"
    return text


def _yes_no(value) -> str:
    return {True: "yes", False: "NO"}.get(value, "-")


def _short_sha256(value) -> str:
    text = (value or "-").replace(":", "").lower()
    # 16 characters and an ellipsis: enough to tell two certificates apart in a table.
    return text if len(text) <= 19 else text[:16] + "..."


def deploy_table(results: list) -> str:
    """The fleet table as text: one line per checked site of every host ([host, certfleet_deploy_result] pairs, in order)."""
    rows = []
    for host, result in results or []:
        for row in (result or {}).get("sites") or []:
            rows.append([host, row.get("site"), "yes" if row.get("matches_expected") else "NO", _short_sha256(row.get("sha256")),
                         _yes_no(row.get("chain_complete")), _yes_no(row.get("trusted")),
                         row["days_left"] if row.get("days_left") is not None else "-",
                         "ok" if row.get("ok") else "FAILED: " + "; ".join(row.get("problems") or [])])
    widths = [max([len(TABLE_HEADER[column])] + [len(str(line[column])) for line in rows]) for column in range(7)]
    lines = [" | ".join(f"{str(line[column]):<{widths[column]}}" for column in range(7)) + f" | {line[7]}"
             for line in [TABLE_HEADER] + rows]
    if not rows:
        lines.append(NO_ROWS)
    for host, result in results or []:
        lines.extend(f"{host}: FAILED: {problem}" for problem in (result or {}).get("host_problems") or [])
        lines.extend(f"{host}: {note}" for note in (result or {}).get("host_notes") or [])
    return "".join(line + "\n" for line in lines)


CONFIGTEST_LINES = 5
CONFIGTEST_CHARS = 600


def configtest_findings(result: dict | None, *, command: str = "apachectl -t") -> dict:
    """What a registered run of the configuration test says: {problems: [...], notes: [...]}, each empty when fine.

    result: the registered result of the task that ran the test (raw or command, failed_when false,
    ignore_unreachable true); None or skipped: nothing to say. Apache's words are kept (the last lines
    of its output, bounded), as they name the file and line that break the configuration.
    """
    if not isinstance(result, dict) or result.get("skipped"):
        return {"problems": [], "notes": []}
    if result.get("unreachable"):
        return {"problems": [], "notes": [f"configuration not tested ({command}): host unreachable"]}
    if result.get("rc") == 0:
        return {"problems": [], "notes": []}
    text = "\n".join(str(result.get(key) or "") for key in ("stderr", "stdout", "msg"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and line.strip() != "Syntax OK"]
    said = " / ".join(lines[-CONFIGTEST_LINES:]) or f"exit code {result.get('rc')}"
    if len(said) > CONFIGTEST_CHARS:
        said = said[:CONFIGTEST_CHARS] + "..."
    return {"problems": [f"configuration test fails ({command}): {said}"], "notes": []}
