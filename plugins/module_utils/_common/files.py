# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way certfleet.tls writes files: atomic, private until renamed, optional backup.

This module is private to the certfleet.tls collection: its API may change
without notice.
"""

from __future__ import annotations

import errno
import os
import tempfile

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError


def read_file(path: str, *, option: str = "path") -> bytes | None:
    """File content, or None when it does not exist; other errors name the option."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise CertfleetError(f"{option}: '{path}' is a directory, not a file") from None
    except NotADirectoryError:
        raise CertfleetError(f"{option}: '{os.path.dirname(path)}' is not a directory") from None
    except OSError as exc:
        raise CertfleetError(f"{option}: cannot read '{path}' ({exc.strerror})") from None


def check_writable_directory(path: str, *, option: str = "path") -> None:
    """Fail early, before anything is generated, when the file's directory cannot take it."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CertfleetError(f"{option}: '{path}' is a directory, not a file")
    if not os.path.exists(directory):
        raise CertfleetError(f"{option}: directory '{directory}' does not exist")
    if not os.path.isdir(directory):
        raise CertfleetError(f"{option}: '{directory}' is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CertfleetError(f"{option}: directory '{directory}' is not writable")


def write_file_atomic(path: str, content: bytes, *, option: str = "path") -> None:
    """Write via a 0600 temporary file in the same directory, fsync, then rename over ``path``.

    AnsibleModule.atomic_move() chmods a newly created file to 0666 & ~umask
    after the rename, which would expose a fresh private key for a moment; the
    temporary file here stays 0600 and callers widen the mode afterwards with
    set_fs_attributes_if_different() when the user asked for a wider mode.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        handle, temp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise CertfleetError(f"{option}: cannot write to directory '{directory}' ({exc.strerror})") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_path, path)
    except OSError as exc:
        _remove_quietly(temp_path)
        if exc.errno == errno.ENOSPC:
            raise CertfleetError(f"{option}: no space left to write '{path}'") from None
        raise CertfleetError(f"{option}: cannot write '{path}' ({exc.strerror})") from None
    except BaseException:
        _remove_quietly(temp_path)
        raise


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def write_with_module(module, path: str, content: bytes, *, backup: bool = False, option: str = "path") -> str | None:
    """Backup (if asked and the file exists), then atomic write; returns the backup path or None.

    Uses from ``module`` only ``backup_local()``.
    """
    backup_file = None
    if backup and os.path.exists(path):
        backup_file = module.backup_local(path) or None
    write_file_atomic(path, content, option=option)
    return backup_file
