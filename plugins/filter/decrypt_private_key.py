# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""decrypt_private_key: an encrypted PEM key to an unencrypted PKCS#8 PEM (Apache on Windows has no terminal to ask for a passphrase)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import load_private_key, serialize_private_key
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError


def decrypt_private_key(data, passphrase=None):
    """The key as unencrypted PKCS#8 PEM text."""
    if not isinstance(data, (str, bytes)):
        raise AnsibleFilterError("decrypt_private_key expects PEM text")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        key = load_private_key(raw, source="decrypt_private_key input", passphrase=passphrase)
        return serialize_private_key(key, key_format="pkcs8").decode("ascii")
    except CertfleetError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """certfleet.tls key filters."""

    def filters(self):
        return {"decrypt_private_key": decrypt_private_key}
