# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a deployment target gets from the store: the current generation shaped as the server wants it.

This module is private to the certfleet.tls collection: its API may change
without notice. It runs on the controller (the deploy_files action, the role filters), where the store is.

Two steps, kept apart: the store hands out its current generation already checked
(``_store.store.load_current``: the key opens and matches the certificate, the chain is the leaf's
real issuers in order, nothing is expired), so a broken store entry never reaches a server; the
functions below only shape that generation for a target:

============================  ====================================================================
``key_pem``                   the private key, PKCS#8 PEM, decrypted or encrypted with a passphrase
``certificate_pem``           the leaf alone
``chain_pem``                 the intermediates, leaf's issuer first
``fullchain_pem``             leaf then intermediates
``apache_certificate_pem``    Apache >= 2.4.8: fullchain in SSLCertificateFile; older: leaf + chain file
``combined_pem``              key, leaf, intermediates in one file (HAProxy ``crt``)
``pkcs12``                    PFX, ``modern`` (AES-256 / SHA-256) or ``compatibility`` (3DES / SHA-1)
============================  ====================================================================

``certificate_files`` is the PEM-files target of certfleet.tls.deploy_files (Apache, nginx):
one entry of paths and modes in, the files to write out.
"""

from __future__ import annotations

import datetime

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import serialize_private_key
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError, certificate_fingerprint
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import CurrentGeneration, load_current

ENTRY_KEYS = {"name", "key_path", "certificate_path", "chain_path", "key_mode", "key_owner", "key_group", "key_passphrase",
              "certificate_mode", "owner", "group"}
PKCS12_ENCRYPTIONS = _chain.PKCS12_ENCRYPTIONS


# --------------------------------------------------------------------------------------------
# target-neutral artifacts of one generation


def key_pem(current: CurrentGeneration, *, passphrase: str | None = None, store_passphrase: str | None = None) -> bytes:
    """The private key as PKCS#8 PEM: decrypted, or encrypted with ``passphrase``.

    With the store's own passphrase the stored bytes are handed out unchanged: encryption is
    salted, so re-encrypting would give new bytes on every run and rewrite an unchanged key.
    """
    if not passphrase:
        return serialize_private_key(current.private_key, key_format="pkcs8")
    if passphrase == store_passphrase and b"ENCRYPTED" in current.key_pem:
        return current.key_pem
    return serialize_private_key(current.private_key, key_format="pkcs8", passphrase=passphrase)


def certificate_pem(current: CurrentGeneration) -> bytes:
    """The leaf certificate alone."""
    return _chain.fullchain_pem([current.leaf])


def chain_pem(current: CurrentGeneration) -> bytes:
    """The intermediates, the leaf's issuer first; empty for a certificate without intermediates."""
    return _chain.fullchain_pem(current.intermediates) if current.intermediates else b""


def fullchain_pem(current: CurrentGeneration) -> bytes:
    """Leaf then intermediates (nginx ``ssl_certificate``, Apache >= 2.4.8 ``SSLCertificateFile``)."""
    return _chain.fullchain_pem([current.leaf] + current.intermediates)


def apache_certificate_pem(current: CurrentGeneration, *, fullchain: bool) -> tuple[bytes, bytes | None]:
    """(SSLCertificateFile, SSLCertificateChainFile) contents; the chain file is None from Apache 2.4.8 on.

    Apache 2.4.8 made SSLCertificateChainFile obsolete: SSLCertificateFile reads the intermediates
    after the leaf (Apache mod_ssl documentation). Older versions take the leaf alone there and the
    intermediates in SSLCertificateChainFile, as Cybertrust's SureServer installation guide for
    Apache + mod_ssl describes for both cases.
    """
    if fullchain:
        return fullchain_pem(current), None
    return certificate_pem(current), chain_pem(current)


def combined_pem(current: CurrentGeneration) -> bytes:
    """Key (decrypted), leaf and intermediates in that order in one PEM file (HAProxy ``crt``)."""
    return _chain.combined_pem(current.private_key, [current.leaf] + current.intermediates)


def pkcs12(current: CurrentGeneration, *, passphrase: str, encryption: str = "modern", include_chain: bool = True,
           friendly_name: str | None = None) -> bytes:
    """PKCS#12 (PFX) with the key and the leaf, plus the intermediates unless ``include_chain`` is false.

    ``modern`` is AES-256 with a SHA-256 MAC; ``compatibility`` is 3DES with a SHA-1 MAC, the newest
    scheme Windows Server 2016 and older can import. ``friendly_name`` defaults to the definition's name.
    """
    certificates = [current.leaf] + (current.intermediates if include_chain else [])
    return _chain.pkcs12_bytes(current.private_key, certificates, passphrase=passphrase, encryption=encryption,
                               friendly_name=current.name if friendly_name is None else friendly_name or None)


def certificate_facts(current: CurrentGeneration) -> dict:
    """What is deployed, never the key: name, SHA-256, subject, issuer, serial, end of validity, intermediates."""
    info = _chain.certificate_info(current.leaf)
    return {
        "name": current.name,
        "sha256": certificate_fingerprint(current.leaf, "sha256"),
        "subject": info.get("subject"),
        "issuer": info.get("issuer"),
        "serial": info.get("serial"),
        "not_after": iso(current.leaf.not_valid_after_utc),
        "intermediates": len(current.intermediates),
    }


# --------------------------------------------------------------------------------------------
# the PEM-files target of deploy_files


def _check_entry(entry) -> str:
    if not isinstance(entry, dict):
        raise CertfleetError("certificates: every entry must be a dict")
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        raise CertfleetError(f"certificates: unknown keys {', '.join(unknown)}")
    name = entry.get("name")
    for key in ("name", "key_path", "certificate_path"):
        if not entry.get(key):
            raise CertfleetError(f"certificates[{name or '?'}]: {key} is required")
    # The name selects a store directory: the one store name rule, so no entry reads outside the store.
    return layout.check_name(name, what="certificates[]: name")


def entry_files(current: CurrentGeneration, entry: dict, *, store_passphrase: str | None,
                fullchain: bool | None = None) -> tuple[list[dict], dict]:
    """The key, certificate and chain files of one deployment entry, from a checked generation."""
    key_passphrase = entry.get("key_passphrase")
    owner = entry.get("owner") or "root"
    group = entry.get("group") or "root"
    files = [{
        "path": entry["key_path"],
        "content": key_pem(current, passphrase=key_passphrase, store_passphrase=store_passphrase).decode("ascii"),
        "mode": entry.get("key_mode") or "0600", "owner": entry.get("key_owner") or owner,
        "group": entry.get("key_group") or group, "secret": True,
    }]
    separate_chain = bool(entry.get("chain_path")) if fullchain is None else not fullchain
    certificate_content, chain_content = apache_certificate_pem(current, fullchain=not separate_chain)
    certificate_mode = entry.get("certificate_mode") or "0644"
    public = {"mode": certificate_mode, "owner": owner, "group": group, "secret": False}
    files.append(dict(public, path=entry["certificate_path"], content=certificate_content.decode("ascii")))
    if separate_chain and entry.get("chain_path"):
        files.append(dict(public, path=entry["chain_path"], content=chain_content.decode("ascii")))
    return files, dict(certificate_facts(current), key_encrypted=bool(key_passphrase))


def certificate_files(store_path: str, entry: dict, *, passphrase: str | None, fullchain: bool | None = None,
                      now: datetime.datetime | None = None) -> tuple[list[dict], dict]:
    """The key, certificate and chain files of one deployment entry, plus facts about the certificate.

    entry: name, key_path, certificate_path, optional chain_path (given: Apache < 2.4.8, certificate_path holds the
    leaf alone), key_mode / key_owner / key_group, key_passphrase (given: the key stays encrypted with it).
    Returns ([{path, content, mode, owner, group, secret}], {name, sha256, not_after, subject, issuer, serial, ...}).
    """
    name = _check_entry(entry)
    current = load_current(store_path, name, passphrase, now=now)
    return entry_files(current, entry, store_passphrase=passphrase, fullchain=fullchain)


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
