"""Endpoint results shaped like cert_scan's (see _scan.runner.run_scan), for the cert_report tests (no network)."""
from __future__ import annotations

HOSTILE_SUBJECT = '/CN=<script>alert(1)</script>/O=Evil "Corp" & Co\\/OU=line1\nline2'
CHECKS = ("connect", "expiry", "chain_complete", "chain_order", "trust", "hostname", "key_size", "signature")
RANK = {"ok": 0, "warning": 1, "critical": 2}


def endpoint(name: str, *, days_left: int | None = 200, outcome: str = "ok", index: int = 0, host: str = "192.0.2.10",
             port: int = 443, failing: dict | None = None, **extra) -> dict:
    """One cert_scan-like result: ``failing`` = {check: (status, message)}; status and problems follow from the checks."""
    connected = outcome == "ok"
    failing = dict(failing or {})
    if not connected:
        failing.setdefault("connect", ("critical", f"{outcome}: connection {outcome}"))
    checks = {}
    for check in CHECKS if connected else ("connect",):
        status, message = failing.get(check, ("ok", f"{days_left} day(s) left" if check == "expiry" else "ok"))
        checks[check] = {"status": status, "message": message}
    problems = [f"{check}: {check_result['message']}" for check, check_result in checks.items() if check_result["status"] != "ok"]
    status = max((check_result["status"] for check_result in checks.values()), key=RANK.__getitem__)
    item = {
        "index": index, "name": name, "host": host, "port": port, "server_name": f"{name}.example.test",
        "address": host, "starttls": "none", "mode": "monitored_only", "trusted_ca_set": "default",
        "outcome": outcome, "outcome_message": "TLS handshake completed" if connected else f"connection {outcome}",
        "protocol": "TLSv1.3" if connected else None, "cipher": "TLS_AES_256_GCM_SHA384" if connected else None,
        "elapsed_ms": 3.5 + index, "status": status,
        "subject": f"/C=JP/O=Example Co.,Ltd./CN={name}.example.test" if connected else None,
        "issuer": "/C=JP/O=Example Co.,Ltd./CN=Example Issuing CA" if connected else None,
        "serial": "1A2B" if connected else None,
        "sha256": ":".join(["AB"] * 32) if connected else None,
        "not_before": "2026-01-01T00:00:00Z" if connected else None,
        "not_after": "2027-06-21T12:00:00Z" if connected else None,
        "days_left": days_left if connected else None,
        "matches_expected": None, "chain_complete": checks.get("chain_complete", {}).get("status") == "ok" if connected else None,
        "chain_order_ok": True if connected else None,
        "trusted": checks.get("trust", {}).get("status") == "ok" if connected else None, "hostname_ok": True if connected else None,
        "checks": checks, "problems": problems, "chain": [],
    }
    item.update(extra)
    return item


def fleet() -> list:
    """A small fleet in plan order (not worst first): ok, warning (expiring, order), critical (expired, soon, refused, untrusted)."""
    return [
        endpoint("healthy", days_left=200, index=0),
        endpoint("expiring", days_left=20, index=1, failing={"expiry": ("warning", "20 day(s) left (< 30)")}),
        endpoint("expired", days_left=-5, index=2, not_after="2026-11-28T00:00:00Z",
                 failing={"expiry": ("critical", "expired on 2026-11-28T00:00:00Z (5 day(s) ago)")}),
        endpoint("closed", outcome="refused", index=3, port=8443),
        endpoint("soon", days_left=9, index=4, failing={"expiry": ("critical", "9 day(s) left (< 14)")}),
        endpoint("untrusted", days_left=300, index=5, failing={"trust": ("critical", "not trusted: unknown issuer")}),
        endpoint("order", days_left=100, index=6, failing={"chain_order": ("warning", "not in issuing order")}),
        endpoint("healthy2", days_left=60, index=7),
    ]
