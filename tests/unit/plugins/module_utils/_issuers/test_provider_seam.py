# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The issuer seam end to end: a provider defined here, with no store code, issues through run_issue.

The toy provider signs the definition's CSR with a throwaway two-level PKI made in this file, defers
(Pending) or fails, as a test asks; everything the store holds afterwards was written by the store.
"""

from __future__ import annotations

import json
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError, certificate_fingerprint
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import issue as _issue
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.base import Issued, IssuerProvider, NotImplementedProvider, Pending
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.providers import PROVIDERS
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import ISSUER_PROVIDERS, load_current, read_history
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

STORE_PASS = "Seam-Store-Pass-5"
DEFINITIONS = [
    {"name": "alpha", "common_name": "alpha.example.test", "key": {"type": "ECC"}, "issuer": {"provider": "toy"}},
    {"name": "beta", "common_name": "beta.example.test", "key": {"type": "ECC"}, "issuer": {"provider": "toy"}},
]


class ToyProvider(IssuerProvider):
    """Issues from a throwaway CA, or defers, or fails - and never touches the store."""

    name = "toy"

    def __init__(self, pki, *, mode: str = "issue", fail: tuple = (), renew: bool = False):
        self.pki = pki
        self.mode = mode
        self.fail = fail
        self.renew = renew
        self.obtained: list[str] = []
        self.committed = False

    def needs_issuance(self, context):
        if context.current is None:
            return True, "no certificate yet"
        if self.renew:
            return True, "renewal asked by the test"
        return False, "the toy certificate is fine"

    def obtain(self, context):
        if context.name in self.fail:
            raise CertfleetError("the toy CA is closed today")
        if self.mode == "pending":
            return Pending([f"ask the toy CA to sign {context.path('csr')}", f"then drop it into {context.incoming_dir}"],
                           reason=context.reason)
        if context.check_mode:
            return Issued(None, reason=context.reason)
        self.obtained.append(context.name)
        csr = x509.load_pem_x509_csr(context.csr_pem)
        intermediate = self.pki["intermediate"]
        leaf = pb.issue(csr.subject, public_key=csr.public_key(), issuer_name=intermediate.subject,
                        signing_key=intermediate.key, ca=False, san=[context.definition["common_name"]],
                        aki_key=intermediate.key.public_key(), days=90)
        return Issued(leaf, [intermediate.cert], details={"toy_ca": "throwaway"}, reason=context.reason)

    def commit(self):
        self.committed = True


@pytest.fixture(scope="module")
def pki():
    root = pb.make_root("Toy Root CA")
    return {"root": root, "intermediate": pb.make_intermediate("Toy Issuing CA", issuer=root)}


@pytest.fixture
def store(tmp_path):
    run_request(store_path=str(tmp_path), definitions=DEFINITIONS, passphrase=STORE_PASS, providers=ISSUER_PROVIDERS + ("toy",))
    return tmp_path


def issue(store, provider, definitions=None, **kwargs):
    return _issue.run_issue(store_path=str(store), definitions=definitions or DEFINITIONS, ca_passphrase=None,
                            providers={"toy": lambda: provider}, **kwargs)


def snapshot(directory) -> dict:
    result = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                result[os.path.join(root, name)] = handle.read()
    return result


def pem(certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_every_definition_name_has_a_provider():
    assert set(PROVIDERS) == set(ISSUER_PROVIDERS)


def test_toy_provider_issues_and_the_store_writes(store, pki):
    before = snapshot(store)
    check = issue(store, ToyProvider(pki), check_mode=True)
    assert check["changed"] and snapshot(store) == before
    assert [c["actions"] for c in check["certificates"]] == [["certificate issued (no certificate yet)"]] * 2

    provider = ToyProvider(pki)
    result = issue(store, provider)
    assert result["changed"] and provider.obtained == ["alpha", "beta"] and provider.committed
    alpha = store / "certs" / "alpha"
    entry = result["certificates"][0]
    assert entry["provider"] == "toy" and entry["status"] == "issued" and entry["actions"] == ["certificate issued (no certificate yet)"]
    leaf = x509.load_pem_x509_certificate((alpha / "cert.pem").read_bytes())
    assert entry["sha256"] == certificate_fingerprint(leaf) and entry["files"]["fullchain"] == str(alpha / "fullchain.pem")
    assert (alpha / "chain.pem").read_bytes() == pki["intermediate"].pem
    assert (alpha / "fullchain.pem").read_bytes() == pem(leaf) + pki["intermediate"].pem
    state = json.loads((alpha / "state.json").read_text())
    assert state["status"] == "issued"
    assert {k: state["certificate"][k] for k in ("serial", "provider", "toy_ca")} == \
        {"serial": entry["serial"], "provider": "toy", "toy_ca": "throwaway"}
    events = read_history(str(alpha))
    assert [e["event"] for e in events] == ["key_generated", "csr_generated", "issued"]
    assert events[-1]["provider"] == "toy" and events[-1]["serial"] == entry["serial"] and events[-1]["time"].endswith("Z")
    # What the store wrote is a generation the deploy side can load: key matches, chain is the leaf's issuer.
    current = load_current(str(store), "alpha", STORE_PASS)
    assert current.leaf == leaf and current.intermediates == [pki["intermediate"].cert]

    after = snapshot(store)
    again = ToyProvider(pki)
    assert not issue(store, again, check_mode=True)["changed"]
    second = issue(store, again)
    assert not second["changed"] and snapshot(store) == after and again.obtained == []
    assert [c["serial"] for c in second["certificates"]] == [c["serial"] for c in result["certificates"]]


def test_a_new_certificate_archives_the_previous_generation(store, pki):
    first = issue(store, ToyProvider(pki))["certificates"][0]
    renewed = issue(store, ToyProvider(pki, renew=True), definitions=DEFINITIONS[:1])["certificates"][0]
    assert renewed["serial"] != first["serial"] and renewed["actions"] == ["certificate issued (renewal asked by the test)"]
    archived = store / "certs" / "alpha" / "archive" / first["serial"]
    assert sorted(os.listdir(archived)) == ["cert.pem", "chain.pem", "fullchain.pem"]
    assert x509.load_pem_x509_certificate((archived / "cert.pem").read_bytes()).serial_number == int(first["serial"], 16)
    events = read_history(str(store / "certs" / "alpha"))
    assert [e["event"] for e in events][-2:] == ["archived", "issued"]
    assert events[-2]["files"] == ["cert.pem", "chain.pem", "fullchain.pem"]


def test_pending_leaves_the_store_unchanged_and_says_what_to_do(store, pki):
    before = snapshot(store)
    result = issue(store, ToyProvider(pki, mode="pending"))
    assert not result["changed"] and result["certificates"] == [] and snapshot(store) == before
    assert [p["name"] for p in result["pending"]] == ["alpha", "beta"]
    alpha = result["pending"][0]
    assert alpha["provider"] == "toy" and alpha["reason"] == "no certificate yet"
    assert alpha["instructions"] == [f"ask the toy CA to sign {store / 'certs' / 'alpha' / 'csr.pem'}",
                                     f"then drop it into {store / 'certs' / 'alpha' / 'incoming'}"]


def test_a_failing_provider_fails_that_definition_and_nothing_is_written(store, pki):
    before = snapshot(store)
    provider = ToyProvider(pki, fail=("beta",))
    with pytest.raises(_issue.IssueFailures) as caught:
        issue(store, provider)
    assert caught.value.failures == {"beta": ["the toy CA is closed today"]}
    assert "1 definition(s) cannot be issued, nothing was written" in str(caught.value)
    assert provider.obtained == ["alpha"] and not provider.committed
    assert snapshot(store) == before


def test_a_provider_named_by_no_definition_is_not_accepted(store, pki):
    with pytest.raises(CertfleetError, match="issuer.provider 'toy' must be one of manual, private_ca, acme"):
        _issue.run_issue(store_path=str(store), definitions=DEFINITIONS, ca_passphrase=None)


def test_manual_definitions_are_pending_and_an_unimplemented_provider_is_left_alone_with_a_warning(tmp_path):
    definitions = [
        {"name": "www", "common_name": "www.example.co.jp", "issuer": {"provider": "manual", "profile": "cabf"}},
        {"name": "shop", "common_name": "shop.example.co.jp", "issuer": {"provider": "future", "profile": "cabf"}},
    ]
    future = {"future": lambda: NotImplementedProvider("future")}
    early = _issue.run_issue(store_path=str(tmp_path / "store"), definitions=definitions, ca_passphrase=None, check_mode=True,
                             providers=future)
    assert early["pending"][0]["instructions"] == [
        "run certfleet.tls.store_request (the request playbook) to generate the key and the CSR"]
    run_request(store_path=str(tmp_path / "store"), definitions=definitions, passphrase=STORE_PASS,
                providers=ISSUER_PROVIDERS + ("future",))
    before = snapshot(tmp_path)
    result = _issue.run_issue(store_path=str(tmp_path / "store"), definitions=definitions, ca_passphrase=None, providers=future)
    assert not result["changed"] and result["certificates"] == [] and snapshot(tmp_path) == before
    assert result["warnings"] == ["shop: issuer.provider future is not implemented yet; the definition is left alone"]
    [www] = result["pending"]
    assert www["name"] == "www" and www["provider"] == "manual" and www["reason"] == "no certificate yet"
    assert str(tmp_path / "store" / "certs" / "www" / "csr.pem") in www["instructions"][0] and "profile cabf" in www["instructions"][0]
    assert str(tmp_path / "store" / "certs" / "www" / "incoming") in www["instructions"][1]


def test_an_acme_definition_without_a_directory_fails_the_check_and_writes_nothing(tmp_path):
    definitions = [{"name": "shop", "common_name": "shop.example.co.jp", "issuer": {"provider": "acme"}}]
    run_request(store_path=str(tmp_path / "store"), definitions=definitions, passphrase=STORE_PASS)
    before = snapshot(tmp_path)
    with pytest.raises(_issue.IssueFailures) as caught:
        _issue.run_issue(store_path=str(tmp_path / "store"), definitions=definitions, ca_passphrase=None)
    assert caught.value.failures == {"shop": ["issuer.directory None must be the http(s) URL of the ACME server's directory"]}
    assert snapshot(tmp_path) == before
