# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Monitoring notifications: the summary of a scan as an email (SMTP) and as a JSON webhook.

This module is private to the certfleet.tls collection: its API may change
without notice.

Everything that decides what is sent is a pure function (subject, bodies, payload, the
``EmailMessage``); ``send_email`` and ``send_webhook`` only talk to the network and turn
every failure into a ``CertfleetError`` whose message names the server and the cause.
Names, subjects and problem texts of endpoints come from the certificates servers present,
so they are treated as hostile: control and bidi characters are replaced, lengths capped,
and the HTML body escapes every one of them.
"""

from __future__ import annotations

import datetime
import html
import http.client
import json
import mimetypes
import os
import smtplib
import socket
import ssl
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr

from ansible_collections.certfleet.tls.plugins.module_utils._common.files import read_file
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

STATUSES = ("ok", "warning", "critical")
COUNT_KEYS = ("total", "ok", "warning", "critical", "expired", "expiring")
REQUIRED_COUNT_KEYS = ("total", "ok", "warning", "critical")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_TITLE = "certfleet.tls certificate monitoring"
# Header names whose values are credentials (compared lower-case); "Authorization" is the one
# the HTTP spec defines (RFC 9110 §11.6.2), the others are the usual API-key conventions.
SECRET_HEADER_NAMES = ("authorization", "proxy-authorization", "x-api-key", "api-key", "x-auth-token", "x-gitlab-token")
SECRET_HEADER_WORDS = ("token", "secret", "password", "apikey")
PAYLOAD_ENDPOINT_KEYS = ("name", "host", "port", "server_name", "status", "outcome", "days_left", "not_after",
                         "subject", "problems")
CHECK_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
MAX_FIELD = 200
MAX_PROBLEMS = 10
BODY_QUOTE = 200
MASK = "********"


# --- pure helpers -----------------------------------------------------------------------

def clean(value, *, limit: int = MAX_FIELD) -> str:
    """Printable one-line text: control / format (bidi, zero-width) characters become '?', capped at ``limit``."""
    text = "" if value is None else str(value)
    text = "".join("?" if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") else char for char in text)
    if len(text) > limit:
        text = text[:limit - 1] + "\u2026"
    return text


def redact(text: str, secrets) -> str:
    """``text`` with every non-empty secret replaced by a mask."""
    for secret in secrets or ():
        if secret:
            text = text.replace(str(secret), MASK)
    return text


def is_one_line(text: str) -> bool:
    """Whether ``text`` fits in one header line: no control character and nothing ``str.splitlines``
    breaks at (U+2028, U+2029, U+0085, VT, FF, the file/group/record separators), since the email
    and HTTP libraries refuse those with a bare ValueError instead of a message naming the option."""
    return len(text.splitlines()) <= 1 and not any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in text)


def header_secrets(headers: dict | None) -> list[str]:
    """Every webhook header value as a secret, with its words: a Cookie or an X-Access-Key is as much
    a credential as an Authorization, and no name list can tell them apart, so no value is shown."""
    secrets = []
    for value in (headers or {}).values():
        text = str(value)
        if text:
            # "Bearer <token>": the token alone is a secret too, wherever a server echoes it.
            secrets += [text] + [part for part in text.split()[1:] if len(part) >= 4]
    return secrets


def check_headers(headers: dict | None) -> None:
    """Every webhook header one line (no header injection, no bare ValueError from http.client); the
    error names the header, never its value."""
    for name, value in (headers or {}).items():
        if not is_one_line(f"{name}{value}"):
            raise CertfleetError(f"webhook.headers: {clean(name)!r} has a line break or control character in its name or value")


def is_secret_header(name: str) -> bool:
    """Whether a webhook header's name says it carries a credential (every value is hidden anyway,
    see ``header_secrets``; this is kept for callers that label headers)."""
    lowered = str(name).lower()
    return lowered in SECRET_HEADER_NAMES or any(word in lowered.replace("-", "").replace("_", "") for word in SECRET_HEADER_WORDS)


def normalize_summary(summary: dict) -> dict:
    """The counts of a cert_scan / cert_report summary as non-negative ints (expired / expiring default to 0)."""
    if not isinstance(summary, dict):
        raise CertfleetError("summary must be a dict (the summary returned by cert_scan or cert_report)")
    missing = [key for key in REQUIRED_COUNT_KEYS if key not in summary]
    if missing:
        raise CertfleetError(f"summary: missing {', '.join(missing)} (expected the summary of cert_scan or cert_report: "
                             f"{', '.join(COUNT_KEYS)})")
    counts = {}
    for key in COUNT_KEYS:
        value = summary.get(key, 0)
        if value is None:
            value = 0
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
            raise CertfleetError(f"summary.{key}: {value!r} is not a non-negative whole number")
        counts[key] = int(value)
    return counts


def summary_from_endpoints(endpoints) -> dict:
    """Counts over complete scan results (when no summary is given), the way cert_scan counts them."""
    if not isinstance(endpoints, list):
        raise CertfleetError("endpoints must be a list of endpoint dicts (cert_scan's endpoints)")
    counts = {key: 0 for key in COUNT_KEYS}
    for position, item in enumerate(endpoints):
        status = _status_of(item, position)
        counts["total"] += 1
        counts[status] += 1
        days = item.get("days_left")
        if isinstance(days, (int, float)) and not isinstance(days, bool) and days < 0:
            counts["expired"] += 1
        elif "expiry" in failing_checks(item):
            counts["expiring"] += 1
    return counts


def overall_status(counts: dict) -> str:
    """Worst status of the scan: critical, warning or ok."""
    if counts["critical"] > 0:
        return "critical"
    if counts["warning"] > 0:
        return "warning"
    return "ok"


def has_problems(counts: dict) -> bool:
    """True when at least one endpoint is warning or critical."""
    return counts["warning"] + counts["critical"] > 0


def _days_key(item: dict):
    days = item.get("days_left")
    if isinstance(days, bool) or not isinstance(days, (int, float)):
        return (1, 0)  # unknown (no certificate read) after the known ones of the same status
    return (0, days)


def _status_of(item, position: int) -> str:
    if not isinstance(item, dict):
        raise CertfleetError(f"endpoints[{position}] must be a dict with name, host, port, status, days_left, problems")
    status = str(item.get("status", "")).lower()
    if status not in STATUSES:
        raise CertfleetError(f"endpoints[{position}].status: {item.get('status')!r} is not one of {', '.join(STATUSES)}")
    return status


def select_endpoints(endpoints, *, max_items: int) -> tuple[list, int]:
    """Problem endpoints (status warning / critical), worst first, capped: returns (listed, omitted count).

    Worst first = critical before warning, then fewest days left (expired first), then those
    without a certificate (network failures), otherwise in the order given.
    """
    if endpoints is None:
        endpoints = []
    if not isinstance(endpoints, list):
        raise CertfleetError("endpoints must be a list of endpoint dicts (cert_scan's endpoints)")
    problems = []
    for position, item in enumerate(endpoints):
        status = _status_of(item, position)
        if status != "ok":
            problems.append(dict(item, status=status))
    problems.sort(key=lambda item: (-STATUSES.index(item["status"]), _days_key(item)))
    if max_items < 0:
        raise CertfleetError("max_items must be 0 or more")
    return problems[:max_items], max(0, len(problems) - max_items)


def endpoint_label(item: dict) -> str:
    """``name (host:port)``, ``host:port`` or ``name``; IPv6 hosts in brackets."""
    host = item.get("host")
    port = item.get("port")
    where = ""
    if host:
        host = str(host)
        where = f"[{host}]" if ":" in host and not host.startswith("[") else host
        if port not in (None, ""):
            where = f"{where}:{port}"
    name = item.get("name")
    if name and where and str(name) != str(host):
        return clean(f"{name} ({where})")
    return clean(where or name or "(unnamed endpoint)")


def failing_checks(item: dict) -> list:
    """Names of the checks that are not ok: from ``checks`` (cert_scan), else the ``check:`` prefix of each problem."""
    checks = item.get("checks")
    if isinstance(checks, dict) and checks:
        return [clean(name, limit=40) for name, check in checks.items()
                if isinstance(check, dict) and str(check.get("status", "ok")).lower() != "ok"]
    names = []
    problems = item.get("problems") or []
    for problem in [problems] if isinstance(problems, str) else problems if isinstance(problems, list) else []:
        head, separator, _rest = str(problem).partition(":")
        if separator and head and set(head) <= CHECK_NAME_CHARS and head not in names:
            names.append(head)
    return names


def sni_text(item: dict) -> str:
    """The SNI sent, or ``none`` (an IP target without server_name sends none)."""
    return clean(item.get("server_name"), limit=255) or "none"


def _problems_of(item: dict) -> list:
    problems = item.get("problems") or []
    if isinstance(problems, str):
        problems = [problems]
    if not isinstance(problems, list):
        problems = [str(problems)]
    listed = [clean(problem, limit=300) for problem in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        listed.append(f"... and {len(problems) - MAX_PROBLEMS} more")
    return listed


def _days_text(item: dict) -> str:
    days = item.get("days_left")
    if isinstance(days, bool) or not isinstance(days, (int, float)):
        return "no certificate read"
    days = int(days)
    if days < 0:
        return f"expired {-days} day(s) ago"
    return f"{days} day(s) left"


def build_subject(counts: dict, *, prefix: str = "certfleet") -> str:
    """Default subject from the counts, e.g. ``[CRITICAL] certfleet: 3 critical, 2 warning of 120 endpoints``."""
    status = overall_status(counts)
    noun = "endpoint" if counts["total"] == 1 else "endpoints"
    if status == "ok":
        return f"[OK] {prefix}: all {counts['total']} {noun} ok"
    return f"[{status.upper()}] {prefix}: {counts['critical']} critical, {counts['warning']} warning of {counts['total']} {noun}"


def _count_lines(counts: dict) -> list:
    return [("Endpoints", counts["total"]), ("OK", counts["ok"]), ("Warning", counts["warning"]),
            ("Critical", counts["critical"]), ("Expired", counts["expired"]), ("Expiring", counts["expiring"])]


def build_text_body(*, title: str, counts: dict, endpoints: list, omitted: int = 0, report_url: str | None = None,
                    generated_at: str) -> str:
    """Plain-text body: heading, counts, the problem endpoints (already selected) and the report link."""
    status = overall_status(counts)
    lines = [clean(title, limit=300), "=" * min(len(clean(title, limit=300)), 78), "",
             f"Status: {status.upper()}    Generated: {generated_at}", ""]
    lines += [f"  {label + ':':<10} {value}" for label, value in _count_lines(counts)]
    lines.append("")
    if endpoints:
        lines.append(f"Problem endpoints (worst first, {len(endpoints)} listed):")
        for item in endpoints:
            lines.append("")
            lines.append(f"* [{item['status'].upper()}] {endpoint_label(item)} - {_days_text(item)}")
            lines.append(f"    SNI: {sni_text(item)}    Failing checks: {', '.join(failing_checks(item)) or '-'}")
            lines += [f"    - {problem}" for problem in _problems_of(item)]
        if omitted:
            lines += ["", f"... and {omitted} more problem endpoint(s), see the full report."]
    elif has_problems(counts):
        lines.append("The problem endpoints are listed in the full report.")
    else:
        lines.append("No endpoint has a problem.")
    if report_url:
        lines += ["", f"Full report: {clean(report_url, limit=2000)}"]
    lines += ["", "-- ", "certfleet.tls cert_notify"]
    return "\n".join(lines) + "\n"


def esc(value) -> str:
    """HTML-escaped text (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


_STATUS_COLOURS = {"ok": "#1e7e34", "warning": "#b36b00", "critical": "#c82333"}


def _safe_link(url: str) -> str:
    """An <a> for http(s) URLs, escaped text for anything else (no javascript: or data: links)."""
    text = html.escape(clean(url, limit=2000), quote=True)
    if urllib.parse.urlsplit(str(url)).scheme.lower() in ("http", "https"):
        return f'<a href="{text}">{text}</a>'
    return text


def build_html_body(*, title: str, counts: dict, endpoints: list, omitted: int = 0, report_url: str | None = None,
                    generated_at: str) -> str:
    """HTML alternative of ``build_text_body``; every value is escaped."""
    status = overall_status(counts)
    cell = 'style="padding:2px 10px;border:1px solid #ccc;text-align:left"'
    parts = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">', f"<title>{esc(clean(title, limit=300))}</title></head>",
             '<body style="font-family:sans-serif">', f"<h1>{esc(clean(title, limit=300))}</h1>",
             f'<p>Status: <strong style="color:{_STATUS_COLOURS[status]}">{esc(status.upper())}</strong>'
             f" &middot; generated {esc(generated_at)}</p>",
             '<table style="border-collapse:collapse">']
    parts += [f"<tr><th {cell}>{esc(label)}</th><td {cell}>{esc(value)}</td></tr>" for label, value in _count_lines(counts)]
    parts.append("</table>")
    if endpoints:
        parts.append(f"<h2>Problem endpoints (worst first, {len(endpoints)} listed)</h2>")
        parts.append(f'<table style="border-collapse:collapse"><tr><th {cell}>Status</th><th {cell}>Endpoint</th>'
                     f"<th {cell}>SNI</th><th {cell}>Days left</th><th {cell}>Failing checks</th><th {cell}>Problems</th></tr>")
        for item in endpoints:
            problems = "".join(f"<li>{esc(problem)}</li>" for problem in _problems_of(item))
            parts.append(f'<tr><td {cell}><strong style="color:{_STATUS_COLOURS[item["status"]]}">{esc(item["status"].upper())}'
                         f"</strong></td><td {cell}>{esc(endpoint_label(item))}</td><td {cell}>{esc(sni_text(item))}</td>"
                         f"<td {cell}>{esc(_days_text(item))}</td><td {cell}>{esc(', '.join(failing_checks(item)) or '-')}</td>"
                         f"<td {cell}><ul style=\"margin:0\">{problems}</ul></td></tr>")
        parts.append("</table>")
        if omitted:
            parts.append(f"<p>... and {esc(omitted)} more problem endpoint(s), see the full report.</p>")
    elif has_problems(counts):
        parts.append("<p>The problem endpoints are listed in the full report.</p>")
    else:
        parts.append("<p>No endpoint has a problem.</p>")
    if report_url:
        parts.append(f"<p>Full report: {_safe_link(report_url)}</p>")
    parts += ['<p style="color:#777;font-size:small">certfleet.tls cert_notify</p>', "</body></html>"]
    return "\n".join(parts) + "\n"


def _json_safe(value):
    """Round-trip through JSON so the payload holds only JSON types (str() for anything else)."""
    return json.loads(json.dumps(value, default=str))


def build_webhook_payload(*, title: str, summary: dict, counts: dict, endpoints: list, omitted: int = 0,
                          report_url: str | None = None, generated_at: str) -> dict:
    """The JSON document POSTed to the webhook (the summary as given, without ``worst``)."""
    summary_out = {key: value for key, value in summary.items() if key != "worst"}
    summary_out.update(counts)
    listed = [dict({key: item.get(key) for key in PAYLOAD_ENDPOINT_KEYS if key in item}, failing_checks=failing_checks(item))
              for item in endpoints]
    return _json_safe({"title": title, "status": overall_status(counts), "summary": summary_out, "endpoints": listed,
                       "endpoints_omitted": omitted, "report_url": report_url, "generated_at": generated_at})


def parse_address(value: str, *, option: str) -> tuple[str, str]:
    """(display name, address) of one mailbox; rejects header injection and strings without an '@'."""
    text = str(value)
    if not is_one_line(text):
        raise CertfleetError(f"{option}: an address must not contain line breaks or control characters")
    display, address = parseaddr(text)
    if not address or "@" not in address or address.startswith("@") or address.endswith("@") or " " in address:
        raise CertfleetError(f"{option}: {clean(text)!r} is not an email address")
    return display, address


def read_attachments(paths) -> list:
    """[(file name, bytes, maintype, subtype)] for every path; missing or unreadable files name the path."""
    loaded = []
    for path in paths or []:
        data = read_file(path, option="attachments")
        if data is None:
            raise CertfleetError(f"attachments: '{path}' does not exist")
        guessed, encoding = mimetypes.guess_type(path)
        if encoding or not guessed:
            guessed = "application/octet-stream"
        maintype, subtype = guessed.split("/", 1)
        loaded.append((os.path.basename(path), data, maintype, subtype))
    return loaded


def build_message(*, from_address: str, to: list, cc: list | None = None, subject: str, text: str, html_body: str,
                  attachments: list | None = None, date: str | None = None, domain: str | None = None) -> EmailMessage:
    """multipart/mixed (when attachments) around multipart/alternative text + HTML, utf-8."""
    if not to:
        raise CertfleetError("email.to: at least one recipient is needed")
    if not is_one_line(str(subject)):
        raise CertfleetError("email.subject must be one line")
    message = EmailMessage()
    message["From"] = formataddr(parse_address(from_address, option="email.from_address"))
    message["To"] = ", ".join(formataddr(parse_address(item, option="email.to")) for item in to)
    if cc:
        message["Cc"] = ", ".join(formataddr(parse_address(item, option="email.cc")) for item in cc)
    message["Subject"] = subject
    message["Date"] = date or formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=domain or parse_address(from_address, option="email.from_address")[1].rsplit("@", 1)[1])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to the monitor
    # Quoted-printable, not the 8bit the email package picks for short non-ASCII lines: a server
    # without 8BITMIME (RFC 6152) may not take 8bit data.
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html_body, subtype="html", charset="utf-8", cte="quoted-printable")
    for filename, data, maintype, subtype in attachments or []:
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


def recipients_of(to: list, cc: list | None = None) -> list:
    """Envelope recipients (bare addresses, To then Cc, duplicates dropped)."""
    seen = []
    for option, items in (("email.to", to or []), ("email.cc", cc or [])):
        for item in items:
            address = parse_address(item, option=option)[1]
            if address not in seen:
                seen.append(address)
    return seen


def validate_url(url: str) -> urllib.parse.SplitResult:
    """An http(s) URL with a host, else a CertfleetError (without echoing the URL, which may hold a token)."""
    try:
        parts = urllib.parse.urlsplit(str(url))
        if parts.port == 0:
            raise ValueError("port 0")
    except ValueError as exc:
        raise CertfleetError(f"webhook.url is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise CertfleetError(f"webhook.url must start with http:// or https:// (got scheme {clean(parts.scheme, limit=20)!r})")
    if not parts.hostname:
        raise CertfleetError("webhook.url has no host name")
    return parts


def url_origin(url: str) -> str:
    """scheme://host:port of a URL: what messages show, as the path and query of webhook URLs are often secret."""
    parts = urllib.parse.urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    return f"{parts.scheme.lower()}://{host}:{port}"


# --- network ----------------------------------------------------------------------------

def ssl_context(*, validate_certs: bool = True, ca_path: str | None = None, option: str) -> ssl.SSLContext:
    """Client context: system trust store plus ``ca_path``, hostname checked, unless validate_certs is false."""
    context = ssl.create_default_context()
    if ca_path:
        try:
            context.load_verify_locations(cafile=ca_path)
        except FileNotFoundError:
            raise CertfleetError(f"{option}.ca_path: '{ca_path}' does not exist") from None
        except (ssl.SSLError, OSError) as exc:
            raise CertfleetError(f"{option}.ca_path: '{ca_path}' is not a readable PEM CA bundle ({exc})") from None
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _verify_failure(option: str, where: str, exc: ssl.SSLCertVerificationError) -> CertfleetError:
    reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    return CertfleetError(f"{option}: certificate verification of {where} failed ({reason}). Trust the CA that issued the "
                          f"server's certificate with {option}.ca_path (a PEM bundle), or, for a test server only, set "
                          f"{option}.validate_certs: false")


def _reply(code, text) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return clean(f"{code} {text}", limit=300)


def _smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    return _reply(exc.smtp_code, exc.smtp_error)


# What the server did, by smtplib error, most specific class first; {reply} is the server's answer.
_SMTP_FAILURES = (
    (smtplib.SMTPSenderRefused, "refused the sender {sender!r} ({reply})"),
    (smtplib.SMTPDataError, "rejected the message ({reply})"),
    (smtplib.SMTPNotSupportedError, "does not support a command that was needed ({text})"),
    (smtplib.SMTPServerDisconnected, "closed the connection ({text})"),
    (smtplib.SMTPResponseException, "answered with an error ({reply})"),
)


def _smtp_failure(exc: smtplib.SMTPException, *, where: str, sender: str, secrets: list) -> str:
    """One sentence for an smtplib error, the password redacted."""
    reply = redact(_smtp_reply(exc), secrets) if isinstance(exc, smtplib.SMTPResponseException) else ""
    text = redact(clean(exc), secrets) or "no reason given"
    for error_class, template in _SMTP_FAILURES:
        if isinstance(exc, error_class):
            return f"{where} " + template.format(sender=clean(sender), reply=reply, text=text)
    return f"SMTP error with {where}: {text}"


def send_email(message: EmailMessage, *, host: str, port: int, security: str, context: ssl.SSLContext,
               envelope_from: str, recipients: list, username: str | None = None, password: str | None = None,
               timeout: float = 30, helo: str | None = None) -> dict:
    """Deliver ``message`` over SMTP; returns {'refused': {address: reply}} for recipients refused while others took it."""
    where = f"the SMTP server {host}:{port}"
    secrets = [password]
    if username and security == "none":
        raise CertfleetError("email: username is set with security: none; refusing to send credentials without TLS "
                             "(use security: starttls or ssl)")
    if username and not password:
        raise CertfleetError("email: username is set without a password")
    client = None
    try:
        if security == "ssl":
            client = smtplib.SMTP_SSL(host, port, local_hostname=helo, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, local_hostname=helo, timeout=timeout)
        client.ehlo()
        if security == "starttls":
            if not client.has_extn("starttls"):
                raise CertfleetError(f"email: {where} does not offer STARTTLS; security is starttls, so neither the "
                                     "credentials nor the message are sent in clear (set security: none only for a "
                                     "relay on a trusted network)")
            client.starttls(context=context)
            client.ehlo()
        if username:
            if not client.has_extn("auth"):
                raise CertfleetError(f"email: {where} does not offer AUTH, but email.username is set")
            try:
                client.login(username, password)
            except smtplib.SMTPAuthenticationError as exc:
                raise CertfleetError(f"email: {where} rejected the username {clean(username)!r} or its password "
                                     f"({redact(_smtp_reply(exc), secrets)})") from None
        refused = client.send_message(message, from_addr=envelope_from, to_addrs=recipients)
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            pass  # the message is accepted; a rude goodbye does not matter
        client = None
        return {"refused": {address: redact(_reply(code, text), secrets) for address, (code, text) in (refused or {}).items()}}
    except CertfleetError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        listed = "; ".join(f"{address}: {_reply(code, text)}" for address, (code, text) in exc.recipients.items())
        raise CertfleetError(f"email: {where} refused every recipient ({redact(clean(listed, limit=600), secrets)})") from None
    except smtplib.SMTPException as exc:
        raise CertfleetError(f"email: {_smtp_failure(exc, where=where, sender=envelope_from, secrets=secrets)}") from None
    except ssl.SSLCertVerificationError as exc:
        raise _verify_failure("email", where, exc) from None
    except ssl.SSLError as exc:
        raise CertfleetError(f"email: TLS handshake with {where} failed ({clean(exc.reason or exc)}); "
                             "is email.security right for this port (ssl = TLS from the first byte, usually 465; "
                             "starttls = plain then STARTTLS, usually 587 or 25)?") from None
    except ConnectionRefusedError:
        raise CertfleetError(f"email: connection to {where} refused (no SMTP server listens there)") from None
    except (socket.timeout, TimeoutError):
        raise CertfleetError(f"email: no answer from {where} within {timeout:g} seconds") from None
    except socket.gaierror as exc:
        raise CertfleetError(f"email: cannot resolve {host!r} ({exc.strerror})") from None
    except OSError as exc:
        raise CertfleetError(f"email: cannot talk to {where} ({clean(exc.strerror or exc)})") from None
    finally:
        if client is not None:
            try:
                client.close()
            except OSError:
                pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are failures: a POST must not turn into a GET, nor Authorization go to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # pylint: disable=too-many-arguments,too-many-positional-arguments
        return None


def send_webhook(payload: dict, *, url: str, context: ssl.SSLContext, headers: dict | None = None, method: str = "POST",
                 timeout: float = 30) -> int:
    """Send ``payload`` as JSON; returns the 2xx status code, raises CertfleetError for anything else."""
    validate_url(url)
    where = f"the webhook receiver {url_origin(url)}"
    headers = dict(headers or {})
    secrets = header_secrets(headers)
    sent_headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "certfleet.tls cert_notify",
                    "Accept": "application/json, */*;q=0.5"}
    check_headers(headers)
    for name, value in headers.items():
        sent_headers[str(name)] = str(value)
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers=sent_headers, method=method)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect())
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
            response.read(65536)
    except urllib.error.HTTPError as exc:
        try:
            text = exc.read(4096).decode("utf-8", "replace")
        except (OSError, ValueError):
            text = ""
        quoted = redact(clean(text.strip(), limit=BODY_QUOTE), secrets)
        hint = " (redirects are not followed; point webhook.url at the final address)" if 300 <= exc.code < 400 else ""
        raise CertfleetError(f"webhook: {where} answered HTTP {exc.code} {clean(exc.reason, limit=80)}{hint}"
                             + (f": {quoted}" if quoted else "")) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise _verify_failure("webhook", where, reason) from None
        if isinstance(reason, ConnectionRefusedError):
            raise CertfleetError(f"webhook: connection to {where} refused (nothing listens there)") from None
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise CertfleetError(f"webhook: no answer from {where} within {timeout:g} seconds") from None
        if isinstance(reason, socket.gaierror):
            raise CertfleetError(f"webhook: cannot resolve the host of {where} ({reason.strerror})") from None
        if isinstance(reason, ssl.SSLError):
            raise CertfleetError(f"webhook: TLS handshake with {where} failed ({clean(reason.reason or reason)})") from None
        raise CertfleetError(f"webhook: cannot reach {where} ({redact(clean(reason), secrets)})") from None
    except ssl.SSLCertVerificationError as exc:
        raise _verify_failure("webhook", where, exc) from None
    except (socket.timeout, TimeoutError):
        raise CertfleetError(f"webhook: no answer from {where} within {timeout:g} seconds") from None
    except (http.client.HTTPException, OSError, ValueError) as exc:  # RemoteDisconnected, BadStatusLine, bad header value ...
        raise CertfleetError(f"webhook: request to {where} failed ({type(exc).__name__}: {redact(clean(exc), secrets)})") from None
    if not 200 <= status < 300:
        raise CertfleetError(f"webhook: {where} answered HTTP {status}, not 2xx")
    return status


# --- what one module call sends -----------------------------------------------------------

def prepare(params: dict, *, now: datetime.datetime) -> dict:
    """Everything the module would send, from its parameters, without any I/O but reading attachments."""
    summary = params.get("summary")
    source = params.get("endpoints")
    if summary is None:
        if source is None:
            raise CertfleetError("one of summary and endpoints is needed (the summary and/or endpoints of cert_scan)")
        summary = summary_from_endpoints(source)
    counts = normalize_summary(summary)
    if source is None:
        source = summary.get("worst") or []
    listed, omitted = select_endpoints(source, max_items=params.get("max_items", 50))
    title = params.get("title") or DEFAULT_TITLE
    report_url = params.get("report_url")
    generated_at = iso(now)
    plan = {"status": overall_status(counts), "counts": counts, "endpoints": listed, "omitted": omitted,
            "skipped": bool(params.get("only_on_problems")) and not has_problems(counts), "email": None, "webhook": None}
    content = {"title": title, "counts": counts, "endpoints": listed, "omitted": omitted, "report_url": report_url,
               "generated_at": generated_at}
    email = params.get("email")
    if email:
        security = email.get("security") or "starttls"
        if security not in DEFAULT_PORTS:
            raise CertfleetError(f"email.security: {security!r} is not one of {', '.join(DEFAULT_PORTS)}")
        subject = email.get("subject") or build_subject(counts)
        recipients = recipients_of(email.get("to") or [], email.get("cc") or [])
        message = build_message(from_address=email["from_address"], to=email.get("to") or [], cc=email.get("cc") or [],
                                subject=subject, text=build_text_body(**content), html_body=build_html_body(**content),
                                attachments=read_attachments(params.get("attachments")),
                                date=formatdate(now.timestamp(), usegmt=True))
        plan["email"] = {"message": message, "subject": subject, "recipients": recipients,
                         "envelope_from": parse_address(email["from_address"], option="email.from_address")[1],
                         "host": email["host"], "port": email.get("port") or DEFAULT_PORTS[security], "security": security}
    webhook = params.get("webhook")
    if webhook:
        validate_url(webhook["url"])
        check_headers(webhook.get("headers"))
        plan["webhook"] = {"payload": build_webhook_payload(summary=summary, **content), "origin": url_origin(webhook["url"])}
    return plan
