"""The role's filters: bad input becomes an AnsibleFilterError with the reason, never a traceback."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.certfleet.tls.plugins.filter.apache_ssl import FilterModule
from ansible_collections.certfleet.tls.plugins.filter.decrypt_private_key import decrypt_private_key

FILTERS = FilterModule().filters()


def test_filters_wrap_certfleet_errors():
    with pytest.raises(AnsibleFilterError, match="cannot read Apache's version"):
        FILTERS["apache_version"]("no apache here")
    with pytest.raises(AnsibleFilterError, match="apache_ssl_sites must be a list"):
        FILTERS["apache_ssl_plan"]("x", {"document_root": "/"}, True, "/s", "h")


def test_filters_return_results():
    assert FILTERS["os_release"]("ID=debian\nVERSION_ID=12\n")["os_family"] == "Debian"
    assert FILTERS["deploy_check"]([{"name": "a", "outcome": "timeout"}])[0]["ok"] is False


def test_decrypt_private_key_round_trip_and_wrong_passphrase():
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"secret")).decode()
    plain = decrypt_private_key(encrypted, "secret")
    assert plain.startswith("-----BEGIN PRIVATE KEY-----")
    loaded = serialization.load_pem_private_key(plain.encode(), None)
    assert loaded.private_numbers() == key.private_numbers()
    with pytest.raises(AnsibleFilterError) as info:
        decrypt_private_key(encrypted, "wrong")
    assert "secret" not in str(info.value)
    with pytest.raises(AnsibleFilterError, match="expects PEM text"):
        decrypt_private_key(42)
