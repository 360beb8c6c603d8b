# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File transactions on a server: write a set of files and links, or put all of them back.

This module is private to the certfleet.tls collection: its API may change
without notice. It runs on the managed host (module deploy_files) and needs only the
standard library.

A transaction is a directory ``<transaction_dir>/<id>/`` holding ``manifest.json`` and a copy
of every file it replaces. The manifest is written *before* the first change, so even a run
killed half-way can be rolled back; files are written through a 0600 temporary file in the
target directory and renamed into place, so no reader ever sees half a key or half a vhost.

States of a transaction: ``prepared`` (manifest and backups saved, files being written) ->
``applied`` (every file on disk, not yet proved) -> ``committed`` (configuration test, reload and
deploy check passed: ``commit``), or ``rolled_back``. Only a committed transaction is finished. A host
lock (``deploy.lock`` in the transaction directory) is held from the first write until commit or
rollback; whoever takes the lock next rolls back every transaction left prepared or applied (a run
killed half-way) before planning its own, so an interrupted deployment is never taken for a finished one.
"""

from __future__ import annotations

import datetime
import grp
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import stat
import time
from dataclasses import dataclass, field

from ansible_collections.certfleet.tls.plugins.module_utils._common.files import write_file_atomic
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

MANIFEST = "manifest.json"
TRANSACTION_ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}\Z")
DEFAULT_KEEP = 5
LOCK = "deploy.lock"
# Manifests from before the commit step said "applied" for a finished transaction: only this version's
# prepared / applied transactions are unfinished.
MANIFEST_VERSION = 2
UNFINISHED = ("prepared", "applied")
DEFAULT_LOCK_STALE = 3600
# Keys of a ``files`` entry that only the controller (the deploy_files action) reads.
TEMPLATE_KEYS = ("template", "template_vars")


@dataclass
class WantedFile:
    """A file as it must be: content, mode and ownership; secret files are never diffed."""

    path: str
    content: bytes
    mode: int
    owner: str | None = None
    group: str | None = None
    secret: bool = False


@dataclass
class WantedLink:
    """A symbolic link as it must be (Debian's sites-enabled / conf-enabled)."""

    path: str
    src: str


@dataclass
class WantedAbsent:
    """A path that must not exist (a removed site's vhost, link, key or certificate)."""

    path: str
    secret: bool = False


@dataclass
class Change:
    """One path that differs from what is wanted, and why."""

    path: str
    kind: str  # "file", "link" or "absent"
    reasons: list[str]
    wanted: WantedFile | WantedLink | WantedAbsent
    before: bytes | None = None
    before_link: str | None = None
    missing_directory: str | None = None


@dataclass
class Plan:
    """What a deployment would change; empty means nothing to write."""

    changes: list[Change] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def template_source(item) -> tuple[str, dict] | None:
    """(template, template_vars) of a ``files`` entry the controller renders, None for an entry with content."""
    if not isinstance(item, dict):
        raise CertfleetError("files: every entry must be a dict with path and content (or template)")
    template = item.get("template")
    if template is None:
        if item.get("content") is None:
            raise CertfleetError(f"files: {item.get('path') or '?'}: content or template is required")
        return None
    if item.get("content") is not None:
        raise CertfleetError(f"files: {item.get('path') or '?'}: give content or template, not both")
    if not isinstance(template, str) or not template:
        raise CertfleetError(f"files: {item.get('path') or '?'}: template must be a template file name")
    variables = item.get("template_vars") or {}
    if not isinstance(variables, dict):
        raise CertfleetError(f"files: {item.get('path') or '?'}: template_vars must be a dict")
    return template, variables


def parse_mode(value, *, what: str) -> int:
    """'0640', '640', 0o640 or 416 -> 0o640; symbolic modes are refused."""
    if isinstance(value, int):
        mode = value
    elif isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value.strip()):
        mode = int(value.strip(), 8)
    else:
        raise CertfleetError(f"{what}: mode must be octal such as '0640', not {value!r}")
    if mode > 0o7777:
        raise CertfleetError(f"{what}: mode {oct(mode)} is out of range")
    return mode


def resolve_owner(owner: str | None, group: str | None, *, what: str) -> tuple[int, int]:
    """uid and gid for names (or numbers); -1 keeps the current one."""
    uid = gid = -1
    if owner not in (None, ""):
        try:
            uid = int(owner) if str(owner).isdigit() else pwd.getpwnam(owner).pw_uid
        except KeyError:
            raise CertfleetError(f"{what}: user '{owner}' does not exist on this host") from None
    if group not in (None, ""):
        try:
            gid = int(group) if str(group).isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise CertfleetError(f"{what}: group '{group}' does not exist on this host") from None
    return uid, gid


def _first_missing_directory(path: str) -> str | None:
    """The top-most directory that must be created for ``path``, or None when its directory exists."""
    directory = os.path.dirname(os.path.abspath(path))
    missing = None
    while directory and not os.path.isdir(directory):
        if os.path.lexists(directory):
            raise CertfleetError(f"{path}: '{directory}' exists and is not a directory")
        missing = directory
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return missing


def _claim(path: str, seen: set) -> None:
    """Each path once per transaction, and absolute: a relative one would depend on the module's working directory."""
    if path in seen:
        raise CertfleetError(f"{path} is listed twice")
    seen.add(path)
    if not os.path.isabs(path):
        raise CertfleetError(f"{path}: paths must be absolute")


def plan_changes(files: list[WantedFile], links: list[WantedLink], absent: list[WantedAbsent] | None = None) -> Plan:
    """Compare every wanted file, link and absent path with the host; read-only."""
    plan = Plan()
    seen = set()
    for wanted in files:
        _claim(wanted.path, seen)
        uid, gid = resolve_owner(wanted.owner, wanted.group, what=wanted.path)
        missing_directory = _first_missing_directory(wanted.path)
        reasons, before = [], None
        try:
            info = os.lstat(wanted.path)
        except FileNotFoundError:
            info = None
        if info is None:
            reasons.append("created")
        elif stat.S_ISDIR(info.st_mode):
            raise CertfleetError(f"{wanted.path} is a directory, not a file")
        elif stat.S_ISLNK(info.st_mode):
            reasons.append("replaces a symbolic link")
        else:
            with open(wanted.path, "rb") as handle:
                before = handle.read()
            if before != wanted.content:
                reasons.append("content")
            if stat.S_IMODE(info.st_mode) != wanted.mode:
                reasons.append(f"mode {oct(stat.S_IMODE(info.st_mode))[2:]:0>4} -> {oct(wanted.mode)[2:]:0>4}")
            if (uid != -1 and info.st_uid != uid) or (gid != -1 and info.st_gid != gid):
                reasons.append("owner")
        if reasons:
            plan.changes.append(Change(path=wanted.path, kind="file", reasons=reasons, wanted=wanted, before=before,
                                       missing_directory=missing_directory))
    for link in links:
        _claim(link.path, seen)
        missing_directory = _first_missing_directory(link.path)
        current = os.readlink(link.path) if os.path.islink(link.path) else None
        if current == link.src:
            continue
        if current is None and os.path.lexists(link.path):
            if os.path.isdir(link.path):
                raise CertfleetError(f"{link.path} is a directory, not a link")
            with open(link.path, "rb") as handle:
                before = handle.read()
            plan.changes.append(Change(path=link.path, kind="link", reasons=["replaces a file"], wanted=link,
                                       before=before))
            continue
        plan.changes.append(Change(path=link.path, kind="link", reasons=["created" if current is None else "target"],
                                   wanted=link, before_link=current, missing_directory=missing_directory))
    for gone in absent or []:
        _claim(gone.path, seen)
        if os.path.islink(gone.path):
            plan.changes.append(Change(path=gone.path, kind="absent", reasons=["removed"], wanted=gone,
                                       before_link=os.readlink(gone.path)))
        elif os.path.isdir(gone.path):
            raise CertfleetError(f"{gone.path} is a directory, not a file")
        elif os.path.exists(gone.path):
            with open(gone.path, "rb") as handle:
                before = handle.read()
            plan.changes.append(Change(path=gone.path, kind="absent", reasons=["removed"], wanted=gone, before=before))
    return plan


def diff_of(plan: Plan) -> list[dict]:
    """Ansible diff entries; secret files show only that they change, never their content."""
    entries = []
    for change in plan.changes:
        if change.kind == "absent":
            before = (f"-> {change.before_link}\n" if change.before_link is not None
                      else "(private key, not shown)\n" if change.wanted.secret else _shown(change.before or b""))
            entries.append({"before_header": change.path, "after_header": f"{change.path} (removed)",
                            "before": before, "after": ""})
        elif change.kind == "link":
            entries.append({"before_header": change.path, "after_header": change.path,
                            "before": f"-> {change.before_link}\n" if change.before_link else "(absent)\n",
                            "after": f"-> {change.wanted.src}\n"})
        elif change.wanted.secret:
            entries.append({"before_header": change.path, "after_header": change.path,
                            "before": "(private key, not shown)\n" if change.before is not None else "(absent)\n",
                            "after": f"(private key, not shown: {', '.join(change.reasons)})\n"})
        else:
            entries.append({"before_header": change.path, "after_header": change.path,
                            "before": _shown(change.before) if change.before is not None else "",
                            "after": _shown(change.wanted.content)})
    return entries


# PEM labels of private keys (RFC 7468: "PRIVATE KEY", "ENCRYPTED PRIVATE KEY"; the legacy "RSA PRIVATE
# KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY" ...) all end this way.
PRIVATE_KEY_MARKER = b"PRIVATE KEY-----"


def _shown(data: bytes) -> str:
    """Diff text of a file that is not wanted as a secret. Its role says nothing about what the path
    held before (a key path and a certificate path swapped, a combined PEM, a key dropped by hand),
    so content is judged by itself: key material, and binary data that may be a DER key or a PKCS#12
    bundle, are never shown."""
    if PRIVATE_KEY_MARKER in data:
        return "(holds private key material, not shown)\n"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"(binary content, {len(data)} bytes, not shown)\n"
    if "\0" in text:
        return f"(binary content, {len(data)} bytes, not shown)\n"
    return text


def new_transaction_id(now: datetime.datetime | None = None) -> str:
    """Sortable by time, unique by a random suffix."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)


def _entry_for(change: Change, number: int, directory: str) -> dict:
    """Manifest entry describing what stood at the path before, saving file content beside it."""
    entry = {"path": change.path, "created_directory": change.missing_directory}
    if change.before_link is not None:
        entry.update(kind="link", target=change.before_link)
        return entry
    try:
        info = os.lstat(change.path)
    except FileNotFoundError:
        entry["kind"] = "absent"
        return entry
    if stat.S_ISLNK(info.st_mode):
        entry.update(kind="link", target=os.readlink(change.path))
        return entry
    backup = f"{number:03d}.orig"
    write_file_atomic(os.path.join(directory, backup), change.before if change.before is not None else _read(change.path),
                      option="transaction_dir")
    entry.update(kind="file", backup=backup, mode=stat.S_IMODE(info.st_mode), uid=info.st_uid, gid=info.st_gid,
                 sha256=hashlib.sha256(_read(change.path)).hexdigest())
    return entry


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _write_manifest(directory: str, manifest: dict) -> None:
    write_file_atomic(os.path.join(directory, MANIFEST), (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(),
                      option="transaction_dir")


def _make_directories(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)


def _apply(change: Change) -> None:
    wanted = change.wanted
    if isinstance(wanted, WantedAbsent):
        if os.path.lexists(change.path):
            os.unlink(change.path)
        return
    _make_directories(change.path)
    if isinstance(wanted, WantedLink):
        temporary = f"{change.path}.certfleet-{secrets.token_hex(4)}"
        os.symlink(wanted.src, temporary)
        os.replace(temporary, change.path)
        return
    if os.path.islink(change.path):
        os.unlink(change.path)
    write_file_atomic(change.path, wanted.content, option=change.path)
    uid, gid = resolve_owner(wanted.owner, wanted.group, what=change.path)
    # ownership first, then mode: a 0640 key is never readable by the wrong group
    os.chown(change.path, uid, gid)
    os.chmod(change.path, wanted.mode)


def apply_plan(plan: Plan, *, transaction_dir: str, keep: int = DEFAULT_KEEP, now: datetime.datetime | None = None,
               transaction_id: str | None = None) -> str:
    """Save what the plan replaces, then make every change; on any error put everything back. Returns the id.
    The transaction ends ``applied``: ``commit`` finishes it once the files are proved to work."""
    transaction_id = transaction_id or new_transaction_id(now)
    directory = os.path.join(transaction_dir, transaction_id)
    try:
        os.makedirs(transaction_dir, mode=0o700, exist_ok=True)
        os.mkdir(directory, 0o700)
    except OSError as exc:
        raise CertfleetError(f"transaction_dir: cannot create '{directory}' ({exc.strerror})") from None
    manifest = {"id": transaction_id, "state": "prepared", "version": MANIFEST_VERSION, "entries": []}
    for number, change in enumerate(plan.changes):
        manifest["entries"].append(_entry_for(change, number, directory))
    _write_manifest(directory, manifest)
    done = 0
    try:
        for change in plan.changes:
            _apply(change)
            done += 1
    except (OSError, CertfleetError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        _restore_entries(manifest["entries"][:done + 1], directory)
        manifest["state"] = "rolled_back"
        _write_manifest(directory, manifest)
        raise CertfleetError(f"writing {plan.changes[done].path} failed ({reason}); the {done} file(s) already "
                             f"written were put back") from None
    manifest["state"] = "applied"
    _write_manifest(directory, manifest)
    prune_transactions(transaction_dir, keep=keep)
    return transaction_id


def _restore_entries(entries: list[dict], directory: str) -> list[str]:
    """Put each path back as the manifest describes it, last change first."""
    restored = []
    for entry in reversed(entries):
        path = entry["path"]
        kind = entry["kind"]
        if kind == "absent":
            if os.path.lexists(path):
                os.unlink(path)
                restored.append(path)
        elif kind == "link":
            if not (os.path.islink(path) and os.readlink(path) == entry["target"]):
                temporary = f"{path}.certfleet-{secrets.token_hex(4)}"
                os.symlink(entry["target"], temporary)
                os.replace(temporary, path)
                restored.append(path)
        else:
            original = _read(os.path.join(directory, entry["backup"]))
            current = _read(path) if os.path.isfile(path) and not os.path.islink(path) else None
            info = os.lstat(path) if current is not None else None
            if (current != original or stat.S_IMODE(info.st_mode) != entry["mode"]
                    or info.st_uid != entry["uid"] or info.st_gid != entry["gid"]):
                if os.path.islink(path):
                    os.unlink(path)
                write_file_atomic(path, original, option=path)
                os.chown(path, entry["uid"], entry["gid"])
                os.chmod(path, entry["mode"])
                restored.append(path)
        created = entry.get("created_directory")
        if created and os.path.isdir(created):
            _remove_empty_directories(os.path.dirname(path), up_to=created)
    return restored


def _remove_empty_directories(directory: str, *, up_to: str) -> None:
    """rmdir the directories created for a file, deepest first, while they are empty."""
    up_to = os.path.abspath(up_to)
    directory = os.path.abspath(directory)
    while directory.startswith(up_to):
        try:
            os.rmdir(directory)
        except OSError:
            return
        if directory == up_to:
            return
        directory = os.path.dirname(directory)


def load_manifest(transaction_dir: str, transaction_id: str) -> tuple[str, dict]:
    """The transaction's directory and manifest, or a CertfleetError saying what is wrong."""
    if not isinstance(transaction_id, str) or not TRANSACTION_ID_PATTERN.fullmatch(transaction_id):
        raise CertfleetError(f"transaction: '{transaction_id}' is not a transaction id (like 20261203T101500Z-1a2b3c4d)")
    directory = os.path.join(transaction_dir, transaction_id)
    try:
        with open(os.path.join(directory, MANIFEST), "rb") as handle:
            manifest = json.loads(handle.read())
    except FileNotFoundError:
        raise CertfleetError(f"transaction {transaction_id} is not in {transaction_dir} (pruned, or another host's?)") from None
    except ValueError as exc:
        raise CertfleetError(f"transaction {transaction_id}: manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("entries"), list):
        raise CertfleetError(f"transaction {transaction_id}: manifest has no entries list")
    return directory, manifest


def rollback_plan(transaction_dir: str, transaction_id: str) -> list[str]:
    """Paths a rollback would touch (for check mode)."""
    _directory, manifest = load_manifest(transaction_dir, transaction_id)
    if manifest.get("state") == "rolled_back":
        return []
    return [entry["path"] for entry in manifest["entries"]]


def rollback(transaction_dir: str, transaction_id: str) -> list[str]:
    """Put back every path of the transaction; returns the paths that changed. Rolling back twice changes nothing."""
    directory, manifest = load_manifest(transaction_dir, transaction_id)
    if manifest.get("state") == "rolled_back":
        return []
    try:
        restored = _restore_entries(manifest["entries"], directory)
    except OSError as exc:
        raise CertfleetError(f"rollback of {transaction_id} failed at {exc.filename} ({exc.strerror})") from None
    manifest["state"] = "rolled_back"
    _write_manifest(directory, manifest)
    release_lock(transaction_dir, transaction_id)
    return restored


def commit(transaction_dir: str, transaction_id: str) -> bool:
    """Mark an applied transaction finished (its files were tested, reloaded and checked) and release the host lock.
    True when the state changed; committing twice changes nothing."""
    directory, manifest = load_manifest(transaction_dir, transaction_id)
    state = manifest.get("state")
    if state == "committed":
        release_lock(transaction_dir, transaction_id)
        return False
    if state != "applied":
        raise CertfleetError(f"transaction {transaction_id} is {state}, it cannot be committed (rolled back by a later "
                             f"run that found it unfinished?)")
    manifest["state"] = "committed"
    _write_manifest(directory, manifest)
    release_lock(transaction_dir, transaction_id)
    return True


def unfinished_transactions(transaction_dir: str) -> list[str]:
    """Ids of the transactions left prepared or applied (never committed nor rolled back), newest first."""
    try:
        names = sorted((name for name in os.listdir(transaction_dir) if TRANSACTION_ID_PATTERN.fullmatch(name)),
                       reverse=True)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        try:
            _directory, manifest = load_manifest(transaction_dir, name)
        except CertfleetError:
            continue
        if manifest.get("version") == MANIFEST_VERSION and manifest.get("state") in UNFINISHED:
            found.append(name)
    return found


def recover(transaction_dir: str) -> list[dict]:
    """Roll back every unfinished transaction, newest first (call it holding the lock): a run killed between
    writing and commit left files that were never tested, reloaded or checked. Returns what was done."""
    recovered = []
    for transaction_id in unfinished_transactions(transaction_dir):
        directory, manifest = load_manifest(transaction_dir, transaction_id)
        state = manifest.get("state")
        try:
            restored = _restore_entries(manifest["entries"], directory)
        except OSError as exc:
            raise CertfleetError(f"unfinished transaction {transaction_id} ({state}) could not be rolled back at "
                                 f"{exc.filename} ({exc.strerror}); nothing new was written") from None
        manifest.update(state="rolled_back", abandoned=state)
        _write_manifest(directory, manifest)
        recovered.append({"transaction": transaction_id, "state": state, "restored": restored})
    return recovered


class LockHeld(CertfleetError):
    """The host lock belongs to another deployment; ``holder`` is its lock record."""

    def __init__(self, holder: dict):
        self.holder = holder
        super().__init__(describe_holder(holder))


def describe_holder(holder: dict) -> str:
    owner = holder.get("owner") or {}
    since = holder.get("since")
    when = (datetime.datetime.fromtimestamp(since, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            if isinstance(since, (int, float)) else "?")
    age = f", {int(time.time() - since)} s ago" if isinstance(since, (int, float)) else ""
    return (f"the deploy lock of this host is held by transaction {holder.get('transaction') or '?'} of "
            f"ansible-playbook pid {owner.get('pid', '?')} on {owner.get('controller', '?')} since {when}{age}")


def _read_lock(path: str) -> dict | None:
    try:
        with open(path, "rb") as handle:
            record = json.loads(handle.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict):
        # half-written or foreign: judged by its age alone
        try:
            record = {"token": None, "since": os.lstat(path).st_mtime}
        except FileNotFoundError:
            return None
    return record


def acquire_lock(transaction_dir: str, *, transaction_id: str, owner: dict | None, takeover: str | None = None,
                 stale_after: int = DEFAULT_LOCK_STALE) -> dict:
    """Take the host lock for ``transaction_id``. Re-entrant for the same owner (one ansible-playbook run);
    a lock whose token is ``takeover`` (its run is gone, judged on the controller) or older than
    ``stale_after`` seconds is taken over. Raises LockHeld otherwise. Returns the lock record."""
    try:
        os.makedirs(transaction_dir, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise CertfleetError(f"transaction_dir: cannot create '{transaction_dir}' ({exc.strerror})") from None
    path = os.path.join(transaction_dir, LOCK)
    record = {"token": secrets.token_hex(8), "transaction": transaction_id, "owner": owner or None,
              "since": time.time(), "host_pid": os.getpid()}
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    for _attempt in range(3):
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:
            holder = _read_lock(path)
            if holder is None:
                continue
            since = holder.get("since")
            if not ((owner and holder.get("owner") == owner)
                    or (takeover and holder.get("token") == takeover)
                    or not isinstance(since, (int, float)) or time.time() - since > stale_after):
                raise LockHeld(holder) from None
            write_file_atomic(path, data, option="transaction_dir")
            if (_read_lock(path) or {}).get("token") != record["token"]:
                continue  # another run took it over at the same moment
            return record
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        return record
    raise LockHeld(_read_lock(path) or {})


def release_lock(transaction_dir: str, transaction_id: str) -> bool:
    """Remove the host lock when it belongs to ``transaction_id``."""
    path = os.path.join(transaction_dir, LOCK)
    holder = _read_lock(path)
    if holder is not None and holder.get("transaction") == transaction_id:
        os.unlink(path)
        return True
    return False


def prune_transactions(transaction_dir: str, *, keep: int = DEFAULT_KEEP) -> list[str]:
    """Remove all but the newest ``keep`` transactions (ids sort by time)."""
    try:
        names = sorted(name for name in os.listdir(transaction_dir) if TRANSACTION_ID_PATTERN.fullmatch(name))
    except FileNotFoundError:
        return []
    removed = names[:-keep] if keep > 0 else names
    for name in removed:
        shutil.rmtree(os.path.join(transaction_dir, name), ignore_errors=True)
    return removed
