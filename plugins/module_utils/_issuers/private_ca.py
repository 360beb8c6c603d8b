# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The built-in private CA as an issuer provider, and the issuance steps private_ca_certificate shares with it.

This module is private to the certfleet.tls collection: its API may change
without notice. Both store_issue (through ``PrivateCaProvider``) and private_ca_certificate
issue the same way: ``opened_cas`` (load and lock the CAs), ``_ca.decide`` (keep, reuse or
issue, under the CA's policy), ``_ca.sign_decided``, ``_ca.served_chain``, and the CA's files
written (``_ca.write_files``) before any certificate leaves the CA.
"""

from __future__ import annotations

import contextlib
import os

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import load_csr
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.base import (
    IssueContext,
    Issued,
    IssuerProvider,
    RunSettings,
    renew_before_days,
)
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout


@contextlib.contextmanager
def opened_cas(store_path: str, names, *, check_mode: bool, allow_missing: bool = False):
    """{name: CaDirectory} of the store's CAs, each locked while the caller issues (None: a CA that does
    not exist yet, only with ``allow_missing`` in check mode). A missing CA, or a subordinate CA still
    waiting for its certificate, is an error saying what to do."""
    with contextlib.ExitStack() as stack:
        cas = {}
        # Sorted order: two runs never wait on each other's locks in a cycle.
        for name in sorted(set(names)):
            directory = layout.ca_dir(store_path, name)
            if not check_mode and os.path.isdir(directory):
                stack.enter_context(_ca.locked(directory))
            ca = _ca.load_ca(directory, name=name)
            if ca is None and not (allow_missing and check_mode):
                ca = _ca.load_store_ca(store_path, name)  # raises, telling how to create it
            if ca is not None and ca.status != _ca.ACTIVE:
                _ca.load_store_ca(store_path, name)  # raises, telling what the subordinate CA waits for
            cas[name] = ca
        yield cas


def commit_ca_files(ca, files: dict) -> None:
    """Write what issuing changed in a CA: the issued copies, then the index with every certificate of this run."""
    if files:
        _ca.write_files(ca.directory, dict(files, **{layout.CA_FILES["index"]: _ca.dump_json(ca.index)}), name=ca.name)


class PrivateCaProvider(IssuerProvider):
    """``issuer: {provider: private_ca, ca: <name>}``: the store's own CA signs the definition's CSR unattended."""

    name = "private_ca"

    def __init__(self):
        self._run: RunSettings | None = None
        self._cas: dict = {}
        self._decisions: dict = {}
        self._ca_files: dict = {}
        self._chains: dict = {}

    def check(self, definition: dict) -> list[str]:
        ca_name = definition["issuer"].get("ca")
        if not isinstance(ca_name, str) or not layout.NAME_PATTERN.fullmatch(ca_name):
            return [f"issuer.ca {ca_name!r} must name a private CA of the store (letters, digits, '.', '_', '-')"]
        try:
            renew_before_days(definition)
        except CertfleetError as exc:
            return [str(exc)]
        return []

    @contextlib.contextmanager
    def session(self, run: RunSettings, definitions: list[dict]):
        self._run = run
        names = {definition["issuer"]["ca"] for definition in definitions}
        with opened_cas(run.store_path, names, check_mode=run.check_mode, allow_missing=True) as cas:
            self._cas = cas
            yield

    def _passphrase(self, ca_name: str) -> str:
        passphrase = (self._run.ca_passphrases or {}).get(ca_name) or self._run.ca_passphrase
        if not passphrase:
            raise CertfleetError(f"ca_passphrase: no passphrase for CA {ca_name} (give ca_passphrase or ca_passphrases.{ca_name})")
        return passphrase

    def needs_issuance(self, context: IssueContext) -> tuple[bool, str]:
        ca_name = context.definition["issuer"]["ca"]
        self._passphrase(ca_name)
        ca = self._cas[ca_name]
        csr_name = layout.filename("csr")
        if context.csr_pem is None or ca is None:
            if not context.check_mode:
                raise CertfleetError(f"no {csr_name} in {context.stored.directory}: run certfleet.tls.store_request "
                                     f"(the request playbook) first")
            later = "store_request generates the CSR" if context.csr_pem is None else f"CA {ca_name} is created"
            return True, f"after {later}"
        csr = load_csr(context.csr_pem, source=f"{context.name}: {csr_name}")
        issuer = context.definition["issuer"]
        decision = _ca.decide(
            ca, csr, existing=context.current, profile=issuer.get("profile") or "private", profiles=self._run.profiles,
            validity_days=issuer.get("validity_days"), renew_before_days=renew_before_days(context.definition),
            now=context.now, what=f"{context.name}: {csr_name}")
        self._decisions[context.name] = (csr, decision)
        return decision["action"] != "keep", decision["reason"]

    def obtain(self, context: IssueContext) -> Issued:
        ca_name = context.definition["issuer"]["ca"]
        if context.name not in self._decisions:  # check mode, before the CSR or the CA exists
            return Issued(None, reason=context.reason)
        csr, decision = self._decisions.pop(context.name)
        ca = self._cas[ca_name]
        warnings = []
        if decision["action"] == "issue":
            warnings = list(decision["plan"]["warnings"])
            if context.check_mode:
                return Issued(None, reason=decision["reason"], warnings=warnings)
            decision = _ca.sign_decided(ca, csr, decision, passphrase=self._passphrase(ca_name), requester=context.name,
                                        now=context.now)
            self._ca_files.setdefault(ca_name, {}).update(decision["ca_files"])
        chain, chain_warnings = self._served(ca, decision["certificate"])
        # "restored": the CA had issued this certificate for the same CSR and the store had lost it.
        return Issued(decision["certificate"], chain, details={"ca": ca_name}, reason=decision["reason"],
                      event="issued" if decision["action"] == "issue" else "restored", warnings=warnings + chain_warnings)

    def keep(self, context: IssueContext) -> Issued:
        ca_name = context.definition["issuer"]["ca"]
        self._decisions.pop(context.name, None)
        chain, warnings = self._served(self._cas[ca_name], context.current)
        return Issued(context.current, chain, details={"ca": ca_name}, event=None, warnings=warnings)

    def commit(self) -> None:
        for ca_name in sorted(self._ca_files):
            commit_ca_files(self._cas[ca_name], self._ca_files[ca_name])

    def _served(self, ca, certificate) -> tuple[list, list[str]]:
        """(intermediates, warnings): the chain engine checks a CA's chain once per run; later leaves of the
        same CA reuse it after one signature check, which keeps re-runs over thousands of definitions fast."""
        cached = self._chains.get(ca.name)
        if cached is not None and _chain.is_issued_by(certificate, ca.certificate):
            return list(cached), []
        result = _ca.served_chain(ca, certificate, now=self._run.now)
        self._chains[ca.name] = [item.certificate for item in result.intermediates]
        return list(self._chains[ca.name]), list(result.warnings)
