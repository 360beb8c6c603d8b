# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller-side certificate store: definitions, state, history, and every write to a definition.

This module is private to the certfleet.tls collection: its API may change
without notice. Paths and file names come from ``layout``; this module reads a definition's
files (``read_definition``, ``load_current``) and is the one place that writes them:
``apply_change`` writes what ``plan_issued`` (a certificate from any issuer) or the request
engine (keys and CSRs) computed in memory - archive first, files in ``layout.WRITE_ORDER``,
state last, then the history events. ``install_issued`` does both steps for one certificate.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass, field

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._common import files as _files
from ansible_collections.certfleet.tls.plugins.module_utils._common.files import read_file
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso, parse_timestamp, utc_now, utc_timestamp
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError, name_to_string, public_key_fingerprint
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout

# Keys a definition may carry; later stages (issuance, deploy, monitor) read the ones after "digest".
DEFINITION_KEYS = {
    "name", "common_name", "country_name", "state_or_province_name", "locality_name", "organization_name",
    "organizational_unit_name", "email_address", "subject_alt_name", "digest", "key", "issuer", "profile",
    "mode", "renew_before_days", "deploy", "check_name", "description", "trusted_ca_set", "sites", "endpoints",
}
SUBJECT_OPTION_KEYS = (
    "common_name", "country_name", "state_or_province_name", "locality_name", "organization_name",
    "organizational_unit_name", "email_address",
)
KEY_DEFAULTS = {"type": "RSA", "size": 2048, "curve": "secp256r1"}
# A definition without renew_before_days is renewed this many days before its certificate expires.
DEFAULT_RENEW_BEFORE_DAYS = 30
# The issuer providers a definition may name (issuer.provider). Each has a provider in _issuers
# (a test there keeps the two lists equal); store_issue may plug in more for one run.
ISSUER_PROVIDERS = ("manual", "private_ca", "acme")
PENDING_STATUS = "pending_issuance"
ISSUED_STATUS = "issued"
# The certificate record in state.json: these fields describe the certificate itself; an issuer
# adds its own details (the private CA its name) beside them.
RECORD_FIELDS = ("serial", "sha256", "sha1", "not_before", "not_after", "subject", "issuer")
# ... and the store adds where it came from and which files it was checked against.
STORE_RECORD_FIELDS = ("provider", "file_sha256", "csr_sha256")


def sha256_hex(data: bytes | None) -> str | None:
    """Plain hex SHA-256 of file content, None for a missing file."""
    return hashlib.sha256(data).hexdigest() if data is not None else None


def normalise_definition(definition: dict, defaults: dict | None = None, *,
                         providers=ISSUER_PROVIDERS) -> tuple[dict, list[str]]:
    """Definition merged over defaults, with key and issuer filled in; returns (definition, warnings).

    ``providers`` are the issuer.provider names accepted. Raises CertfleetError naming the
    definition for structural problems.
    """
    if not isinstance(definition, dict):
        raise CertfleetError(f"definitions: every entry must be a dict, got {type(definition).__name__}")
    name = layout.check_name(definition.get("name"), what="definitions: name")
    merged = dict(defaults or {})
    merged.update(definition)
    warnings = [f"{name}: unknown key '{key}' ignored" for key in sorted(set(definition) - DEFINITION_KEYS)]
    key = dict(KEY_DEFAULTS)
    key.update(merged.get("key") or {})
    if key["type"] not in ("RSA", "ECC"):
        raise CertfleetError(f"{name}: key.type '{key['type']}' must be RSA or ECC")
    try:
        key["size"] = int(key["size"])
    except (TypeError, ValueError):
        raise CertfleetError(f"{name}: key.size '{key['size']}' is not a number") from None
    issuer = {"provider": "manual", "profile": merged.get("profile") or "private"}
    issuer.update(merged.get("issuer") or {})
    if issuer["provider"] not in providers:
        raise CertfleetError(f"{name}: issuer.provider '{issuer['provider']}' must be one of {', '.join(providers)}")
    sans = merged.get("subject_alt_name") or []
    if isinstance(sans, str):
        sans = [sans]
    merged.update(key=key, issuer=issuer, subject_alt_name=[str(entry) for entry in sans], digest=merged.get("digest") or "sha256")
    return merged, warnings


def request_options(definition: dict, profiles: dict | None) -> dict:
    """The csr-module style options of a normalised definition."""
    options = {key: definition.get(key) for key in SUBJECT_OPTION_KEYS}
    options.update(
        subject_alt_name=definition["subject_alt_name"],
        digest=definition["digest"],
        profile=definition["issuer"]["profile"],
        profiles=profiles or {},
    )
    return options


def request_hash(*, subject: dict, subject_alt_name: list, digest: str, key: dict, profile: str) -> str:
    """Stable hash of everything that shapes the key and CSR; unchanged hash means nothing to redo."""
    payload = {
        "subject": subject,
        "subject_alt_name": subject_alt_name,
        "digest": digest,
        "key": {"type": key["type"], "size": key["size"] if key["type"] == "RSA" else None,
                "curve": key["curve"] if key["type"] == "ECC" else None},
        "profile": profile,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def load_state(directory: str) -> dict:
    """A definition's state as a dict, {} when absent; a corrupt file is an error naming it."""
    path = os.path.join(directory, layout.filename("state"))
    data = read_file(path, option=layout.filename("state"))
    if data is None:
        return {}
    try:
        state = json.loads(data)
    except ValueError as exc:
        raise CertfleetError(f"{path}: not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(state, dict):
        raise CertfleetError(f"{path}: expected a JSON object")
    return state


def dump_state(state: dict) -> bytes:
    """Deterministic JSON for a definition's state."""
    return (json.dumps(state, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _store_parts(store_path: str, directory: str) -> list[str]:
    """Components of ``directory`` below ``store_path`` (which every store path is built under by ``layout``)."""
    relative = os.path.relpath(directory, store_path)
    if relative == ".":
        return []
    parts = relative.split(os.sep)
    if ".." in parts:
        raise CertfleetError(f"store_path: '{directory}' is not inside the store '{store_path}'")
    return parts


def _open_store_directory(store_path: str | None, directory: str, *, create_mode: int | None = None,
                          option: str = "store_path") -> int:
    """Descriptor of a store directory with no symbolic link followed below the store root, so a link
    planted at certs/<name>, archive/ or archive/<label> cannot redirect a write outside the store.
    Without ``store_path`` only the last component is checked (its parent is trusted)."""
    if store_path is None:
        store_path, directory = os.path.dirname(os.path.abspath(directory)), os.path.abspath(directory)
    return _files.open_directory_nofollow(store_path, _store_parts(store_path, directory), create_mode=create_mode,
                                          option=option)


def write_file_atomic(path: str, content: bytes, *, option: str = "path", store_path: str | None = None) -> None:
    """Write one store file atomically (``files.write_file_atomic_at``) in its directory, opened with no link
    followed below ``store_path``; a link at the file itself is replaced by the file, never written through."""
    descriptor = _open_store_directory(store_path, os.path.dirname(path), option=option)
    try:
        _files.write_file_atomic_at(descriptor, os.path.basename(path), content, path=path, option=option)
    finally:
        os.close(descriptor)


def append_history(directory: str, events: list[dict], *, store_path: str | None = None) -> None:
    """Append events to a definition's history (one JSON object per line, never rewritten).

    A symbolic link at history.jsonl, or at a directory between ``store_path`` and it, is refused:
    appending through it would write store events into whatever file the link names."""
    if not events:
        return
    lines = "".join(json.dumps(event, sort_keys=True) + "\n" for event in events)
    path = os.path.join(directory, layout.filename("history"))
    descriptor = _open_store_directory(store_path, directory, option=layout.filename("history"))
    try:
        _files.append_file_at(descriptor, layout.filename("history"), lines.encode("utf-8"), path=path,
                              option=layout.filename("history"))
    finally:
        os.close(descriptor)


def read_history(directory: str) -> list[dict]:
    """All events of a definition, oldest first."""
    data = read_file(os.path.join(directory, layout.filename("history")), option=layout.filename("history")) or b""
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def ensure_directory(path: str, mode: int = 0o750, *, store_path: str | None = None) -> None:
    """Create a store directory (private by default, since it holds keys); with ``store_path``, every
    component below the store root is created or opened without following a symbolic link, so a link
    planted at certs/<name> is refused rather than filled with keys."""
    if store_path is None:
        try:
            os.makedirs(path, mode=mode, exist_ok=True)
        except OSError as exc:
            raise CertfleetError(f"store_path: cannot create '{path}' ({exc.strerror})") from None
        return
    try:
        # The root itself may be a link the owner chose (a store on another volume).
        os.makedirs(store_path, mode=mode, exist_ok=True)
    except OSError as exc:
        raise CertfleetError(f"store_path: cannot create '{store_path}' ({exc.strerror})") from None
    os.close(_open_store_directory(store_path, path, create_mode=mode))


def archive_files(store_path: str, name: str, kinds: list[str], *, label: str) -> str | None:
    """Copy the current files of these kinds to archive/<label>/ before they are replaced; None when none exist."""
    present = [(kind, read_file(layout.certificate_path(store_path, name, kind))) for kind in kinds]
    present = [(kind, data) for kind, data in present if data is not None]
    if not present:
        return None
    target = layout.archive_dir(store_path, name, label)
    ensure_directory(target, 0o700, store_path=store_path)
    for kind, data in present:
        write_file_atomic(os.path.join(target, layout.filename(kind)), data, option="archive", store_path=store_path)
    return target


def replaced_label(now: datetime.datetime | None = None) -> str:
    """Archive folder name for files replaced outside a certificate generation (key, CSR): the time stamp."""
    return iso(now or utc_now()).replace(":", "") + "-replaced"


# --------------------------------------------------------------------------------------------
# reading a definition once per run, planning its writes in memory, writing them


@dataclass
class StoredDefinition:
    """What one definition's directory holds now: its state and the raw bytes of its files (None: absent)."""

    store_path: str
    name: str
    state: dict
    files: dict

    @property
    def directory(self) -> str:
        return layout.certificate_dir(self.store_path, self.name)

    def path(self, kind: str) -> str:
        """Where a file of this definition lives (for messages and instructions)."""
        return layout.certificate_path(self.store_path, self.name, kind)

    @functools.cached_property
    def current(self):
        """The certificate of the current generation, None when absent or unreadable (a damaged file is replaced)."""
        data = self.files.get("cert")
        if not data:
            return None
        try:
            return _chain.load_certificates(data, source=f"{self.name}: {layout.filename('cert')}").certificates[0].certificate
        except (CertfleetError, IndexError):
            return None

    @functools.cached_property
    def current_chain(self) -> list:
        """The intermediates the store serves with the current certificate ([] when absent or unreadable)."""
        data = self.files.get("chain")
        if not data or not data.strip():
            return []
        try:
            return [item.certificate for item in
                    _chain.load_certificates(data, source=f"{self.name}: {layout.filename('chain')}").certificates]
        except CertfleetError:
            return []


def read_definition(store_path: str, name: str, kinds=("csr",) + layout.ISSUED_KINDS) -> StoredDefinition:
    """State and the files of these kinds of one definition, read once; nothing is required to exist."""
    files = {kind: read_file(layout.certificate_path(store_path, name, kind), option=f"{name}: {layout.filename(kind)}")
             for kind in kinds}
    return StoredDefinition(store_path=store_path, name=name, state=load_state(layout.certificate_dir(store_path, name)),
                            files=files)


@dataclass
class StoreChange:
    """What one definition's run will write, computed in memory: files by kind, the previous files to
    archive first (label, kinds) and the history events; ``actions`` say it in words for the result."""

    name: str
    writes: dict = field(default_factory=dict)
    archive: tuple | None = None
    events: list = field(default_factory=list)
    actions: list = field(default_factory=list)

    def file_names(self, kinds=layout.WRITE_ORDER) -> list[str]:
        """File names of the planned writes among these kinds."""
        return [layout.filename(kind) for kind in kinds if kind in self.writes]


def apply_change(store_path: str, change: StoreChange, *, now: datetime.datetime | None = None) -> None:
    """Write one planned change: archive the previous files, write each file atomically in
    ``layout.WRITE_ORDER`` (state last), then append the history events with the time."""
    if not change.writes:
        return
    directory = layout.certificate_dir(store_path, change.name)
    ensure_directory(directory, store_path=store_path)
    events = list(change.events)
    if change.archive and change.archive[1]:
        label, kinds = change.archive
        archived = archive_files(store_path, change.name, kinds, label=label)
        if archived:
            events.insert(0, {"event": "archived", "files": [layout.filename(kind) for kind in kinds],
                              "to": os.path.relpath(archived, directory)})
    for kind in layout.WRITE_ORDER:
        if kind in change.writes:
            write_file_atomic(layout.certificate_path(store_path, change.name, kind), change.writes[kind],
                              option=f"{change.name}: {layout.filename(kind)}", store_path=store_path)
    time = iso(now) if now is not None else utc_timestamp()
    append_history(directory, [dict(event, time=time) for event in events], store_path=store_path)


def certificate_record(certificate, *, source: str, details: dict | None, cert_pem: bytes, csr_pem: bytes | None) -> dict:
    """The state's record of an installed certificate: what it is, who issued it, which files hold it."""
    info = _chain.certificate_info(certificate)
    record = {key: info[key] for key in RECORD_FIELDS}
    record.update(details or {})
    record.update(provider=source, file_sha256=sha256_hex(cert_pem), csr_sha256=sha256_hex(csr_pem))
    return record


def recorded_details(state: dict) -> dict:
    """What the issuer added to the state's certificate record (the private CA: its name)."""
    record = state.get("certificate") or {}
    return {key: value for key, value in record.items() if key not in RECORD_FIELDS + STORE_RECORD_FIELDS}


def plan_issued(stored: StoredDefinition, *, certificate, chain: list, source: str, event: str | None = "issued",
                details: dict | None = None, reason: str | None = None,
                now: datetime.datetime | None = None) -> StoreChange:
    """The writes that make ``certificate`` (served with ``chain``, the leaf's issuer first) the definition's
    current generation: its files where they differ, the previous generation archived under its serial,
    status ``issued`` with the certificate record, and a history ``event`` (None: the certificate was
    already current, so only damaged or missing files are repaired and no event is logged).
    """
    change = StoreChange(name=stored.name)
    served = [certificate] + list(chain)
    wanted = {"cert": _chain.fullchain_pem([certificate]), "chain": _chain.chain_pem(served),
              "fullchain": _chain.fullchain_pem(served)}
    change.writes = {kind: content for kind, content in wanted.items() if stored.files.get(kind) != content}
    if change.writes and event is None:
        change.actions.append(f"{', '.join(sorted(change.file_names()))} rewritten")
    info = _chain.certificate_info(certificate)
    previous = _chain.certificate_info(stored.current) if stored.current is not None else None
    if previous is not None and previous["sha256"] != info["sha256"]:
        present = [kind for kind in layout.ISSUED_KINDS if stored.files.get(kind) is not None]
        change.archive = (previous["serial"], present)
    record = certificate_record(certificate, source=source, details=details, cert_pem=wanted["cert"],
                                csr_pem=stored.files.get("csr"))
    new_state = dict(stored.state)
    new_state.update(name=stored.name, status=ISSUED_STATUS, certificate=record)
    if new_state != stored.state:
        new_state["updated"] = iso(now) if now is not None else utc_timestamp()
        change.writes["state"] = dump_state(new_state)
        if not change.actions and event is None:
            change.actions.append("state recorded")
    if event is not None:
        change.events.append(dict(details or {}, event=event, provider=source, serial=info["serial"], sha256=info["sha256"],
                                  not_after=info["not_after"], **({"reason": reason} if reason else {})))
    return change


def install_issued(store_path: str, name: str, *, certificate, chain: list, source: str, event: str = "issued",
                   details: dict | None = None, reason: str | None = None,
                   now: datetime.datetime | None = None) -> StoreChange:
    """Make ``certificate`` the definition's current generation now (``plan_issued``, then ``apply_change``)."""
    change = plan_issued(read_definition(store_path, name), certificate=certificate, chain=chain, source=source,
                         event=event, details=details, reason=reason, now=now)
    apply_change(store_path, change, now=now)
    return change


class CurrentGeneration:
    """The store's current certificate of one definition, loaded and checked.

    ``private_key`` is the decrypted key object, ``key_pem`` the bytes as stored (encrypted with the
    store passphrase), ``leaf`` the certificate and ``intermediates`` its issuers in order (leaf's
    issuer first, no root unless the CA sent a cross-root as part of the chain).
    """

    def __init__(self, *, name: str, directory: str, private_key, key_pem: bytes, leaf, intermediates: list):
        self.name = name
        self.directory = directory
        self.private_key = private_key
        self.key_pem = key_pem
        self.leaf = leaf
        self.intermediates = intermediates


def _required_file(store_path: str, name: str, kind: str) -> bytes:
    path = layout.certificate_path(store_path, name, kind)
    data = read_file(path, option=f"{name}/{layout.filename(kind)}")
    if data is None:
        raise CertfleetError(f"{name}: {layout.filename(kind)} is missing from the store ({os.path.dirname(path)}); "
                             f"run certfleet.tls.request (and drop the CA's certificate into incoming/ for a manual CA) first")
    return data


def check_chain(leaf, intermediates: list, *, definition: str, now: datetime.datetime) -> None:
    """Each certificate must be issued by the next one, and none may be expired or not yet valid."""
    for certificate in [leaf] + intermediates:
        if now > certificate.not_valid_after_utc:
            raise CertfleetError(f"{definition}: {name_to_string(certificate.subject)} expired on "
                                 f"{iso(certificate.not_valid_after_utc)}")
        if now < certificate.not_valid_before_utc:
            raise CertfleetError(f"{definition}: {name_to_string(certificate.subject)} is not valid before "
                                 f"{iso(certificate.not_valid_before_utc)}")
    if _chain.is_self_signed(leaf):
        if intermediates:
            raise CertfleetError(f"{definition}: the certificate is self-signed, yet {layout.filename('chain')} holds "
                                 f"{len(intermediates)} certificate(s)")
        return
    child = leaf
    for position, parent in enumerate(intermediates, start=1):
        if not _chain.is_issued_by(child, parent):
            wanted = name_to_string(child.issuer)
            raise CertfleetError(
                f"{definition}: {layout.filename('chain')} certificate {position} ({name_to_string(parent.subject)}) did not "
                f"issue {name_to_string(child.subject)}, whose issuer is {wanted}: a chain for the wrong issuer, or out of order")
        child = parent


def load_current(store_path: str, name: str, passphrase: str | None, *,
                 now: datetime.datetime | None = None) -> CurrentGeneration:
    """Key, leaf and ordered intermediates of a definition, checked: the key opens with ``passphrase`` and
    matches the certificate, the chain is the leaf's real issuers in order, nothing is expired.

    Raises CertfleetError naming the definition and what is wrong.
    """
    now = now or utc_now()
    directory = layout.certificate_dir(store_path, name)
    if not os.path.isdir(directory):
        raise CertfleetError(f"{name}: not in the store ({directory} does not exist)")
    key_pem = _required_file(store_path, name, "key")
    cert_data = _required_file(store_path, name, "cert")
    chain_data = read_file(layout.certificate_path(store_path, name, "chain"), option=f"{name}/{layout.filename('chain')}") or b""
    private_key = _chain.extract_private_key(key_pem, source=f"{name}/{layout.filename('key')}", passphrase=passphrase)
    leaves = _chain.load_certificates(cert_data, source=f"{name}/{layout.filename('cert')}").certificates
    if len(leaves) != 1:
        raise CertfleetError(f"{name}: {layout.filename('cert')} must hold exactly one certificate, it holds {len(leaves)}")
    leaf = leaves[0].certificate
    intermediates = ([item.certificate for item in
                      _chain.load_certificates(chain_data, source=f"{name}/{layout.filename('chain')}").certificates]
                     if chain_data.strip() else [])
    _chain.check_key_matches(private_key, leaf, key_source=f"{name}/{layout.filename('key')}",
                             cert_source=f"{name}/{layout.filename('cert')}")
    check_chain(leaf, intermediates, definition=name, now=now)
    return CurrentGeneration(name=name, directory=directory, private_key=private_key, key_pem=key_pem, leaf=leaf,
                             intermediates=intermediates)


# --------------------------------------------------------------------------------------------
# drop-in files and pending definitions

# Bounds on what a drop-in folder may hold: a certificate file from a CA is a few kilobytes, so a
# folder or a file far beyond these is a mistake or hostile input, refused before anything is read.
MAX_DROP_IN_BYTES = 1024 * 1024
MAX_DROP_IN_FILES = 5000


@dataclass(frozen=True)
class DropInFile:
    """One file found in a drop-in folder: its path, its folder's definition (None: the store-wide folder),
    its name as the person sees it, its bytes and their SHA-256."""

    path: str
    definition: str | None
    label: str
    data: bytes
    sha256: str


def _printable(name: str) -> str:
    # A file name may hold anything but '/' and NUL: keep control characters out of messages and logs.
    return "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in name)


def drop_in_label(store_path: str, path: str) -> str:
    """How a drop-in file is named in messages: its path below the store, control characters escaped."""
    return _printable(os.path.relpath(path, store_path))


def read_drop_ins(store_path: str, names, *, max_bytes: int = MAX_DROP_IN_BYTES,
                  max_files: int = MAX_DROP_IN_FILES) -> tuple[list[DropInFile], list[str]]:
    """Every regular file of the store's drop-in folder and of these definitions' folders, in name order,
    with warnings for what was passed over (sub-folders, hidden files).

    Nothing is followed: a symbolic link in a drop-in folder, a file over ``max_bytes`` (or a special file), or
    more than ``max_files`` files is an error naming it. A missing folder holds nothing.
    """
    found, warnings = [], []
    folders = [(None, layout.incoming_dir(store_path))] + [(name, layout.incoming_dir(store_path, name)) for name in names]
    for definition, folder in folders:
        if not os.path.lexists(folder):
            continue
        try:
            descriptor = _open_store_directory(store_path, folder, option="incoming")
        except CertfleetError:
            if not os.path.lexists(os.path.dirname(folder)):
                continue
            raise
        try:
            entries = []
            with os.scandir(descriptor) as listing:
                for entry in listing:
                    entries.append(entry.name)
                    if len(found) + len(entries) > max_files:
                        raise CertfleetError(
                            f"{drop_in_label(store_path, folder)}: more than {max_files} files in the drop-in folders; "
                            f"collect them in smaller batches (max_files)")
            for entry_name in sorted(entries):
                path = os.path.join(folder, entry_name)
                label = drop_in_label(store_path, path)
                if entry_name.startswith("."):
                    warnings.append(f"{label}: hidden file passed over")
                    continue
                info = os.lstat(entry_name, dir_fd=descriptor)
                if stat.S_ISDIR(info.st_mode):
                    if entry_name != layout.PROCESSED:
                        warnings.append(f"{label}: a folder in the drop-in folder is passed over (put files directly into it)")
                    continue
                if stat.S_ISLNK(info.st_mode):
                    raise CertfleetError(f"{label}: is a symbolic link; drop the file itself (links are never followed)")
                if not stat.S_ISREG(info.st_mode):
                    raise CertfleetError(f"{label}: is not a regular file")
                if info.st_size > max_bytes:
                    raise CertfleetError(f"{label}: {info.st_size} bytes is more than a certificate file holds "
                                         f"(limit {max_bytes} bytes); not read")
                data = _read_at(descriptor, entry_name, label=label, max_bytes=max_bytes)
                found.append(DropInFile(path=path, definition=definition, label=label, data=data,
                                        sha256=hashlib.sha256(data).hexdigest()))
        finally:
            os.close(descriptor)
    return found, warnings


# How long a collecting run waits for another one to finish with the drop-in folders.
DROP_IN_LOCK_WAIT = 60.0


@contextlib.contextmanager
def drop_in_lock(store_path: str, *, wait: float = DROP_IN_LOCK_WAIT):
    """Hold the collect lock around reading, installing and moving drop-in files, so two runs never collect the
    same file; waits at most ``wait`` seconds for another run. The lock is an flock on the store's root directory
    itself: no lock file is written, so a run that fails leaves the store exactly as it was."""
    import fcntl  # POSIX only, like the CA lock; imported here so the pure functions above import anywhere

    try:
        descriptor = os.open(store_path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise CertfleetError(f"store_path: cannot open '{store_path}' to lock it ({exc.strerror})") from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CertfleetError(f"incoming: another run is collecting into the store {store_path} (it has held "
                                         f"its lock for more than {wait:.0f} s); run again when it has finished") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(descriptor)


def _read_at(directory_fd: int, name: str, *, label: str, max_bytes: int) -> bytes:
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(name, flags, dir_fd=directory_fd)
    except OSError as exc:
        raise CertfleetError(f"{label}: cannot read ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise CertfleetError(f"{label}: is not a regular file")
        chunks, size = [], 0
        while True:
            chunk = os.read(descriptor, 65536)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise CertfleetError(f"{label}: more than {max_bytes} bytes (it grew while being read); not read")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def move_processed(store_path: str, drop_in: DropInFile, *, now: datetime.datetime | None = None) -> str:
    """Move a collected drop-in file into ``processed/`` of its folder (never through a link); returns its new path.

    The file is moved only while it still holds the bytes that were collected: a file replaced meanwhile stays."""
    source_dir = os.path.dirname(drop_in.path)
    target_dir = layout.processed_dir(store_path, drop_in.definition)
    ensure_directory(target_dir, 0o750, store_path=store_path)
    target_name = layout.processed_name(drop_in.path, stamp=iso(now or utc_now()))
    source_fd = _open_store_directory(store_path, source_dir, option="incoming")
    try:
        target_fd = _open_store_directory(store_path, target_dir, option="incoming")
        try:
            name = os.path.basename(drop_in.path)
            current = _read_at(source_fd, name, label=drop_in.label, max_bytes=MAX_DROP_IN_BYTES + 1)
            if current != drop_in.data:
                raise CertfleetError(f"{drop_in.label}: changed while it was being collected; left where it is")
            candidate, number = target_name, 1
            while os.path.lexists(os.path.join(target_dir, candidate)):
                number += 1
                candidate = f"{target_name}.{number}"
            try:
                os.rename(name, candidate, src_dir_fd=source_fd, dst_dir_fd=target_fd)
            except OSError as exc:
                raise CertfleetError(f"{drop_in.label}: cannot move it to {layout.PROCESSED}/ ({exc.strerror})") from None
            return os.path.join(target_dir, candidate)
        finally:
            os.close(target_fd)
    finally:
        os.close(source_fd)


def pending_since(history: list[dict]) -> str | None:
    """When the definition's current CSR started waiting for its certificate: the last CSR generated after
    the last certificate installed (None: nothing waits)."""
    since = None
    for event in history:
        kind = event.get("event")
        if kind == "csr_generated":
            since = event.get("time")
        elif kind in ("issued", "collected", "restored", "imported"):
            since = None
    return since


def pending_status(store_path: str, name: str, *, now: datetime.datetime | None = None) -> dict | None:
    """A definition waiting for its certificate: since when, how many days, and whether the store still holds a
    certificate for its key (``deployable``); None when it does not wait."""
    directory = layout.certificate_dir(store_path, name)
    state = load_state(directory)
    if state.get("status") != PENDING_STATUS:
        return None
    try:
        since = pending_since(read_history(directory))
    except (ValueError, CertfleetError):
        since = None
    since = since or state.get("updated")
    days = None
    if since:
        try:
            days = max(0, ((now or utc_now()) - parse_timestamp(since, what="history")).days)
        except CertfleetError:
            days = None
    key_fingerprint = (state.get("key") or {}).get("fingerprint")
    stored = read_definition(store_path, name, kinds=("cert",))
    deployable = bool(stored.current is not None and key_fingerprint
                      and public_key_fingerprint(stored.current.public_key()) == key_fingerprint)
    return {"name": name, "since": since, "days": days, "deployable": deployable,
            "provider": (state.get("issuer") or {}).get("provider")}


def refuse_pending(store_path: str, name: str, *, what: str, now: datetime.datetime | None = None) -> None:
    """Raise a CertfleetError when a definition waits for its CA and the store holds no certificate for its key:
    a deployment refuses it (deploys nothing of it) instead of failing later on a missing or mismatched file."""
    status = pending_status(store_path, name, now=now)
    if status is None or status["deployable"]:
        return
    since = f" since {status['since']} ({status['days']} day(s))" if status.get("since") and status.get("days") is not None else ""
    raise CertfleetError(
        f"{what}: certificate {name} is pending issuance{since}: the store has no certificate for its key yet, so "
        f"nothing of it is deployed. Submit its CSR to the CA ({layout.certificate_path(store_path, name, 'csr')}), save the "
        f"certificate the CA returns into {layout.incoming_dir(store_path)}, run certfleet.tls.collect (or the request "
        f"playbook), then deploy again")
