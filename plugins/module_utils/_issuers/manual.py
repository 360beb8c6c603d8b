# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The manual issuer provider: a person orders the certificate from a CA (a commercial CA's web form).

This module is private to the certfleet.tls collection: its API may change
without notice. The provider never obtains a certificate itself: it says what the person must
do - submit the definition's CSR to the CA, then put the certificate the CA returns, with its
intermediates, into the definition's ``incoming/`` folder - and leaves the definition's files
as they are.
"""

from __future__ import annotations

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError, public_key_fingerprint
from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import load_csr
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.base import IssueContext, IssuerProvider, Pending
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout


class ManualProvider(IssuerProvider):
    """``issuer: {provider: manual, profile: <CA profile>}``: the CSR goes to a CA by hand."""

    name = "manual"

    def needs_issuance(self, context: IssueContext) -> tuple[bool, str]:
        csr = _readable_csr(context)
        if csr is None:
            return True, "no readable CSR yet"
        if context.current is None:
            return True, "no certificate yet"
        if public_key_fingerprint(csr.public_key()) != public_key_fingerprint(context.current.public_key()):
            return True, "the certificate in the store is for another key than the CSR"
        return False, "the certificate in the store is for the CSR's key"

    def obtain(self, context: IssueContext) -> Pending:
        if _readable_csr(context) is None:
            return Pending(["run certfleet.tls.store_request (the request playbook) to generate the key and the CSR"],
                           reason=context.reason)
        profile = context.definition["issuer"].get("profile") or "private"
        return Pending([
            f"submit {context.path('csr')} to the CA (profile {profile}): paste it into the CA's application form",
            f"put the certificate the CA returns, with its intermediate certificates, into {context.incoming_dir}",
        ], reason=context.reason)

    def keep(self, context: IssueContext) -> None:
        # The files of a manual definition are the person's: store_issue leaves them as they are.
        return None


def _readable_csr(context: IssueContext):
    # A manual definition never fails a run: a missing or damaged CSR only changes the instructions.
    if context.csr_pem is None:
        return None
    try:
        return load_csr(context.csr_pem, source=f"{context.name}: {layout.filename('csr')}")
    except CertfleetError:
        return None
