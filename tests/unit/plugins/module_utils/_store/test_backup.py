# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encrypted store backup and restore: a real store (private CA issuance) round trip byte for byte, and every
damage or hostile archive refused with nothing written."""

from __future__ import annotations

import datetime
import io
import json
import os
import shutil
import stat
import struct
import subprocess

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import issue as _issue
from ansible_collections.certfleet.tls.plugins.module_utils._store import backup as _backup
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import load_current

STORE_PASS = "Store-Backup-Unit-1"
BACKUP_PASS = "Backup-Passphrase-Unit-2"
# Fast scrypt for tests only (the default is N=2^17); the reader's lower bound is 2^10.
FAST = _backup.KdfParams(n=2 ** 10, r=8, p=1)
SMALL_CHUNK = 512
DEFAULTS = {"country_name": "JP", "state_or_province_name": "Tokyo", "locality_name": "Minato-ku", "organization_name": "Example Co.,Ltd."}
DEFINITIONS = [
    {"name": "portal", "common_name": "portal.example.intra", "key": {"type": "ECC"},
     "issuer": {"provider": "private_ca", "ca": "intranet", "profile": "private"}},
    {"name": "api", "common_name": "api.example.intra", "key": {"type": "ECC"},
     "issuer": {"provider": "private_ca", "ca": "intranet", "profile": "private"}},
    {"name": "www", "common_name": "www.example.co.jp", "issuer": {"provider": "manual", "profile": "cybertrust"}},
]


def make_store(path):
    run_request(store_path=str(path), definitions=DEFINITIONS, passphrase=STORE_PASS, defaults=DEFAULTS)
    _ca.run_private_ca(store_path=str(path), name="intranet", passphrase=STORE_PASS, kind="intermediate",
                       key_spec={"type": "ECC"}, settings_options={"allowed_domains": ["example.intra"]})
    _issue.run_issue(store_path=str(path), definitions=DEFINITIONS, defaults=DEFAULTS, ca_passphrase=STORE_PASS)
    # An odd mode and an empty directory must survive too.
    (path / "certs" / "www" / "incoming").mkdir(mode=0o750, exist_ok=True)
    os.chmod(path / "certs" / "www" / "csr.pem", 0o640)
    return path


def tree(root) -> dict:
    """Every entry below root: relative path -> (type, mode, bytes), links noted as such."""
    result = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(directory, name)
            info = os.lstat(full)
            relative = os.path.relpath(full, root)
            if stat.S_ISLNK(info.st_mode):
                result[relative] = ("link", os.readlink(full))
            elif stat.S_ISDIR(info.st_mode):
                result[relative] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                with open(full, "rb") as handle:
                    result[relative] = ("file", stat.S_IMODE(info.st_mode), handle.read())
    result["."] = ("dir", stat.S_IMODE(os.stat(root).st_mode))
    return result


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("backup_store") / "cert_store")


@pytest.fixture(scope="module")
def archive(store, tmp_path_factory):
    path = tmp_path_factory.mktemp("archives") / "store.cfbackup"
    _backup.backup_store(str(store), BACKUP_PASS, path=str(path), kdf=FAST, chunk_size=SMALL_CHUNK)
    return path.read_bytes()


def restore(data: bytes, tmp_path, **kwargs):
    src = tmp_path / "in.cfbackup"
    src.write_bytes(data)
    target = tmp_path / "restored"
    return _backup.restore_store(str(src), str(target), kwargs.pop("passphrase", BACKUP_PASS), **kwargs), target


def assert_nothing_written(tmp_path):
    """Only the archive the test wrote: no target, no staging directory left behind."""
    assert sorted(os.listdir(tmp_path)) == ["in.cfbackup"]


def test_round_trip_reproduces_the_store_byte_for_byte(store, archive, tmp_path):
    result, target = restore(archive, tmp_path)
    assert result.changed and result.replaced is None
    assert tree(target) == tree(store)
    assert tree(target)["certs/portal/key.pem"][1] == 0o600
    assert tree(target)["certs/www/csr.pem"][1] == 0o640
    assert load_current(str(target), "portal", STORE_PASS).leaf == load_current(str(store), "portal", STORE_PASS).leaf
    assert sorted(result.manifest.summary()["definitions"]) == ["api", "portal", "www"]
    assert result.manifest.summary()["cas"] == ["intranet"]
    assert sorted(os.listdir(tmp_path)) == ["in.cfbackup", "restored"], "no staging directory left"


def test_archive_is_encrypted_and_holds_no_plaintext(store, archive):
    key = (store / "certs" / "portal" / "key.pem").read_bytes()
    cert = (store / "certs" / "portal" / "cert.pem").read_bytes()
    assert archive.startswith(_backup.MAGIC)
    for secret in (key[40:80], cert[40:80], b"portal.example.intra", b"state.json", b"manifest"):
        assert secret not in archive


def test_restore_again_is_not_changed_and_into_non_empty_needs_force(store, archive, tmp_path):
    _result, target = restore(archive, tmp_path)
    again, _target = restore(archive, tmp_path)
    assert not again.changed, "the target already holds the archive's content"
    (target / "certs" / "portal" / "cert.pem").write_bytes(b"changed\n")
    before = tree(target)
    with pytest.raises(CertfleetError, match=r"is not empty \(2 entries: ca, certs\).*force=true"):
        restore(archive, tmp_path)
    assert tree(target) == before
    moment = datetime.datetime(2026, 12, 6, 12, 0, 0, tzinfo=datetime.timezone.utc)
    forced, _target = restore(archive, tmp_path, force=True, now=moment)
    assert forced.changed and forced.replaced == str(target) + ".replaced-20261206T120000Z"
    assert tree(target) == tree(store)
    assert (tmp_path / "restored.replaced-20261206T120000Z" / "certs" / "portal" / "cert.pem").read_bytes() == b"changed\n"


def test_restore_into_an_empty_directory(store, archive, tmp_path):
    (tmp_path / "restored").mkdir()
    result, target = restore(archive, tmp_path)
    assert result.changed and tree(target) == tree(store)


def test_check_mode_writes_nothing(archive, tmp_path):
    result, _target = restore(archive, tmp_path, check_mode=True)
    assert result.changed
    assert_nothing_written(tmp_path)


def test_wrong_passphrase(archive, tmp_path):
    with pytest.raises(CertfleetError, match="wrong passphrase"):
        restore(archive, tmp_path, passphrase="not-the-passphrase")
    assert_nothing_written(tmp_path)


# ---------------------------------------------------------------------------------------------
# tampering: every region of the archive


def _regions(data: bytes) -> dict:
    """Offsets of one byte in each region of an archive (header, salt, check, first and last record)."""
    (length,) = struct.unpack(">H", data[8:10])
    header = data[10:10 + length]
    first = 10 + length
    salt = header.index(b'"salt":"') + len(b'"salt":"') + 10
    check = header.index(b'"check":"') + len(b'"check":"') + 5
    records = []
    offset = first
    while offset < len(data):
        _nonce, _flags, size = _backup.RECORD_HEAD.unpack(data[offset:offset + _backup.RECORD_HEAD.size])
        records.append((offset, size))
        offset += _backup.RECORD_HEAD.size + size
    last_offset, last_size = records[-1]
    return {
        "magic": 2,
        "header length": 9,
        "header version": 10 + header.index(b'"version":') + len(b'"version":'),
        "kdf salt": 10 + salt,
        "check value": 10 + check,
        "first nonce": first + 3,
        "first flags": first + 12,
        "first length": first + 15,
        "first ciphertext": first + _backup.RECORD_HEAD.size + 5,
        "first tag": first + _backup.RECORD_HEAD.size + records[0][1] - 1,
        "middle ciphertext": records[len(records) // 2][0] + _backup.RECORD_HEAD.size + 7,
        "last nonce": last_offset,
        "last flags": last_offset + 12,
        "last ciphertext": last_offset + _backup.RECORD_HEAD.size,
        "last tag": last_offset + _backup.RECORD_HEAD.size + last_size - 1,
    }


REGION_ERRORS = {
    "magic": "wrong magic bytes",
    "header length": "header length|not valid JSON|truncated",
    "header version": "version|not valid JSON",
    "kdf salt": "wrong passphrase|not base64",
    "check value": "wrong passphrase|not base64",
    "first nonce": "chunk 0 fails authentication",
    "first flags": "chunk 0 (fails authentication|is damaged)",
    "first length": "chunk 0 is damaged|truncated|chunk 0 fails",
    "first ciphertext": "chunk 0 fails authentication",
    "first tag": "chunk 0 fails authentication",
    "middle ciphertext": r"chunk \d+ fails authentication",
    "last nonce": r"chunk \d+ fails authentication",
    "last flags": r"chunk \d+ (fails authentication|is damaged)",
    "last ciphertext": r"chunk \d+ fails authentication",
    "last tag": r"chunk \d+ fails authentication",
}


@pytest.mark.parametrize("region", list(REGION_ERRORS))
def test_a_flipped_byte_anywhere_is_refused(archive, tmp_path, region):
    offset = _regions(archive)[region]
    damaged = bytearray(archive)
    damaged[offset] ^= 0x01
    with pytest.raises(CertfleetError, match=REGION_ERRORS[region]):
        restore(bytes(damaged), tmp_path)
    assert_nothing_written(tmp_path)


def test_every_single_byte_flip_in_a_small_archive_is_refused(tmp_path):
    """Exhaustive over a small archive: no byte of it can change without the restore refusing."""
    store = tmp_path / "small"
    store.mkdir()
    (store / "a").write_bytes(b"x" * 600)
    buffer = io.BytesIO()
    manifest = _backup.tree_manifest(str(store))
    _backup.write_payload(buffer, BACKUP_PASS, manifest.to_json(), [b"x" * 600], kdf=FAST, chunk_size=SMALL_CHUNK)
    data = buffer.getvalue()
    keys = _backup.derive_keys(BACKUP_PASS, _backup.read_header(io.BytesIO(data), source="t").kdf)
    source = tmp_path / "a.cfbackup"
    accepted = []
    for offset in range(len(data)):
        damaged = bytearray(data)
        damaged[offset] ^= 0x80
        source.write_bytes(bytes(damaged))
        try:
            _backup.read_manifest(str(source), BACKUP_PASS, keys=keys)
        except CertfleetError:
            continue
        accepted.append(offset)
    # JSON whitespace is not in the header, so the only byte that may change is none at all.
    assert accepted == []


@pytest.mark.parametrize("cut", ["header", "mid header", "record head", "mid record", "before final", "last byte"])
def test_a_truncated_archive_is_refused(archive, tmp_path, cut):
    regions = _regions(archive)
    offsets = {
        "header": 6,
        "mid header": 30,
        "record head": regions["first nonce"] + 4,
        "mid record": regions["first ciphertext"] + 100,
        "before final": regions["last nonce"],
        "last byte": len(archive) - 1,
    }
    with pytest.raises(CertfleetError, match="truncated|not valid JSON"):
        restore(archive[:offsets[cut]], tmp_path)
    assert_nothing_written(tmp_path)


def _records(data: bytes):
    (length,) = struct.unpack(">H", data[8:10])
    head, offset, records = data[:10 + length], 10 + length, []
    while offset < len(data):
        size = _backup.RECORD_HEAD.unpack(data[offset:offset + _backup.RECORD_HEAD.size])[2]
        records.append(data[offset:offset + _backup.RECORD_HEAD.size + size])
        offset += _backup.RECORD_HEAD.size + size
    return head, records


@pytest.mark.parametrize("change", ["swap two chunks", "drop a middle chunk", "repeat a chunk", "drop the final chunk",
                                    "append a chunk", "append garbage", "join two archives"])
def test_reordered_dropped_or_added_chunks_are_refused(archive, tmp_path, change):
    head, records = _records(archive)
    assert len(records) > 4, "the small chunk size gives many records"
    if change == "swap two chunks":
        records[1], records[2] = records[2], records[1]
    elif change == "drop a middle chunk":
        del records[2]
    elif change == "repeat a chunk":
        records.insert(2, records[1])
    elif change == "drop the final chunk":
        del records[-1]
    elif change == "append a chunk":
        records.append(records[-2])
    elif change == "append garbage":
        records.append(b"\x00")
    else:
        records += _records(archive)[1]
    with pytest.raises(CertfleetError, match=r"fails authentication|truncated|after the archive's final chunk"):
        restore(head + b"".join(records), tmp_path)
    assert_nothing_written(tmp_path)


def test_chunks_of_another_archive_with_the_same_passphrase_are_refused(store, archive, tmp_path):
    """Another archive has its own salt, so its own key: a chunk spliced in from it fails authentication."""
    other = tmp_path / "other.cfbackup"
    _backup.backup_store(str(store), BACKUP_PASS, path=str(other), kdf=FAST, chunk_size=SMALL_CHUNK)
    head, records = _records(archive)
    _head, foreign = _records(other.read_bytes())
    records[1] = foreign[1]
    other.unlink()
    with pytest.raises(CertfleetError, match="chunk 1 fails authentication"):
        restore(head + b"".join(records), tmp_path)
    assert_nothing_written(tmp_path)


def _header_with(archive: bytes, **changes) -> bytes:
    (length,) = struct.unpack(">H", archive[8:10])
    document = json.loads(archive[10:10 + length])
    for key, value in changes.items():
        if key in ("n", "r", "p", "name"):
            document["kdf"][key] = value
        else:
            document[key] = value
    body = json.dumps(document).encode()
    return _backup.MAGIC + struct.pack(">H", len(body)) + body + archive[10 + length:]


@pytest.mark.parametrize("changes, message", [
    ({"version": 2}, r"archive format version 2 is not supported \(this collection reads version 1\)"),
    ({"version": 0}, "version 0 is not supported"),
    ({"n": 2 ** 30}, r"scrypt N=1073741824 must be a power of two from 2\^10 to 2\^20"),
    ({"n": 2 ** 20, "r": 16}, r"would need 2048 MiB"),
    ({"n": 1000}, "must be a power of two"),
    ({"n": 2 ** 5}, "must be a power of two from"),
    ({"p": 64}, "r=8, p=64 out of range"),
    ({"r": 0}, "out of range"),
    ({"n": "1024"}, "must be integers"),
    ({"name": "pbkdf2"}, "KDF must be scrypt"),
    ({"cipher": "AES-128-CBC"}, "cipher 'AES-128-CBC' is not supported"),
    ({"compression": "bzip2"}, "compression 'bzip2' is not supported"),
    ({"chunk_size": 2 ** 40}, "chunk size .* out of range"),
    ({"chunk_size": 1}, "chunk size 1 out of range"),
    ({"extra": 1}, "unexpected header fields"),
])
def test_hostile_header_parameters_are_refused_before_any_key_is_derived(archive, tmp_path, changes, message):
    with pytest.raises(CertfleetError, match=message):
        restore(_header_with(archive, **changes), tmp_path)
    assert_nothing_written(tmp_path)


def test_not_an_archive(tmp_path):
    for data, message in ((b"", "truncated"), (b"PK\x03\x04 a zip file", "wrong magic"),
                          (_backup.MAGIC + b"\xff\xff", "header length 65535 out of range")):
        with pytest.raises(CertfleetError, match=message):
            restore(data, tmp_path)
        assert_nothing_written(tmp_path)


# ---------------------------------------------------------------------------------------------
# hostile archives: well encrypted, with a manifest that would escape or overwhelm the target


def hostile(tmp_path, entries, contents, **manifest):
    document = {"format": _backup.FORMAT_NAME, "version": 1, "created": "", "selected": None, "entries": entries}
    document.update(manifest.pop("fields", {}))
    buffer = io.BytesIO()
    _backup.write_payload(buffer, BACKUP_PASS, json.dumps(document).encode(), contents, kdf=FAST)
    return buffer.getvalue()


def file_entry(path, data=b"x", **extra):
    import hashlib
    return dict({"path": path, "type": "file", "mode": "0600", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
                **extra)


ROOT = {"path": ".", "type": "dir", "mode": "0750"}
SUB = {"path": "certs", "type": "dir", "mode": "0750"}

HOSTILE = [
    ("parent escape", [ROOT, file_entry("../evil")], [b"x"], "would leave the target"),
    ("nested escape", [ROOT, SUB, file_entry("certs/../../evil")], [b"x"], "would leave the target"),
    ("absolute path", [ROOT, file_entry("/tmp/evil")], [b"x"], "absolute"),
    ("backslash", [ROOT, file_entry("..\\evil")], [b"x"], "backslash"),
    ("control character", [ROOT, file_entry("a\nb")], [b"x"], "control character"),
    ("dot component", [ROOT, file_entry("./a")], [b"x"], "'.' or '..' component"),
    ("empty component", [ROOT, SUB, file_entry("certs//a")], [b"x"], "empty"),
    ("symlink entry", [ROOT, {"path": "certs", "type": "symlink", "mode": "0777", "target": "/etc"}], [], "no symbolic links"),
    ("device entry", [ROOT, {"path": "dev", "type": "chardev", "mode": "0600"}], [], "only directories and regular files"),
    ("file before its directory", [ROOT, file_entry("certs/a"), SUB], [b"x"], "before \\(or without\\) its directory"),
    ("file inside a file", [ROOT, file_entry("a"), file_entry("a/b")], [b"x", b"x"], "before \\(or without\\) its directory"),
    ("duplicate path", [ROOT, file_entry("a"), file_entry("a")], [b"x", b"x"], "listed twice"),
    ("root not first", [SUB, ROOT], [], "root '.' first"),
    ("root as file", [file_entry(".")], [b"x"], "root '.' first|must be a directory"),
    ("setuid mode", [ROOT, file_entry("a", mode="4755")], [b"x"], "set-user-ID"),
    ("mode as number", [ROOT, file_entry("a", mode=493)], [b"x"], "permissions 0000-0777 only"),
    ("oversized entry", [ROOT, file_entry("a", size=_backup.MAX_FILE_SIZE + 1)], [b"x"], "more than the .* a store file may have"),
    ("negative size", [ROOT, file_entry("a", size=-1)], [b"x"], "has size -1"),
    ("bad digest", [ROOT, file_entry("a", sha256="00")], [b"x"], "no valid SHA-256"),
    ("extra key", [ROOT, file_entry("a", owner="root")], [b"x"], "must have exactly"),
    ("content does not match", [ROOT, file_entry("a", b"good")], [b"evil"], "does not match its SHA-256"),
    ("content shorter than listed", [ROOT, file_entry("a", b"long content")], [b"long"], "ends early"),
    ("content longer than listed", [ROOT, file_entry("a", b"x")], [b"x", b"more"], "more content than its manifest lists"),
    ("no entries", [], [], "lists no entries"),
]


@pytest.mark.parametrize("entries, contents, message", [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE])
def test_hostile_manifest_is_refused_and_nothing_written(tmp_path, entries, contents, message):
    with pytest.raises(CertfleetError, match=message):
        restore(hostile(tmp_path, entries, contents), tmp_path)
    assert_nothing_written(tmp_path)
    assert not (tmp_path.parent / "evil").exists() and not os.path.exists("/tmp/evil")


def test_a_compression_bomb_after_the_last_file_is_refused_in_bounded_steps(tmp_path):
    """100 MB of zeros compress to about 100 KB; the reader inflates at most 64 KiB past what the manifest lists."""
    data = hostile(tmp_path, [ROOT, file_entry("a")], [b"x", bytes(100_000_000)])
    assert len(data) < 200_000
    with pytest.raises(CertfleetError, match="more content than its manifest lists"):
        restore(data, tmp_path)
    assert_nothing_written(tmp_path)


def test_hostile_manifest_fields(tmp_path):
    for manifest, message in (({"format": "zip"}, "not a certfleet.tls store backup manifest"), ({"version": 7}, "version 7"),
                              ({"selected": {"definitions": ["../x"], "cas": []}}, "selected name"),
                              ({"entries": [ROOT] * 2}, "listed twice|root")):
        with pytest.raises(CertfleetError, match=message):
            restore(hostile(tmp_path, [ROOT], [], fields=manifest), tmp_path)
        assert_nothing_written(tmp_path)


def test_total_size_and_entry_count_limits(tmp_path):
    entries = [ROOT] + [file_entry(f"f{index}", b"0123456789") for index in range(5)]
    data = hostile(tmp_path, entries, [b"0123456789"] * 5)
    with pytest.raises(CertfleetError, match="more than 40 bytes of files"):
        restore(data, tmp_path, limits=_backup.Limits(max_total_size=40))
    with pytest.raises(CertfleetError, match=r"lists 6 entries \(at most 5\)"):
        restore(data, tmp_path, limits=_backup.Limits(max_entries=5))
    with pytest.raises(CertfleetError, match="manifest length .* out of range"):
        restore(data, tmp_path, limits=_backup.Limits(max_manifest_bytes=20))
    assert_nothing_written(tmp_path)
    result, target = restore(data, tmp_path)
    assert result.changed and sorted(os.listdir(target)) == [f"f{index}" for index in range(5)]


def test_target_that_is_a_file_or_dangling_link(archive, tmp_path):
    (tmp_path / "restored").write_text("a file")
    with pytest.raises(CertfleetError, match="exists and is not a directory"):
        restore(archive, tmp_path)
    (tmp_path / "restored").unlink()
    (tmp_path / "restored").symlink_to(tmp_path / "nowhere")
    with pytest.raises(CertfleetError, match="dangling symbolic link"):
        restore(archive, tmp_path)


def test_restore_failure_late_leaves_the_target_and_no_staging(store, archive, tmp_path, monkeypatch):
    """A failure after extraction (the rename) removes the staging directory; a forced restore puts the old store back."""
    _result, target = restore(archive, tmp_path)
    (target / "marker").write_text("old store")
    before = tree(target)
    real_rename = os.rename
    calls = []

    def failing_rename(source, destination):
        calls.append((source, destination))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_rename(source, destination)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(CertfleetError, match="cannot move the restored store"):
        restore(archive, tmp_path, force=True)
    monkeypatch.undo()
    assert tree(target) == before
    assert sorted(os.listdir(tmp_path)) == ["in.cfbackup", "restored"]


# ---------------------------------------------------------------------------------------------
# backup: selection, refusals, skip when unchanged, rotation


def test_selected_definitions_and_cas(store, tmp_path):
    path = tmp_path / "one.cfbackup"
    result = _backup.backup_store(str(store), BACKUP_PASS, path=str(path), definitions=["portal"], cas=["intranet"], kdf=FAST)
    summary = result.manifest.summary()
    assert summary["definitions"] == ["portal"] and summary["cas"] == ["intranet"] and summary["scope"] == "selected"
    restored, target = _backup.restore_store(str(path), str(tmp_path / "restored"), BACKUP_PASS), tmp_path / "restored"
    assert restored.manifest.definitions == ["portal"]
    whole = tree(store)
    expected = {key: value for key, value in whole.items()
                if key in (".", "certs", "ca") or key.startswith(("certs/portal", "ca/intranet"))}
    assert tree(target) == expected
    with pytest.raises(CertfleetError, match="definition 'nope' is not in the store"):
        _backup.backup_store(str(store), BACKUP_PASS, path=str(path), definitions=["nope"], kdf=FAST)
    with pytest.raises(CertfleetError, match="must be 1-128 characters"):
        _backup.backup_store(str(store), BACKUP_PASS, path=str(path), cas=["../ca"], kdf=FAST)


def test_backup_refuses_links_and_archives_inside_the_store(tmp_path):
    store = tmp_path / "store"
    (store / "certs" / "a").mkdir(parents=True)
    with pytest.raises(CertfleetError, match="inside the store"):
        _backup.backup_store(str(store), BACKUP_PASS, directory=str(store / "backups"), kdf=FAST)
    (store / "certs" / "a" / "key.pem").symlink_to("/etc/passwd")
    with pytest.raises(CertfleetError, match="is a symbolic link; the store holds none"):
        _backup.backup_store(str(store), BACKUP_PASS, path=str(tmp_path / "x.cfbackup"), kdf=FAST)
    assert not (tmp_path / "x.cfbackup").exists() and sorted(os.listdir(tmp_path)) == ["store"]
    with pytest.raises(CertfleetError, match="exactly one of path"):
        _backup.backup_store(str(store), BACKUP_PASS, kdf=FAST)
    with pytest.raises(CertfleetError, match="non-empty"):
        _backup.backup_store(str(store), "", path=str(tmp_path / "x"), kdf=FAST)
    with pytest.raises(CertfleetError, match="scrypt N=16"):
        _backup.backup_store(str(tmp_path / "store" / "certs"), BACKUP_PASS, path=str(tmp_path / "y"),
                             kdf=_backup.KdfParams(n=16))


def test_a_store_changed_during_backup_fails_and_leaves_no_archive(tmp_path, monkeypatch):
    store = tmp_path / "store"
    store.mkdir()
    (store / "a").write_bytes(b"one")
    real = _backup.tree_manifest

    def then_change(*args, **kwargs):
        manifest = real(*args, **kwargs)
        (store / "a").write_bytes(b"two")
        return manifest

    monkeypatch.setattr(_backup, "tree_manifest", then_change)
    with pytest.raises(CertfleetError, match="'a' changed while the backup was being written"):
        _backup.backup_store(str(store), BACKUP_PASS, directory=str(tmp_path / "out"), kdf=FAST)
    assert os.listdir(tmp_path / "out") == []


def test_directory_rotation_and_skip_unchanged(store, tmp_path):
    out = tmp_path / "backups"
    moments = [datetime.datetime(2026, 12, day, 3, 0, tzinfo=datetime.timezone.utc) for day in range(1, 6)]
    first = _backup.backup_store(str(store), BACKUP_PASS, directory=str(out), keep=3, kdf=FAST, now=moments[0])
    assert first.written and os.path.basename(first.path) == "certfleet-store-20261201T030000Z.cfbackup"
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o600
    same = _backup.backup_store(str(store), BACKUP_PASS, directory=str(out), keep=3, kdf=FAST, now=moments[1])
    assert not same.written and same.path == first.path and "already holds this content" in same.reason
    forced = [_backup.backup_store(str(store), BACKUP_PASS, directory=str(out), keep=3, kdf=FAST, now=moment,
                                   skip_unchanged=False) for moment in moments[1:]]
    assert all(result.written for result in forced)
    assert forced[-1].removed == [str(out / "certfleet-store-20261202T030000Z.cfbackup")]
    assert sorted(os.listdir(out)) == [f"certfleet-store-2026120{day}T030000Z.cfbackup" for day in (3, 4, 5)]
    # Another passphrase cannot read the newest archive, so it cannot prove it unchanged: a new one is written.
    other = _backup.backup_store(str(store), "another-passphrase", directory=str(out), kdf=FAST, now=moments[-1])
    assert other.written and os.path.basename(other.path) == "certfleet-store-20261205T030000Z-1.cfbackup"
    assert _backup.list_archives(str(out))[-1] == os.path.basename(other.path)
    check = _backup.backup_store(str(store), BACKUP_PASS, directory=str(out), keep=1, kdf=FAST, check_mode=True,
                                 skip_unchanged=False, now=moments[-1])
    assert check.written and len(check.removed) == 4 and len(os.listdir(out)) == 4, "check mode removes nothing"
    (out / "notes.txt").write_text("not an archive")
    (out / "other-20261201T030000Z.cfbackup").write_text("another prefix")
    assert len(_backup.list_archives(str(out))) == 4
    assert _backup.resolve_archive(str(out)) == other.path


@pytest.mark.parametrize("names, keep, removed", [
    ([], 3, []), (["a", "b"], 3, []), (["a", "b", "c", "d"], 3, ["a"]), (["a", "b", "c"], 1, ["a", "b"]), (["a", "b"], 0, []),
])
def test_rotation(names, keep, removed):
    assert _backup.rotation(names, keep) == removed


@pytest.mark.parametrize("keep", [-1, True, "3"])
def test_rotation_refuses_bad_keep(keep):
    with pytest.raises(CertfleetError, match="keep must be a whole number"):
        _backup.rotation(["a"], keep)


def test_archive_names_sort_by_time():
    moment = datetime.datetime(2026, 12, 6, 16, 14, 44, tzinfo=datetime.timezone.utc)
    first = _backup.archive_name(moment)
    second = _backup.archive_name(moment, existing=[first])
    assert (first, second) == ("certfleet-store-20261206T161444Z.cfbackup", "certfleet-store-20261206T161444Z-1.cfbackup")
    with pytest.raises(CertfleetError, match="prefix"):
        _backup.archive_name(moment, prefix="../x")


# ---------------------------------------------------------------------------------------------
# PKCS#12 exports checked with openssl


@pytest.mark.parametrize("encryption, expected", [
    ("modern", ["Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 20000, PRF hmacWithSHA256", "MAC: sha256"]),
    ("compatibility", ["Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC", "MAC: sha1"]),
])
def test_pkcs12_export_algorithms(store, tmp_path, encryption, expected):
    out = tmp_path / "pfx"
    exports = _backup.pkcs12_exports(str(store), ["portal"], store_passphrase=STORE_PASS, passphrase="Pfx-Pass-1",
                                     encryption=encryption, directory=str(out))
    assert exports == [{"name": "portal", "path": str(out / "portal.pfx"), "changed": True, "encryption": encryption}]
    assert stat.S_IMODE((out / "portal.pfx").stat().st_mode) == 0o600
    legacy = ["-legacy"] if encryption == "compatibility" else []
    info = subprocess.run(["openssl", "pkcs12", "-info", "-in", str(out / "portal.pfx"), "-passin", "pass:Pfx-Pass-1",
                           "-nokeys", "-nocerts", *legacy], capture_output=True, text=True, check=True)
    for text in expected:
        assert text in info.stderr + info.stdout
    certs = subprocess.run(["openssl", "pkcs12", "-in", str(out / "portal.pfx"), "-passin", "pass:Pfx-Pass-1", "-nokeys",
                            *legacy], capture_output=True, text=True, check=True).stdout
    assert certs.count("BEGIN CERTIFICATE") == 2, "leaf and issuing CA"
    again = _backup.pkcs12_exports(str(store), ["portal"], store_passphrase=STORE_PASS, passphrase="Pfx-Pass-1",
                                   encryption=encryption, directory=str(out))
    assert not again[0]["changed"]


def test_pkcs12_export_refusals(store, tmp_path):
    out = tmp_path / "pfx"
    with pytest.raises(CertfleetError, match="www: cert.pem is missing"):
        _backup.pkcs12_exports(str(store), ["portal", "www"], store_passphrase=STORE_PASS, passphrase="p", directory=str(out))
    assert not out.exists(), "nothing written when one definition fails"
    with pytest.raises(CertfleetError, match="portal/key.pem"):
        _backup.pkcs12_exports(str(store), ["portal"], store_passphrase="wrong", passphrase="p", directory=str(out))
    with pytest.raises(CertfleetError, match="inside the store"):
        _backup.pkcs12_exports(str(store), ["portal"], store_passphrase=STORE_PASS, passphrase="p", directory=str(store / "pfx"))
    with pytest.raises(CertfleetError, match="pkcs12_encryption must be one of"):
        _backup.pkcs12_exports(str(store), ["portal"], store_passphrase=STORE_PASS, passphrase="p", encryption="rc2",
                               directory=str(out))
    with pytest.raises(CertfleetError, match="pkcs12_passphrase must be a non-empty"):
        _backup.pkcs12_exports(str(store), ["portal"], store_passphrase=STORE_PASS, passphrase="", directory=str(out))


# ---------------------------------------------------------------------------------------------
# an archive of selected definitions and CAs restored into a live store


def live_copy(store, tmp_path):
    target = tmp_path / "live"
    shutil.copytree(store, target)
    os.chmod(target, os.stat(store).st_mode)
    return target


def test_selected_archive_replaces_only_its_directories_in_a_live_store(store, tmp_path):
    archive = tmp_path / "portal.cfbackup"
    _backup.backup_store(str(store), BACKUP_PASS, path=str(archive), definitions=["portal"], cas=["intranet"], kdf=FAST)
    target = live_copy(store, tmp_path)
    (target / "certs" / "portal" / "cert.pem").write_bytes(b"damaged\n")
    (target / "certs" / "portal" / "stray.txt").write_bytes(b"stray\n")
    (target / "certs" / "api" / "cert.pem").write_bytes(b"api changed, not in the archive\n")
    before = tree(target)
    with pytest.raises(CertfleetError, match=r"set force=true to replace the directories of ca/intranet, certs/portal"):
        _backup.restore_store(str(archive), str(target), BACKUP_PASS)
    assert tree(target) == before
    moment = datetime.datetime(2026, 12, 6, 13, 0, 0, tzinfo=datetime.timezone.utc)
    check = _backup.restore_store(str(archive), str(target), BACKUP_PASS, force=True, check_mode=True, now=moment)
    assert check.changed and tree(target) == before
    result = _backup.restore_store(str(archive), str(target), BACKUP_PASS, force=True, now=moment)
    assert result.changed and result.replaced == str(target) + ".replaced-20261206T130000Z"
    after = tree(target)
    original = tree(store)
    for key in set(after) | set(original):
        if key.startswith(("certs/portal", "ca/intranet")):
            assert after.get(key) == original.get(key), key
    assert after["certs/api/cert.pem"][2] == b"api changed, not in the archive\n", "other definitions are left alone"
    aside = tmp_path / "live.replaced-20261206T130000Z"
    assert (aside / "certs" / "portal" / "stray.txt").read_bytes() == b"stray\n"
    assert sorted(os.listdir(aside)) == ["ca", "certs"] and os.listdir(aside / "certs") == ["portal"]
    again = _backup.restore_store(str(archive), str(target), BACKUP_PASS, force=True)
    assert not again.changed
    assert sorted(os.listdir(tmp_path)) == ["live", "live.replaced-20261206T130000Z", "portal.cfbackup"], "no staging left"


def test_selected_archive_adds_a_missing_definition(store, tmp_path):
    archive = tmp_path / "api.cfbackup"
    _backup.backup_store(str(store), BACKUP_PASS, path=str(archive), definitions=["api"], kdf=FAST)
    target = live_copy(store, tmp_path)
    shutil.rmtree(target / "certs" / "api")
    result = _backup.restore_store(str(archive), str(target), BACKUP_PASS, force=True)
    assert result.changed and result.replaced is None
    assert tree(target) == tree(store)


def test_selected_archive_merge_is_rolled_back_on_failure(store, tmp_path, monkeypatch):
    archive = tmp_path / "sel.cfbackup"
    _backup.backup_store(str(store), BACKUP_PASS, path=str(archive), definitions=["portal"], cas=["intranet"], kdf=FAST)
    target = live_copy(store, tmp_path)
    (target / "certs" / "portal" / "cert.pem").write_bytes(b"changed\n")
    before = tree(target)
    real_rename = os.rename
    calls = []

    def failing_rename(source, destination):
        calls.append(destination)
        if len(calls) == 4:  # ca/intranet aside, in; certs/portal aside, then fail bringing it in
            raise OSError(28, "No space left on device")
        return real_rename(source, destination)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(CertfleetError, match="the store is as it was"):
        _backup.restore_store(str(archive), str(target), BACKUP_PASS, force=True)
    monkeypatch.undo()
    assert tree(target) == before
    assert sorted(os.listdir(tmp_path)) == ["live", "sel.cfbackup"], "no staging or empty replaced directory left"


def test_selected_manifest_with_entries_outside_its_selection_is_refused(tmp_path):
    entries = [ROOT, SUB, {"path": "certs/portal", "type": "dir", "mode": "0750"}, file_entry("certs/portal/key.pem"),
               {"path": "certs/other", "type": "dir", "mode": "0750"}, file_entry("certs/other/key.pem")]
    data = hostile(tmp_path, entries, [b"x", b"x"], fields={"selected": {"definitions": ["portal"], "cas": []}})
    with pytest.raises(CertfleetError, match="'certs/other' is outside the archive's selected definitions and CAs"):
        restore(data, tmp_path)
    assert_nothing_written(tmp_path)
    with pytest.raises(CertfleetError, match="must be lists of names"):
        restore(hostile(tmp_path, [ROOT], [], fields={"selected": {"definitions": "portal", "cas": []}}), tmp_path)


def test_backup_to_a_path_is_skipped_when_unchanged_and_rewritten_when_changed(tmp_path):
    store = tmp_path / "store"
    (store / "certs" / "a").mkdir(parents=True)
    (store / "certs" / "a" / "state.json").write_text("{}\n")
    path = tmp_path / "out" / "a.cfbackup"
    (tmp_path / "out").mkdir()
    first = _backup.backup_store(str(store), BACKUP_PASS, path=str(path), kdf=FAST)
    data = path.read_bytes()
    second = _backup.backup_store(str(store), BACKUP_PASS, path=str(path), kdf=FAST)
    assert first.written and not second.written and path.read_bytes() == data
    os.chmod(store / "certs" / "a" / "state.json", 0o600)
    third = _backup.backup_store(str(store), BACKUP_PASS, path=str(path), kdf=FAST)
    assert third.written and path.read_bytes() != data, "a mode change is a change"
    assert third.manifest.content_sha256 != first.manifest.content_sha256
    assert os.listdir(tmp_path / "out") == ["a.cfbackup"], "no temporary file left"


def test_a_store_behind_a_symbolic_link_is_restored_where_the_link_points(store, archive, tmp_path):
    (tmp_path / "volume").mkdir()
    (tmp_path / "volume" / "cert_store").mkdir()
    src = tmp_path / "in.cfbackup"
    src.write_bytes(archive)
    link = tmp_path / "cert_store"
    link.symlink_to(tmp_path / "volume" / "cert_store")
    result = _backup.restore_store(str(src), str(link), BACKUP_PASS)
    assert result.changed and link.is_symlink()
    assert tree(tmp_path / "volume" / "cert_store") == tree(store)


def test_store_entries_order_is_parents_first_and_stable(store):
    entries = [path for path, _info in layout.store_entries(str(store))]
    assert entries[0] == "." and len(entries) == len(set(entries))
    seen = set()
    for path in entries[1:]:
        assert (path.rpartition("/")[0] or ".") in seen | {"."}, path
        seen.add(path)
    assert entries == [path for path, _info in layout.store_entries(str(store))]
    partial = [path for path, _info in layout.store_entries(str(store), definitions=["www"], cas=["intranet"])]
    assert partial[:5] == [".", "ca", "certs", "ca/intranet", "certs/www"]
    assert all(path in (".", "ca", "certs") or path.startswith(("ca/intranet", "certs/www")) for path in partial)
