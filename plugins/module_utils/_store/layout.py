# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where everything lives in the controller-side certificate store: the only place that knows.

This module is private to the certfleet.tls collection: its API may change
without notice. Every other part asks for a path by what it is (``certificate_path(store,
name, "fullchain")``), never by spelling a file name. The layout (docs/store.md)::

    <store>/certs/<name>/   key.pem csr.pem cert.pem chain.pem fullchain.pem state.json history.jsonl
                            incoming/ incoming/processed/ archive/<generation>/
    <store>/incoming/       the store-wide drop-in folder (incoming/processed/: files already collected)
    <store>/ca/<ca>/        the built-in private CA: key.pem cert.pem chain.pem root.pem csr.pem ca.json
                            index.json crl.pem crl.der issued/<serial>.pem root/ (kind=intermediate)
    <store>/acme/<account>/ an ACME account: account.key (encrypted with the store passphrase) account.json
"""

from __future__ import annotations

import os
import re
import stat

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

STORE_DIRECTORY = "cert_store"
CERTIFICATES = "certs"
CAS = "ca"
INCOMING = "incoming"
PROCESSED = "processed"  # incoming/processed/: drop-in files already collected, kept for the record
ARCHIVE = "archive"

# What a definition's directory holds, by what it is.
CERTIFICATE_FILES = {
    "key": "key.pem",
    "csr": "csr.pem",
    "cert": "cert.pem",
    "chain": "chain.pem",
    "fullchain": "fullchain.pem",
    "state": "state.json",
    "history": "history.jsonl",
}
# The issued generation, in the order it is written.
ISSUED_KINDS = ("cert", "chain", "fullchain")
# Every file a run replaces, in the order it writes them: key and CSR before the certificate, the
# certificate before its chain, state.json last. An interrupted run leaves a state that does not match
# the files, which the next run detects and repairs. history.jsonl is only ever appended to, after these.
WRITE_ORDER = ("key", "csr") + ISSUED_KINDS + ("state",)

# What a private CA's directory holds, by what it is.
CA_FILES = {
    "key": "key.pem",
    "csr": "csr.pem",
    "cert": "cert.pem",
    "chain": "chain.pem",
    "root": "root.pem",
    "config": "ca.json",
    "index": "index.json",
    "crl": "crl.der",
    "crl_pem": "crl.pem",
    "lock": ".lock",
}
CA_ISSUED = "issued"  # issued/<serial>.pem: a copy of every certificate the CA issued
CA_ROOT = "root"  # kind=intermediate: the root CA that signed the issuing CA, with the same files

ACME = "acme"
# What an ACME account's directory holds, by what it is: its key and its registration (URL, directory, contact).
ACME_ACCOUNT_FILES = {
    "key": "account.key",
    "registration": "account.json",
}

# \Z, not $: "$" also matches before a final newline, so "www\n" would pass a .match() and name a directory.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")


def check_name(name, *, what: str = "name") -> str:
    """A definition or CA name that is safe as one directory name of the store (no path can escape)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or name in (".", ".."):
        raise CertfleetError(
            f"{what} {name!r} must be 1-128 characters of letters, digits, '.', '_' or '-' (it names a store directory)")
    return name


def filename(kind: str) -> str:
    """File name of one kind of a definition's files (``"fullchain"`` -> ``fullchain.pem``)."""
    try:
        return CERTIFICATE_FILES[kind]
    except KeyError:
        raise CertfleetError(f"store file kind {kind!r} must be one of {', '.join(CERTIFICATE_FILES)}") from None


def certificate_dir(store_path: str, name: str) -> str:
    """Directory of one definition."""
    return os.path.join(store_path, CERTIFICATES, check_name(name))


def certificate_path(store_path: str, name: str, kind: str) -> str:
    """Path of one file of a definition, by kind (see CERTIFICATE_FILES)."""
    return os.path.join(certificate_dir(store_path, name), filename(kind))


def incoming_dir(store_path: str, name: str | None = None) -> str:
    """Drop-in folder: the store's own, or one definition's."""
    if name is None:
        return os.path.join(store_path, INCOMING)
    return os.path.join(certificate_dir(store_path, name), INCOMING)


def processed_dir(store_path: str, name: str | None = None) -> str:
    """Where a collected drop-in file is moved: ``processed/`` inside the drop-in folder it came from."""
    return os.path.join(incoming_dir(store_path, name), PROCESSED)


def processed_name(original: str, *, stamp: str) -> str:
    """The name a collected file gets in ``processed/``: the UTC time stamp, then its own (base) name."""
    base = os.path.basename(original)
    check = base.replace(os.sep, "_")
    if not check or check in (".", ".."):
        raise CertfleetError(f"incoming: {original!r} is not a file name")
    return f"{stamp.replace(':', '')}-{check}"


def archive_dir(store_path: str, name: str, label: str) -> str:
    """Folder of one archived generation of a definition."""
    return os.path.join(certificate_dir(store_path, name), ARCHIVE, label)


def ca_dir(store_path: str, ca: str) -> str:
    """Directory of one private CA."""
    return os.path.join(store_path, CAS, check_name(ca, what="CA name"))


def ca_path(store_path: str, ca: str, kind: str) -> str:
    """Path of one file of a private CA, by kind (see CA_FILES)."""
    try:
        return os.path.join(ca_dir(store_path, ca), CA_FILES[kind])
    except KeyError:
        raise CertfleetError(f"CA file kind {kind!r} must be one of {', '.join(CA_FILES)}") from None


def acme_account_dir(store_path: str, account: str) -> str:
    """Directory of one ACME account."""
    return os.path.join(store_path, ACME, check_name(account, what="ACME account name"))


def acme_account_path(store_path: str, account: str, kind: str) -> str:
    """Path of one file of an ACME account, by kind (see ACME_ACCOUNT_FILES)."""
    try:
        return os.path.join(acme_account_dir(store_path, account), ACME_ACCOUNT_FILES[kind])
    except KeyError:
        raise CertfleetError(f"ACME account file kind {kind!r} must be one of {', '.join(ACME_ACCOUNT_FILES)}") from None


def ca_issued_file(serial: str) -> str:
    """Path of an issued certificate's copy, relative to its CA's directory."""
    return f"{CA_ISSUED}/{serial}.pem"


def default_store_path(*, inventory_sources=None, playbook_dir: str | None = None) -> str:
    """The store used when none is named: ``cert_store`` beside the inventory (its directory, or the
    directory of an inventory file), else beside the playbook, else in the working directory."""
    sources = [inventory_sources] if isinstance(inventory_sources, str) else list(inventory_sources or [])
    for source in sources:
        if not isinstance(source, str) or not source or "," in source:
            continue  # "host1,host2," is a host list, not a path
        source = os.path.abspath(os.path.expanduser(source))
        base = source if os.path.isdir(source) else os.path.dirname(source)
        return os.path.join(base, STORE_DIRECTORY)
    return os.path.join(os.path.abspath(playbook_dir or os.getcwd()), STORE_DIRECTORY)


def inventory_directory_holding(store_path: str, inventory_sources) -> str | None:
    """The inventory source that is a directory holding store_path, None when there is none.

    Ansible reads every file under a directory given as an inventory source as inventory: YAML and
    JSON files can define hosts and variables, and executable files run as inventory scripts. A store
    there - whose incoming/ folder takes whatever a person saves into it - must not be used that way;
    give the inventory file instead (``-i inventory/hosts.yml``).
    """
    store = os.path.realpath(os.path.abspath(os.path.expanduser(store_path)))
    sources = [inventory_sources] if isinstance(inventory_sources, str) else list(inventory_sources or [])
    for source in sources:
        if not isinstance(source, str) or not source or "," in source:
            continue
        directory = os.path.realpath(os.path.abspath(os.path.expanduser(source)))
        if os.path.isdir(directory) and (store == directory or store.startswith(directory.rstrip(os.sep) + os.sep)):
            return source
    return None


# --------------------------------------------------------------------------------------------
# enumerating a store (backup and restore: _store/backup.py)

# A store holds a few thousand entries per thousand definitions; a walk that finds more stops.
MAX_STORE_ENTRIES = 1_000_000


def selection_roots(*, definitions=None, cas=None) -> list[str]:
    """Relative POSIX paths of chosen definitions and CAs (``certs/<name>``, ``ca/<ca>``), names checked, sorted."""
    roots = [f"{CERTIFICATES}/{check_name(name, what='definition name')}" for name in definitions or []]
    roots += [f"{CAS}/{check_name(name, what='CA name')}" for name in cas or []]
    return sorted(set(roots))


def selection_parents() -> tuple[str, ...]:
    """The store directories that hold the chosen definitions and CAs."""
    return (CERTIFICATES, CAS)


def backup_roots(store_path: str, *, definitions=None, cas=None) -> list[str] | None:
    """Relative POSIX paths of what a partial backup holds (``certs/<name>``, ``ca/<ca>``), or None for the
    whole store. Every name is checked and must exist as a directory of the store."""
    if not definitions and not cas:
        return None
    roots = selection_roots(definitions=definitions, cas=cas)
    for root in roots:
        folder, name = root.split("/")
        what = "definition" if folder == CERTIFICATES else "CA"
        full = os.path.join(store_path, folder, name)
        if not os.path.isdir(full) or os.path.islink(full):
            raise CertfleetError(f"{what} {name!r} is not in the store ({full} is not a directory)")
    return roots


def store_entries(store_path: str, *, definitions=None, cas=None, max_entries: int = MAX_STORE_ENTRIES) -> list[tuple[str, os.stat_result]]:
    """Every directory and file of the store, or of the chosen definitions and CAs with their parent
    directories, as (relative POSIX path, lstat) pairs: ``"."`` (the store root) first, each directory
    before what it holds, names sorted. Nothing is followed: a symbolic link is listed as what it is
    (the caller refuses it), never walked through."""
    if not os.path.isdir(store_path):
        raise CertfleetError(f"store_path: '{store_path}' is not a directory")
    roots = backup_roots(store_path, definitions=definitions, cas=cas)
    entries = [(".", os.stat(store_path))]
    if roots is None:
        pending = [""]
    else:
        parents = sorted({root.split("/")[0] for root in roots})
        entries += [(parent, os.lstat(os.path.join(store_path, parent))) for parent in parents]
        pending = []
        for root in roots:
            entries.append((root, os.lstat(os.path.join(store_path, *root.split("/")))))
            pending.append(root)
    # Depth first, sorted, so the order is the same on every run (the content hash depends on it).
    stack = list(reversed(pending))
    while stack:
        relative = stack.pop()
        directory = os.path.join(store_path, *relative.split("/")) if relative else store_path
        try:
            with os.scandir(directory) as listing:
                children = sorted(listing, key=lambda entry: entry.name)
                found = [(f"{relative}/{child.name}" if relative else child.name, child.stat(follow_symlinks=False))
                         for child in children]
        except OSError as exc:
            raise CertfleetError(f"store_path: cannot list '{directory}' ({exc.strerror})") from None
        subdirectories = []
        for child_path, child_stat in found:
            entries.append((child_path, child_stat))
            if len(entries) > max_entries:
                raise CertfleetError(f"store_path: '{store_path}' holds more than {max_entries} entries")
            if stat.S_ISDIR(child_stat.st_mode):
                subdirectories.append(child_path)
        # Every child of a directory is listed, then each subdirectory is walked, in name order.
        stack.extend(reversed(subdirectories))
    return entries
