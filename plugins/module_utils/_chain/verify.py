# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The server-certificate verdict of the chain engine: path, leaf validity, serverAuth and peer name.

This module is private to the certfleet.tls collection: its API may change
without notice.

``build_chain`` answers for the path (signatures, CA constraints, name constraints, critical
extensions, the CAs' validity); a TLS client also checks the leaf itself at the moment of the
handshake. ``server_verdict`` is both, as one answer: what x509-limbo's server testcases ask.
"""

from __future__ import annotations

import datetime

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._chain import constraints as _constraints
from ansible_collections.certfleet.tls.plugins.module_utils._chain import names as _names
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import HAS_CRYPTOGRAPHY, CertfleetError, extension_value

if HAS_CRYPTOGRAPHY:
    from cryptography import x509


def leaf_usage_problems(leaf) -> list[str]:
    """Why the leaf is not a TLS server certificate: a CA certificate, keyCertSign, or an extKeyUsage without serverAuth.

    RFC 5280 §4.2.1.9 (keyCertSign needs cA), §4.2.1.12 (extKeyUsage), CA/B Forum BR §7.1.2.7.8 (a
    subscriber certificate is not a CA). Assumes ``constraints.certificate_problem`` found nothing.
    """
    certificate = _chain._cert(leaf)  # pylint: disable=protected-access
    problems = []
    constraints = extension_value(certificate, x509.BasicConstraints)
    usage = extension_value(certificate, x509.KeyUsage)
    if constraints is not None and constraints.ca:
        problems.append("the leaf is a CA certificate (basicConstraints CA:TRUE), not a server certificate")
    elif usage is not None and usage.key_cert_sign:
        problems.append("the leaf's keyUsage has keyCertSign without basicConstraints CA:TRUE (RFC 5280 §4.2.1.9)")
    eku = _constraints.leaf_eku_problem(certificate)
    if eku:
        problems.append(eku)
    return problems


def leaf_problems(leaf, *, now: datetime.datetime, peer_name: str | None = None) -> list[str]:
    """Why a client rejects the leaf itself at ``now`` for ``peer_name``: validity period and name."""
    certificate = _chain._cert(leaf)  # pylint: disable=protected-access
    problems = leaf_usage_problems(certificate)
    now = now.replace(microsecond=0)  # one-second granularity, both ends inclusive (RFC 5280 §4.1.2.5)
    if now < certificate.not_valid_before_utc:
        problems.append(f"the leaf is not yet valid (notBefore {iso(certificate.not_valid_before_utc)})")
    elif now > certificate.not_valid_after_utc:
        problems.append(f"the leaf expired on {iso(certificate.not_valid_after_utc)}")
    if peer_name:
        ok, message = _names.hostname_matches(certificate, peer_name)
        if not ok:
            problems.append(f"name mismatch: {message}")
    return problems


def server_verdict(leaf, intermediates=(), *, trust_anchors, peer_name: str | None, now: datetime.datetime,
                   max_depth: int | None = None) -> tuple[bool, str]:
    """(accepted, reason): would a TLS client accept this leaf for ``peer_name`` at ``now``, given these anchors."""
    try:
        kwargs = {"max_depth": max_depth} if max_depth is not None else {}
        result = _chain.build_chain(leaf, list(intermediates), trust_anchors=list(trust_anchors), catalog=[], now=now, **kwargs)
    except CertfleetError as exc:
        return False, str(exc)
    problems = leaf_problems(leaf, now=now, peer_name=peer_name)
    if problems:
        return False, "; ".join(problems)
    return True, f"trusted: {len(result.intermediates)} intermediate(s)"
