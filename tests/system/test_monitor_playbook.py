# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""certfleet.tls.monitor and certfleet.tls.discover through real ansible-playbook runs.

Against the loopback scan range (one real TLS server per problem class), a real aiosmtpd SMTP
server (STARTTLS + AUTH) and an HTTP webhook receiver on 127.0.0.1 (notify_peers). Without
aiosmtpd the tests fail saying so; none is skipped.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from cryptography.x509.oid import NameOID

from notify_peers import SMTP_PASSWORD, SMTP_USER
from playbook_helpers import recap

from ansible_collections.certfleet.tls.plugins.module_utils._scan import monitor as _monitor
from ansible_collections.certfleet.tls.tests.scan_range.pki import pem_of

TOKEN = "tok-5b2e19-monitor-webhook-do-not-leak"
LIFECYCLE = ("fingerprint_match", "fingerprint_mismatch")
HEALTHY = ("healthy", "fingerprint_match", "smtp_starttls")


def definition(scan_range, name: str) -> dict:
    """The definition of one scenario: lifecycle-managed for the fingerprint ones, else monitored-only."""
    scenario = scan_range.scenario(name)
    host, port = scan_range.endpoints[name]
    endpoint = {"host": host, "port": port, "server_name": scenario.server_name}
    if scenario.kind.startswith("smtp"):
        endpoint["starttls"] = "smtp"
    # The range's CA is private: its root is the trusted CA set "range" of every definition.
    entry = {"name": name, "common_name": scenario.server_name, "endpoints": [endpoint], "trusted_ca_set": "range"}
    if name not in LIFECYCLE:
        entry["mode"] = "monitored_only"
    return entry


def make_inventory(tmp_path: Path, scan_range, names, **extra) -> Path:
    """An inventory directory: localhost, the definitions, a store with the lifecycle-managed fullchains."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True, exist_ok=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    variables = {
        "certfleet_certificates": [definition(scan_range, name) for name in names],
        "certfleet_trusted_ca_sets": {"range": {"system": False, "certificates": [scan_range.trust_path]}},
        "cert_monitor_report_dir": str(tmp_path / "reports"),
        "cert_monitor_timeout": 1.5,
        "cert_monitor_deadline": 30,
    }
    variables.update(extra)
    (inventory / "group_vars" / "all.yml").write_text(yaml.safe_dump(variables, sort_keys=False))
    for name in names:
        if name in LIFECYCLE:
            served = scan_range.scenario(name).chain
            # The store's current certificate: what is served for the match, another leaf for the mismatch.
            stored = served if name == "fingerprint_match" else scan_range.scenario("expired").chain
            directory = inventory / "cert_store" / "certs" / name
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "fullchain.pem").write_bytes(pem_of(stored))
    return inventory


def history(inventory: Path, name: str) -> list:
    path = inventory / "cert_store" / "certs" / name / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_monitor_classifies_reports_notifies_and_fails_last(tmp_path, ansible_playbook, scan_range, smtp, http_peer, pki):
    names = list(scan_range.endpoints)
    inventory = make_inventory(tmp_path, scan_range, names, smtp_password=SMTP_PASSWORD, webhook_token=TOKEN,
                               cert_monitor_notify_on="always", cert_monitor_report_url="https://reports.monitor.test/",
                               cert_monitor_email={"host": "127.0.0.1", "port": smtp.port, "username": SMTP_USER,
                                                   "password": "{{ smtp_password }}", "from": "certs@monitor.test",
                                                   "to": ["admin@monitor.test"], "ca_path": pki.ca_path, "timeout": 10},
                               cert_monitor_webhook={"url": http_peer.url("/monitor"),
                                                     "headers": {"Authorization": "Bearer {{ webhook_token }}"}})
    run = ansible_playbook(["-i", str(inventory), "certfleet.tls.monitor", "-v"], cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 2, output[-4000:]
    assert "Traceback" not in output and SMTP_PASSWORD not in output and TOKEN not in output
    assert recap(run.stdout)["failed"] == 1
    # The run fails on its last task, after reports, notifications and history.
    assert "TASK [certfleet.tls.cert_monitor : Fail when a threshold is crossed or the notification failed]" in run.stdout
    assert run.stdout.index("Send the summary by email") < run.stdout.index("fatal:")
    critical = sum(1 for name in names if scan_range.scenario(name).status == "critical")
    warning = sum(1 for name in names if scan_range.scenario(name).status == "warning")
    assert f"certificate compliance: {critical} critical, {warning} warning of {len(names)} endpoint(s)" in run.stdout
    assert "CRITICAL fingerprint_mismatch 127.0.0.1:" in run.stdout

    reports = tmp_path / "reports"
    for suffix in ("json", "csv", "html", "prom", "junit.xml"):
        assert (reports / f"certfleet-report.{suffix}").stat().st_size > 0, suffix
    report = json.loads((reports / "certfleet-report.json").read_text())
    by_name = {item["name"]: item for item in report["endpoints"]}
    assert set(by_name) == set(names)
    for name in names:
        scenario, item = scan_range.scenario(name), by_name[name]
        assert (item["outcome"], item["status"]) == (scenario.outcome, scenario.status), name
        for check, level in scenario.failing.items():
            assert item["checks"][check]["status"] == level, (name, check)
        assert item["mode"] == ("lifecycle_managed" if name in LIFECYCLE else "monitored_only"), name
    assert by_name["fingerprint_match"]["matches_expected"] is True
    assert by_name["fingerprint_mismatch"]["matches_expected"] is False
    assert by_name["untrusted_private_ca"]["trusted_ca_set"] == "range"
    assert report["summary"]["critical"] == critical and report["summary"]["warning"] == warning

    [received] = smtp.handler.messages
    assert received.authenticated and received.tls and received.rcpt_tos == ["admin@monitor.test"]
    message = received.message
    assert message["Subject"] == f"[CRITICAL] certfleet: {critical} critical, {warning} warning of {len(names)} endpoints"
    body = message.get_body(("plain",)).get_content()
    assert "expired (127.0.0.1:" in body and "https://reports.monitor.test/" in body
    attached = sorted(part.get_filename() for part in message.iter_attachments())
    assert attached == ["certfleet-report.csv", "certfleet-report.html"]

    [request] = http_peer.requests
    assert request.path == "/monitor" and request.headers["Authorization"] == f"Bearer {TOKEN}"
    payload = request.json
    assert payload["status"] == "critical"
    assert (payload["summary"]["total"], payload["summary"]["critical"]) == (len(names), critical)
    assert "expired" in {item["name"] for item in payload["endpoints"]}

    [failed] = history(inventory, "fingerprint_mismatch")
    assert failed["event"] == "monitor_failed" and failed["status"] == "critical" and "fingerprint" in failed["message"]
    [fine] = history(inventory, "fingerprint_match")
    assert fine["event"] == "monitored" and fine["status"] == "ok"


def test_healthy_fleet_passes_idempotent_and_installs_the_schedules(tmp_path, ansible_playbook, scan_range, smtp):
    units, cron_file = tmp_path / "units", tmp_path / "cron.d" / "certfleet-monitor"
    units.mkdir()
    cron_file.parent.mkdir()
    inventory = make_inventory(
        tmp_path, scan_range, HEALTHY, cert_monitor_schedule="systemd", cert_monitor_schedule_unit_dir=str(units),
        cert_monitor_schedule_enable=False, cert_monitor_schedule_inventory="/srv/certfleet/inventory",
        cert_monitor_schedule_ansible_playbook="/opt/venv/bin/ansible-playbook",
        cert_monitor_schedule_extra_args=["--vault-password-file", "/srv/certfleet/vault pass"],
        cert_monitor_schedule_environment={"ANSIBLE_CONFIG": "/srv/certfleet/ansible.cfg"},
        cert_monitor_email={"host": "127.0.0.1", "port": smtp.port, "username": SMTP_USER, "password": SMTP_PASSWORD,
                            "from": "certs@monitor.test", "to": ["admin@monitor.test"], "validate_certs": False})
    check = ansible_playbook(["-i", str(inventory), "certfleet.tls.monitor", "--check"], cwd=tmp_path)
    assert check.returncode == 0, (check.stdout + check.stderr)[-4000:]
    assert not (tmp_path / "reports").exists() and not list(units.iterdir())
    assert history(inventory, "fingerprint_match") == []

    first = ansible_playbook(["-i", str(inventory), "certfleet.tls.monitor"], cwd=tmp_path)
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    assert "certificate compliance: 0 critical, 0 warning of 3 endpoint(s)" in first.stdout
    assert smtp.handler.messages == []  # notify_on problems: a clean run mails nothing
    report = json.loads((tmp_path / "reports" / "certfleet-report.json").read_text())
    assert {item["name"]: item["status"] for item in report["endpoints"]} == dict.fromkeys(HEALTHY, "ok")
    assert [event["event"] for event in history(inventory, "fingerprint_match")] == ["monitored"]

    service = (units / "certfleet-monitor.service").read_text()
    assert ("ExecStart=/opt/venv/bin/ansible-playbook -i /srv/certfleet/inventory certfleet.tls.monitor "
            "--vault-password-file '/srv/certfleet/vault pass'\n") in service
    assert 'Environment="ANSIBLE_CONFIG=/srv/certfleet/ansible.cfg"\n' in service and "Type=oneshot" in service
    timer = (units / "certfleet-monitor.timer").read_text()
    assert "OnCalendar=*-*-* 06:00:00\n" in timer and "Persistent=true" in timer and "WantedBy=timers.target" in timer

    second = ansible_playbook(["-i", str(inventory), "certfleet.tls.monitor"], cwd=tmp_path)
    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
    assert recap(second.stdout)["changed"] == 0, second.stdout[-3000:]
    assert len(history(inventory, "fingerprint_match")) == 1  # nothing changed, nothing recorded

    cron = ansible_playbook(["-i", str(inventory), "certfleet.tls.monitor", "-e",
                             json.dumps({"cert_monitor_schedule": "cron", "cert_monitor_schedule_cron_file": str(cron_file),
                                         "cert_monitor_schedule_cron": {"minute": "15", "hour": "5"},
                                         "cert_monitor_schedule_chdir": "/srv/certfleet"})], cwd=tmp_path)
    assert cron.returncode == 0, (cron.stdout + cron.stderr)[-4000:]
    lines = [line for line in cron_file.read_text().splitlines() if line and not line.startswith("#")]
    assert lines == ["15 5 * * * root cd /srv/certfleet && ANSIBLE_CONFIG=/srv/certfleet/ansible.cfg "
                     "/opt/venv/bin/ansible-playbook -i /srv/certfleet/inventory certfleet.tls.monitor "
                     "--vault-password-file '/srv/certfleet/vault pass' >>/var/log/certfleet-monitor.log 2>&1"]


def test_discover_writes_new_endpoints_once(tmp_path, ansible_playbook, scan_range):
    probe = ("healthy", "expired", "self_signed", "wrong_host", "plain_http", "closed_port")
    ports = [scan_range.endpoints[name][1] for name in probe]
    output = tmp_path / "inventory" / "discovered_certificates.yml"
    inventory = make_inventory(tmp_path, scan_range, ["healthy"], certfleet_discover_ranges=["127.0.0.0/30"],
                               certfleet_discover_ports=ports, cert_monitor_discover_timeout=1.5)
    first = ansible_playbook(["-i", str(inventory), "certfleet.tls.discover"], cwd=tmp_path)
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    text = output.read_text()
    found = yaml.safe_load(text)
    by_port = {endpoint["port"]: entry for entry in found for endpoint in entry["endpoints"]}
    new = {scan_range.endpoints[name][1]: name for name in ("expired", "self_signed", "wrong_host")}
    assert set(by_port) == set(new), text  # healthy is defined; plain HTTP and the closed port serve no certificate
    for port, name in new.items():
        entry = by_port[port]
        assert entry["mode"] == "monitored_only" and entry["endpoints"][0]["host"] == "127.0.0.1"
        subject = scan_range.scenario(name).chain[0].cert.subject
        assert entry["common_name"] == subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert "3 new endpoint certificate(s)" in first.stdout
    assert (tmp_path / "reports" / "certfleet-discovery.html").exists()
    plan = _monitor.monitor_targets([], store_path="/nonexistent", discovered=found)  # the file is monitor-ready
    assert sorted(target["port"] for target in plan["targets"]) == sorted(new)

    # The range as text, the way an AWX survey passes it: the same endpoints, nothing new.
    second = ansible_playbook(["-i", str(inventory), "certfleet.tls.discover",
                               "-e", "certfleet_discover_ranges=' 127.0.0.0/30,'"], cwd=tmp_path)
    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
    assert recap(second.stdout)["changed"] == 0, second.stdout[-3000:]
    assert output.read_text() == text
    assert "0 new endpoint certificate(s)" in second.stdout


def survey_answers(tmp_path: Path, **answers) -> str:
    """An extra-vars file of the monitor survey's defaults, typed as AWX sends them (choices as text)."""
    spec = json.loads((Path(__file__).resolve().parents[2] / "examples" / "awx" / "survey_monitor.json").read_text())
    values = {question["variable"]: question["default"] for question in spec["spec"]}
    values.update(answers)
    path = tmp_path / f"survey-{len(list(tmp_path.glob('survey-*')))}.json"
    path.write_text(json.dumps(values))
    return "@" + str(path)


def test_survey_answers_arrive_as_awx_sends_them(tmp_path, ansible_playbook, scan_range):
    inventory = make_inventory(tmp_path, scan_range, ["healthy", "expiring_20_days"])
    # "false" is text from a multiple-choice question: it must not count as true.
    default = ansible_playbook(["-i", str(inventory), "certfleet.tls.monitor", "--check", "-e",
                                survey_answers(tmp_path)], cwd=tmp_path)
    assert default.returncode == 0, (default.stdout + default.stderr)[-4000:]
    assert "certificate compliance: 0 critical, 1 warning of 2 endpoint(s)" in default.stdout
    strict = ansible_playbook(["-i", str(inventory), "certfleet.tls.monitor", "--check", "-e",
                               survey_answers(tmp_path, cert_monitor_fail_on_warning="true")], cwd=tmp_path)
    assert strict.returncode == 2, (strict.stdout + strict.stderr)[-4000:]
    assert "WARNING expiring_20_days 127.0.0.1:" in strict.stdout
    # A critical threshold above the 20 days left turns the warning into a failure.
    critical = ansible_playbook(["-i", str(inventory), "certfleet.tls.monitor", "--check", "-e",
                                 survey_answers(tmp_path, cert_monitor_critical_days=25)], cwd=tmp_path)
    assert critical.returncode == 2, (critical.stdout + critical.stderr)[-4000:]
    assert "certificate compliance: 1 critical, 0 warning of 2 endpoint(s)" in critical.stdout
