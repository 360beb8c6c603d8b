# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Import: adopt certificates that exist (files, a directory, running Apache hosts) into the store.

This module is private to the certfleet.tls collection: its API may change
without notice. Three phases, as everywhere in the store: read every input (a CertfleetError
naming the file or host stops the run before anything is written), plan every definition in memory
(``StoreChange`` objects, by public key: the same certificate from two hosts or two runs is one
definition), then write through ``store.apply_change``. The key is re-encrypted with the store
passphrase; a CSR for it is written too, so that the request playbook finds the definition
complete and issued instead of starting a new request.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._chain import keystores as _keystores
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import key_info, serialize_private_key
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso, utc_now
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import (
    CertfleetError,
    extension_value,
    general_names_to_list,
    name_attributes,
    name_to_string,
    public_key_fingerprint,
)
from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import create_csr_pem, plan_request
from ansible_collections.certfleet.tls.plugins.module_utils._deploy.apache import SERVER_NAME_PATTERN, SITE_NAME_PATTERN
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store import store as _store
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import check_store_passphrase

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - the import guard of _common reports it
    x509 = None

SOURCE = "import"
EVENT = "imported"
# Bounds on what one run reads: a directory's files, one file, every certificate.
MAX_DIRECTORY_FILES = 10000
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_CERTIFICATES = 50000
MAX_STORE_ENTRIES = 100000
_PEM_KEY_BLOCK = re.compile(rb"-----BEGIN ((?:ENCRYPTED |RSA |EC |DSA )?PRIVATE KEY)-----.*?-----END \1-----\r?\n?", re.DOTALL)
_PEM_ANY = re.compile(rb"-----BEGIN [A-Z0-9 #]+-----")
_DEFINITION_KEY_TYPES = ("RSA", "ECC")
# A DocumentRoot the apache_ssl vhost template may quote: no quote, backslash or control character.
_SAFE_PATH = re.compile(r"[^\x00-\x1f\x7f\"\\]{1,4096}")


@dataclass
class Material:
    """What one input gave: its certificates in order, its private keys, and where it came from."""

    label: str
    certificates: list = field(default_factory=list)
    keys: list = field(default_factory=list)  # (private key, label of where it was read)
    host: str | None = None
    site: dict | None = None
    warnings: list = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# reading inputs


def _passphrase_candidates(own, passphrases) -> list:
    if own not in (None, ""):
        return [own]
    return [item for item in (passphrases or []) if item not in (None, "")]


def _open_key_block(block: bytes, *, what: str, candidates: list):
    """A PEM private key; an encrypted one opens with the first candidate that works, else a specific error."""
    encrypted = b"ENCRYPTED" in block.split(b"\n", 1)[0] or b"Proc-Type: 4,ENCRYPTED" in block
    if not encrypted:
        return _chain.extract_private_key(block, source=what)
    if not candidates:
        raise CertfleetError(f"{what}: the private key is encrypted; give its passphrase (passphrase of the file, "
                             f"or passphrases)")
    for candidate in candidates:
        try:
            return _chain.extract_private_key(block, source=what, passphrase=candidate)
        except CertfleetError:
            continue
    raise CertfleetError(f"{what}: wrong passphrase for the encrypted private key "
                         f"(none of the {len(candidates)} passphrase(s) given opens it)")


def read_material(data: bytes, *, label: str, passphrase=None, passphrases=None) -> Material:
    """Certificates and keys of one file's bytes: PEM (keys, certificates, PKCS#7), DER, PKCS#7, PKCS#12, JKS/JCEKS."""
    if not isinstance(data, bytes) or not data.strip():
        raise CertfleetError(f"{label}: the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise CertfleetError(f"{label}: larger than {MAX_FILE_BYTES} bytes, not a certificate file")
    candidates = _passphrase_candidates(passphrase, passphrases)
    material = Material(label=label)
    if _keystores.is_java_keystore(data):
        if not candidates:
            raise CertfleetError(f"{label}: a Java keystore needs its store password (passphrase of the file, or passphrases)")
        last = None
        for candidate in candidates:
            try:
                entries = _keystores.load_keystore(data, source=label, password=candidate)
                break
            except CertfleetError as exc:
                last = exc
                if "wrong keystore password" not in str(exc):
                    raise
        else:
            raise last
        for entry in entries:
            material.certificates.extend(entry.certificates)
            if entry.private_key is not None:
                material.keys.append((entry.private_key, f"{label} (alias {entry.alias})"))
        return material
    if _PEM_ANY.search(data):
        blocks = list(_PEM_KEY_BLOCK.finditer(data))
        for number, match in enumerate(blocks, start=1):
            what = label if len(blocks) == 1 else f"{label} (key {number})"
            material.keys.append((_open_key_block(match.group(0).replace(b"\r\n", b"\n"), what=what, candidates=candidates), what))
        rest = _PEM_KEY_BLOCK.sub(b"", data)
        if _PEM_ANY.search(rest):
            bundle = _chain.load_certificates(rest, source=label)
            material.certificates = [item.certificate for item in bundle.certificates]
            material.warnings.extend(bundle.warnings)
        elif not material.keys:
            raise CertfleetError(f"{label}: no certificate or private key found in the PEM text")
        return material
    # binary: DER certificate, PKCS#7, PKCS#12 or a DER key
    try:
        bundle = _chain.load_certificates(data, source=label)
    except CertfleetError as exc:
        message = str(exc)
        if "holds a DER private key" in message:
            key = None
            for candidate in candidates or [None]:
                try:
                    key = _chain.extract_private_key(data, source=label, passphrase=candidate)
                    break
                except CertfleetError as key_error:
                    if "encrypted" in str(key_error) and not candidates:
                        raise CertfleetError(f"{label}: the private key is encrypted; give its passphrase") from None
                    last = key_error
            if key is None:
                raise CertfleetError(f"{label}: wrong passphrase for the encrypted private key ({last})") from None
            material.keys.append((key, label))
            return material
        if "PKCS#12" not in message or "password" not in message:
            raise
        if not candidates:
            raise CertfleetError(f"{label}: the PKCS#12 (PFX) file is protected by a password; give it "
                                 f"(passphrase of the file, or passphrases)") from None
        bundle = None
        for candidate in candidates:
            try:
                bundle = _chain.load_certificates(data, source=label, password=candidate)
                break
            except CertfleetError as pfx_error:
                if "wrong password" not in str(pfx_error):
                    raise
        if bundle is None:
            raise CertfleetError(f"{label}: wrong password for the PKCS#12 (PFX) file "
                                 f"(none of the {len(candidates)} passphrase(s) given opens it)") from None
    material.certificates = [item.certificate for item in bundle.certificates]
    material.warnings.extend(bundle.warnings)
    if bundle.private_key is not None:
        material.keys.append((bundle.private_key, label))
    return material


def _read_bounded(path: str, *, label: str) -> bytes:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CertfleetError(f"{label}: no such file") from None
    except OSError as exc:
        raise CertfleetError(f"{label}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise CertfleetError(f"{label}: not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise CertfleetError(f"{label}: larger than {MAX_FILE_BYTES} bytes, not a certificate file")
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CertfleetError(f"{label}: cannot read it ({exc.strerror})") from None


def directory_files(directory: str) -> list[str]:
    """Every regular file below ``directory`` (hidden names skipped), sorted, bounded."""
    if not os.path.isdir(directory):
        raise CertfleetError(f"directory: {directory} is not a directory")
    found = []
    for root, subdirectories, names in os.walk(directory):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            found.append(path)
            if len(found) > MAX_DIRECTORY_FILES:
                raise CertfleetError(f"directory: {directory} holds more than {MAX_DIRECTORY_FILES} files")
    return found


def read_files(files, *, directory: str | None = None, passphrases=None) -> list[Material]:
    """Materials of the given files ({path, passphrase} or a path) and of every file below ``directory``."""
    entries = []
    for number, entry in enumerate(files or []):
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
            raise CertfleetError(f"files[{number}]: a path, or a dict with path and passphrase")
        entries.append(entry)
    if directory:
        entries.extend({"path": path} for path in directory_files(directory))
    materials = []
    for entry in entries:
        data = _read_bounded(entry["path"], label=entry["path"])
        materials.append(read_material(data, label=entry["path"], passphrase=entry.get("passphrase"), passphrases=passphrases))
    return materials


def host_materials(hosts, *, private_keys=None, passphrases=None) -> list[Material]:
    """Materials of apache_tls_facts results: one per SSL vhost, with the keys the hosts returned.

    ``hosts``: [{name, address, facts}] where facts is the module's result (vhosts); ``private_keys``:
    the PEM keys the hosts returned (kept apart so that only they are no_log).
    """
    keys = []
    for number, pem in enumerate(private_keys or []):
        if not isinstance(pem, str) or not pem.strip():
            continue
        # the same key may come from several hosts: opened once
        what = f"private_keys[{number}]"
        keys.append((_open_key_block(pem.encode("utf-8"), what=what, candidates=_passphrase_candidates(None, passphrases)), what))
    materials = [Material(label="private_keys", keys=keys)] if keys else []
    for number, host in enumerate(hosts or []):
        if not isinstance(host, dict) or not isinstance(host.get("name"), str):
            raise CertfleetError(f"hosts[{number}]: a dict with name, address and facts (apache_tls_facts)")
        facts = host.get("facts") or {}
        for vhost in facts.get("vhosts") or []:
            where = f"host {host['name']}: {vhost.get('file')}:{vhost.get('line')}"
            if vhost.get("errors"):
                raise CertfleetError(f"{where}: {'; '.join(vhost['errors'])}")
            texts = list(zip(vhost.get("certificate_files") or [], vhost.get("certificates") or []))
            if vhost.get("chain"):
                texts.append((vhost.get("chain_file") or "SSLCertificateChainFile", vhost["chain"]))
            if not any(str(text).strip() for _path, text in texts):
                continue
            material = Material(label=where, host=host["name"])
            for path, text in texts:
                # each file on its own, so that an error names it
                bundle = _chain.load_certificates(str(text).encode("utf-8"), source=f"host {host['name']}: {path}")
                material.certificates.extend(item.certificate for item in bundle.certificates)
                material.warnings.extend(bundle.warnings)
            material.site = {
                "host": host["name"], "address": host.get("address") or host["name"], "file": vhost.get("file"),
                "server_name": vhost.get("server_name"), "server_aliases": list(vhost.get("server_aliases") or []),
                "port": vhost.get("port") or 443, "document_root": vhost.get("document_root"),
                "file_vhosts": vhost.get("file_vhosts") or 1,
                "file_directives": [str(item) for item in vhost.get("file_directives") or []],
                "key_errors": [f"{where}: {message}" for message in vhost.get("key_errors") or []],
            }
            materials.append(material)
    return materials


# --------------------------------------------------------------------------------------------
# what the store holds


def _spki(public_key) -> str:
    return public_key_fingerprint(public_key)


def store_index(store_path: str) -> dict:
    """{certificate SHA-256: name} and {public key SHA-256: name} of every definition in the store."""
    certificates = os.path.join(store_path, layout.CERTIFICATES)
    by_certificate, by_key, names = {}, {}, set()
    try:
        with os.scandir(certificates) as entries:
            listed = []
            for number, entry in enumerate(entries):
                if number >= MAX_STORE_ENTRIES:
                    raise CertfleetError(f"store_path: more than {MAX_STORE_ENTRIES} definitions in {certificates}")
                listed.append(entry.name)
    except (FileNotFoundError, NotADirectoryError):
        listed = []
    for name in sorted(listed):
        if not layout.NAME_PATTERN.fullmatch(name):
            continue
        names.add(name)
        state = _store.load_state(layout.certificate_dir(store_path, name))
        record = state.get("certificate") or {}
        key = state.get("key") or {}
        if record.get("sha256"):
            by_certificate.setdefault(record["sha256"], name)
        if key.get("fingerprint"):
            by_key.setdefault(key["fingerprint"], name)
        if not record.get("sha256"):
            stored = _store.read_definition(store_path, name, kinds=("cert",))
            if stored.current is not None:
                info = _chain.certificate_info(stored.current)
                by_certificate.setdefault(info["sha256"], name)
                by_key.setdefault(_spki(stored.current.public_key()), name)
    return {"certificate": by_certificate, "key": by_key, "names": names}


# --------------------------------------------------------------------------------------------
# planning


def _slug(text: str) -> str:
    text = text.lower().replace("*", "wildcard")
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:100] or "certificate"


def _names(certificate) -> tuple[str | None, list[str]]:
    attributes = name_attributes(certificate.subject)
    common_name = attributes.get("CN")
    if isinstance(common_name, list):
        common_name = common_name[0]
    san = extension_value(certificate, x509.SubjectAlternativeName)
    entries = general_names_to_list(san) if san is not None else []
    return common_name, entries


def definition_name(certificate) -> str:
    """A safe store name from the CN, else the first DNS name: ``www.example.co.jp`` -> ``www-example-co-jp``."""
    common_name, sans = _names(certificate)
    base = common_name or next((entry for entry in sans if ":" not in entry), None) or f"serial-{certificate.serial_number:x}"
    return layout.check_name(_slug(base), what="derived definition name")


def _is_ca(certificate) -> bool:
    constraints = extension_value(certificate, x509.BasicConstraints)
    return bool(constraints is not None and constraints.ca)


def _ordered_chain(leaf, hint: list) -> list | None:
    """``hint`` (the certificates the source served after the leaf) when each issued the one before it, else None."""
    child = leaf
    for parent in hint:
        if not _chain.is_issued_by(child, parent):
            return None
        child = parent
    return list(hint)


def _choose_chain(leaf, *, hint: list, pool: list, catalog) -> tuple[list, list[str]]:
    ordered = _ordered_chain(leaf, hint) if hint else None
    if ordered is not None:
        return ordered, []
    result = _chain.build_chain(leaf, pool, catalog=catalog, allow_incomplete=True)
    return [item.certificate for item in result.intermediates], list(result.warnings)


def _definition_for(name: str, certificate, key, *, sources: list[str], mode: str, endpoints=None) -> dict:
    attributes = name_attributes(certificate.subject)
    common_name, sans = _names(certificate)
    definition = {"name": name}
    for short, option in (("CN", "common_name"), ("C", "country_name"), ("ST", "state_or_province_name"),
                          ("L", "locality_name"), ("O", "organization_name"), ("OU", "organizational_unit_name")):
        value = attributes.get(short)
        if isinstance(value, list):
            value = value[0]
        if value not in (None, ""):
            definition[option] = value
    if "common_name" not in definition and sans:
        definition["common_name"] = next((entry for entry in sans if ":" not in entry), sans[0])
    definition["subject_alt_name"] = [entry for entry in sans if entry != common_name]
    if key is not None:
        info = key_info(key)
        definition["key"] = {"type": "RSA", "size": info["size"]} if info["type"] == "RSA" else {"type": "ECC", "curve": info["curve"]}
    definition["issuer"] = {"provider": "manual", "profile": "private"}
    definition["mode"] = mode
    if endpoints:
        definition["endpoints"] = endpoints
    definition["description"] = f"imported from {', '.join(sources[:3])}{' ...' if len(sources) > 3 else ''}"
    return definition


@dataclass
class Planned:
    """One certificate to adopt: its definition, what the store writes, and the sites that serve it."""

    name: str
    certificate: object
    key: object
    chain: list
    sources: list
    definition: dict
    action: str  # imported | renewed | unchanged | monitored_only
    change: object = None
    sites: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def _request_state(definition: dict, key) -> tuple[dict, bytes, list[str]]:
    """The request part of the state (as store_request records it) and the CSR for the imported key."""
    normalised, _warnings = _store.normalise_definition(definition)
    info = key_info(key)
    wanted_key = {"type": info["type"], "size": info["size"] if info["type"] == "RSA" else None,
                  "curve": info["curve"] if info["type"] == "ECC" else None}
    request = plan_request(_store.request_options(normalised, None), public_key_info=wanted_key)
    csr_pem = create_csr_pem(key, subject=request["subject"], subject_alt_names=request["subject_alt_name"],
                             digest=normalised["digest"])
    state = {
        "issuer": normalised["issuer"],
        "request_hash": _store.request_hash(subject=request["subject"], subject_alt_name=request["subject_alt_name"],
                                            digest=normalised["digest"], key=normalised["key"],
                                            profile=request["policy"]["profile"]),
        "csr": {"file_sha256": _store.sha256_hex(csr_pem), "subject": request["subject"],
                "subject_alt_name": request["subject_alt_name"], "digest": normalised["digest"]},
        "policy_warnings": request["policy"]["warnings"] + request["policy"]["errors"],
    }
    return state, csr_pem, request["policy"]["errors"]


def plan_store_change(store_path: str, planned: Planned, *, passphrase: str, check_mode: bool, now) -> None:
    """The writes that make ``planned`` a definition of the store: key (re-encrypted), CSR, certificate, chain, state."""
    stored = _store.read_definition(store_path, planned.name, kinds=("key", "csr") + layout.ISSUED_KINDS)
    key_fingerprint = _spki(planned.certificate.public_key())
    same_key = (stored.state.get("key") or {}).get("fingerprint") == key_fingerprint and stored.files.get("key") is not None
    current = stored.current
    same_certificate = current is not None and _chain.certificate_info(current)["sha256"] == _chain.certificate_info(planned.certificate)["sha256"]
    event = None if same_certificate else EVENT
    change = _store.plan_issued(stored, certificate=planned.certificate, chain=planned.chain, source=SOURCE, event=event,
                                details={"imported_from": planned.sources[:5]} if event else _store.recorded_details(stored.state),
                                reason=None, now=now)
    if same_key and same_certificate and not change.writes:
        planned.action = "unchanged"
        planned.change = change
        return
    state = json.loads(change.writes["state"]) if "state" in change.writes else dict(stored.state)
    if not same_key:
        if planned.key is None:
            raise CertfleetError(f"{planned.name}: the store's key of this definition is not the certificate's key, and "
                                 f"no key was given with it ({', '.join(planned.sources[:3])})")
        if check_mode:
            change.writes["key"] = b""
            change.writes["csr"] = b""
        else:
            request_state, csr_pem, _errors = _request_state(planned.definition, planned.key)
            change.writes["key"] = serialize_private_key(planned.key, passphrase=passphrase)
            change.writes["csr"] = csr_pem
            state.update(request_state)
            state["key"] = dict(key_info(planned.key), file_sha256=_store.sha256_hex(change.writes["key"]))
            state["certificate"]["csr_sha256"] = _store.sha256_hex(csr_pem)
        present = [kind for kind in ("key", "csr") if stored.files.get(kind) is not None]
        if present:
            label, kinds = change.archive or (_store.replaced_label(now), [])
            change.archive = (label, list(kinds) + present)
        change.events.insert(0, {"event": "key_imported", **{k: v for k, v in key_info(planned.key).items() if v is not None}})
    state.update(name=planned.name, status=_store.ISSUED_STATUS)
    if event is not None:
        # where this generation came from; the same certificate found elsewhere later changes nothing
        state["imported"] = {"sources": planned.sources[:5]}
    if state != stored.state:
        state["updated"] = iso(now)
        change.writes["state"] = _store.dump_state(state)
    planned.change = change


def plan_import(materials: list[Material], *, store_path: str, catalog=None, now=None) -> dict:
    """Group the materials' leaf certificates, find each one's key and chain, and name its definition."""
    now = now or utc_now()
    pool, seen_pool, keys, leaves = [], set(), {}, {}
    count = 0
    for material in materials:
        count += len(material.certificates)
        if count > MAX_CERTIFICATES:
            raise CertfleetError(f"more than {MAX_CERTIFICATES} certificates in one import")
        for key, label in material.keys:
            keys.setdefault(_spki(key.public_key()), (key, label))
        hint = [certificate for certificate in material.certificates if _is_ca(certificate)]
        if material.host is None:
            # a PFX or bundle often carries the root too; clients have it, so the store serves the chain without it
            # (what a host served is kept as it is: the takeover serves the same bytes)
            while hint and _chain.is_self_signed(hint[-1]):
                hint = hint[:-1]
        for certificate in material.certificates:
            info = _chain.certificate_info(certificate)
            if _is_ca(certificate):
                if info["sha256"] not in seen_pool:
                    seen_pool.add(info["sha256"])
                    pool.append(certificate)
                continue
            entry = leaves.setdefault(info["sha256"], {"certificate": certificate, "sources": [], "hint": hint, "sites": [],
                                                       "host": material.host is not None, "warnings": []})
            if material.label not in entry["sources"]:
                entry["sources"].append(material.label)
            entry["warnings"].extend(material.warnings)
            if material.site is not None:
                entry["sites"].append(material.site)
                # a vhost with two certificates (RSA and ECDSA): the site takes the first
                material.site = None
    if not leaves:
        labels = ", ".join(material.label for material in materials[:5])
        raise CertfleetError(f"no server certificate found in {labels or 'the input'}: only CA certificates or keys")
    leaf_keys = {_spki(entry["certificate"].public_key()) for entry in leaves.values()}
    for fingerprint, (key, label) in keys.items():
        if fingerprint not in leaf_keys:
            raise CertfleetError(f"{label}: the private key matches none of the {len(leaves)} server certificate(s) of this "
                                 f"import (its public key SHA-256 is {fingerprint}): a key for another certificate?")
    index = store_index(store_path)
    taken = set(index["names"])
    planned_list, warnings = [], []
    for sha256, entry in leaves.items():
        certificate = entry["certificate"]
        source = entry["sources"][0]
        key = keys.get(_spki(certificate.public_key()), (None, None))[0]
        problem = None
        if now > certificate.not_valid_after_utc:
            problem = f"expired on {iso(certificate.not_valid_after_utc)}"
        elif now < certificate.not_valid_before_utc:
            problem = f"not valid before {iso(certificate.not_valid_before_utc)}"
        if problem and not entry["host"]:
            raise CertfleetError(f"{source}: the certificate {name_to_string(certificate.subject)} is {problem}; not imported")
        key_type = key_info(certificate.public_key())["type"]
        if key is not None and key_type not in _DEFINITION_KEY_TYPES:
            warnings.append(f"{source}: a {key_type} key; definitions hold RSA or ECC keys, so it is monitored only")
            key = None
        name = index["certificate"].get(sha256) or index["key"].get(_spki(certificate.public_key()))
        if name is None:
            base = definition_name(certificate)
            name, number = base, 2
            while name in taken:
                name = f"{base[:120]}-{number}"
                number += 1
        taken.add(name)
        candidates = pool
        if name in index["names"]:
            # a renewal from the same CA: the intermediates the store already serves count as given
            candidates = pool + _store.read_definition(store_path, name, kinds=("chain",)).current_chain
        chain, chain_warnings = _choose_chain(certificate, hint=entry["hint"], pool=candidates, catalog=catalog)
        # a certificate for a key the store already holds (a renewal) needs no key with it
        store_key = key is None and index["key"].get(_spki(certificate.public_key())) == name
        managed = (key is not None or store_key) and problem is None
        if problem:
            warnings.append(f"{source}: the certificate is {problem}: monitored only")
        elif key is None and not store_key:
            reasons = [message for site in entry["sites"] for message in site.get("key_errors") or []]
            warnings.append(f"{source}: no private key for {name_to_string(certificate.subject)} "
                            f"(public key SHA-256 {_spki(certificate.public_key())}): monitored only"
                            + (f" ({'; '.join(reasons[:3])})" if reasons else ""))
        endpoints = None
        if not managed:
            endpoints = [{"host": site["address"], "port": site["port"],
                          **({"server_name": site["server_name"]} if _dns_name(site["server_name"]) else {})}
                         for site in entry["sites"]]
        definition = _definition_for(name, certificate, key if key is not None else certificate.public_key(), sources=entry["sources"],
                                     mode="lifecycle_managed" if managed else "monitored_only", endpoints=endpoints)
        action = "imported" if managed else "monitored_only"
        if managed and name in index["names"] and index["certificate"].get(sha256) != name:
            action = "renewed"
        planned_list.append(Planned(name=name, certificate=certificate, key=key if managed else None, chain=chain,
                                    sources=entry["sources"], definition=definition, action=action, sites=entry["sites"],
                                    warnings=chain_warnings + entry["warnings"]))
    planned_list.sort(key=lambda item: item.name)
    return {"planned": planned_list, "warnings": warnings}


def _dns_name(value) -> bool:
    return isinstance(value, str) and bool(SERVER_NAME_PATTERN.fullmatch(value)) and "*" not in value


# --------------------------------------------------------------------------------------------
# inventory: definitions and apache_ssl sites


def _own_listen(line: str) -> bool:
    """A Listen of a site's own port other than 80 and 443: apache_ssl's certfleet.conf listens there itself."""
    words = line.split()
    if len(words) < 2 or words[0].lower() != "listen":
        return False
    port = words[1].rsplit(":", 1)[-1]
    return port.isdigit() and int(port) not in (80, 443)


def site_name(server_name: str, port: int) -> str:
    base = re.sub(r"[^a-z0-9_.-]+", "-", server_name.lower().replace("*", "wildcard")).strip("-.") or "site"
    name = base if port == 443 else f"{base}-{port}"
    return name if SITE_NAME_PATTERN.fullmatch(name) else f"site-{name}"


def inventory_data(planned_list: list[Planned], *, replace_vhosts: bool) -> dict:
    """certfleet_certificates, and per host the apache_ssl_sites (and the hand-made vhost files to replace)."""
    definitions = [planned.definition for planned in planned_list]
    hosts: dict = {}
    warnings = []
    for planned in planned_list:
        if planned.definition["mode"] != "lifecycle_managed":
            continue
        for site in planned.sites:
            server_name = site["server_name"] or planned.definition.get("common_name")
            if not _dns_name(server_name):
                warnings.append(f"host {site['host']}: {site['file']}: ServerName {server_name!r} is not a DNS name; "
                                f"no apache_ssl site for it")
                continue
            entry = hosts.setdefault(site["host"], {"sites": [], "replace": [], "names": set()})
            name = site_name(server_name, site["port"])
            if name in entry["names"]:
                continue
            entry["names"].add(name)
            wanted = {"name": name, "certificate": planned.name, "server_name": server_name,
                      "server_aliases": [alias for alias in site["server_aliases"] if _dns_name(alias)],
                      "port": site["port"]}
            if site.get("document_root"):
                if _SAFE_PATH.fullmatch(site["document_root"]):
                    wanted["document_root"] = site["document_root"]
                else:
                    warnings.append(f"host {site['host']}: {site['file']}: DocumentRoot {site['document_root']!r} left out "
                                    f"(quotes or control characters); the site gets the role's default")
            entry["sites"].append(wanted)
            if replace_vhosts and site.get("file"):
                other = [line for line in site.get("file_directives") or [] if not _own_listen(line)]
                if site.get("file_vhosts", 1) > 1 or other:
                    what = "other virtual hosts" if site.get("file_vhosts", 1) > 1 else f"other configuration ({', '.join(other[:3])})"
                    warnings.append(f"host {site['host']}: {site['file']} holds {what} too; left in place "
                                    f"(move {server_name} out of it to let certfleet's vhost take over alone)")
                elif site["file"] not in entry["replace"]:
                    entry["replace"].append(site["file"])
    result = {}
    for host, entry in sorted(hosts.items()):
        result[host] = {"apache_ssl_sites": sorted(entry["sites"], key=lambda site: site["name"])}
        if replace_vhosts:
            result[host]["apache_ssl_replace_vhosts"] = sorted(entry["replace"])
    return {"certfleet_certificates": definitions, "hosts": result, "warnings": warnings}


# --------------------------------------------------------------------------------------------
# the run


def run_import(*, store_path: str, passphrase: str, materials: list[Material], check_mode: bool = False,
               replace_vhosts: bool = True, catalog=None, now=None) -> dict:
    """Plan every certificate, then write the store (not in check mode); returns the summary and inventory data."""
    if not passphrase:
        raise CertfleetError("passphrase: the store passphrase is required (imported keys are encrypted with it)")
    now = now or utc_now()
    plan = plan_import(materials, store_path=store_path, catalog=catalog, now=now)
    planned_list = plan["planned"]
    managed = [planned for planned in planned_list if planned.definition["mode"] == "lifecycle_managed"]
    for planned in managed:
        plan_store_change(store_path, planned, passphrase=passphrase, check_mode=check_mode, now=now)
    new_keys = [planned.name for planned in managed if "key" in planned.change.writes]
    if new_keys:
        # the keys of the store share one passphrase: prove it on a key already there before adding any
        check_store_passphrase(store_path, passphrase, exclude=set(new_keys))
    if not check_mode:
        for planned in managed:
            _store.apply_change(store_path, planned.change, now=now)
    inventory = inventory_data(planned_list, replace_vhosts=replace_vhosts)
    results = []
    for planned in planned_list:
        info = _chain.certificate_info(planned.certificate)
        results.append({
            "name": planned.name, "action": planned.action, "mode": planned.definition["mode"],
            "changed": planned.action == "monitored_only" or bool(planned.change is not None and planned.change.writes),
            "subject": info["subject"], "issuer": info["issuer"], "sha256": info["sha256"], "not_after": info["not_after"],
            "chain": [name_to_string(item.subject) for item in planned.chain], "sources": planned.sources,
            "files": planned.change.file_names() if planned.change is not None else [],
            "hosts": sorted({site["host"] for site in planned.sites}), "warnings": planned.warnings,
        })
    changed = any(item["changed"] and item["mode"] == "lifecycle_managed" for item in results)
    return {"changed": changed, "certificates": results, "definitions": inventory["certfleet_certificates"],
            "hosts": inventory["hosts"], "warnings": plan["warnings"] + inventory["warnings"]}
