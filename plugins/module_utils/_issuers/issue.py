# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unattended issuance: sign the store's pending CSRs with the store's private CAs, in one pass.

This module is private to the certfleet.tls collection: its API may change
without notice. Like ``_store_request``, three phases keep a failed run from
writing anything: check every definition, decide and sign in memory, then write
(CA index first, so every certificate in the store is known to its CA).
"""

from __future__ import annotations

import contextlib
import os

from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import load_csr
from ansible_collections.certfleet.tls.plugins.module_utils._common.files import read_file, write_file_atomic
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import (
    NAME_PATTERN,
    append_history,
    archive_files,
    certificate_dir,
    dump_state,
    ensure_directory,
    load_state,
    normalise_definition,
    sha256_hex,
    utc_now,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError, certificate_fingerprint

ISSUED_STATUS = "issued"
PROVIDER = "private_ca"
CERT_FILES = ("cert.pem", "chain.pem", "fullchain.pem")


class IssueFailures(CertfleetError):
    """Some definitions cannot be issued; ``failures`` maps name -> list of reasons."""

    def __init__(self, message: str, failures: dict):
        super().__init__(message)
        self.failures = failures


def _renew_before_days(definition: dict) -> int:
    value = definition.get("renew_before_days")
    if value is None:
        return _ca.DEFAULT_RENEW_BEFORE_DAYS
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise CertfleetError(f"{definition['name']}: renew_before_days {value!r} is not a number of days") from None
    if days < 0:
        raise CertfleetError(f"{definition['name']}: renew_before_days must not be negative")
    return days


def check_definitions(definitions: list, *, defaults: dict | None) -> tuple[list[dict], list[str]]:
    """Phase 1: the private_ca definitions, normalised, with their CA name and renewal window."""
    selected, warnings, names, failures = [], [], set(), {}
    for raw in definitions:
        # Unknown keys were already reported by store_request; stay quiet about them here.
        definition, _warnings = normalise_definition(raw, defaults)
        name = definition["name"]
        if name in names:
            raise CertfleetError(f"definitions: name '{name}' appears more than once")
        names.add(name)
        if definition["issuer"]["provider"] != PROVIDER:
            continue
        ca_name = definition["issuer"].get("ca")
        if not isinstance(ca_name, str) or not NAME_PATTERN.match(ca_name):
            failures[name] = [f"issuer.ca {ca_name!r} must name a private CA of the store (letters, digits, '.', '_', '-')"]
            continue
        try:
            renew = _renew_before_days(definition)
        except CertfleetError as exc:
            failures[name] = [str(exc)]
            continue
        selected.append({"definition": definition, "ca": ca_name, "renew_before_days": renew})
    if failures:
        raise _failures(failures)
    return selected, warnings


def _failures(failures: dict) -> IssueFailures:
    details = " | ".join(f"{name}: {'; '.join(reasons)}" for name, reasons in failures.items())
    return IssueFailures(f"{len(failures)} definition(s) cannot be issued, nothing was written: {details}", failures)


def _existing_certificate(data: bytes | None, *, name: str):
    if not data:
        return None
    try:
        return _chain.load_certificates(data, source=f"{name}: cert.pem").certificates[0].certificate
    except (CertfleetError, IndexError):
        return None  # a damaged cert.pem is simply replaced by a new certificate


def _served(ca, certificate, *, chains: dict, now) -> tuple[list, list[str]]:
    """(leaf + CA chain, warnings): the chain engine checks a CA's chain once per run; later leaves of the
    same CA reuse it after one signature check, which keeps re-runs over thousands of definitions fast."""
    cached = chains.get(ca.name)
    if cached is not None and _chain.is_issued_by(certificate, ca.certificate):
        return [certificate] + cached, []
    result = _ca.served_chain(ca, certificate, now=now)
    chains[ca.name] = [item.certificate for item in result.intermediates]
    return result.certificates, list(result.warnings)


def compute_definition(item: dict, *, store_path: str, ca, passphrase: str, profiles: dict | None, check_mode: bool,
                       now, chains: dict | None = None) -> dict:
    """Phase 2 for one definition: keep, reuse or issue, and the files and state that follow."""
    chains = {} if chains is None else chains
    definition = item["definition"]
    name = definition["name"]
    directory = certificate_dir(store_path, name)
    outcome = {"name": name, "directory": directory, "ca": item["ca"], "actions": [], "writes": {}, "events": [],
               "certificate": None, "status": None}
    csr_data = read_file(os.path.join(directory, "csr.pem"), option=f"{name}: csr.pem")
    state = load_state(directory)
    outcome["status"] = state.get("status")
    if csr_data is None or ca is None:
        if not check_mode:
            raise CertfleetError(f"no csr.pem in {directory}: run certfleet.tls.store_request (the request playbook) first")
        later = "store_request generates the CSR" if csr_data is None else f"CA {item['ca']} is created"
        outcome["actions"].append(f"certificate issued (after {later})")
        outcome["status"] = ISSUED_STATUS
        return outcome
    csr = load_csr(csr_data, source=f"{name}: csr.pem")
    existing_data = {filename: read_file(os.path.join(directory, filename), option=f"{name}: {filename}") for filename in CERT_FILES}
    existing = _existing_certificate(existing_data["cert.pem"], name=name)
    if existing is not None:
        previous = _chain.certificate_info(existing)
        outcome["before"] = f"{name}: serial {previous['serial']} sha256 {previous['sha256']} not_after {previous['not_after']}\n"
    decision = _ca.decide_issue(
        ca, csr, existing=existing, passphrase=passphrase, profile=definition["issuer"].get("profile") or "private",
        profiles=profiles, validity_days=definition["issuer"].get("validity_days"),
        renew_before_days=item["renew_before_days"], requester=name, check_mode=check_mode, now=now,
        what=f"{name}: csr.pem")
    outcome["ca_files"] = decision["ca_files"]
    outcome["reason"] = decision["reason"]
    outcome["warnings"] = list(decision["plan"]["warnings"]) if decision["action"] == "issue" else []
    certificate = decision["certificate"]
    if decision["action"] != "keep":
        outcome["actions"].append(f"certificate {'issued' if decision['action'] == 'issue' else 'restored'} ({decision['reason']})")
    if certificate is None:  # check mode, new certificate
        outcome["status"] = ISSUED_STATUS
        return outcome
    outcome["certificate"] = certificate
    served, outcome["chain_warnings"] = _served(ca, certificate, chains=chains, now=now)
    wanted = {"cert.pem": _ca.pem(certificate), "chain.pem": _chain.chain_pem(served), "fullchain.pem": _chain.fullchain_pem(served)}
    for filename, content in wanted.items():
        if existing_data[filename] != content:
            outcome["writes"][filename] = content
    if outcome["writes"] and decision["action"] == "keep":
        outcome["actions"].append(f"{', '.join(sorted(outcome['writes']))} rewritten")
    if existing is not None and certificate_fingerprint(existing) != certificate_fingerprint(certificate):
        outcome["archive"] = (_ca.format_serial(existing.serial_number), [f for f in CERT_FILES if existing_data[f] is not None])
    info = _chain.certificate_info(certificate)
    record = {"serial": info["serial"], "sha256": info["sha256"], "sha1": info["sha1"], "not_before": info["not_before"],
              "not_after": info["not_after"], "subject": info["subject"], "issuer": info["issuer"], "ca": item["ca"],
              "file_sha256": sha256_hex(wanted["cert.pem"]), "csr_sha256": sha256_hex(csr_data)}
    new_state = dict(state)
    new_state.update(name=name, status=ISSUED_STATUS, certificate=record)
    if new_state != state:
        new_state["updated"] = utc_now()
        outcome["writes"]["state.json"] = dump_state(new_state)
        if not outcome["actions"]:
            outcome["actions"].append("state recorded")
    if decision["action"] != "keep":
        # "restored": the CA had issued this certificate for the same CSR and cert.pem was missing.
        outcome["events"].append({"event": "issued" if decision["action"] == "issue" else "restored", "ca": item["ca"],
                                  "serial": info["serial"], "sha256": info["sha256"], "not_after": info["not_after"],
                                  "reason": decision["reason"]})
    outcome["status"] = ISSUED_STATUS
    return outcome


def write_outcome(outcome: dict) -> None:
    """Phase 3 for one definition: archive the previous generation, write files, log history."""
    if not outcome["writes"]:
        return
    directory = outcome["directory"]
    ensure_directory(directory)
    if outcome.get("archive") and outcome["archive"][1]:
        serial, names = outcome["archive"]
        archived = archive_files(directory, names, label=serial)
        if archived:
            outcome["events"].insert(0, {"event": "archived", "files": names, "to": os.path.relpath(archived, directory)})
    # Certificate files first, state last: an interrupted run leaves a state.json that does
    # not match cert.pem, which the next run detects and repairs.
    for filename in CERT_FILES + ("state.json",):
        if filename in outcome["writes"]:
            write_file_atomic(os.path.join(directory, filename), outcome["writes"][filename], option=f"{outcome['name']}: {filename}")
    now = utc_now()
    append_history(directory, [dict(event, time=now) for event in outcome["events"]])


def summarise(outcome: dict) -> dict:
    """What the module returns for one definition (public data only)."""
    result = {
        "name": outcome["name"],
        "changed": bool(outcome["actions"]),
        "actions": outcome["actions"],
        "status": outcome["status"],
        "ca": outcome["ca"],
        "store_dir": outcome["directory"],
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


def _passphrase_for(ca_name: str, *, ca_passphrase: str | None, ca_passphrases: dict | None) -> str:
    passphrase = (ca_passphrases or {}).get(ca_name) or ca_passphrase
    if not passphrase:
        raise CertfleetError(f"ca_passphrase: no passphrase for CA {ca_name} (give ca_passphrase or ca_passphrases.{ca_name})")
    return passphrase


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
) -> dict:
    """Issue (or keep) the certificate of every private_ca definition; returns the module summary."""
    selected, warnings = check_definitions(definitions, defaults=defaults)
    now = now or _ca.utc_now()
    ca_names = sorted({item["ca"] for item in selected})
    outcomes, failures, chains = [], {}, {}
    with contextlib.ExitStack() as stack:
        cas = {}
        for ca_name in ca_names:
            directory = _ca.ca_directory(store_path, ca_name)
            if not check_mode and os.path.isdir(directory):
                # Sorted order: two runs never wait on each other's locks in a cycle.
                stack.enter_context(_ca.locked(directory))
            ca = _ca.load_ca(directory, name=ca_name)
            if ca is None and not check_mode:
                ca = _ca.load_store_ca(store_path, ca_name)  # raises, telling how to create it
            if ca is not None and ca.status != _ca.ACTIVE:
                _ca.load_store_ca(store_path, ca_name)  # raises, telling what the subordinate CA waits for
            cas[ca_name] = ca
        for item in selected:
            ca_name = item["ca"]
            try:
                passphrase = _passphrase_for(ca_name, ca_passphrase=ca_passphrase, ca_passphrases=ca_passphrases)
                outcomes.append(compute_definition(item, store_path=store_path, ca=cas[ca_name], passphrase=passphrase,
                                                   profiles=profiles, check_mode=check_mode, now=now, chains=chains))
            except _ca.PolicyError as exc:
                failures[item["definition"]["name"]] = exc.errors
            except CertfleetError as exc:
                failures[item["definition"]["name"]] = [str(exc)]
        if failures:
            raise _failures(failures)
        if not check_mode:
            for ca_name, ca in cas.items():
                files = {}
                for outcome in outcomes:
                    if outcome["ca"] == ca_name:
                        files.update(outcome.get("ca_files") or {})
                if files:
                    # The index holds every certificate issued in this run (decide_issue updated it in memory).
                    files["index.json"] = _ca.dump_json(ca.index)
                    _ca.write_files(ca.directory, files, name=ca_name)
            for outcome in outcomes:
                write_outcome(outcome)
    for outcome in outcomes:
        warnings.extend(f"{outcome['name']}: {warning}" for warning in outcome.get("warnings", []) + outcome.get("chain_warnings", []))
    results = [summarise(outcome) for outcome in outcomes]
    before = {outcome["name"]: outcome["before"] for outcome in outcomes if outcome.get("before")}
    return {"changed": any(item["changed"] for item in results), "certificates": results, "warnings": warnings,
            "before": before}
