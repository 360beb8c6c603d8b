# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""store_issue's runner: every definition's issuer provider decides and obtains, the store writes.

This module is private to the certfleet.tls collection: its API may change
without notice. Like the request engine, three phases keep a failed run from writing
anything: check every definition (each provider's ``check``), decide and obtain in memory
(``needs_issuance``, then ``obtain`` or ``keep``; the store plans its writes with
``plan_issued``), then write - the providers' own records first (a CA's index, so every
certificate in the store is known to its CA), then the store (``apply_change``). The
provider interface is in ``_issuers.base``.
"""

from __future__ import annotations

import contextlib

from ansible_collections.certfleet.tls.plugins.module_utils._common.times import utc_now
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import collect as _collect
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.base import (
    IssueContext,
    Pending,
    RunSettings,
    failure_reasons,
)
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.manual import ManualProvider
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.providers import get_provider, provider_names
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import (
    ISSUED_STATUS,
    apply_change,
    normalise_definition,
    plan_issued,
    read_definition,
)


class IssueFailures(CertfleetError):
    """Some definitions cannot be issued; ``failures`` maps name -> list of reasons."""

    def __init__(self, message: str, failures: dict):
        super().__init__(message)
        self.failures = failures


def _failures(failures: dict) -> IssueFailures:
    details = " | ".join(f"{name}: {'; '.join(reasons)}" for name, reasons in failures.items())
    return IssueFailures(f"{len(failures)} definition(s) cannot be issued, nothing was written: {details}", failures)


def check_definitions(definitions: list, *, defaults: dict | None, providers: dict) -> tuple[list[dict], list[str]]:
    """Phase 1: every definition normalised, with its provider (one per name), checked by that provider."""
    selected, warnings, names, failures = [], [], set(), {}
    for raw in definitions:
        # Unknown keys were already reported by store_request; stay quiet about them here.
        definition, _warnings = normalise_definition(raw, defaults, providers=tuple(providers))
        name = definition["name"]
        if name in names:
            raise CertfleetError(f"definitions: name '{name}' appears more than once")
        names.add(name)
        key = definition["issuer"]["provider"]
        provider = providers[key]
        if not provider.implemented:
            warnings.append(f"{name}: issuer.provider {key} is not implemented yet; the definition is left alone")
            continue
        problems = provider.check(definition)
        if problems:
            failures[name] = problems
            continue
        selected.append({"definition": definition, "provider": provider, "source": key})
    if failures:
        raise _failures(failures)
    return selected, warnings


def compute_definition(item: dict, *, run: RunSettings) -> dict:
    """Phase 2 for one definition: its provider keeps, obtains or defers; the store plans the writes."""
    definition, provider = item["definition"], item["provider"]
    name = definition["name"]
    stored = read_definition(run.store_path, name)
    context = IssueContext(definition=definition, stored=stored, run=run)
    outcome = {"name": name, "provider": item["source"], "definition": definition, "directory": stored.directory,
               "files": {kind: stored.path(kind) for kind in layout.ISSUED_KINDS}, "actions": [],
               "status": stored.state.get("status"), "certificate": None, "change": None, "warnings": []}
    if stored.current is not None:
        previous = _ca.describe_certificate(stored.current)
        outcome["before"] = f"{name}: serial {previous['serial']} sha256 {previous['sha256']} not_after {previous['not_after']}\n"
    needed, reason = provider.needs_issuance(context)
    if needed:
        context.reason = reason
        result = provider.obtain(context)
    else:
        result = provider.keep(context)
    if result is None:
        outcome["left_alone"] = True
        return outcome
    if isinstance(result, Pending):
        outcome["pending"] = {"name": name, "provider": item["source"], "reason": result.reason,
                              "instructions": list(result.instructions)}
        # A provider may say more about what the person must do (the manual provider: the CSR, the form's fields).
        outcome["pending"].update(getattr(result, "details", None) or {})
        return outcome
    outcome["warnings"] = list(result.warnings)
    outcome["status"] = ISSUED_STATUS
    if result.event is not None:
        outcome["actions"].append(f"certificate {result.event} ({result.reason})")
    if result.certificate is None:  # check mode: a certificate would be issued
        return outcome
    outcome["certificate"] = result.certificate
    outcome["change"] = plan_issued(stored, certificate=result.certificate, chain=result.chain, source=item["source"],
                                    event=result.event, details=result.details, reason=result.reason)
    outcome["change"].events[:0] = [dict(event) for event in result.history]
    outcome["actions"].extend(outcome["change"].actions)
    return outcome


def summarise(outcome: dict) -> dict:
    """What the module returns for one definition (public data only)."""
    result = {
        "name": outcome["name"],
        "changed": bool(outcome["actions"]),
        "actions": outcome["actions"],
        "status": outcome["status"],
        "provider": outcome["provider"],
        "ca": outcome["definition"]["issuer"].get("ca"),
        "store_dir": outcome["directory"],
        "files": outcome["files"],
        "serial": None,
        "sha256": None,
        "sha1": None,
        "not_after": None,
        "subject_alt_name": None,
    }
    if outcome["certificate"] is not None:
        info = _ca.describe_certificate(outcome["certificate"])
        result.update({key: info[key] for key in ("serial", "sha256", "sha1", "not_after", "subject", "subject_alt_name")})
    return result


def run_issue(
    *,
    store_path: str,
    definitions: list,
    ca_passphrase: str | None,
    ca_passphrases: dict | None = None,
    defaults: dict | None = None,
    profiles: dict | None = None,
    check_mode: bool = False,
    now=None,
    providers: dict | None = None,
    collect: dict | None = None,
) -> dict:
    """Issue (or keep) the certificate of every definition through its issuer provider; returns the module summary.

    ``providers`` maps extra or replacement provider names to factories (or instances) for this run.
    Definitions whose provider defers (``Pending``) are listed in ``pending``, not in ``certificates``.
    ``collect`` holds the collect options of the manual provider (``_issuers.collect.argument_spec``); the files it
    collects are listed in ``collected``.
    """
    if collect is not None and "manual" not in (providers or {}):
        providers = dict(providers or {}, manual=ManualProvider(_collect.settings_from_options(collect)))
    registry = {name: get_provider(name, providers) for name in provider_names(providers)}
    selected, warnings = check_definitions(definitions, defaults=defaults, providers=registry)
    run = RunSettings(store_path=store_path, check_mode=check_mode, now=now or utc_now(), profiles=profiles or {},
                      ca_passphrase=ca_passphrase, ca_passphrases=ca_passphrases or {})
    used = sorted({item["source"] for item in selected})
    outcomes, failures = [], {}
    with contextlib.ExitStack() as stack:
        for name in used:
            stack.enter_context(registry[name].session(
                run, [item["definition"] for item in selected if item["source"] == name]))
        for item in selected:
            try:
                outcomes.append(compute_definition(item, run=run))
            except CertfleetError as exc:
                failures[item["definition"]["name"]] = failure_reasons(exc)
        if failures:
            raise _failures(failures)
        if not check_mode:
            for name in used:
                registry[name].commit()
            for outcome in outcomes:
                if outcome["change"] is not None:
                    apply_change(store_path, outcome["change"])
            # After the store holds every certificate: what a provider consumed may go (the manual provider moves
            # the collected drop-in files to incoming/processed/).
            for name in used:
                finish = getattr(registry[name], "after_store", None)
                if finish is not None:
                    finish()
    collected = [entry for name in used for entry in (getattr(registry[name], "report", lambda: [])())]
    for name in used:
        warnings.extend(getattr(registry[name], "warnings", None) or [])
    issued = [outcome for outcome in outcomes if "pending" not in outcome and not outcome.get("left_alone")]
    for outcome in issued:
        warnings.extend(f"{outcome['name']}: {warning}" for warning in outcome["warnings"])
    results = [summarise(outcome) for outcome in issued]
    before = {outcome["name"]: outcome["before"] for outcome in issued if outcome.get("before")}
    return {"changed": any(item["changed"] for item in results) or bool(collected), "certificates": results,
            "warnings": warnings, "pending": [outcome["pending"] for outcome in outcomes if "pending" in outcome],
            "before": before, "collected": collected}


def run_collect(
    *,
    store_path: str,
    definitions: list,
    collect: dict | None = None,
    defaults: dict | None = None,
    profiles: dict | None = None,
    check_mode: bool = False,
    now=None,
    fetch=None,
) -> dict:
    """Collect the files dropped into incoming/ for the manual definitions among ``definitions`` (the others are
    left alone); ``run_issue``'s summary, whose ``collected`` lists every file taken."""
    manual = []
    for raw in definitions or []:
        definition, _warnings = normalise_definition(raw, defaults, providers=provider_names())
        if definition["issuer"]["provider"] == "manual":
            manual.append(raw)
    provider = ManualProvider(_collect.settings_from_options(collect or {}), fetch=fetch)
    result = run_issue(store_path=store_path, definitions=manual, ca_passphrase=None, defaults=defaults,
                       profiles=profiles, check_mode=check_mode, now=now, providers={"manual": provider})
    result["moved"] = list(provider.moved)
    return result
