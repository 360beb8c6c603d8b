# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument spec pieces shared by the CSR modules and the store module.

This module is private to the certfleet.tls collection: its API may change
without notice. The matching documentation is the ``certfleet.tls.subject``
doc fragment; keep both in step.
"""

from __future__ import annotations


def subject_argument_spec() -> dict:
    """Options that describe a subject DN, its SANs and the CA profile."""
    return dict(
        common_name=dict(type="str", aliases=["CN"]),
        country_name=dict(type="str", aliases=["C"]),
        state_or_province_name=dict(type="str", aliases=["ST"]),
        locality_name=dict(type="str", aliases=["L"]),
        organization_name=dict(type="str", aliases=["O"]),
        organizational_unit_name=dict(type="str", aliases=["OU"]),
        email_address=dict(type="str", aliases=["E"]),
        subject_alt_name=dict(type="list", elements="str", default=[], aliases=["SAN"]),
        digest=dict(type="str", choices=["sha256", "sha384", "sha512", "sha1"], default="sha256"),
        profile=dict(type="raw", default="private"),
        profiles=dict(type="dict", default={}),
    )
