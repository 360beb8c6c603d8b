# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Name helpers: attributes come from the name itself, never from splitting the joined one-line DN."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from ansible_collections.certfleet.tls.plugins.module_utils._common import x509 as _x509


def test_name_attributes_keep_values_that_look_like_more_attributes():
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "evil.example/O=Trusted Corp"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "a"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "b/CN=x")])
    assert _x509.name_to_string(name) == "/C=JP/CN=evil.example/O=Trusted Corp/OU=a/OU=b/CN=x"
    assert _x509.name_attributes(name) == {"C": "JP", "CN": "evil.example/O=Trusted Corp", "OU": ["a", "b/CN=x"]}


def test_name_attributes_of_a_name_that_cannot_be_decoded_is_empty():
    class Undecodable:
        def __iter__(self):
            raise ValueError("invalid T61String")

    assert _x509.name_attributes(Undecodable()) == {}
