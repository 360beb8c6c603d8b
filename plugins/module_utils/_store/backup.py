# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encrypted backup and restore of the certificate store, and PKCS#12 exports of its definitions.

This module is private to the certfleet.tls collection: its API may change without notice.
The archive format (docs/backup.md)::

    magic "CFSTBKP1" | header length (2 bytes, big-endian) | header (JSON, at most 2 KiB)
    record*          | nonce (12) | flags (1: 0 more, 1 final) | length (4, big-endian) | AES-256-GCM ciphertext+tag

The header names the format version, the KDF (scrypt: N, r, p, a 16-byte random salt), a passphrase
check value and the chunk size. scrypt gives 64 bytes: the AES-256-GCM key and the check value (so a
wrong passphrase is told apart from a damaged archive). Each record encrypts at most one chunk of
the plaintext with a fresh random 96-bit nonce; its associated data is SHA-256(header) | chunk
index (8 bytes) | flags, so a changed header, a reordered, dropped or repeated chunk, a final flag
moved or a truncated archive all fail authentication or the final-record check. The plaintext is
an 8-byte manifest length, the manifest (JSON: path, type, mode and, for files, size and SHA-256 of
every entry, the store root ``.`` first) and then the files' bytes in manifest order.

Reading trusts nothing: the header, KDF parameters, record lengths, the manifest and every path
and size in it are bounded and checked before use; restore writes into a private directory beside
the target and renames it into place only when every chunk authenticated and every file's SHA-256
matched.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import stat
import struct
import tempfile
import zlib
from dataclasses import dataclass, field

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._common import files as _files
from ansible_collections.certfleet.tls.plugins.module_utils._common.times import iso, utc_now
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import HAS_CRYPTOGRAPHY, CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import load_current

if HAS_CRYPTOGRAPHY:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"CFSTBKP1"
FORMAT_VERSION = 1
FORMAT_NAME = "certfleet.tls store backup"
ARCHIVE_SUFFIX = ".cfbackup"
DEFAULT_PREFIX = "certfleet-store"

# scrypt as RFC 7914 and OWASP's password storage guidance recommend for interactive use:
# N=2**17, r=8, p=1 costs 128 MiB and about half a second per derivation.
SCRYPT_N = 2 ** 17
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
# What a reader accepts from a header it does not trust: enough room for stronger parameters,
# never a derivation that needs more than 256 MiB or runs for minutes.
SCRYPT_MIN_LOG_N = 10
SCRYPT_MAX_LOG_N = 20
SCRYPT_MAX_R = 16
SCRYPT_MAX_P = 4
SCRYPT_MAX_MEMORY = 256 * 1024 * 1024  # 128 * N * r bytes

CHUNK_SIZE = 1024 * 1024
# The plaintext is zlib-compressed before it is encrypted: PEM, JSON and the repeated chains of a store
# shrink to a fifth. Only the store's own content is compressed (no attacker input is mixed with a
# secret and observed over many runs), so compression leaks nothing worth having through the size.
COMPRESSION = "zlib"
COMPRESSION_LEVEL = 6
MIN_CHUNK_SIZE = 256
MAX_CHUNK_SIZE = 16 * 1024 * 1024
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_HEADER_BYTES = 2048
RECORD_HEAD = struct.Struct(">12sBI")  # nonce, flags, ciphertext length
FLAG_MORE = 0
FLAG_FINAL = 1

# Restore limits (a hostile archive may list anything; these bound what it can make us write).
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_ENTRIES = layout.MAX_STORE_ENTRIES
MAX_FILE_SIZE = 64 * 1024 * 1024
MAX_TOTAL_SIZE = 4 * 1024 * 1024 * 1024
MAX_PATH_LENGTH = 1024
MAX_DEPTH = 32

MODE_PATTERN = re.compile(r"^0[0-7]{3}\Z")
UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\\]")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}\Z")
ENTRY_KEYS = {"dir": {"path", "type", "mode"}, "file": {"path", "type", "mode", "size", "sha256"}}
ARCHIVE_NAME = re.compile(r"^(?P<prefix>[A-Za-z0-9][A-Za-z0-9._-]{0,63})-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<n>\d{1,4}))?"
                          + re.escape(ARCHIVE_SUFFIX) + r"\Z")
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
READ_BLOCK = 64 * 1024


@dataclass(frozen=True)
class KdfParams:
    """scrypt cost parameters and salt of one archive."""

    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P
    salt: bytes = b""


@dataclass(frozen=True)
class Limits:
    """What a restore accepts from an archive."""

    max_file_size: int = MAX_FILE_SIZE
    max_total_size: int = MAX_TOTAL_SIZE
    max_entries: int = MAX_ENTRIES
    max_manifest_bytes: int = MAX_MANIFEST_BYTES


@dataclass
class Manifest:
    """What an archive holds: entries (dicts: path, type, mode, size, sha256) and what was chosen."""

    entries: list
    definitions: list | None = None
    cas: list | None = None
    created: str = ""
    raw_sha256: str = ""  # of the manifest as read from an archive

    @property
    def content_sha256(self) -> str:
        """SHA-256 of the entries alone (not the time): equal for two archives of the same store content."""
        return content_hash(self.entries)

    @property
    def roots(self) -> list | None:
        """The selected definitions' and CAs' directories (relative POSIX paths), None for the whole store."""
        if self.definitions is None and self.cas is None:
            return None
        return layout.selection_roots(definitions=self.definitions, cas=self.cas)

    @property
    def files(self) -> list:
        return [entry for entry in self.entries if entry["type"] == "file"]

    @property
    def total_size(self) -> int:
        return sum(entry["size"] for entry in self.files)

    def summary(self) -> dict:
        """What the modules return about an archive's content."""
        names = _names(self.entries)
        return {
            "content_sha256": self.content_sha256,
            "entries": len(self.entries),
            "files": len(self.files),
            "size": self.total_size,
            "definitions": names[layout.CERTIFICATES],
            "cas": names[layout.CAS],
            "scope": "store" if self.definitions is None and self.cas is None else "selected",
        }

    def to_json(self) -> bytes:
        document = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "created": self.created,
            "selected": None if self.definitions is None and self.cas is None else
            {"definitions": list(self.definitions or []), "cas": list(self.cas or [])},
            "entries": self.entries,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


@dataclass
class BackupResult:
    """What ``backup_store`` did (or, in check mode, would do)."""

    manifest: Manifest
    path: str | None
    written: bool
    archive_size: int = 0
    reason: str = ""
    removed: list = field(default_factory=list)


def content_hash(entries: list) -> str:
    """Canonical SHA-256 of manifest entries."""
    return hashlib.sha256(json.dumps(entries, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _names(entries: list) -> dict:
    found = {layout.CERTIFICATES: set(), layout.CAS: set()}
    for entry in entries:
        parts = entry["path"].split("/")
        if len(parts) >= 2 and parts[0] in found and entry["type"] == "dir" and len(parts) == 2:
            found[parts[0]].add(parts[1])
    return {key: sorted(value) for key, value in found.items()}


def _secret(passphrase, what: str = "passphrase") -> bytes:
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if not isinstance(passphrase, bytes) or not passphrase:
        raise CertfleetError(f"{what} must be a non-empty string")
    return passphrase


# --------------------------------------------------------------------------------------------
# KDF, header, records


def check_kdf(params: KdfParams, *, source: str = "archive") -> KdfParams:
    """Refuse scrypt parameters a reader should not run: from a hostile header, they could ask for
    gigabytes of memory or minutes of work before anything is authenticated."""
    n, r, p = params.n, params.r, params.p
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in (n, r, p)):
        raise CertfleetError(f"{source}: scrypt parameters must be integers")
    if n < 2 or n & (n - 1) or not SCRYPT_MIN_LOG_N <= n.bit_length() - 1 <= SCRYPT_MAX_LOG_N:
        raise CertfleetError(f"{source}: scrypt N={n} must be a power of two from 2^{SCRYPT_MIN_LOG_N} to 2^{SCRYPT_MAX_LOG_N}")
    if not 1 <= r <= SCRYPT_MAX_R or not 1 <= p <= SCRYPT_MAX_P:
        raise CertfleetError(f"{source}: scrypt r={r}, p={p} out of range (r 1-{SCRYPT_MAX_R}, p 1-{SCRYPT_MAX_P})")
    if 128 * n * r > SCRYPT_MAX_MEMORY:
        raise CertfleetError(f"{source}: scrypt N={n}, r={r} would need {128 * n * r // 2 ** 20} MiB "
                             f"(at most {SCRYPT_MAX_MEMORY // 2 ** 20} MiB accepted)")
    if not isinstance(params.salt, bytes) or not 16 <= len(params.salt) <= 64:
        raise CertfleetError(f"{source}: the scrypt salt must be 16-64 bytes")
    return params


def derive_keys(passphrase, params: KdfParams) -> tuple[bytes, bytes]:
    """(AES-256-GCM key, passphrase check value) from scrypt."""
    material = Scrypt(salt=params.salt, length=64, n=params.n, r=params.r, p=params.p).derive(_secret(passphrase))
    return material[:32], material[32:]


def encode_header(params: KdfParams, check: bytes, chunk_size: int) -> bytes:
    document = {
        "version": FORMAT_VERSION,
        "kdf": {"name": "scrypt", "n": params.n, "r": params.r, "p": params.p,
                "salt": base64.b64encode(params.salt).decode("ascii")},
        "cipher": "AES-256-GCM",
        "compression": COMPRESSION,
        "chunk_size": chunk_size,
        "check": base64.b64encode(hashlib.sha256(check).digest()).decode("ascii"),
    }
    body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode("ascii")
    return MAGIC + struct.pack(">H", len(body)) + body


@dataclass(frozen=True)
class Header:
    raw: bytes
    kdf: KdfParams
    chunk_size: int
    check_digest: bytes


def _b64(value, *, source: str, what: str) -> bytes:
    if not isinstance(value, str) or len(value) > 256:
        raise CertfleetError(f"{source}: header field {what} is not base64")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise CertfleetError(f"{source}: header field {what} is not base64") from None


def read_header(handle, *, source: str) -> Header:
    """Parse and bound the header; a wrong magic, version or parameter fails naming the archive."""
    magic = handle.read(len(MAGIC))
    if magic != MAGIC:
        if len(magic) < len(MAGIC):
            raise CertfleetError(f"{source}: truncated archive (shorter than its header)")
        raise CertfleetError(f"{source}: not a certfleet.tls store backup (wrong magic bytes)")
    length_bytes = handle.read(2)
    if len(length_bytes) < 2:
        raise CertfleetError(f"{source}: truncated archive (shorter than its header)")
    (length,) = struct.unpack(">H", length_bytes)
    if not 2 <= length <= MAX_HEADER_BYTES:
        raise CertfleetError(f"{source}: header length {length} out of range (2-{MAX_HEADER_BYTES} bytes)")
    body = handle.read(length)
    if len(body) < length:
        raise CertfleetError(f"{source}: truncated archive (shorter than its header)")
    try:
        # Exactly one JSON object, nothing around it: a length off by one must not pass on a whitespace byte.
        if body[:1] != b"{" or body[-1:] != b"}":
            raise ValueError("not an object")
        document = json.loads(body.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise CertfleetError(f"{source}: the archive header is not valid JSON (damaged or altered)") from None
    if not isinstance(document, dict):
        raise CertfleetError(f"{source}: the archive header is not a JSON object (damaged or altered)")
    version = document.get("version")
    if version != FORMAT_VERSION:
        raise CertfleetError(f"{source}: archive format version {version!r} is not supported (this collection reads version "
                             f"{FORMAT_VERSION})")
    fields = {"version", "kdf", "cipher", "compression", "chunk_size", "check"}
    if set(document) != fields:
        raise CertfleetError(f"{source}: unexpected header fields {sorted(set(document) ^ fields)}")
    if document["cipher"] != "AES-256-GCM":
        raise CertfleetError(f"{source}: cipher {document['cipher']!r} is not supported (AES-256-GCM)")
    if document["compression"] != COMPRESSION:
        raise CertfleetError(f"{source}: compression {document['compression']!r} is not supported ({COMPRESSION})")
    kdf = document["kdf"]
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt" or set(kdf) != {"name", "n", "r", "p", "salt"}:
        raise CertfleetError(f"{source}: the header's KDF must be scrypt with n, r, p and salt")
    params = check_kdf(KdfParams(n=kdf["n"], r=kdf["r"], p=kdf["p"], salt=_b64(kdf["salt"], source=source, what="kdf.salt")),
                       source=source)
    chunk_size = document["chunk_size"]
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise CertfleetError(f"{source}: chunk size {chunk_size!r} out of range ({MIN_CHUNK_SIZE}-{MAX_CHUNK_SIZE})")
    check_digest = _b64(document["check"], source=source, what="check")
    if len(check_digest) != 32:
        raise CertfleetError(f"{source}: the header's passphrase check value must be 32 bytes")
    return Header(raw=magic + length_bytes + body, kdf=params, chunk_size=chunk_size, check_digest=check_digest)


def _associated_data(header_digest: bytes, index: int, flags: int) -> bytes:
    return header_digest + struct.pack(">QB", index, flags)


class ArchiveWriter:
    """Encrypts a plaintext stream into records of at most ``chunk_size`` bytes."""

    def __init__(self, handle, passphrase, *, kdf: KdfParams | None = None, chunk_size: int = CHUNK_SIZE):
        kdf = kdf or KdfParams()
        if not kdf.salt:
            kdf = KdfParams(n=kdf.n, r=kdf.r, p=kdf.p, salt=secrets.token_bytes(SALT_BYTES))
        check_kdf(kdf, source="backup")
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise CertfleetError(f"backup: chunk size {chunk_size} out of range ({MIN_CHUNK_SIZE}-{MAX_CHUNK_SIZE})")
        key, check = derive_keys(passphrase, kdf)
        header = encode_header(kdf, check, chunk_size)
        self._handle = handle
        self._aead = AESGCM(key)
        self._digest = hashlib.sha256(header).digest()
        self._chunk_size = chunk_size
        self._buffer = bytearray()
        self._index = 0
        self.size = len(header)
        handle.write(header)

    def _record(self, data: bytes, flags: int) -> None:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, bytes(data), _associated_data(self._digest, self._index, flags))
        record = RECORD_HEAD.pack(nonce, flags, len(sealed)) + sealed
        self._handle.write(record)
        self.size += len(record)
        self._index += 1

    def write(self, data: bytes) -> None:
        self._buffer += data
        # Strictly more than one chunk buffered: the last chunk is always written by close(), as final.
        while len(self._buffer) > self._chunk_size:
            self._record(self._buffer[:self._chunk_size], FLAG_MORE)
            del self._buffer[:self._chunk_size]

    def close(self) -> None:
        self._record(self._buffer, FLAG_FINAL)
        self._buffer = bytearray()


class ArchiveReader:
    """Authenticated plaintext of an archive: ``read(n)`` returns only bytes whose chunk authenticated;
    ``finish()`` proves the final record was seen and nothing follows it."""

    def __init__(self, handle, passphrase, *, source: str, keys: tuple | None = None):
        self.source = source
        self._handle = handle
        self.header = read_header(handle, source=source)
        if keys is None:
            keys = derive_keys(passphrase, self.header.kdf)
        key, check = keys
        if not hmac.compare_digest(hashlib.sha256(check).digest(), self.header.check_digest):
            raise CertfleetError(f"{source}: wrong passphrase (or the archive header was altered)")
        self.keys = keys
        self._aead = AESGCM(key)
        self._digest = hashlib.sha256(self.header.raw).digest()
        self._index = 0
        self._final = False
        self._inflater = zlib.decompressobj()
        self._buffer = b""
        self._offset = 0

    def _next_chunk(self) -> bytes | None:
        """The next record's authenticated plaintext (compressed bytes), None after the final record."""
        if self._final:
            return None
        head = self._handle.read(RECORD_HEAD.size)
        if len(head) < RECORD_HEAD.size:
            raise CertfleetError(f"{self.source}: truncated archive (ends after chunk {self._index - 1}, before its final chunk)")
        nonce, flags, length = RECORD_HEAD.unpack(head)
        if flags not in (FLAG_MORE, FLAG_FINAL):
            raise CertfleetError(f"{self.source}: chunk {self._index} is damaged or altered (flags {flags})")
        if not TAG_BYTES <= length <= self.header.chunk_size + TAG_BYTES:
            raise CertfleetError(f"{self.source}: chunk {self._index} is damaged or altered (length {length} out of range)")
        sealed = self._handle.read(length)
        if len(sealed) < length:
            raise CertfleetError(f"{self.source}: truncated archive (chunk {self._index} is cut short)")
        try:
            plain = self._aead.decrypt(nonce, sealed, _associated_data(self._digest, self._index, flags))
        except InvalidTag:
            raise CertfleetError(f"{self.source}: chunk {self._index} fails authentication: the archive was altered, damaged, "
                                 f"reordered or truncated") from None
        self._index += 1
        self._final = flags == FLAG_FINAL
        return plain

    def _inflate(self, data: bytes, room: int) -> bytes:
        try:
            # max_length bounds what one call may produce: a small record cannot expand into gigabytes at once.
            return self._inflater.decompress(data, room)
        except zlib.error:
            raise CertfleetError(f"{self.source}: the archive's content is not a valid compressed stream (damaged)") from None

    def _more(self, room: int) -> bool:
        """Append up to about ``room`` more plaintext bytes to the buffer; False when the content has ended."""
        room = max(room, READ_BLOCK)
        if self._inflater.unconsumed_tail:
            produced = self._inflate(self._inflater.unconsumed_tail, room)
        elif self._inflater.eof:
            return False
        else:
            compressed = self._next_chunk()
            if compressed is None:
                return False
            produced = self._inflate(compressed, room)
        if self._inflater.unused_data:
            raise CertfleetError(f"{self.source}: data after the end of the archive's compressed content (altered)")
        self._buffer = self._buffer[self._offset:] + produced
        self._offset = 0
        return True

    def read(self, size: int) -> bytes:
        """Exactly ``size`` authenticated bytes, or an error when the plaintext ends before."""
        while len(self._buffer) - self._offset < size:
            if not self._more(size - (len(self._buffer) - self._offset)):
                raise CertfleetError(f"{self.source}: the archive's content ends early (its manifest lists more bytes than it holds)")
        data = self._buffer[self._offset:self._offset + size]
        self._offset += size
        return data

    def finish(self) -> None:
        """The final record was read, the plaintext is used up and no byte follows the final record."""
        while self._more(READ_BLOCK):
            if len(self._buffer) - self._offset:
                break
        if len(self._buffer) - self._offset:
            raise CertfleetError(f"{self.source}: the archive holds more content than its manifest lists (altered)")
        if not self._final or not self._inflater.eof:
            raise CertfleetError(f"{self.source}: the archive's content ends early (altered or truncated)")
        if self._handle.read(1):
            raise CertfleetError(f"{self.source}: data after the archive's final chunk (altered or two archives joined)")


# --------------------------------------------------------------------------------------------
# manifest


def check_entry_path(path, *, source: str) -> str:
    """A manifest path that stays inside the target: relative POSIX, no ``..``, ``.``, empty or odd components."""
    if path == ".":
        return path
    if not isinstance(path, str) or not path or len(path) > MAX_PATH_LENGTH:
        raise CertfleetError(f"{source}: manifest path {str(path)[:80]!r} is empty or longer than {MAX_PATH_LENGTH} characters")
    if path.startswith("/") or UNSAFE_CHARACTERS.search(path):
        raise CertfleetError(f"{source}: manifest path {path!r} is absolute or holds a backslash or control character "
                             f"(it would leave the target)")
    parts = path.split("/")
    if len(parts) > MAX_DEPTH or any(part in ("", ".", "..") or len(part.encode("utf-8")) > 255 for part in parts):
        raise CertfleetError(f"{source}: manifest path {path!r} has an empty, '.' or '..' component or is too deep "
                             f"(it would leave the target)")
    return path


def parse_manifest(data: bytes, *, source: str, limits: Limits = Limits()) -> Manifest:
    """The manifest of an archive, every entry checked: a hostile one is refused before anything is written."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CertfleetError(f"{source}: the manifest is not valid JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise CertfleetError(f"{source}: the manifest is not a {FORMAT_NAME} manifest")
    if document.get("version") != FORMAT_VERSION:
        raise CertfleetError(f"{source}: manifest version {document.get('version')!r} is not supported")
    entries = document.get("entries")
    if not isinstance(entries, list) or not entries:
        raise CertfleetError(f"{source}: the manifest lists no entries")
    if len(entries) > limits.max_entries:
        raise CertfleetError(f"{source}: the manifest lists {len(entries)} entries (at most {limits.max_entries})")
    seen = {}
    total = 0
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise CertfleetError(f"{source}: manifest entry {number} is not an object")
        kind = entry.get("type")
        if kind not in ENTRY_KEYS:
            raise CertfleetError(f"{source}: manifest entry {number} ({str(entry.get('path'))[:80]!r}) has type {kind!r}; "
                                 f"only directories and regular files are restored (no symbolic links or devices)")
        if set(entry) != ENTRY_KEYS[kind]:
            raise CertfleetError(f"{source}: manifest entry {number} must have exactly {sorted(ENTRY_KEYS[kind])}")
        path = check_entry_path(entry["path"], source=source)
        if (number == 0) != (path == "."):
            raise CertfleetError(f"{source}: the manifest must list the store root '.' first, and only once")
        if kind != "dir" and path == ".":
            raise CertfleetError(f"{source}: the store root must be a directory")
        if path in seen:
            raise CertfleetError(f"{source}: manifest path {path!r} is listed twice")
        parent = path.rpartition("/")[0] or "."
        if path != "." and seen.get(parent) != "dir":
            raise CertfleetError(f"{source}: manifest path {path!r} comes before (or without) its directory {parent!r}")
        if not isinstance(entry["mode"], str) or not MODE_PATTERN.fullmatch(entry["mode"]):
            raise CertfleetError(f"{source}: manifest path {path!r} has mode {entry['mode']!r}; permissions 0000-0777 only "
                                 f"(no set-user-ID, set-group-ID or sticky bit)")
        if kind == "file":
            size = entry["size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise CertfleetError(f"{source}: manifest path {path!r} has size {size!r}")
            if size > limits.max_file_size:
                raise CertfleetError(f"{source}: manifest path {path!r} is {size} bytes, more than the {limits.max_file_size} "
                                     f"a store file may have")
            if not isinstance(entry["sha256"], str) or not SHA256_PATTERN.fullmatch(entry["sha256"]):
                raise CertfleetError(f"{source}: manifest path {path!r} has no valid SHA-256")
            total += size
            if total > limits.max_total_size:
                raise CertfleetError(f"{source}: the manifest lists more than {limits.max_total_size} bytes of files")
        seen[path] = kind
    selected = document.get("selected")
    definitions = cas = None
    if selected is not None:
        if not isinstance(selected, dict) or set(selected) != {"definitions", "cas"}:
            raise CertfleetError(f"{source}: the manifest's selection is malformed")
        definitions, cas = selected["definitions"], selected["cas"]
        if not all(isinstance(names, list) and all(isinstance(name, str) for name in names) for names in (definitions, cas)):
            raise CertfleetError(f"{source}: the manifest's selection must be lists of names")
        roots = layout.selection_roots(definitions=[_checked(name, source) for name in definitions],
                                       cas=[_checked(name, source) for name in cas])
        # A selection is restored into a live store root by root, so nothing may lie outside those roots.
        allowed = {".", *layout.selection_parents()}
        for entry in entries:
            path = entry["path"]
            if path not in allowed and path not in roots and not any(path.startswith(root + "/") for root in roots):
                raise CertfleetError(f"{source}: manifest path {path!r} is outside the archive's selected definitions and CAs")
    created = document.get("created")
    return Manifest(entries=entries, definitions=definitions, cas=cas, created=created if isinstance(created, str) else "")


def _checked(name, source: str) -> str:
    return layout.check_name(name, what=f"{source}: selected name")


def _read_regular(path: str, *, limit: int, source: str) -> bytes:
    """A store file's bytes: no link followed, a regular file only, at most ``limit`` bytes."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise CertfleetError(f"{source}: cannot read '{path}' ({exc.strerror})") from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise CertfleetError(f"{source}: '{path}' is not a regular file")
        if info.st_size > limit:
            raise CertfleetError(f"{source}: '{path}' is larger than {limit} bytes")
        # read(n) allocates n bytes first: ask for the size stat gave (plus one, to see a file still growing).
        data = handle.read(info.st_size + 1)
        if len(data) > info.st_size:
            data += handle.read(limit + 1 - len(data))
    if len(data) > limit:
        raise CertfleetError(f"{source}: '{path}' is larger than {limit} bytes")
    return data


def _mode(info: os.stat_result) -> str:
    return format(stat.S_IMODE(info.st_mode) & 0o777, "04o")


def tree_manifest(root: str, *, definitions=None, cas=None, max_file_size: int = MAX_FILE_SIZE, source: str = "store_path",
                  now: datetime.datetime | None = None) -> Manifest:
    """The manifest of a store (or of the chosen definitions and CAs), enumerated through ``layout``.

    A symbolic link, device, socket or FIFO inside the store is refused naming it: a backup holds
    directories and regular files only, and restore never makes anything else.
    """
    entries = []
    for relative, info in layout.store_entries(root, definitions=definitions, cas=cas):
        full = root if relative == "." else os.path.join(root, *relative.split("/"))
        if stat.S_ISDIR(info.st_mode):
            entries.append({"path": relative, "type": "dir", "mode": _mode(info)})
        elif stat.S_ISREG(info.st_mode):
            data = _read_regular(full, limit=max_file_size, source=source)
            entries.append({"path": relative, "type": "file", "mode": _mode(info), "size": len(data),
                            "sha256": hashlib.sha256(data).hexdigest()})
        elif stat.S_ISLNK(info.st_mode):
            raise CertfleetError(f"{source}: '{full}' is a symbolic link; the store holds none and a backup never follows one "
                                 f"(replace it with the file or remove it)")
        else:
            raise CertfleetError(f"{source}: '{full}' is not a regular file or directory")
        if stat.S_IMODE(info.st_mode) & ~0o777:
            raise CertfleetError(f"{source}: '{full}' has a set-user-ID, set-group-ID or sticky bit; the store never sets one")
    chosen = bool(definitions) or bool(cas)
    return Manifest(entries=entries, definitions=sorted(set(definitions or [])) if chosen else None,
                    cas=sorted(set(cas or [])) if chosen else None, created=iso(now or utc_now()))


# --------------------------------------------------------------------------------------------
# writing an archive


def write_payload(handle, passphrase, manifest_bytes: bytes, contents, *, kdf: KdfParams | None = None,
                  chunk_size: int = CHUNK_SIZE) -> int:
    """Encrypt a manifest and the files' bytes (an iterable, manifest order) into ``handle``; returns the size."""
    writer = ArchiveWriter(handle, passphrase, kdf=kdf, chunk_size=chunk_size)
    deflater = zlib.compressobj(COMPRESSION_LEVEL)
    writer.write(deflater.compress(struct.pack(">Q", len(manifest_bytes))))
    writer.write(deflater.compress(manifest_bytes))
    for data in contents:
        writer.write(deflater.compress(data))
    writer.write(deflater.flush())
    writer.close()
    return writer.size


def _contents(root: str, manifest: Manifest, *, max_file_size: int, source: str):
    """Each file's bytes again, checked against the manifest: a store that changes during the backup fails it."""
    for entry in manifest.files:
        data = _read_regular(os.path.join(root, *entry["path"].split("/")), limit=max_file_size, source=source)
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise CertfleetError(f"{source}: '{entry['path']}' changed while the backup was being written; run it again")
        yield data


def _inside(path: str, directory: str) -> bool:
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def archive_name(now: datetime.datetime, *, prefix: str = DEFAULT_PREFIX, existing=()) -> str:
    """``<prefix>-YYYYMMDDTHHMMSSZ.cfbackup`` (UTC), with ``-N`` when that second already has one."""
    if not ARCHIVE_NAME.fullmatch(f"{prefix}-20000101T000000Z{ARCHIVE_SUFFIX}"):
        raise CertfleetError(f"prefix {prefix!r} must be 1-64 letters, digits, '.', '_' or '-'")
    stamp = now.astimezone(datetime.timezone.utc).strftime(STAMP_FORMAT)
    taken = set(existing)
    name = f"{prefix}-{stamp}{ARCHIVE_SUFFIX}"
    number = 1
    while name in taken:
        name = f"{prefix}-{stamp}-{number}{ARCHIVE_SUFFIX}"
        number += 1
    return name


def list_archives(directory: str, *, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Names of this prefix's archives in ``directory``, oldest first (by the UTC time in the name)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CertfleetError(f"directory: cannot list '{directory}' ({exc.strerror})") from None
    found = []
    for name in names:
        match = ARCHIVE_NAME.fullmatch(name)
        if match and match.group("prefix") == prefix and os.path.isfile(os.path.join(directory, name)) \
                and not os.path.islink(os.path.join(directory, name)):
            found.append(((match.group("stamp"), int(match.group("n") or 0)), name))
    return [name for _key, name in sorted(found)]


def rotation(names: list[str], keep: int) -> list[str]:
    """Which archives (names oldest first) to remove so that the newest ``keep`` remain; 0 keeps all."""
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 0:
        raise CertfleetError(f"keep must be a whole number of archives (0 keeps all), not {keep!r}")
    return list(names[:-keep]) if keep and len(names) > keep else []


def read_manifest(path: str, passphrase, *, limits: Limits = Limits(), keys: tuple | None = None) -> tuple[Manifest, tuple]:
    """Authenticate a whole archive and check every file's SHA-256 without writing anything;
    returns its manifest and the derived keys (reused by ``restore_store`` for the second pass)."""
    source = path
    try:
        handle = open(path, "rb")  # pylint: disable=consider-using-with
    except OSError as exc:
        raise CertfleetError(f"src: cannot read archive '{path}' ({exc.strerror})") from None
    with handle:
        reader = ArchiveReader(handle, passphrase, source=source, keys=keys)
        manifest = _read_manifest_part(reader, limits=limits)
        for entry in manifest.files:
            _check_content(reader, entry, source=source)
        reader.finish()
    return manifest, reader.keys


def _read_manifest_bytes(reader: ArchiveReader, *, limits: Limits) -> bytes:
    (length,) = struct.unpack(">Q", reader.read(8))
    if not 2 <= length <= limits.max_manifest_bytes:
        raise CertfleetError(f"{reader.source}: manifest length {length} out of range (at most {limits.max_manifest_bytes} bytes)")
    return reader.read(length)


def _read_manifest_part(reader: ArchiveReader, *, limits: Limits) -> Manifest:
    raw = _read_manifest_bytes(reader, limits=limits)
    manifest = parse_manifest(raw, source=reader.source, limits=limits)
    manifest.raw_sha256 = hashlib.sha256(raw).hexdigest()
    return manifest


def _check_content(reader: ArchiveReader, entry: dict, *, source: str, sink=None) -> None:
    digest = hashlib.sha256()
    remaining = entry["size"]
    while remaining:
        block = reader.read(min(READ_BLOCK, remaining))
        digest.update(block)
        if sink is not None:
            sink(block)
        remaining -= len(block)
    if digest.hexdigest() != entry["sha256"]:
        raise CertfleetError(f"{source}: '{entry['path']}' does not match its SHA-256 in the manifest")


def backup_store(store_path: str, passphrase, *, path: str | None = None, directory: str | None = None,
                 prefix: str = DEFAULT_PREFIX, keep: int = 0, definitions=None, cas=None, skip_unchanged: bool = True,
                 check_mode: bool = False, kdf: KdfParams | None = None, chunk_size: int = CHUNK_SIZE,
                 max_file_size: int = MAX_FILE_SIZE, now: datetime.datetime | None = None) -> BackupResult:
    """Write one encrypted archive of the store (or of chosen definitions and CAs) to ``path``, or to a new
    UTC-named file in ``directory`` with the oldest beyond ``keep`` removed afterwards.

    With ``skip_unchanged``, nothing is written when the newest archive (``path`` itself, or the newest in
    ``directory``) opens with the passphrase and holds exactly the same entries; it is authenticated whole
    first. The archive is written to a 0600 temporary file beside it and renamed when complete.
    """
    secret = _secret(passphrase)
    if (path is None) == (directory is None):
        raise CertfleetError("give exactly one of path (an archive file) or directory (UTC-named archives with rotation)")
    if path is not None and keep:
        raise CertfleetError("keep rotates the archives of a directory; it needs directory, not path")
    rotation(["x"], keep)  # validates keep
    if kdf is not None:
        check_kdf(KdfParams(n=kdf.n, r=kdf.r, p=kdf.p, salt=kdf.salt or bytes(SALT_BYTES)), source="backup")
    now = now or utc_now()
    target_dir = os.path.dirname(os.path.abspath(path)) if path is not None else os.path.abspath(directory)
    if _inside(target_dir, store_path):
        raise CertfleetError(f"the archive's directory '{target_dir}' is inside the store '{store_path}'; keep backups "
                             f"outside it (each backup would hold the ones before)")
    manifest = tree_manifest(store_path, definitions=definitions, cas=cas, max_file_size=max_file_size, now=now)
    existing = list_archives(target_dir, prefix=prefix) if directory is not None else []
    newest = (os.path.join(target_dir, existing[-1]) if existing else None) if directory is not None else \
        (path if os.path.isfile(path) else None)
    if skip_unchanged and newest is not None:
        same, why = _same_content(newest, secret, manifest)
        if same:
            return BackupResult(manifest=manifest, path=newest, written=False, archive_size=os.path.getsize(newest),
                                reason=f"the newest archive '{newest}' already holds this content ({why})")
    final = os.path.abspath(path) if path is not None else os.path.join(target_dir, archive_name(now, prefix=prefix, existing=existing))
    removed = [os.path.join(target_dir, name) for name in rotation(existing + [os.path.basename(final)], keep)] \
        if directory is not None else []
    if check_mode:
        return BackupResult(manifest=manifest, path=final, written=True, reason="check mode: nothing written", removed=removed)
    if directory is not None and not os.path.isdir(target_dir):
        try:
            os.makedirs(target_dir, mode=0o700)
        except OSError as exc:
            raise CertfleetError(f"directory: cannot create '{target_dir}' ({exc.strerror})") from None
    _files.check_writable_directory(final, option="path" if path is not None else "directory")
    size = _write_archive(final, secret, manifest, store_path=store_path, kdf=kdf, chunk_size=chunk_size,
                          max_file_size=max_file_size)
    for old in removed:
        try:
            os.unlink(old)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise CertfleetError(f"directory: the archive was written, but the old archive '{old}' cannot be removed "
                                 f"({exc.strerror})") from None
    return BackupResult(manifest=manifest, path=final, written=True, archive_size=size, removed=removed)


def _same_content(archive: str, passphrase: bytes, manifest: Manifest) -> tuple[bool, str]:
    try:
        previous, _keys = read_manifest(archive, passphrase)
    except CertfleetError as exc:
        return False, str(exc)
    same = previous.entries == manifest.entries and previous.definitions == manifest.definitions and previous.cas == manifest.cas
    return same, f"content SHA-256 {manifest.content_sha256}"


def _write_archive(final: str, passphrase: bytes, manifest: Manifest, *, store_path: str, kdf, chunk_size: int,
                   max_file_size: int) -> int:
    directory = os.path.dirname(final)
    try:
        descriptor, temp = tempfile.mkstemp(prefix=f".{os.path.basename(final)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise CertfleetError(f"cannot write to directory '{directory}' ({exc.strerror})") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            size = write_payload(handle, passphrase, manifest.to_json(),
                                 _contents(store_path, manifest, max_file_size=max_file_size, source="store_path"),
                                 kdf=kdf, chunk_size=chunk_size)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, final)
    except OSError as exc:
        _unlink(temp)
        raise CertfleetError(f"cannot write archive '{final}' ({exc.strerror})") from None
    except BaseException:
        _unlink(temp)
        raise
    return size


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# --------------------------------------------------------------------------------------------
# restore


@dataclass
class RestoreResult:
    """What ``restore_store`` did (or, in check mode, would do)."""

    manifest: Manifest
    archive: str
    changed: bool
    replaced: str | None = None
    reason: str = ""


def resolve_archive(src: str, *, prefix: str = DEFAULT_PREFIX) -> str:
    """``src`` itself when it is a file, the newest archive of ``prefix`` when it is a directory."""
    if os.path.isdir(src):
        names = list_archives(src, prefix=prefix)
        if not names:
            raise CertfleetError(f"src: no {prefix}-<time>{ARCHIVE_SUFFIX} archive in '{src}'")
        return os.path.join(src, names[-1])
    if not os.path.isfile(src):
        raise CertfleetError(f"src: archive '{src}' does not exist")
    return src


def _target_listing(target: str) -> list[str] | None:
    """None when the target does not exist; else its entries (an empty list for an empty directory)."""
    if not os.path.exists(target):
        return None
    if not os.path.isdir(target):
        raise CertfleetError(f"store_path: '{target}' exists and is not a directory")
    try:
        return sorted(os.listdir(target))
    except OSError as exc:
        raise CertfleetError(f"store_path: cannot list '{target}' ({exc.strerror})") from None


def restore_store(src: str, store_path: str, passphrase, *, force: bool = False, check_mode: bool = False,
                  prefix: str = DEFAULT_PREFIX, limits: Limits = Limits(),
                  now: datetime.datetime | None = None) -> RestoreResult:
    """Restore an archive into ``store_path``: empty or missing, or (``force``) replacing what is there,
    which is kept aside as ``<store_path>.replaced-<UTC time>``. An archive of selected definitions and
    CAs replaces only their directories in a non-empty store (those are kept aside, under the same name).

    The whole archive is authenticated and every file's SHA-256 checked first (nothing written); then it
    is extracted into a private directory beside the target, checked again as it is written, the modes
    set, and only then renamed into place. Any failure removes that directory: the target is untouched.
    A target that already holds exactly the archive's entries is left alone (not changed).
    """
    secret = _secret(passphrase)
    archive = resolve_archive(src, prefix=prefix)
    if os.path.islink(store_path) and not os.path.exists(store_path):
        raise CertfleetError(f"store_path: '{store_path}' is a dangling symbolic link")
    # A store kept on another volume through a link is restored where the link points.
    target = os.path.realpath(store_path)
    listing = _target_listing(target)
    manifest, keys = read_manifest(archive, secret, limits=limits)
    roots = manifest.roots
    if listing:
        if _already_holds(target, manifest, limits=limits):
            return RestoreResult(manifest=manifest, archive=archive, changed=False,
                                 reason=f"'{store_path}' already holds exactly the archive's content")
        if not force:
            shown = ", ".join(listing[:5]) + (", ..." if len(listing) > 5 else "")
            what = (f"set force=true to replace the directories of {', '.join(roots)} (the current ones are kept aside in "
                    f"{os.path.basename(target)}.replaced-<time>)" if roots is not None else
                    f"set force=true to replace it (its content is kept aside as {os.path.basename(target)}.replaced-<time>)")
            raise CertfleetError(f"store_path: '{store_path}' is not empty ({len(listing)} entries: {shown}); restore into an "
                                 f"empty or new directory, or {what}")
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise CertfleetError(f"store_path: the parent directory '{parent}' does not exist")
    replaced = f"{target}.replaced-{(now or utc_now()).strftime(STAMP_FORMAT)}" if listing else None
    merge = bool(listing) and roots is not None
    if merge:
        _check_merge_parents(target, roots)
        if not any(os.path.lexists(os.path.join(target, *root.split("/"))) for root in roots):
            replaced = None
    if check_mode:
        return RestoreResult(manifest=manifest, archive=archive, changed=True, replaced=replaced,
                             reason="check mode: nothing written")
    if replaced and os.path.lexists(replaced):
        raise CertfleetError(f"store_path: '{replaced}' already exists; move it away and run again")
    try:
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.restore-", dir=parent)
    except OSError as exc:
        raise CertfleetError(f"store_path: cannot create a directory in '{parent}' ({exc.strerror})") from None
    try:
        _extract(archive, secret, staging, manifest=manifest, keys=keys, limits=limits)
        if merge:
            _merge_into_place(staging, target, roots=roots, replaced=replaced, manifest=manifest)
        else:
            _move_into_place(staging, target, replaced=replaced)
    finally:
        if os.path.lexists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(manifest=manifest, archive=archive, changed=True, replaced=replaced)


def _already_holds(target: str, manifest: Manifest, *, limits: Limits) -> bool:
    """The target holds exactly the archive's entries (the whole store, or the selected directories)."""
    roots = manifest.roots
    try:
        current = tree_manifest(target, definitions=manifest.definitions, cas=manifest.cas,
                                max_file_size=limits.max_file_size).entries
    except CertfleetError:
        return False
    if roots is None:
        return current == manifest.entries

    def inside(entries):
        return [entry for entry in entries if any(entry["path"] == root or entry["path"].startswith(root + "/") for root in roots)]

    return inside(current) == inside(manifest.entries)


def _check_merge_parents(target: str, roots: list) -> None:
    for folder in sorted({root.split("/")[0] for root in roots}):
        path = os.path.join(target, folder)
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            raise CertfleetError(f"store_path: '{path}' is not a directory (or is a symbolic link); nothing restored")


def _merge_into_place(staging: str, target: str, *, roots: list, replaced: str | None, manifest: Manifest) -> None:
    """Rename each selected directory from the staging directory into the live store, the current one kept aside
    under ``replaced``; on a failure the ones already swapped are put back."""
    modes = {entry["path"]: int(entry["mode"], 8) for entry in manifest.entries if entry["type"] == "dir"}
    done = []
    try:
        for folder in sorted({root.split("/")[0] for root in roots}):
            if not os.path.lexists(os.path.join(target, folder)):
                os.mkdir(os.path.join(target, folder), modes.get(folder, 0o750))
                os.chmod(os.path.join(target, folder), modes.get(folder, 0o750))
        for root in roots:
            source = os.path.join(staging, *root.split("/"))
            destination = os.path.join(target, *root.split("/"))
            aside = os.path.join(replaced, *root.split("/")) if replaced else None
            had = os.path.lexists(destination)
            if had:
                os.makedirs(os.path.dirname(aside), mode=0o700, exist_ok=True)
                os.rename(destination, aside)
            try:
                os.rename(source, destination)
            except OSError:
                if had:
                    os.rename(aside, destination)
                raise
            done.append((source, destination, aside if had else None))
    except OSError as exc:
        for source, destination, aside in reversed(done):
            os.rename(destination, source)
            if aside:
                os.rename(aside, destination)
        if replaced and not any(files for _directory, _dirs, files in os.walk(replaced)):
            shutil.rmtree(replaced, ignore_errors=True)
        raise CertfleetError(f"store_path: cannot move the restored directories into '{target}' ({exc.strerror}); "
                             f"the store is as it was") from None


def _extract(archive: str, passphrase: bytes, staging: str, *, manifest: Manifest, keys: tuple, limits: Limits) -> None:
    try:
        handle = open(archive, "rb")  # pylint: disable=consider-using-with
    except OSError as exc:
        raise CertfleetError(f"src: cannot read archive '{archive}' ({exc.strerror})") from None
    with handle:
        reader = ArchiveReader(handle, passphrase, source=archive, keys=keys)
        # The same manifest bytes as the first pass, which checked them entry by entry.
        if hashlib.sha256(_read_manifest_bytes(reader, limits=limits)).hexdigest() != manifest.raw_sha256:
            raise CertfleetError(f"{archive}: the archive changed while it was being restored")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        for entry in manifest.entries[1:]:
            full = os.path.join(staging, *entry["path"].split("/"))
            if entry["type"] == "dir":
                os.mkdir(full, 0o700)
                continue
            descriptor = os.open(full, flags, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                _check_content(reader, entry, source=archive, sink=out.write)
                os.fchmod(out.fileno(), int(entry["mode"], 8))
        reader.finish()
    # Directory modes last, deepest first: a 0500 directory would refuse the files written into it.
    for entry in reversed(manifest.entries):
        if entry["type"] == "dir":
            full = staging if entry["path"] == "." else os.path.join(staging, *entry["path"].split("/"))
            os.chmod(full, int(entry["mode"], 8))
    # One flush of everything written before the rename makes it visible (an fsync per file costs
    # seconds on a store of a thousand definitions and gives nothing more here).
    os.sync()


def _move_into_place(staging: str, target: str, *, replaced: str | None) -> None:
    try:
        if replaced:
            os.rename(target, replaced)
            try:
                os.rename(staging, target)
            except OSError:
                os.rename(replaced, target)
                raise
        else:
            # rename(2) replaces an empty directory atomically; a missing target is simply created.
            os.rename(staging, target)
    except OSError as exc:
        raise CertfleetError(f"store_path: cannot move the restored store into '{target}' ({exc.strerror})") from None


# --------------------------------------------------------------------------------------------
# PKCS#12 exports


PKCS12_SUFFIX = ".pfx"


def pkcs12_exports(store_path: str, names, *, store_passphrase, passphrase, encryption: str = "modern",
                   directory: str, check_mode: bool = False) -> list[dict]:
    """``<directory>/<definition>.pfx`` (0600) for each named definition: key, certificate and chain from
    ``load_current``, encrypted with ``passphrase`` (``modern`` AES-256-CBC / PBKDF2 / SHA-256 MAC, or
    ``compatibility`` 3DES / SHA-1 for Windows Server 2016 and older). A file that already opens with the
    passphrase and holds the same key, chain and encryption is left alone. Every file is built before any
    is written."""
    _secret(passphrase, "pkcs12_passphrase")
    if encryption not in _chain.PKCS12_ENCRYPTIONS:
        raise CertfleetError(f"pkcs12_encryption must be one of {', '.join(_chain.PKCS12_ENCRYPTIONS)}, not {encryption!r}")
    if _inside(directory, store_path):
        raise CertfleetError(f"pkcs12_path '{directory}' is inside the store '{store_path}'; PKCS#12 exports go elsewhere")
    planned = []
    for name in sorted(set(names)):
        layout.check_name(name, what="definition name")
        current = load_current(store_path, name, store_passphrase)
        certificates = [current.leaf] + current.intermediates
        path = os.path.join(directory, name + PKCS12_SUFFIX)
        existing = _files.read_file(path, option="pkcs12_path")
        if existing is not None and _chain.pkcs12_matches(existing, passphrase=passphrase, private_key=current.private_key,
                                                          certificates=certificates, encryption=encryption, friendly_name=name):
            planned.append({"name": name, "path": path, "changed": False, "data": None})
            continue
        data = _chain.pkcs12_bytes(current.private_key, certificates, passphrase=passphrase, encryption=encryption,
                                   friendly_name=name)
        planned.append({"name": name, "path": path, "changed": True, "data": data})
    if not check_mode and any(item["changed"] for item in planned):
        if not os.path.isdir(directory):
            try:
                os.makedirs(directory, mode=0o700)
            except OSError as exc:
                raise CertfleetError(f"pkcs12_path: cannot create '{directory}' ({exc.strerror})") from None
        for item in planned:
            if item["changed"]:
                _files.write_file_atomic(item["path"], item["data"], option="pkcs12_path")
    return [{"name": item["name"], "path": item["path"], "changed": item["changed"], "encryption": encryption}
            for item in planned]


# --------------------------------------------------------------------------------------------
# what the store_backup and store_restore modules run


def run_backup(params: dict, *, check_mode: bool) -> dict:
    """store_backup: the archive (unless unchanged), rotation, then the PKCS#12 exports; the module's result."""
    if params.get("pkcs12"):
        missing = [option for option in ("pkcs12_path", "pkcs12_passphrase", "store_passphrase") if not params.get(option)]
        if missing:
            raise CertfleetError(f"pkcs12 needs {', '.join(missing)}")
    outcome = backup_store(params["store_path"], params["passphrase"], path=params.get("path"), directory=params.get("directory"),
                           prefix=params.get("prefix") or DEFAULT_PREFIX, keep=params.get("keep") or 0,
                           definitions=params.get("definitions"), cas=params.get("cas"),
                           skip_unchanged=params.get("skip_unchanged", True), check_mode=check_mode)
    exports = []
    if params.get("pkcs12"):
        exports = pkcs12_exports(params["store_path"], params["pkcs12"], store_passphrase=params["store_passphrase"],
                                 passphrase=params["pkcs12_passphrase"], encryption=params.get("pkcs12_encryption") or "modern",
                                 directory=params["pkcs12_path"], check_mode=check_mode)
    result = dict(outcome.manifest.summary(), archive=outcome.path, written=outcome.written, archive_size=outcome.archive_size,
                  removed=outcome.removed, pkcs12=exports)
    result["changed"] = outcome.written or bool(outcome.removed) or any(item["changed"] for item in exports)
    result["msg"] = outcome.reason or (f"{'would write' if check_mode else 'wrote'} {outcome.path}: {result['files']} files, "
                                       f"{result['size']} bytes")
    return result


def run_restore(params: dict, *, check_mode: bool) -> dict:
    """store_restore: the module's result."""
    outcome = restore_store(params["src"], params["store_path"], params["passphrase"], force=params.get("force", False),
                            check_mode=check_mode, prefix=params.get("prefix") or DEFAULT_PREFIX)
    result = dict(outcome.manifest.summary(), archive=outcome.archive, replaced=outcome.replaced, changed=outcome.changed,
                  created=outcome.manifest.created)
    result["msg"] = outcome.reason or (f"{'would restore' if check_mode else 'restored'} {result['files']} files from "
                                       f"{outcome.archive} into {params['store_path']}")
    return result
