# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a server gets from the store for one certificate: checked key, certificate and chain files.

This module is private to the certfleet.tls collection: its API may change
without notice. It runs on the controller (the deploy_files action), where the store is.

Everything is checked before anything leaves the controller, so a broken store entry never
reaches a server (seed 000 §7-§8 lists what breaks Apache: a key that does not match, a chain
file in the wrong order or for another issuer, an encrypted key Apache cannot open on Windows).
"""

from __future__ import annotations

import datetime

from ansible_collections.certfleet.tls.plugins.module_utils._chain.chain import certificate_info, fullchain_pem
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import serialize_private_key
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError, certificate_fingerprint
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import load_current

ENTRY_KEYS = {"name", "key_path", "certificate_path", "chain_path", "key_mode", "key_owner", "key_group", "key_passphrase",
              "certificate_mode", "owner", "group"}


def certificate_files(store_path: str, entry: dict, *, passphrase: str | None, fullchain: bool | None = None,
                      now: datetime.datetime | None = None) -> tuple[list[dict], dict]:
    """The key, certificate and chain files of one deployment entry, plus facts about the certificate.

    entry: name, key_path, certificate_path, optional chain_path (given: Apache < 2.4.8, certificate_path holds the
    leaf alone), key_mode / key_owner / key_group, key_passphrase (given: the key stays encrypted with it).
    Returns ([{path, content, mode, owner, group, secret}], {name, sha256, not_after, subject, issuer, serial}).
    """
    if not isinstance(entry, dict):
        raise CertfleetError("certificates: every entry must be a dict")
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        raise CertfleetError(f"certificates: unknown keys {', '.join(unknown)}")
    name = entry.get("name")
    for key in ("name", "key_path", "certificate_path"):
        if not entry.get(key):
            raise CertfleetError(f"certificates[{name or '?'}]: {key} is required")
    current = load_current(store_path, name, passphrase, now=now)
    private_key, key_pem, leaf, intermediates = current.private_key, current.key_pem, current.leaf, current.intermediates

    key_passphrase = entry.get("key_passphrase")
    if key_passphrase:
        # Same passphrase as the store: ship the store's bytes, so re-runs compare equal (encryption is salted).
        key_content = key_pem if key_passphrase == passphrase and b"ENCRYPTED" in key_pem else \
            serialize_private_key(private_key, key_format="pkcs8", passphrase=key_passphrase)
    else:
        key_content = serialize_private_key(private_key, key_format="pkcs8")
    owner = entry.get("owner") or "root"
    group = entry.get("group") or "root"
    files = [{
        "path": entry["key_path"], "content": key_content.decode("ascii"), "mode": entry.get("key_mode") or "0600",
        "owner": entry.get("key_owner") or owner, "group": entry.get("key_group") or group, "secret": True,
    }]
    separate_chain = bool(entry.get("chain_path")) if fullchain is None else not fullchain
    certificate_mode = entry.get("certificate_mode") or "0644"
    if separate_chain:
        files.append({"path": entry["certificate_path"], "content": fullchain_pem([leaf]).decode("ascii"),
                      "mode": certificate_mode, "owner": owner, "group": group, "secret": False})
        if entry.get("chain_path"):
            files.append({"path": entry["chain_path"], "content": fullchain_pem(intermediates).decode("ascii") if intermediates else "",
                          "mode": certificate_mode, "owner": owner, "group": group, "secret": False})
    else:
        files.append({"path": entry["certificate_path"], "content": fullchain_pem([leaf] + intermediates).decode("ascii"),
                      "mode": certificate_mode, "owner": owner, "group": group, "secret": False})
    info = certificate_info(leaf)
    facts = {
        "name": name,
        "sha256": certificate_fingerprint(leaf, "sha256"),
        "subject": info.get("subject"),
        "issuer": info.get("issuer"),
        "serial": info.get("serial"),
        "not_after": iso(leaf.not_valid_after_utc),
        "intermediates": len(intermediates),
        "key_encrypted": bool(key_passphrase),
    }
    return files, facts


class StoreNotReady(CertfleetError):
    """Some entries cannot be deployed; ``problems`` names each one."""

    def __init__(self, problems: list[str]):
        super().__init__("the store is not ready to deploy, nothing was written: " + " | ".join(problems))
        self.problems = problems


def store_files(store_path: str, entries: list, *, passphrase: str | None) -> list[tuple[dict, list[dict], dict]]:
    """(entry, files, facts) of every entry (certificate_files), or StoreNotReady listing every entry that fails.

    All entries are checked before any result is returned, so a caller writes all of them or nothing.
    """
    results, problems = [], []
    for entry in entries or []:
        try:
            files, facts = certificate_files(store_path, entry, passphrase=passphrase)
        except CertfleetError as exc:
            problems.append(str(exc))
            continue
        results.append((entry, files, facts))
    if problems:
        raise StoreNotReady(problems)
    return results
