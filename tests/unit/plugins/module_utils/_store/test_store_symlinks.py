"""No store write follows a symbolic link: history, atomic files, archive, directories (links planted in a tmp store)."""
from __future__ import annotations

import os

import pytest
from cryptography import x509

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store import store as _store
from ansible_collections.certfleet.tls.plugins.module_utils._store.events import record_events
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

PASS = "Store-Link-Pass-3"
DEFINITION = {"name": "www", "common_name": "www.example.test", "key": {"type": "ECC"}, "issuer": {"provider": "manual"}}
OTHER = {"name": "api", "common_name": "api.example.test", "key": {"type": "ECC"}, "issuer": {"provider": "manual"}}
VICTIM = b"the file a planted link points at\n"


@pytest.fixture(scope="module")
def pki():
    root = pb.make_root("Link Test Root")
    return {"root": root, "intermediate": pb.make_intermediate("Link Test Issuing CA", issuer=root)}


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "store"
    run_request(store_path=str(path), definitions=[DEFINITION], passphrase=PASS)
    return path


@pytest.fixture
def outside(tmp_path):
    """A directory outside the store holding one file; nothing in it may change."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "victim").write_bytes(VICTIM)
    return path


def leaf_for(store, pki, *, days: int = 90):
    csr = x509.load_pem_x509_csr((store / "certs" / "www" / "csr.pem").read_bytes())
    intermediate = pki["intermediate"]
    return pb.issue(csr.subject, public_key=csr.public_key(), issuer_name=intermediate.subject, signing_key=intermediate.key,
                    ca=False, san=["www.example.test"], aki_key=intermediate.key.public_key(), days=days)


def install(store, pki, **kwargs):
    return _store.install_issued(str(store), "www", certificate=leaf_for(store, pki, **kwargs),
                                 chain=[pki["intermediate"].cert], source="manual")


def assert_untouched(outside):
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_bytes() == VICTIM


def test_a_link_at_history_is_refused_not_appended_through(store, pki, outside):
    history = store / "certs" / "www" / "history.jsonl"
    history.unlink()
    history.symlink_to(outside / "victim")
    with pytest.raises(CertfleetError, match="history.jsonl.* is a symbolic link; the store never writes through a link"):
        install(store, pki)
    assert_untouched(outside)


def test_recorded_events_refuse_a_link_at_history(store, outside):
    history = store / "certs" / "www" / "history.jsonl"
    history.unlink()
    history.symlink_to(outside / "victim")
    with pytest.raises(CertfleetError, match="is a symbolic link"):
        record_events(str(store), [{"certificate": "www", "event": "deployed", "host": "web1"}])
    assert_untouched(outside)


@pytest.mark.parametrize("kind", ["cert", "chain", "fullchain"])
def test_a_link_at_a_store_file_is_replaced_not_written_through(store, pki, outside, kind):
    path = store / "certs" / "www" / layout.filename(kind)
    if path.exists():
        path.unlink()
    path.symlink_to(outside / "victim")
    install(store, pki)
    assert not path.is_symlink() and path.is_file() and path.read_bytes() != VICTIM
    assert_untouched(outside)


def test_a_definition_directory_that_is_a_link_is_refused(tmp_path, outside):
    store = tmp_path / "store"
    (store / "certs").mkdir(parents=True)
    (store / "certs" / "www").symlink_to(outside, target_is_directory=True)
    with pytest.raises(CertfleetError, match="certs/www' is a symbolic link; the store never writes through a link"):
        run_request(store_path=str(store), definitions=[DEFINITION], passphrase=PASS)
    assert_untouched(outside)


def test_a_certs_directory_that_is_a_link_is_refused(tmp_path, outside):
    store = tmp_path / "store"
    store.mkdir()
    (store / "certs").symlink_to(outside, target_is_directory=True)
    with pytest.raises(CertfleetError, match="certs' is a symbolic link"):
        run_request(store_path=str(store), definitions=[DEFINITION], passphrase=PASS)
    assert_untouched(outside)


def test_an_archive_directory_that_is_a_link_is_refused(store, pki, outside):
    install(store, pki)
    (store / "certs" / "www" / "archive").symlink_to(outside, target_is_directory=True)
    with pytest.raises(CertfleetError, match="archive' is a symbolic link"):
        install(store, pki, days=60)
    assert_untouched(outside)


def test_an_archive_generation_that_is_a_link_is_refused(store, pki, outside):
    first = install(store, pki)
    label = first.events[-1]["serial"]
    (store / "certs" / "www" / "archive").mkdir()
    (store / "certs" / "www" / "archive" / label).symlink_to(outside, target_is_directory=True)
    with pytest.raises(CertfleetError, match=f"archive/{label}' is a symbolic link"):
        install(store, pki, days=60)
    assert_untouched(outside)


def test_a_link_at_an_archived_file_is_replaced(store, pki, outside):
    first = install(store, pki)
    label = first.events[-1]["serial"]
    target = store / "certs" / "www" / "archive" / label
    target.mkdir(parents=True)
    (target / "cert.pem").symlink_to(outside / "victim")
    install(store, pki, days=60)
    assert not (target / "cert.pem").is_symlink()
    assert_untouched(outside)


def test_the_store_root_may_be_a_link(tmp_path):
    """The owner's choice (a store on another volume): only links below the root are refused."""
    real = tmp_path / "volume"
    real.mkdir()
    (tmp_path / "store").symlink_to(real, target_is_directory=True)
    run_request(store_path=str(tmp_path / "store"), definitions=[DEFINITION, OTHER], passphrase=PASS)
    assert (real / "certs" / "www" / "key.pem").is_file() and (real / "certs" / "api" / "history.jsonl").is_file()


# --- the private CA's part of the store -------------------------------------------------------------

def make_ca(store, name="corp"):
    from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca
    return _ca.run_private_ca(store_path=str(store), name=name, passphrase=PASS, kind="root",
                              key_spec={"type": "ECC", "curve": "secp256r1"},
                              settings_options={"allowed_domains": ["example.intra"]})


@pytest.mark.parametrize("planted", ["ca", "ca/corp"])
def test_a_ca_directory_that_is_a_link_is_refused(tmp_path, outside, planted):
    store = tmp_path / "store"
    empty = outside / "empty"  # an empty directory: nothing to refuse when the CA is read, only when written
    empty.mkdir()
    (store / planted).parent.mkdir(parents=True, exist_ok=True)
    (store / planted).symlink_to(empty, target_is_directory=True)
    with pytest.raises(CertfleetError, match=f"{planted}' is a symbolic link; the store never writes through a link"):
        make_ca(store)
    assert os.listdir(empty) == []


def test_a_link_at_the_ca_lock_is_refused(tmp_path, outside):
    store = tmp_path / "store"
    (store / "ca" / "corp").mkdir(parents=True)
    (store / "ca" / "corp" / ".lock").symlink_to(outside / "victim")
    with pytest.raises(CertfleetError, match="CA lock .*\\(a symbolic link; the store never writes through a link\\)"):
        make_ca(store)
    assert_untouched(outside)


def test_ca_files_keep_their_modes(tmp_path):
    store = tmp_path / "store"
    make_ca(store)
    corp = store / "ca" / "corp"
    assert oct(os.stat(corp / "key.pem").st_mode & 0o777) == "0o600"
    assert oct(os.stat(corp / "cert.pem").st_mode & 0o777) == "0o644"
    assert oct(os.stat(corp).st_mode & 0o777) == "0o700"
