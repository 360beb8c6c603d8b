# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hosts and ports as users write them: ``host``, ``host:port``, ``[IPv6]:port``, a port number.

This module is private to the certfleet.tls collection: its API may change
without notice. The scanner, the monitor and the Apache deployment all read these forms;
they parse them here so that one endpoint string means the same everywhere.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

HOST_PORT_FORMS = "expected host, host:port or [IPv6]:port"


def is_ip_address(value: str) -> bool:
    """True for an IPv4 or IPv6 literal (an IPv6 zone such as ``%eth0`` allowed)."""
    try:
        ipaddress.ip_address(str(value).split("%", 1)[0])
    except ValueError:
        return False
    return True


def check_port(value, *, what: str) -> int:
    """``value`` as a TCP port number from 1 to 65535; CertfleetError naming ``what`` otherwise."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CertfleetError(f"{what}: port {value!r} is not a number; it must be a port number from 1 to 65535") from None
    if not 1 <= number <= 65535:
        raise CertfleetError(f"{what}: port {number} must be between 1 and 65535 "
                             f"(no TLS service can be reached outside 1..65535)")
    return number


def parse_host_port(value, *, what: str | None = None, default_port: int | None = None) -> tuple[str, int | None]:
    """(host, port) from ``host``, ``host:port``, ``[IPv6]:port``, ``[IPv6]`` or a bare IPv6 address.

    The port is ``default_port`` when the text has none. The host itself is not judged here:
    callers hold their own rules for names (a scan target may be any resolvable name).
    """
    text = str(value).strip()
    label = what or text
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise CertfleetError(f"{label}: {text!r} is not [IPv6]:port; {HOST_PORT_FORMS}")
        port_text = rest[1:] if rest else None
    elif text.count(":") > 1:
        # A bare IPv6 address cannot carry a port: its last group would be read as one.
        host, port_text = text, None
    else:
        host, separator, port_text = text.partition(":")
        if "[" in host or "]" in host:
            raise CertfleetError(f"{label}: {text!r} has a bracket outside [IPv6]:port; {HOST_PORT_FORMS}")
        port_text = port_text if separator else None
    if not host:
        raise CertfleetError(f"{label}: host is required; {HOST_PORT_FORMS}")
    if port_text is None:
        return host, default_port
    if not (port_text.isascii() and port_text.isdigit()):
        raise CertfleetError(f"{label}: port {port_text!r} is not a number; {HOST_PORT_FORMS}")
    return host, check_port(port_text, what=label)


def host_port_label(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets, as the endpoint is written back to users."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
