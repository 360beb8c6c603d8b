# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server names against a certificate: the subjectAltName match of RFC 6125 / RFC 9525 as browsers apply it.

This module is private to the certfleet.tls collection: its API may change
without notice.

Shared by the chain engine's server verdict (``verify``) and the endpoint checks of
tls_probe / cert_scan, so both answer the same for the same name.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import HAS_CRYPTOGRAPHY, extension_value

if HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.x509.oid import NameOID


def dns_matches(pattern: str, hostname: str) -> bool:
    """RFC 6125 §6.4.3 as browsers apply it: exact, or ``*.`` as the whole leftmost label matching one label."""
    pattern = pattern.rstrip(".").lower()
    if pattern == hostname:
        return True
    if not pattern.startswith("*."):
        return False
    suffix = pattern[2:]
    if "*" in suffix or "." not in suffix:
        return False  # "*.*.x" and "*.com" are never honoured
    label, _sep, rest = hostname.partition(".")
    return bool(label) and rest == suffix


def a_label(hostname: str) -> str:
    """The name as lower-case A-labels (IDNA), without a trailing dot."""
    name = hostname.strip().rstrip(".")
    if name.isascii():
        return name.lower()
    try:
        return name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return name.lower()


_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}\Z")


def ip_literal(hostname: str):
    """ipaddress object for an IPv4 / IPv6 literal (brackets and zone allowed), else None."""
    text = hostname.strip("[]").split("%", 1)[0]
    if ":" not in text and not _IPV4.fullmatch(text):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


UNSET = object()


def hostname_matches(certificate, hostname: str, *, san=UNSET) -> tuple[bool, str]:
    """(matches?, explanation) for a DNS name or IP literal against the certificate's subjectAltName."""
    if san is UNSET:
        san = extension_value(certificate, x509.SubjectAlternativeName)
    address = ip_literal(hostname)
    if san is None:
        cns = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = f" (its CN is {cns[0].value!r}, which clients no longer use for names)" if cns else ""
        return False, f"the certificate has no subjectAltName{cn}"
    if address is not None:
        ips = san.get_values_for_type(x509.IPAddress)
        if any(ip == address for ip in ips):
            return True, f"IP address {address} is in the subjectAltName"
        return False, f"IP address {address} is not among the subjectAltName IP addresses {[str(ip) for ip in ips]}"
    name = a_label(hostname)
    patterns = san.get_values_for_type(x509.DNSName)
    for pattern in patterns:
        if dns_matches(pattern, name):
            return True, f"{name} matches subjectAltName {pattern}"
    shown = ", ".join(patterns[:10]) + (", ..." if len(patterns) > 10 else "")
    return False, f"{name} is not covered by the subjectAltName DNS names ({shown or 'none'})"
