# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The manual issuer provider: a person orders the certificate from a CA (a commercial CA's web form).

This module is private to the certfleet.tls collection: its API may change
without notice. The provider never obtains a certificate itself. While nothing was dropped in,
it says what the person must do - paste the definition's CSR into the CA's form (the subject in
the order the form asks for it, the names the CA will register), then save the certificate the
CA returns into an ``incoming/`` folder - and leaves the definition's files as they are. Once a
file is there, the run matches it to the definition by public key and checks it
(``_issuers.collect``), and ``obtain`` returns it as ``Issued`` with the history event
``collected``; after the store has written it, ``after_store`` moves the file to
``incoming/processed/``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from ansible_collections.certfleet.tls.plugins.module_utils._common.times import parse_timestamp
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError, public_key_fingerprint
from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import describe_csr, load_csr
from ansible_collections.certfleet.tls.plugins.module_utils._csr.profiles import resolve_profile
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import collect as _collect
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.base import (
    IssueContext,
    Issued,
    IssuerProvider,
    Pending,
    RunSettings,
)
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store import store as _store


@dataclass
class ManualPending(Pending):
    """Pending, with what the person pastes and types into the CA's form (``details``, public data only)."""

    details: dict = field(default_factory=dict)


class ManualProvider(IssuerProvider):
    """``issuer: {provider: manual, profile: <CA profile>}``: the CSR goes to a CA by hand, the certificate comes back
    through ``incoming/``."""

    name = "manual"

    def __init__(self, settings: _collect.CollectSettings | None = None, *, fetch=None):
        self.settings = settings or _collect.CollectSettings()
        self._fetch = fetch
        self._run: RunSettings | None = None
        self.plan: _collect.CollectPlan | None = None
        self.moved: list[str] = []
        self.warnings: list[str] = []

    @contextlib.contextmanager
    def session(self, run: RunSettings, definitions: list[dict]):
        self._run = run
        names = [definition["name"] for definition in definitions]
        drops = self._read(names)
        if drops and not run.check_mode:
            # One collecting run at a time: the files are read again under the lock, which is held until they moved.
            with _store.drop_in_lock(run.store_path, wait=self.settings.lock_wait):
                self._plan(definitions, self._read(names))
                yield
            return
        self._plan(definitions, drops)
        yield

    def _read(self, names: list[str]) -> list:
        drops, self.warnings = _store.read_drop_ins(self._run.store_path, names, max_bytes=self.settings.max_file_size,
                                                    max_files=self.settings.max_files)
        return drops

    def _plan(self, definitions: list[dict], drops: list) -> None:
        if not drops:
            return
        targets, resolved = [], {}
        for definition in definitions:
            stored = _store.read_definition(self._run.store_path, definition["name"], kinds=("csr", "cert"))
            target = _collect.target_for(definition, stored, profiles=self._run.profiles, resolved=resolved)
            if target is not None:
                targets.append(target)
        self.plan = _collect.plan_collect(drops, targets, self.settings, now=self._run.now, fetch=self._fetch)
        self.warnings.extend(self.plan.warnings)

    def _match(self, context: IssueContext):
        return self.plan.matches.get(context.name) if self.plan is not None else None

    def needs_issuance(self, context: IssueContext) -> tuple[bool, str]:
        match = self._match(context)
        if match is not None:
            return True, f"from {', '.join(drop.label for drop in match.files)}"
        csr = _readable_csr(context)
        if csr is None:
            return True, "no readable CSR yet"
        if context.current is None:
            return True, "no certificate yet"
        if public_key_fingerprint(csr.public_key()) != public_key_fingerprint(context.current.public_key()):
            return True, "the certificate in the store is for another key than the CSR"
        return False, "the certificate in the store is for the CSR's key"

    def obtain(self, context: IssueContext) -> Issued | Pending:
        match = self._match(context)
        if match is not None:
            first = match.files[0]
            details = {"source_file": first.label, "source_file_sha256": first.sha256}
            return Issued(match.certificate, match.chain, details=details, reason=context.reason,
                          event=None if match.already_current else "collected", warnings=list(match.warnings))
        csr = _readable_csr(context)
        if csr is None:
            return Pending(["run certfleet.tls.store_request (the request playbook) to generate the key and the CSR"],
                           reason=context.reason)
        profile_name = context.definition["issuer"].get("profile") or "private"
        return ManualPending([
            f"submit {context.path('csr')} to the CA (profile {profile_name}): paste it into the CA's application form",
            f"save the certificate the CA returns (any format: PEM, DER, PKCS#7, PKCS#12, a bundle with its "
            f"intermediates) into {context.incoming_dir} or {layout.incoming_dir(context.run.store_path)}",
            "run certfleet.tls.collect (or the request playbook again) to check and install it",
        ], reason=context.reason, details=pending_details(context, csr, profile_name))

    def keep(self, context: IssueContext) -> None:
        # The files of a manual definition change only through a collected file.
        return None

    def after_store(self) -> None:
        """Move every file the run collected to ``incoming/processed/`` (the runner calls it after the store writes)."""
        if self.plan is None or self._run is None or self._run.check_mode:
            return
        for drop in self.plan.files:
            self.moved.append(_store.move_processed(self._run.store_path, drop, now=self._run.now))

    def report(self) -> list[dict]:
        """One entry per file the run collects (or would collect in check mode)."""
        return list(self.plan.reports) if self.plan is not None else []


def pending_details(context: IssueContext, csr, profile_name: str) -> dict:
    """What the request summary shows for a pending definition: the CSR, the form's fields in the CA's order,
    the names the CA will register, and since when it waits."""
    described = describe_csr(csr)
    try:
        profile = resolve_profile(profile_name, context.run.profiles)
    except CertfleetError:
        profile = {"form_fields": []}
    try:
        history = _store.read_history(context.stored.directory)
    except (ValueError, CertfleetError):
        history = []
    since = _store.pending_since(history) or context.stored.state.get("updated")
    days = None
    if since:
        try:
            days = max(0, (context.now - parse_timestamp(since, what="history")).days)
        except CertfleetError:
            days = None
    return {
        "profile": profile_name,
        "csr": context.csr_pem.decode("ascii", errors="replace"),
        "form": _collect.form_fields(profile, described["subject"]),
        "subject_alt_name": described["subject_alt_name"],
        "key_fingerprint": described["public_key"]["fingerprint"],
        "pending_since": since,
        "pending_days": days,
        "incoming": [context.incoming_dir, layout.incoming_dir(context.run.store_path)],
    }


def _readable_csr(context: IssueContext):
    # A manual definition never fails a run: a missing or damaged CSR only changes the instructions.
    if context.csr_pem is None:
        return None
    try:
        return load_csr(context.csr_pem, source=f"{context.name}: {layout.filename('csr')}")
    except CertfleetError:
        return None
