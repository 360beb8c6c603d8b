#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cert_notify
short_description: Send the summary of a certificate scan by email (SMTP) and/or as a JSON webhook
version_added: 0.2.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Sends the monitoring summary of M(certfleet.tls.cert_scan) (or C(cert_report)) - the counts and the problem
    endpoints, worst first - to the administrators, as the daily summary of the monitoring run.
  - The email has a plain-text and an HTML alternative body (utf-8) and can carry the HTML / CSV reports as
    attachments. Everything taken from the endpoints (names, subjects, problem texts) comes from certificates that
    servers present, so control characters are replaced and the HTML body escapes every value.
  - The webhook receives one JSON document (see RV(webhook.payload)) by POST (or PUT); any answer but 2xx fails the
    task with the status code and the first 200 characters of the body. Redirects are not followed.
  - Server certificates are verified (system trust store plus O(email.ca_path) / O(webhook.ca_path), host name
    checked) unless O(email.validate_certs) / O(webhook.validate_certs) is V(false).
  - When both channels are configured, both are tried; the task fails if either failed and the result says which
    one was sent.
  - The module does not log its invocation to syslog / the journal, because webhook headers may hold credentials.
attributes:
  check_mode:
    details: Nothing is sent; the result shows what would be sent (subject, recipients, text body, webhook payload)
      and C(changed) is V(true) when something would be sent.
  diff_mode:
    support: none
extends_documentation_fragment:
  - certfleet.tls.attributes
options:
  summary:
    description:
      - The RV(certfleet.tls.cert_scan#module:summary) of a scan, or of C(cert_report) - a dict with C(total), C(ok),
        C(warning), C(critical) (required) and C(expired), C(expiring) (0 when missing). Other keys are passed on to
        the webhook as they are.
      - It may carry C(worst), a list of endpoint dicts, used when O(endpoints) is not given.
      - When not given, the counts are computed from O(endpoints), which must then hold every result of the scan
        (not only the problems that C(return_endpoints=problems) returns).
      - At least one of O(summary) and O(endpoints) is required.
    type: dict
  endpoints:
    description:
      - Endpoint results to list in the message (the elements of RV(certfleet.tls.cert_scan#module:endpoints)) - each a
        dict with C(status) (V(ok), V(warning) or V(critical), required) and C(name), C(host), C(port), C(days_left),
        C(problems) (list of strings), optionally C(server_name) (the SNI), C(checks) (by name, each with a C(status)),
        C(outcome), C(not_after), C(subject).
      - Only V(warning) and V(critical) endpoints are listed, worst first (critical before warning, then fewest days
        left, then those without a certificate), at most O(max_items); each with host:port, SNI, days left, the
        failing checks (the names in C(checks) that are not V(ok), else the C(check:) prefix of each problem) and the
        problems.
      - When not given, C(summary.worst) is used.
    type: list
    elements: dict
    aliases: [results]
  max_items:
    description: Most problem endpoints listed in the message and the payload; the number left out is said.
    type: int
    default: 50
  title:
    description: Heading of the message and C(title) of the payload.
    type: str
    default: certfleet.tls certificate monitoring
  report_url:
    description: Link to the full report, put in the message (a link only when it is http or https) and the payload.
    type: str
  attachments:
    description: Files attached to the email (for example the HTML and CSV reports); the MIME type follows the file name.
    type: list
    elements: path
    default: []
  only_on_problems:
    description: Send only when at least one endpoint is V(warning) or V(critical); otherwise RV(skipped) is V(true).
    type: bool
    default: false
  email:
    description: Send an email over SMTP.
    type: dict
    suboptions:
      host:
        description: SMTP server (relay or submission server).
        type: str
        required: true
      port:
        description: Port; V(587) with O(email.security=starttls), V(465) with V(ssl), V(25) with V(none).
        type: int
      security:
        description:
          - V(starttls) - plain connection, then STARTTLS (RFC 3207). A server that does not offer STARTTLS is an error
            and nothing is sent (neither credentials nor the message).
          - V(ssl) - TLS from the first byte (implicit TLS, RFC 8314).
          - V(none) - no TLS, for a relay on a trusted network; O(email.username) is refused with it.
        type: str
        choices: [starttls, ssl, none]
        default: starttls
      username:
        description: Log in (SMTP AUTH) with this user name after TLS is established.
        type: str
      password:
        description: Password of O(email.username). Never shown in results, warnings or errors.
        type: str
      from_address:
        description: Sender (C(certs@example.com) or C(Cert monitor <certs@example.com>)); also the envelope sender.
        type: str
        required: true
        aliases: [from]
      to:
        description: Recipients.
        type: list
        elements: str
        required: true
      cc:
        description: Copy recipients.
        type: list
        elements: str
        default: []
      subject:
        description:
          - "Subject line. Built from the counts when not set, for example
            C([CRITICAL] certfleet: 3 critical, 2 warning of 120 endpoints) or C([OK] certfleet: all 120 endpoints ok)."
        type: str
      validate_certs:
        description: Verify the SMTP server's certificate and host name. Set V(false) only for a test server.
        type: bool
        default: true
      ca_path:
        description: PEM file of extra CA certificates to trust for the SMTP server (a private CA), on top of the system
          trust store.
        type: path
      timeout:
        description: Seconds for each network operation.
        type: float
        default: 30
      helo:
        description: Name sent in EHLO / HELO; the local host's FQDN when not set.
        type: str
  webhook:
    description: POST the summary as JSON to a URL (chat or incident tool, AWX, a custom receiver).
    type: dict
    suboptions:
      url:
        description:
          - V(http://) or V(https://) URL. Treated as a secret, since webhook URLs often carry a token; messages show
            only its scheme, host and port.
        type: str
        required: true
      headers:
        description:
          - Extra request headers. Every value is a secret (a C(Cookie) or an C(X-Access-Key) is as much a credential
            as an C(Authorization)) - never shown in results, the invocation (C(-vvv)), warnings or errors; only the
            header names are. A value must be one line without control characters.
        type: dict
        default: {}
      validate_certs:
        description: Verify the receiver's certificate and host name (https). Set V(false) only for a test receiver.
        type: bool
        default: true
      ca_path:
        description: PEM file of extra CA certificates to trust for the receiver, on top of the system trust store.
        type: path
      timeout:
        description: Seconds for the request.
        type: float
        default: 30
      method:
        description: HTTP method.
        type: str
        choices: [POST, PUT]
        default: POST
notes:
  - At least one of O(email) and O(webhook) is required, and at least one of O(summary) and O(endpoints).
  - The monitoring job should still fail when thresholds are crossed (for example with M(ansible.builtin.assert) after
    this task), so that AWX / AAP job notifications fire as well; see docs/notifications.md.
seealso:
  - module: certfleet.tls.cert_scan
"""

EXAMPLES = r"""
- name: Scan the fleet
  certfleet.tls.cert_scan:
    targets: "{{ monitored_endpoints }}"
    return_endpoints: problems
  register: scan

- name: Mail the daily summary to the administrators
  certfleet.tls.cert_notify:
    summary: "{{ scan.summary }}"
    endpoints: "{{ scan.endpoints }}"
    report_url: https://reports.example.co.jp/tls/latest.html
    attachments:
      - /var/lib/certfleet/reports/latest.html
      - /var/lib/certfleet/reports/latest.csv
    email:
      host: smtp.example.co.jp
      username: cert-monitor
      password: "{{ vault_smtp_password }}"
      from_address: Cert monitor <cert-monitor@example.co.jp>
      to: [tls-admins@example.co.jp]
      ca_path: /etc/pki/internal-ca.pem

- name: Post to a chat webhook, only when something needs attention
  certfleet.tls.cert_notify:
    summary: "{{ scan.summary }}"
    endpoints: "{{ scan.endpoints }}"
    only_on_problems: true
    webhook:
      url: "{{ vault_webhook_url }}"
      headers:
        Authorization: "Bearer {{ vault_webhook_token }}"

- name: Internal relay on port 25 without TLS or login
  certfleet.tls.cert_notify:
    summary: "{{ scan.summary }}"
    email:
      host: relay.example.internal
      security: none
      from_address: certs@example.internal
      to: [ops@example.internal]
"""

RETURN = r"""
status:
  description: Worst status of the summary - V(ok), V(warning) or V(critical).
  returned: success
  type: str
  sample: critical
skipped:
  description: V(true) when O(only_on_problems) is set and no endpoint is warning or critical; nothing was sent.
  returned: always
  type: bool
endpoints_listed:
  description: Problem endpoints listed in the message and the payload.
  returned: success
  type: int
endpoints_omitted:
  description: Problem endpoints left out because of O(max_items).
  returned: success
  type: int
email:
  description: What happened to the email (C(sent) is V(false) and the rest empty when O(email) is not set).
  returned: always
  type: dict
  contains:
    sent:
      description: Whether the SMTP server accepted the message (V(false) in check mode).
      type: bool
    recipients:
      description: Envelope recipients (To, then Cc).
      type: list
      elements: str
      sample: [tls-admins@example.co.jp]
    subject:
      description: Subject line.
      type: str
      sample: "[CRITICAL] certfleet: 3 critical, 2 warning of 120 endpoints"
    refused:
      description: Recipients the server refused while it accepted others, with its reply (a warning is shown too).
      type: dict
      sample: {"nobody@example.co.jp": "550 no such user"}
    body:
      description: The plain-text body that would be sent.
      returned: check mode
      type: str
webhook:
  description: What happened to the webhook (C(sent) is V(false) when O(webhook) is not set).
  returned: always
  type: dict
  contains:
    sent:
      description: Whether the receiver answered 2xx (V(false) in check mode).
      type: bool
    status_code:
      description: HTTP status of the answer; null when nothing was sent.
      type: int
      sample: 200
    payload:
      description:
        - The JSON document that would be sent - C(title), C(status) (worst), C(summary) (the counts and any other
          key of O(summary) but C(worst)), C(endpoints) (name, host, port, server_name, status, outcome, days_left,
          not_after, subject, problems, as given), C(endpoints_omitted), C(report_url), C(generated_at) (ISO 8601 UTC).
      returned: check mode
      type: dict
"""

import datetime
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._report import notify as _notify
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError


def _empty_result(plan: dict | None) -> dict:
    email = (plan or {}).get("email")
    return {
        "email": {"sent": False, "recipients": email["recipients"] if email else [], "subject": email["subject"] if email else None,
                  "refused": {}},
        "webhook": {"sent": False, "status_code": None},
    }


def notify(module: AnsibleModule, secrets: list) -> tuple[dict, list]:
    """Decide, then send (unless check mode); returns (result, errors)."""
    params = module.params
    plan = _notify.prepare(params, now=datetime.datetime.now(datetime.timezone.utc))
    result = dict(_empty_result(plan), changed=False, status=plan["status"], skipped=plan["skipped"],
                  endpoints_listed=len(plan["endpoints"]), endpoints_omitted=plan["omitted"])
    if plan["skipped"]:
        result["msg"] = "no endpoint is warning or critical and only_on_problems is set: nothing sent"
        return result, []
    email, webhook = params["email"], params["webhook"]
    # Contexts first: a bad ca_path fails before anything is sent on either channel.
    email_context = _notify.ssl_context(validate_certs=email["validate_certs"], ca_path=email["ca_path"], option="email") if email else None
    webhook_context = _notify.ssl_context(validate_certs=webhook["validate_certs"], ca_path=webhook["ca_path"],
                                          option="webhook") if webhook else None
    if email and not email["validate_certs"] and email["security"] != "none":
        module.warn("email.validate_certs is false: the SMTP server's certificate is not verified")
    if webhook and not webhook["validate_certs"] and plan["webhook"]["origin"].startswith("https"):
        module.warn("webhook.validate_certs is false: the receiver's certificate is not verified")
    result["changed"] = True
    if module.check_mode:
        if plan["email"]:
            result["email"]["body"] = plan["email"]["message"].get_body(("plain",)).get_content()
        if plan["webhook"]:
            result["webhook"]["payload"] = plan["webhook"]["payload"]
        return result, []
    errors = []
    if plan["email"]:
        target = plan["email"]
        try:
            sent = _notify.send_email(target["message"], host=target["host"], port=target["port"], security=target["security"],
                                      context=email_context, envelope_from=target["envelope_from"], recipients=target["recipients"],
                                      username=email["username"], password=email["password"], timeout=email["timeout"],
                                      helo=email["helo"])
        except CertfleetError as exc:
            errors.append(str(exc))
        else:
            refused = sent["refused"]
            result["email"].update(sent=True, refused=refused,
                                   recipients=[address for address in target["recipients"] if address not in refused])
            if refused:
                module.warn("email: the SMTP server refused some recipients: "
                            + "; ".join(f"{address}: {reply}" for address, reply in refused.items()))
    if plan["webhook"]:
        try:
            code = _notify.send_webhook(plan["webhook"]["payload"], url=webhook["url"], context=webhook_context,
                                        headers=webhook["headers"], method=webhook["method"], timeout=webhook["timeout"])
        except CertfleetError as exc:
            errors.append(str(exc))
        else:
            result["webhook"].update(sent=True, status_code=code)
    result["changed"] = result["email"]["sent"] or result["webhook"]["sent"]
    return result, [_notify.redact(error, secrets) for error in errors]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            summary=dict(type="dict"),
            endpoints=dict(type="list", elements="dict", aliases=["results"]),
            max_items=dict(type="int", default=50),
            title=dict(type="str", default=_notify.DEFAULT_TITLE),
            report_url=dict(type="str"),
            attachments=dict(type="list", elements="path", default=[]),
            only_on_problems=dict(type="bool", default=False),
            email=dict(type="dict", options=dict(
                host=dict(type="str", required=True),
                port=dict(type="int"),
                security=dict(type="str", choices=["starttls", "ssl", "none"], default="starttls"),
                username=dict(type="str"),
                password=dict(type="str", no_log=True),
                from_address=dict(type="str", required=True, aliases=["from"]),
                to=dict(type="list", elements="str", required=True),
                cc=dict(type="list", elements="str", default=[]),
                subject=dict(type="str"),
                validate_certs=dict(type="bool", default=True),
                ca_path=dict(type="path"),
                timeout=dict(type="float", default=30),
                helo=dict(type="str"),
            )),
            webhook=dict(type="dict", options=dict(
                url=dict(type="str", required=True, no_log=True),
                # no_log on the dict masks every value in the invocation, whatever the header's name.
                headers=dict(type="dict", default={}, no_log=True),
                validate_certs=dict(type="bool", default=True),
                ca_path=dict(type="path"),
                timeout=dict(type="float", default=30),
                method=dict(type="str", choices=["POST", "PUT"], default="POST"),
            )),
        ),
        required_one_of=[("email", "webhook"), ("summary", "endpoints")],
        supports_check_mode=True,
        # Not logged to syslog / the journal: secret webhook headers are only known after parsing.
        no_log=True,
    )
    secrets = []
    if module.params["email"] and module.params["email"]["password"]:
        secrets.append(module.params["email"]["password"])
    if module.params["webhook"]:
        secrets += _notify.header_secrets(module.params["webhook"]["headers"])
    # exit_json / fail_json strip these from every value of the result, the invocation included.
    module.no_log_values.update(secrets)
    try:
        result, errors = notify(module, secrets)
    except CertfleetError as exc:
        module.fail_json(msg=_notify.redact(str(exc), secrets), **_empty_result(None))
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_json(msg=_notify.redact(f"unexpected error in cert_notify: {exc}", secrets),
                         exception=_notify.redact(traceback.format_exc(), secrets), **_empty_result(None))
    if errors:
        module.fail_json(msg="; ".join(errors), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
