# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way certfleet.tls writes files: atomic, private until renamed, optional backup.

This module is private to the certfleet.tls collection: its API may change
without notice.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
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
    A symbolic link at ``path`` is replaced by the file, never written through
    (rename(2) does not follow its destination); the store, where a link in a
    directory must not redirect writes either, uses ``write_file_atomic_at``.
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


def write_file_atomic_at(directory_fd: int, name: str, content: bytes, *, path: str, option: str = "path",
                         mode: int = 0o600) -> None:
    """``write_file_atomic`` inside an open directory (see ``open_directory_nofollow``): the temporary
    file is created O_EXCL | O_NOFOLLOW and renamed within the same descriptor, so no path lookup after
    the directory was opened can be redirected. ``mode`` is set on the descriptor before the rename (no
    chmod by path afterwards, which would follow a link swapped in). ``path`` only names the file in messages."""
    temp_name = f".{name}.{secrets.token_hex(6)}.tmp"
    try:
        handle = os.open(temp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                         0o600, dir_fd=directory_fd)
    except OSError as exc:
        raise CertfleetError(f"{option}: cannot write to directory '{os.path.dirname(path)}' ({exc.strerror})") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            if mode != 0o600:
                os.fchmod(stream.fileno(), mode)
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
    except OSError as exc:
        _remove_quietly(temp_name, directory_fd)
        if exc.errno == errno.ENOSPC:
            raise CertfleetError(f"{option}: no space left to write '{path}'") from None
        raise CertfleetError(f"{option}: cannot write '{path}' ({exc.strerror})") from None
    except BaseException:
        _remove_quietly(temp_name, directory_fd)
        raise


def append_file_at(directory_fd: int, name: str, data: bytes, *, path: str, option: str = "path", mode: int = 0o640) -> None:
    """Append ``data`` to ``name`` in an open directory, creating it; a symbolic link there is refused
    (O_NOFOLLOW), never appended through, and so is anything but a regular file (a FIFO would block)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(name, flags, mode, dir_fd=directory_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CertfleetError(f"{option}: '{path}' is a symbolic link; the store never writes through a link "
                                 f"(remove it, the file is created again)") from None
        raise CertfleetError(f"{option}: cannot append to '{path}' ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise CertfleetError(f"{option}: '{path}' is not a regular file")
        # O_APPEND writes of one small buffer land whole; the file is append-only by design.
        os.write(descriptor, data)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise CertfleetError(f"{option}: no space left to write '{path}'") from None
        raise CertfleetError(f"{option}: cannot append to '{path}' ({exc.strerror})") from None
    finally:
        os.close(descriptor)


def open_directory_nofollow(root: str, parts, *, create_mode: int | None = None, option: str = "path") -> int:
    """Descriptor of ``root``/``parts...``, opened one component at a time with O_NOFOLLOW so that a
    symbolic link planted anywhere below ``root`` is refused instead of redirecting the writes that
    follow; missing components are created with ``create_mode`` (None: they must exist). ``root``
    itself may be a link (a store kept on another volume is the owner's choice). The caller closes it."""
    flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(root, flags)
    except OSError as exc:
        raise CertfleetError(f"{option}: cannot open directory '{root}' ({exc.strerror})") from None
    path = root
    try:
        for part in parts:
            path = os.path.join(path, part)
            if part in ("", ".", "..") or "/" in part:
                raise CertfleetError(f"{option}: {part!r} is not a single directory name")
            try:
                child = os.open(part, flags | os.O_NOFOLLOW, dir_fd=descriptor)
            except FileNotFoundError:
                if create_mode is None:
                    raise CertfleetError(f"{option}: directory '{path}' does not exist") from None
                try:
                    os.mkdir(part, create_mode, dir_fd=descriptor)
                except FileExistsError:
                    pass  # created meanwhile: opened below like any other, links still refused
                except OSError as exc:
                    raise CertfleetError(f"{option}: cannot create '{path}' ({exc.strerror})") from None
                child = _open_child(part, flags, descriptor, path, option)
            except OSError as exc:
                raise _child_error(part, descriptor, path, option, exc) from None
            os.close(descriptor)
            descriptor = child
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _open_child(part: str, flags: int, parent: int, path: str, option: str) -> int:
    try:
        return os.open(part, flags | os.O_NOFOLLOW, dir_fd=parent)
    except OSError as exc:
        raise _child_error(part, parent, path, option, exc) from None


def _child_error(part: str, parent: int, path: str, option: str, exc: OSError) -> CertfleetError:
    try:
        is_link = stat.S_ISLNK(os.lstat(part, dir_fd=parent).st_mode)
    except OSError:
        is_link = False
    if is_link:
        return CertfleetError(f"{option}: '{path}' is a symbolic link; the store never writes through a link "
                              f"(replace it with a directory)")
    if exc.errno == errno.ENOTDIR:
        return CertfleetError(f"{option}: '{path}' is not a directory")
    return CertfleetError(f"{option}: cannot open directory '{path}' ({exc.strerror})")


def _remove_quietly(path: str, directory_fd: int | None = None) -> None:
    try:
        os.unlink(path, dir_fd=directory_fd)
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
