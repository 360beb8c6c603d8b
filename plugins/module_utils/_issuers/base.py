# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The issuer seam: how the certificate of a store definition is obtained, and by whom.

This module is private to the certfleet.tls collection: its API may change
without notice.

A definition names its issuer provider in ``issuer.provider``. A provider answers two questions
for one definition and never writes the store (the runner, ``_issuers.issue.run_issue``, does that
through ``_store.store.plan_issued`` and ``apply_change``):

``needs_issuance(context) -> (bool, reason)``
    Must a certificate be obtained now? False keeps the store's current certificate; ``keep(context)``
    then says what it is served with (or None: leave the definition's files alone).
``obtain(context) -> Issued | Pending``
    ``Issued(certificate, chain, details)``: a certificate and the intermediates served after it;
    ``Pending(instructions)``: no certificate yet, and what a person must do about it.

One run: ``check(definition)`` for every definition first (any problem fails the run before
anything is read or written); ``session(run, definitions)`` once per provider around the rest (load
and lock what it needs, for example a CA); per definition ``needs_issuance``, then ``obtain`` or
``keep``; when every definition succeeded, ``commit()`` (the provider's own records, such as a CA's
issuance index), then the store writes. A ``CertfleetError`` from a provider fails that definition
(its ``errors`` list, when it has one, gives the reasons); when any definition fails, nothing is
written. In check mode a provider changes nothing anywhere, and ``obtain`` returns
``Issued(None)`` when a certificate would be issued.

A new provider subclasses ``IssuerProvider``, sets ``name`` and implements ``needs_issuance`` and
``obtain`` (``check``, ``session``, ``keep`` and ``commit`` have defaults). It joins ``PROVIDERS``
(``_issuers.providers``) and its name joins ``_store.store.ISSUER_PROVIDERS``, or it is passed to
``run_issue(providers={name: factory})`` for one run.
"""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import dataclass, field

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import (
    DEFAULT_RENEW_BEFORE_DAYS,
    StoredDefinition,
    recorded_details,
)


@dataclass(frozen=True)
class RunSettings:
    """What every provider of one store_issue run shares."""

    store_path: str
    check_mode: bool
    now: datetime.datetime
    profiles: dict = field(default_factory=dict)
    ca_passphrase: str | None = None
    ca_passphrases: dict = field(default_factory=dict)


@dataclass
class IssueContext:
    """One definition as a provider sees it, read from the store by the runner (never written by a provider)."""

    definition: dict
    stored: StoredDefinition
    run: RunSettings
    reason: str = ""  # why needs_issuance said yes, for obtain

    @property
    def name(self) -> str:
        return self.definition["name"]

    @property
    def check_mode(self) -> bool:
        return self.run.check_mode

    @property
    def now(self) -> datetime.datetime:
        return self.run.now

    @property
    def csr_pem(self) -> bytes | None:
        """The definition's CSR as stored, None before store_request made it."""
        return self.stored.files.get("csr")

    @property
    def current(self):
        """The store's current certificate, None when there is none (or it cannot be read)."""
        return self.stored.current

    @property
    def current_chain(self) -> list:
        """The intermediates the store serves with the current certificate."""
        return self.stored.current_chain

    def path(self, kind: str) -> str:
        """Where one of the definition's files lives (``"csr"``, ``"cert"``, ...), for messages and instructions."""
        return self.stored.path(kind)

    @property
    def incoming_dir(self) -> str:
        """The folder a person drops a certificate from a CA into."""
        return layout.incoming_dir(self.run.store_path, self.name)


@dataclass
class Issued:
    """A certificate for the definition; ``certificate`` None means one would be issued (check mode)."""

    certificate: object
    chain: list = field(default_factory=list)  # served after the certificate, its issuer first, no root
    details: dict = field(default_factory=dict)  # recorded with it in state and history, e.g. {"ca": "intranet"}
    event: str | None = "issued"  # history event; "restored" for a certificate found again; None: it stays current
    reason: str = ""
    warnings: list = field(default_factory=list)
    history: list = field(default_factory=list)  # history events before ``event`` (an ACME order's transitions)


@dataclass
class Pending:
    """No certificate yet: ``instructions`` say what a person must do, ``reason`` why one is needed."""

    instructions: list
    reason: str = ""


class IssuerProvider:
    """Base of every issuer provider; see the module docstring for the contract."""

    name = ""
    implemented = True

    def check(self, definition: dict) -> list[str]:
        """Problems of a normalised definition for this provider (phase 1: nothing is read or written)."""
        return []

    @contextlib.contextmanager
    def session(self, run: RunSettings, definitions: list[dict]):
        """Hold what one run needs for these definitions (a CA loaded and locked, an account) around the rest."""
        yield

    def needs_issuance(self, context: IssueContext) -> tuple[bool, str]:
        """(True, why) when a certificate must be obtained now; (False, why not) keeps the current one."""
        raise NotImplementedError

    def obtain(self, context: IssueContext) -> Issued | Pending:
        """A certificate for the definition, or what a person must do first."""
        raise NotImplementedError

    def keep(self, context: IssueContext) -> Issued | None:
        """The current certificate as it stays: served with the chain the store holds, the details recorded before."""
        if context.current is None:
            return None
        return Issued(context.current, context.current_chain, details=recorded_details(context.stored.state), event=None)

    def commit(self) -> None:
        """Write the provider's own records of this run (before the store writes; never in check mode)."""


class NotImplementedProvider(IssuerProvider):
    """A provider a definition may name already, without an implementation yet: its definitions are left alone."""

    implemented = False

    def __init__(self, name: str):
        self.name = name

    def needs_issuance(self, context: IssueContext) -> tuple[bool, str]:
        raise CertfleetError(f"{context.name}: issuer.provider {self.name} is not implemented yet")

    def obtain(self, context: IssueContext) -> Issued | Pending:
        raise CertfleetError(f"{context.name}: issuer.provider {self.name} is not implemented yet")


def renew_before_days(definition: dict) -> int:
    """The definition's renewal window in days (30 when not set)."""
    value = definition.get("renew_before_days")
    if value is None:
        return DEFAULT_RENEW_BEFORE_DAYS
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise CertfleetError(f"{definition['name']}: renew_before_days {value!r} is not a number of days") from None
    if days < 0:
        raise CertfleetError(f"{definition['name']}: renew_before_days must not be negative")
    return days


def failure_reasons(exc: CertfleetError) -> list[str]:
    """Why a definition failed: the error's own list of reasons when it has one, else its message."""
    errors = getattr(exc, "errors", None)
    return list(errors) if errors else [str(exc)]
