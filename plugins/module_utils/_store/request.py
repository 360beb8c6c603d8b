# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keys and CSRs for many certificate definitions in the store, in one pass.

This module is private to the certfleet.tls collection: its API may change
without notice. Three phases keep a failed run from writing anything: check
every definition, compute every new artifact in memory (a ``StoreChange`` each), then
write them through the store's one write path (``store.apply_change``).
"""

from __future__ import annotations

import os

from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import (
    create_csr_pem,
    csr_matches,
    describe_csr,
    load_csr,
    plan_request,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import (
    generate_private_key,
    key_info,
    key_mismatches,
    load_private_key,
    serialize_private_key,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import utc_timestamp
from ansible_collections.certfleet.tls.plugins.module_utils._common.files import read_file
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import (
    ISSUER_PROVIDERS,
    PENDING_STATUS,
    StoreChange,
    apply_change,
    dump_state,
    normalise_definition,
    read_definition,
    replaced_label,
    request_hash,
    request_options,
    sha256_hex,
)


class PolicyViolations(CertfleetError):
    """Some definitions break their CA profile; ``reports`` maps name -> policy."""

    def __init__(self, message: str, reports: dict):
        super().__init__(message)
        self.reports = reports


def check_definitions(definitions: list, *, defaults: dict | None, profiles: dict | None,
                      providers=ISSUER_PROVIDERS) -> tuple[list[dict], list[str]]:
    """Phase 1: normalise and policy-check every definition; raise PolicyViolations listing all problems."""
    planned, warnings, failures, names = [], [], {}, set()
    for raw in definitions:
        definition, definition_warnings = normalise_definition(raw, defaults, providers=providers)
        if definition["name"] in names:
            raise CertfleetError(f"definitions: name '{definition['name']}' appears more than once")
        names.add(definition["name"])
        warnings.extend(definition_warnings)
        key_spec = definition["key"]
        wanted_key = {"type": key_spec["type"], "size": key_spec["size"] if key_spec["type"] == "RSA" else None,
                      "curve": key_spec["curve"] if key_spec["type"] == "ECC" else None}
        request = plan_request(request_options(definition, profiles), public_key_info=wanted_key)
        if request["policy"]["errors"]:
            failures[definition["name"]] = request["policy"]
        planned.append({"definition": definition, "request": request})
    if failures:
        details = " | ".join(f"{name}: {'; '.join(policy['errors'])}" for name, policy in failures.items())
        raise PolicyViolations(f"{len(failures)} definition(s) break their CA profile, nothing was written: {details}", failures)
    return planned, warnings


def _fast_path_ok(state: dict, *, wanted_hash: str, key_data: bytes | None, csr_data: bytes | None) -> bool:
    # The recorded hashes prove the files are the ones this module wrote for
    # this exact request, so the keys need not be decrypted on re-runs.
    return (
        key_data is not None and csr_data is not None
        and state.get("request_hash") == wanted_hash
        and state.get("key", {}).get("file_sha256") == sha256_hex(key_data)
        and state.get("csr", {}).get("file_sha256") == sha256_hex(csr_data)
    )


def compute_definition(item: dict, *, store_path: str, passphrase: str, check_mode: bool, verify_passphrase: bool) -> dict:
    """Phase 2 for one definition: decide and build new key / CSR / state in memory."""
    definition, request = item["definition"], item["request"]
    name = definition["name"]
    key_spec = definition["key"]
    stored = read_definition(store_path, name, kinds=("key", "csr"))
    state = stored.state
    key_data, csr_data = stored.files["key"], stored.files["csr"]
    wanted = {"subject": request["subject"], "subject_alt_names": request["subject_alt_name"], "digest": definition["digest"]}
    wanted_hash = request_hash(subject=request["subject"], subject_alt_name=request["subject_alt_name"],
                               digest=definition["digest"], key=key_spec, profile=request["policy"]["profile"])
    change = StoreChange(name=name)
    outcome = {"name": name, "directory": stored.directory, "change": change, "state": state, "request": request,
               "definition": definition, "passphrase_checked": False}
    if _fast_path_ok(state, wanted_hash=wanted_hash, key_data=key_data, csr_data=csr_data):
        if verify_passphrase:
            # Checking one key per run catches a wrong store passphrase for ~1 ms.
            load_private_key(key_data, source=f"{name}: key.pem (store passphrase)", passphrase=passphrase)
            outcome["passphrase_checked"] = True
        outcome["csr_pem"] = csr_data
        return outcome

    key = None
    if key_data is not None:
        key = load_private_key(key_data, source=f"{name}: key.pem (store passphrase)", passphrase=passphrase)
        outcome["passphrase_checked"] = True
        mismatches = key_mismatches(key, key_type=key_spec["type"], size=key_spec["size"], curve=key_spec["curve"])
        if mismatches:
            change.actions.append(f"key replaced: {'; '.join(mismatches)}")
            change.archive = (replaced_label(), ["key", "csr"])
            key = None
    if key is None:
        change.actions.append("key generated")
        if check_mode:
            outcome["csr_pem"] = None
            change.actions.append("csr generated")
            return outcome
        key = generate_private_key(key_type=key_spec["type"], size=key_spec["size"], curve=key_spec["curve"])
        change.writes["key"] = serialize_private_key(key, passphrase=passphrase)
        change.events.append({"event": "key_generated", **{k: v for k, v in key_info(key).items() if v is not None}})
    elif sha256_hex(key_data) != state.get("key", {}).get("file_sha256"):
        change.actions.append("state recorded")

    csr_pem = csr_data
    if "key" in change.writes or not csr_matches(csr_data, private_key=key, **wanted):
        change.actions.append("csr generated")
        csr_pem = create_csr_pem(key, **wanted)
        change.writes["csr"] = csr_pem
        if csr_data is not None and change.archive is None:
            change.archive = (replaced_label(), ["csr"])
        change.events.append({"event": "csr_generated", "subject": describe_csr(load_csr(csr_pem))["subject_string"],
                              "subject_alt_name": request["subject_alt_name"], "profile": request["policy"]["profile"]})
    outcome["csr_pem"] = csr_pem
    new_state = dict(state)
    new_state.update(
        name=name,
        status=_status(change, state),
        issuer=definition["issuer"],
        request_hash=wanted_hash,
        key=dict(key_info(key), file_sha256=sha256_hex(change.writes.get("key", key_data))),
        csr={"file_sha256": sha256_hex(csr_pem), "subject": request["subject"], "subject_alt_name": request["subject_alt_name"],
             "digest": definition["digest"]},
        policy_warnings=request["policy"]["warnings"],
    )
    if new_state != state:
        new_state["updated"] = utc_timestamp()
        change.writes["state"] = dump_state(new_state)
        if not change.actions:
            change.actions.append("state recorded")
    return outcome


# How many existing keys of other definitions are tried when a run opened none of its own; a key
# that cannot be read for another reason (damaged, not encrypted) is passed over, up to this bound.
PASSPHRASE_PROBE_KEYS = 3
# Directory entries of certs/ looked at while searching for such a key (a store is bounded by this).
PASSPHRASE_PROBE_ENTRIES = 10000


def check_store_passphrase(store_path: str, passphrase: str, *, exclude=()) -> str | None:
    """Open one existing key of the store (outside ``exclude``) with ``passphrase``; returns its name,
    None when the store holds no key to check against (a new store: this passphrase becomes its own).

    A run that only creates keys never opens an existing one, so without this a mistyped passphrase
    would silently leave the store's keys under two passphrases.
    """
    certificates = os.path.join(store_path, layout.CERTIFICATES)
    try:
        with os.scandir(certificates) as entries:
            names = []
            for number, entry in enumerate(entries):
                if number >= PASSPHRASE_PROBE_ENTRIES:
                    break
                names.append(entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise CertfleetError(f"store_path: cannot list '{certificates}' ({exc.strerror})") from None
    tried = 0
    for name in sorted(names):
        if name in exclude or not layout.NAME_PATTERN.fullmatch(name) or tried >= PASSPHRASE_PROBE_KEYS:
            continue
        path = layout.certificate_path(store_path, name, "key")
        try:
            data = read_file(path, option=f"{name}: key.pem")
        except CertfleetError:
            continue
        if data is None:
            continue
        tried += 1
        try:
            load_private_key(data, source=f"{name}: key.pem", passphrase=passphrase)
        except CertfleetError as exc:
            if "wrong passphrase" in str(exc):
                raise CertfleetError(
                    f"passphrase: the store passphrase does not open {name}/key.pem, an existing key of the store "
                    f"({path}); every key of the store is encrypted with one passphrase, so no new key was written "
                    f"(check the vaulted passphrase for a typo)") from None
            continue  # damaged or not encrypted: says nothing about the passphrase, try another
        return name
    return None


def _status(change: StoreChange, state: dict) -> str:
    # A new key or CSR waits for the CA again; otherwise the recorded status (issued) stands.
    return PENDING_STATUS if {"key", "csr"} & set(change.writes) else state.get("status", PENDING_STATUS)


def summarise(outcome: dict) -> dict:
    """What the module returns for one definition (no key material)."""
    request = outcome["request"]
    csr_pem = outcome.get("csr_pem")
    change = outcome["change"]
    result = {
        "name": outcome["name"],
        "changed": bool(change.actions),
        "actions": change.actions,
        "store_dir": outcome["directory"],
        "status": _status(change, outcome.get("state") or {}),
        "issuer": outcome["definition"]["issuer"],
        "subject": request["subject"],
        "subject_alt_name": request["subject_alt_name"],
        "policy": request["policy"],
        "csr": csr_pem.decode("ascii") if csr_pem else None,
    }
    if csr_pem:
        info = describe_csr(load_csr(csr_pem))
        result.update(subject_string=info["subject_string"], key_fingerprint=info["public_key"]["fingerprint"])
    return result


def run_request(
    *,
    store_path: str,
    definitions: list,
    passphrase: str,
    defaults: dict | None = None,
    profiles: dict | None = None,
    check_mode: bool = False,
    providers=ISSUER_PROVIDERS,
) -> dict:
    """Ensure the key, CSR, state and history of every definition; returns the summary.

    ``providers``: the issuer.provider names a definition may use.
    """
    if not passphrase:
        raise CertfleetError("passphrase: the store passphrase is required (keys are encrypted at rest); keep it in Ansible Vault")
    planned, warnings = check_definitions(definitions, defaults=defaults, profiles=profiles, providers=providers)
    outcomes = []
    passphrase_verified = False
    for item in planned:
        outcome = compute_definition(item, store_path=store_path, passphrase=passphrase, check_mode=check_mode,
                                     verify_passphrase=not passphrase_verified)
        # Any existing key that was opened proves the passphrase for the rest.
        passphrase_verified = passphrase_verified or outcome["passphrase_checked"]
        outcomes.append(outcome)
    if not passphrase_verified:
        # Only new keys in this run: prove the passphrase on a key already in the store before writing any.
        check_store_passphrase(store_path, passphrase, exclude={outcome["name"] for outcome in outcomes})
    if not check_mode:
        for outcome in outcomes:
            apply_change(store_path, outcome["change"])
    results = [summarise(outcome) for outcome in outcomes]
    return {"changed": any(r["changed"] for r in results), "certificates": results, "warnings": warnings}
