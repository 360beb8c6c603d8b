# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The issuer providers a definition can name, by ``issuer.provider``.

This module is private to the certfleet.tls collection: its API may change
without notice. Each value is a factory (a class) that makes a fresh provider for one run,
since a provider holds what it loaded and locked for that run.
"""

from __future__ import annotations

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.acme import AcmeProvider
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.base import IssuerProvider
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.manual import ManualProvider
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.private_ca import PrivateCaProvider

PROVIDERS = {
    "manual": ManualProvider,
    "private_ca": PrivateCaProvider,
    "acme": AcmeProvider,  # RFC 8555; store_issue passes the store passphrase and the EAB keys (_issuers.acme)
}


def get_provider(name: str, providers: dict | None = None) -> IssuerProvider:
    """A fresh provider for one run: from ``providers`` (a test's or a caller's own), else the built-in ones."""
    factory = (providers or {}).get(name) or PROVIDERS.get(name)
    if factory is None:
        raise CertfleetError(f"issuer.provider {name!r} must be one of {', '.join(provider_names(providers))}")
    return factory if isinstance(factory, IssuerProvider) else factory()


def provider_names(providers: dict | None = None) -> tuple[str, ...]:
    """Every name a definition may use in this run: the built-in providers, then the extra ones."""
    return tuple(PROVIDERS) + tuple(name for name in providers or {} if name not in PROVIDERS)
