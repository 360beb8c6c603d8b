# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File transactions: plan, apply, roll back exactly, prune; failures put back what was written."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._deploy import transaction as tx
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _snapshot(root) -> dict:
    """Every path under root with its kind, content or target, and mode."""
    result = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                result[path] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                result[path] = ("dir", _mode(path))
            else:
                with open(path, "rb") as handle:
                    result[path] = ("file", handle.read(), _mode(path))
    return result


@pytest.fixture
def site(tmp_path):
    """A small Apache-like tree with an existing vhost, key and enabled link."""
    etc = tmp_path / "etc"
    (etc / "sites-available").mkdir(parents=True)
    (etc / "sites-enabled").mkdir()
    (etc / "private").mkdir(mode=0o710)
    (etc / "sites-available" / "a.conf").write_text("old vhost\n")
    (etc / "private" / "a.key").write_bytes(b"old key\n")
    os.chmod(etc / "private" / "a.key", 0o600)
    os.symlink("../sites-available/a.conf", etc / "sites-enabled" / "a.conf")
    return tmp_path


def _wanted(root):
    etc = root / "etc"
    files = [
        tx.WantedFile(path=str(etc / "private" / "a.key"), content=b"new key\n", mode=0o600, secret=True),
        tx.WantedFile(path=str(etc / "sites-available" / "a.conf"), content=b"new vhost\n", mode=0o644),
        tx.WantedFile(path=str(etc / "certs" / "deep" / "a.pem"), content=b"cert\n", mode=0o644),
    ]
    links = [tx.WantedLink(path=str(etc / "sites-enabled" / "b.conf"), src=str(etc / "sites-available" / "a.conf"))]
    return files, links


@pytest.mark.parametrize("value, expected", [("0640", 0o640), ("640", 0o640), (0o600, 0o600), ("0755", 0o755), (" 0644 ", 0o644)])
def test_parse_mode(value, expected):
    assert tx.parse_mode(value, what="x") == expected


@pytest.mark.parametrize("value", ["u+rw", "rw-r--r--", "0999", None, "07777777"])
def test_parse_mode_refuses(value):
    with pytest.raises(CertfleetError, match="mode"):
        tx.parse_mode(value, what="x")


def test_unknown_owner_is_named():
    with pytest.raises(CertfleetError, match="user 'no-such-user-certfleet' does not exist"):
        tx.resolve_owner("no-such-user-certfleet", None, what="/x")
    with pytest.raises(CertfleetError, match="group 'no-such-group-certfleet' does not exist"):
        tx.resolve_owner(None, "no-such-group-certfleet", what="/x")


def test_plan_lists_reasons_and_is_read_only(site):
    before = _snapshot(site)
    files, links = _wanted(site)
    plan = tx.plan_changes(files, links)
    reasons = {change.path: change.reasons for change in plan.changes}
    assert reasons[files[0].path] == ["content"]
    assert reasons[files[1].path] == ["content"]
    assert reasons[files[2].path] == ["created"]
    assert plan.changes[2].missing_directory == str(site / "etc" / "certs")
    assert reasons[links[0].path] == ["created"]
    assert _snapshot(site) == before


def test_diff_never_shows_a_secret(site):
    files, links = _wanted(site)
    diff = tx.diff_of(tx.plan_changes(files, links))
    text = json.dumps(diff)
    assert "new key" not in text and "old key" not in text
    assert "old vhost" in text and "new vhost" in text
    assert any(entry["after"].startswith("->") for entry in diff)


def test_apply_then_rollback_restores_exactly(site):
    before = _snapshot(site)
    files, links = _wanted(site)
    transactions = site / "tx"
    transaction = tx.apply_plan(tx.plan_changes(files, links), transaction_dir=str(transactions))
    assert (site / "etc" / "private" / "a.key").read_bytes() == b"new key\n"
    assert _mode(site / "etc" / "private" / "a.key") == 0o600
    assert (site / "etc" / "certs" / "deep" / "a.pem").read_bytes() == b"cert\n"
    assert os.readlink(site / "etc" / "sites-enabled" / "b.conf") == files[1].path
    assert _mode(transactions / transaction) == 0o700
    # the second plan is empty: idempotent
    assert not tx.plan_changes(*_wanted(site)).changed
    restored = tx.rollback(str(transactions), transaction)
    assert set(restored) == {f.path for f in files} | {links[0].path}
    after = {path: value for path, value in _snapshot(site).items() if not path.startswith(str(transactions))}
    assert after == before
    # rolling back twice changes nothing
    assert tx.rollback(str(transactions), transaction) == []


def test_mode_change_alone_is_a_change_and_is_rolled_back(site):
    key = site / "etc" / "private" / "a.key"
    wanted = [tx.WantedFile(path=str(key), content=b"old key\n", mode=0o640)]
    plan = tx.plan_changes(wanted, [])
    assert plan.changes[0].reasons == ["mode 0600 -> 0640"]
    transaction = tx.apply_plan(plan, transaction_dir=str(site / "tx"))
    assert _mode(key) == 0o640
    tx.rollback(str(site / "tx"), transaction)
    assert _mode(key) == 0o600


def test_file_in_the_way_of_a_directory_is_refused_before_writing(site):
    files, links = _wanted(site)
    blocker = site / "etc" / "blocked"
    blocker.write_text("a file where a directory is needed\n")
    files.append(tx.WantedFile(path=str(blocker / "x.pem"), content=b"x", mode=0o644))
    before = _snapshot(site)
    with pytest.raises(CertfleetError, match="exists and is not a directory"):
        tx.plan_changes(files, links)
    assert before == _snapshot(site)


def test_failure_during_apply_rolls_back(site, monkeypatch):
    files, links = _wanted(site)
    before = _snapshot(site)
    real_apply = tx._apply  # pylint: disable=protected-access
    calls = []

    def failing_apply(change):
        calls.append(change.path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", change.path)
        real_apply(change)

    monkeypatch.setattr(tx, "_apply", failing_apply)
    with pytest.raises(CertfleetError, match="No space left on device.*put back"):
        tx.apply_plan(tx.plan_changes(files, links), transaction_dir=str(site / "tx"))
    after = {path: value for path, value in _snapshot(site).items() if not path.startswith(str(site / "tx"))}
    assert after == before
    manifest = json.loads(next((site / "tx").glob("*/manifest.json")).read_text())
    assert manifest["state"] == "rolled_back"


def test_prune_keeps_the_newest(tmp_path):
    names = [f"2026120{day}T000000Z-0000000{day}" for day in range(1, 8)]
    for name in names:
        (tmp_path / name).mkdir()
    (tmp_path / "unrelated").mkdir()
    removed = tx.prune_transactions(str(tmp_path), keep=3)
    assert removed == names[:4]
    assert sorted(os.listdir(tmp_path)) == sorted(names[4:] + ["unrelated"])


@pytest.mark.parametrize("transaction, message", [
    ("../../etc", "is not a transaction id"),
    ("20261203T000000Z-deadbeef", "is not in"),
])
def test_rollback_errors(tmp_path, transaction, message):
    with pytest.raises(CertfleetError, match=message):
        tx.rollback(str(tmp_path), transaction)


def test_directory_in_the_way_is_refused(site):
    with pytest.raises(CertfleetError, match="is a directory"):
        tx.plan_changes([tx.WantedFile(path=str(site / "etc" / "private"), content=b"x", mode=0o600)], [])
    with pytest.raises(CertfleetError, match="listed twice"):
        tx.plan_changes([tx.WantedFile(path=str(site / "new.pem"), content=b"x", mode=0o600)] * 2, [])
    with pytest.raises(CertfleetError, match="absolute"):
        tx.plan_changes([tx.WantedFile(path="relative/x", content=b"x", mode=0o600)], [])


def test_absent_paths_are_removed_in_the_transaction_and_come_back_on_rollback(site):
    before = _snapshot(site)
    etc = site / "etc"
    absent = [tx.WantedAbsent(str(etc / "sites-enabled" / "a.conf")), tx.WantedAbsent(str(etc / "sites-available" / "a.conf")),
              tx.WantedAbsent(str(etc / "private" / "a.key"), secret=True), tx.WantedAbsent(str(etc / "never-there.pem"))]
    plan = tx.plan_changes([], [], absent)
    assert [change.path for change in plan.changes] == [item.path for item in absent[:3]]  # a missing path is no change
    diff = json.dumps(tx.diff_of(plan))
    assert "old vhost" in diff and "old key" not in diff and "(removed)" in diff
    transactions = site / "tx"
    transaction = tx.apply_plan(plan, transaction_dir=str(transactions))
    assert not any(os.path.lexists(item.path) for item in absent)
    assert not tx.plan_changes([], [], absent).changed  # idempotent
    assert set(tx.rollback(str(transactions), transaction)) == {item.path for item in absent[:3]}
    after = {path: value for path, value in _snapshot(site).items() if not path.startswith(str(transactions))}
    assert after == before  # the link is a link again, the key 0600 again


def test_absent_refuses_a_directory_and_a_path_listed_twice(site):
    with pytest.raises(CertfleetError, match="is a directory"):
        tx.plan_changes([], [], [tx.WantedAbsent(str(site / "etc" / "private"))])
    vhost = str(site / "etc" / "sites-available" / "a.conf")
    with pytest.raises(CertfleetError, match="listed twice"):
        tx.plan_changes([tx.WantedFile(vhost, b"x", 0o644)], [], [tx.WantedAbsent(vhost)])


def test_links_are_claimed_like_files(site):
    # a path that does not exist (a fixed /tmp name may be anything on a shared machine)
    claimed = str(site / "claimed.conf")
    with pytest.raises(CertfleetError, match="listed twice"):
        tx.plan_changes([tx.WantedFile(claimed, b"x", 0o644)], [tx.WantedLink(path=claimed, src="/tmp/y")])
    with pytest.raises(CertfleetError, match="absolute"):
        tx.plan_changes([], [tx.WantedLink(path="relative/link", src="/tmp/y")])
    with pytest.raises(CertfleetError, match="absolute"):
        tx.plan_changes([], [], [tx.WantedAbsent("relative/gone")])


@pytest.mark.parametrize(("item", "expected"), [
    ({"path": "/x", "content": "text"}, None),
    ({"path": "/x", "content": ""}, None),
    ({"path": "/x", "template": "vhost.conf.j2"}, ("vhost.conf.j2", {})),
    ({"path": "/x", "template": "vhost.conf.j2", "template_vars": {"site": {"name": "a"}}}, ("vhost.conf.j2", {"site": {"name": "a"}})),
])
def test_template_source_of_a_files_entry(item, expected):
    assert tx.template_source(item) == expected


@pytest.mark.parametrize(("item", "message"), [
    ({"path": "/x"}, "/x: content or template is required"),
    ({"path": "/x", "content": "a", "template": "t.j2"}, "content or template, not both"),
    ({"path": "/x", "template": ""}, "template must be a template file name"),
    ({"path": "/x", "template": "t.j2", "template_vars": ["site"]}, "template_vars must be a dict"),
    ("vhost", "every entry must be a dict"),
])
def test_template_source_refuses_unclear_entries(item, message):
    with pytest.raises(CertfleetError, match=message):
        tx.template_source(item)


KEY_PEM = b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgold-secret-bytes\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize("held", [
    KEY_PEM,
    KEY_PEM.replace(b"PRIVATE KEY", b"RSA PRIVATE KEY"),
    KEY_PEM.replace(b"PRIVATE KEY", b"ENCRYPTED PRIVATE KEY"),
    b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" + KEY_PEM,  # a combined PEM
    b"\x30\x81\x87\x02\x01\x00\x30\x13old-secret-bytes\xff\xfe",  # DER: binary, may be a key
])
def test_diff_never_shows_key_material_a_plain_path_held(site, held):
    """A certificate or vhost path that held a key (paths swapped, a combined PEM, a key dropped by hand):
    neither the replaced nor the removed content is shown, whatever the path's new role."""
    etc = site / "etc"
    (etc / "sites-available" / "a.conf").write_bytes(held)
    (etc / "private" / "b.pem").write_bytes(held)
    files = [tx.WantedFile(path=str(etc / "sites-available" / "a.conf"), content=b"new vhost\n", mode=0o644)]
    absent = [tx.WantedAbsent(str(etc / "private" / "b.pem"))]
    text = json.dumps(tx.diff_of(tx.plan_changes(files, [], absent)))
    assert "old-secret-bytes" not in text and "secret-bytes" not in text and "MIGHAgEA" not in text
    assert "new vhost" in text and "not shown" in text


def test_diff_never_shows_key_material_in_a_plain_wanted_file(site):
    etc = site / "etc"
    files = [tx.WantedFile(path=str(etc / "certs" / "combined.pem"), content=KEY_PEM, mode=0o644)]
    text = json.dumps(tx.diff_of(tx.plan_changes(files, [])))
    assert "secret-bytes" not in text and "holds private key material, not shown" in text


def _manifest(transactions, transaction) -> dict:
    return json.loads((transactions / transaction / "manifest.json").read_text())


def test_a_transaction_is_applied_until_committed_and_commit_releases_the_lock(site):
    transactions = site / "tx"
    tx.acquire_lock(str(transactions), transaction_id="20261203T101500Z-1a2b3c4d", owner={"pid": 1})
    transaction = tx.apply_plan(tx.plan_changes(*_wanted(site)), transaction_dir=str(transactions),
                                transaction_id="20261203T101500Z-1a2b3c4d")
    assert _manifest(transactions, transaction)["state"] == "applied"
    assert tx.unfinished_transactions(str(transactions)) == [transaction]
    assert (transactions / tx.LOCK).exists()
    assert tx.commit(str(transactions), transaction) is True
    assert _manifest(transactions, transaction)["state"] == "committed"
    assert not (transactions / tx.LOCK).exists()
    assert tx.unfinished_transactions(str(transactions)) == []
    assert tx.commit(str(transactions), transaction) is False  # twice changes nothing
    tx.rollback(str(transactions), transaction)
    with pytest.raises(CertfleetError, match="rolled_back, it cannot be committed"):
        tx.commit(str(transactions), transaction)


def test_an_unfinished_transaction_is_rolled_back_by_the_next_run(site):
    """A run killed between writing and commit: the next one puts the files back before planning."""
    before = _snapshot(site)
    transactions = site / "tx"
    transaction = tx.apply_plan(tx.plan_changes(*_wanted(site)), transaction_dir=str(transactions))
    recovered = tx.recover(str(transactions))
    assert [(item["transaction"], item["state"]) for item in recovered] == [(transaction, "applied")]
    after = {path: value for path, value in _snapshot(site).items() if not path.startswith(str(transactions))}
    assert after == before
    assert _manifest(transactions, transaction)["state"] == "rolled_back"
    assert tx.recover(str(transactions)) == []


def test_manifests_of_before_the_commit_step_are_not_taken_for_unfinished(site):
    transactions = site / "tx"
    transaction = tx.apply_plan(tx.plan_changes(*_wanted(site)), transaction_dir=str(transactions))
    manifest = _manifest(transactions, transaction)
    del manifest["version"]
    (transactions / transaction / "manifest.json").write_text(json.dumps(manifest))
    assert tx.recover(str(transactions)) == []


def test_the_lock_is_refused_to_another_run_naming_its_holder(tmp_path, monkeypatch):
    directory = str(tmp_path / "tx")
    first = tx.acquire_lock(directory, transaction_id="20261203T101500Z-00000001",
                            owner={"controller": "ctl", "pid": 4242, "started": "7"})
    # the same run takes it again (re-entrant)
    tx.acquire_lock(directory, transaction_id="20261203T101500Z-00000002", owner={"controller": "ctl", "pid": 4242, "started": "7"})
    with pytest.raises(tx.LockHeld, match="held by transaction 20261203T101500Z-00000002 of ansible-playbook pid 4242 on ctl") as held:
        tx.acquire_lock(directory, transaction_id="20261203T101500Z-00000003", owner={"controller": "ctl", "pid": 99})
    assert held.value.holder["token"] != first["token"]
    # the controller judged the holder gone: its token takes the lock over
    taken = tx.acquire_lock(directory, transaction_id="20261203T101500Z-00000003", owner={"controller": "ctl", "pid": 99},
                            takeover=held.value.holder["token"])
    assert json.loads((tmp_path / "tx" / tx.LOCK).read_text())["token"] == taken["token"]
    # a lock older than the stale bound is taken over by anyone
    monkeypatch.setattr(tx.time, "time", lambda: taken["since"] + 61)
    tx.acquire_lock(directory, transaction_id="20261203T101500Z-00000004", owner={"pid": 5}, stale_after=60)
    assert tx.release_lock(directory, "20261203T101500Z-00000003") is False
    assert tx.release_lock(directory, "20261203T101500Z-00000004") is True
    assert not (tmp_path / "tx" / tx.LOCK).exists()


def test_rollback_releases_the_lock(site):
    transactions = site / "tx"
    tx.acquire_lock(str(transactions), transaction_id="20261203T101500Z-1a2b3c4d", owner=None)
    transaction = tx.apply_plan(tx.plan_changes(*_wanted(site)), transaction_dir=str(transactions),
                                transaction_id="20261203T101500Z-1a2b3c4d")
    tx.rollback(str(transactions), transaction)
    assert not (transactions / tx.LOCK).exists()
