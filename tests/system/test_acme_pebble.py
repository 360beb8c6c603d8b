"""The acme issuer provider against Debian's pebble: issuance through store_issue's runner and the request playbook,
renewal, idempotence, chains, webroot and standalone http-01, and faults that leave the store's definitions untouched.

Pebble rejects 5 % of good nonces (left on), so every test also exercises the badNonce retry.
"""
from __future__ import annotations

import http.server
import json
import os
import stat
import sys
import threading
import time

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pebble_server import EAB_HMAC_KEY, EAB_KID, RateLimitingProxy, free_port, start_pebble
from playbook_helpers import recap

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import issue as _issue
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.acme import AcmeProvider
from ansible_collections.certfleet.tls.plugins.module_utils._store.request import run_request
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import read_history

STORE_PASS = "Acme-Store-Pass-8"


@pytest.fixture(scope="module")
def pebble(tmp_path_factory):
    # One alternate root: the order also offers an alternate chain, for preferred_chain.
    server = start_pebble(str(tmp_path_factory.mktemp("pebble")), env={"PEBBLE_ALTERNATE_ROOTS": "1"})
    yield server
    server.stop()


def definition(pebble, name="www", *, directory=None, port=None, **issuer):
    settings = {"provider": "acme", "directory": directory or pebble.directory_url, "ca_bundle": pebble.ca_bundle,
                "terms_agreed": True, "contact": ["ops@example.test"],
                "challenge": {"address": "127.0.0.1", "port": port or pebble.http_port}}
    settings.update(issuer)
    return {"name": name, "common_name": f"{name}.example.test", "subject_alt_name": [f"DNS:{name}.example.test"],
            "key": {"type": "ECC"}, "issuer": settings}


def prepared(tmp_path, definitions):
    store = tmp_path / "store"
    run_request(store_path=str(store), definitions=definitions, passphrase=STORE_PASS)
    return store


def issue(store, definitions, **kwargs):
    provider_options = {key: kwargs.pop(key) for key in ("eab_hmac_keys", "sleep") if key in kwargs}
    return _issue.run_issue(store_path=str(store), definitions=definitions, ca_passphrase=None,
                            providers={"acme": lambda: AcmeProvider(passphrase=STORE_PASS, **provider_options)}, **kwargs)


def snapshot(directory) -> dict:
    result = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                result[os.path.join(root, name)] = handle.read()
    return result


def events(store, name="www") -> list[str]:
    return [event["event"] for event in read_history(str(store / "certs" / name))]


def test_issues_installs_the_chain_and_is_idempotent(tmp_path, pebble):
    definitions = [definition(pebble, "www"), definition(pebble, "api")]
    store = prepared(tmp_path, definitions)
    check = issue(store, definitions, check_mode=True)
    assert check["changed"] and not (store / "acme").exists() and [c["serial"] for c in check["certificates"]] == [None, None]

    result = issue(store, definitions)
    assert result["changed"] and [c["name"] for c in result["certificates"]] == ["www", "api"]
    www = store / "certs" / "www"
    leaf = x509.load_pem_x509_certificate((www / "cert.pem").read_bytes())
    chain = _chain.load_certificates((www / "chain.pem").read_bytes(), source="chain").certificates
    # The store serves pebble's intermediate after the leaf; it chains up to pebble's root 0.
    status, intermediate_pem, _headers = pebble.management("/intermediates/0")
    assert status == 200 and chain[0].certificate == x509.load_pem_x509_certificate(intermediate_pem)
    assert _chain.is_issued_by(leaf, chain[0].certificate)
    assert _chain.is_issued_by(chain[0].certificate, x509.load_pem_x509_certificate(pebble.root_pem(0)))
    assert leaf.subject.rfc4514_string() == "CN=www.example.test"
    assert (www / "fullchain.pem").read_bytes() == (www / "cert.pem").read_bytes() + (www / "chain.pem").read_bytes()
    state = json.loads((www / "state.json").read_text())
    assert state["status"] == "issued" and state["certificate"]["provider"] == "acme"
    assert state["certificate"]["acme_directory"] == pebble.directory_url and state["certificate"]["acme_account"] == "default"

    history = read_history(str(www))
    names = [event["event"] for event in history]
    assert names[:2] == ["key_generated", "csr_generated"] and names[-2:] == ["acme_chain", "issued"]
    assert "acme_account_registered" in names  # the first definition of the run registered the account
    orders = [event for event in history if event["event"] == "acme_order"]
    assert [event["status"] for event in orders] == ["pending", "valid"] and orders[0]["identifiers"] == ["www.example.test"]
    assert [e["status"] for e in history if e["event"] == "acme_authorization"] == ["valid"]
    assert "acme_account_registered" not in events(store, "api")  # one account for both

    # The account key is in the store, encrypted with the store passphrase, 0600.
    account = store / "acme" / "default"
    key_pem = (account / "account.key").read_bytes()
    assert b"ENCRYPTED" in key_pem and stat.S_IMODE((account / "account.key").stat().st_mode) == 0o600
    serialization.load_pem_private_key(key_pem, STORE_PASS.encode())
    registration = json.loads((account / "account.json").read_text())
    assert registration["uri"].startswith(pebble.directory_url.rsplit("/", 1)[0]) and registration["contact"] == ["mailto:ops@example.test"]

    before = snapshot(store)
    again = issue(store, definitions)
    assert not again["changed"] and snapshot(store) == before
    assert [c["serial"] for c in again["certificates"]] == [c["serial"] for c in result["certificates"]]


def test_nothing_due_means_no_order_even_with_the_server_down(tmp_path, pebble):
    with RateLimitingProxy(pebble, count=0) as proxy:  # the server as this definition knows it
        definitions = [definition(pebble, directory=proxy.directory_url)]
        store = prepared(tmp_path, definitions)
        issue(store, definitions)
    before = snapshot(store)
    # The proxy is gone (connection refused): a run with nothing due makes no network request at all.
    result = issue(store, definitions)
    assert not result["changed"] and snapshot(store) == before and result["certificates"][0]["serial"]


def test_nonce_rejection_is_always_retried(tmp_path):
    # 20 % of good nonces rejected: with the library alone (one retry) one request in 25 would fail.
    server = start_pebble(str(tmp_path / "pebble-nonces"), env={"PEBBLE_WFE_NONCEREJECT": "20"})
    try:
        definitions = [definition(server, name) for name in ("n1", "n2", "n3")]
        store = prepared(tmp_path, definitions)
        assert len(issue(store, definitions)["certificates"]) == 3
    finally:
        server.stop()
    retries = sum(events(store, name).count("acme_bad_nonce") for name in ("n1", "n2", "n3"))
    assert retries > 0 and all("issued" in events(store, name) for name in ("n1", "n2", "n3"))


def test_renewal_when_due_archives_the_previous_certificate(tmp_path, pebble):
    definitions = [definition(pebble)]
    store = prepared(tmp_path, definitions)
    first = issue(store, definitions)["certificates"][0]
    not_after = x509.load_pem_x509_certificate((store / "certs" / "www" / "cert.pem").read_bytes()).not_valid_after_utc
    import datetime
    early = issue(store, definitions, now=not_after - datetime.timedelta(days=31))
    assert not early["changed"]
    due = issue(store, definitions, now=not_after - datetime.timedelta(days=29))
    renewed = due["certificates"][0]
    assert due["changed"] and renewed["serial"] != first["serial"]
    assert renewed["actions"][0].startswith("certificate issued (renewal due: expires ")
    assert (store / "certs" / "www" / "archive" / first["serial"] / "cert.pem").exists()
    history = events(store)
    assert history.count("issued") == 2 and "archived" in history
    assert "acme_account_registered" not in history[history.index("archived"):]  # the stored account was reused


def test_preferred_chain_picks_the_alternate_root(tmp_path, pebble):
    alternate_root = x509.load_pem_x509_certificate(pebble.root_pem(1))
    wanted = alternate_root.subject.rfc4514_string().split("=", 1)[1]
    definitions = [definition(pebble, preferred_chain=wanted)]
    store = prepared(tmp_path, definitions)
    issue(store, definitions)
    chain = _chain.load_certificates((store / "certs" / "www" / "chain.pem").read_bytes(), source="chain").certificates
    assert _chain.is_issued_by(chain[-1].certificate, alternate_root)
    assert read_history(str(store / "certs" / "www"))[-2]["chosen"] == f"alternate chain 1 (issuer {wanted})"


def test_webroot_responder_behind_a_web_server(tmp_path, pebble):
    webroot = tmp_path / "htdocs"
    webroot.mkdir()
    seen = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(webroot), **kwargs)

        def log_message(self, *args):
            seen.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", pebble.http_port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        definitions = [definition(pebble, challenge={"responder": "webroot", "webroot": str(webroot)})]
        store = prepared(tmp_path, definitions)
        assert issue(store, definitions)["changed"]
    finally:
        server.shutdown()
        server.server_close()
    assert any(path.startswith("/.well-known/acme-challenge/") for path in seen)
    assert list(webroot.iterdir()) == []  # token files and the directories made for them are gone
    assert "issued" in events(store)


DNS_HOOK = """#!{python}
import json, sys, urllib.request
action, name, value = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(f"{{action}} {{name}}\\n")
body = {{"host": name + "."}} if action == "remove" else {{"host": name + ".", "value": value}}
request = urllib.request.Request("http://127.0.0.1:{port}/" + ("clear-txt" if action == "remove" else "set-txt"),
                                 data=json.dumps(body).encode(), method="POST")
urllib.request.urlopen(request, timeout=10).read()
"""


def test_dns01_through_a_command_hook_against_challtestsrv(tmp_path, pebble):
    hook, log = tmp_path / "dns-hook", tmp_path / "dns-hook.log"
    hook.write_text(DNS_HOOK.format(python=sys.executable, log=str(log), port=pebble.challtestsrv_management))
    hook.chmod(0o755)
    definitions = [definition(pebble, challenge={"type": "dns-01", "command": [str(hook)]})]
    store = prepared(tmp_path, definitions)
    assert issue(store, definitions)["changed"]
    assert log.read_text().splitlines() == ["add _acme-challenge.www.example.test", "remove _acme-challenge.www.example.test"]
    challenge = [e for e in read_history(str(store / "certs" / "www")) if e["event"] == "acme_challenge"]
    assert challenge[0]["type"] == "dns-01" and challenge[0]["responder"] == "command"


def test_server_down_fails_clearly_and_writes_nothing(tmp_path, pebble):
    definitions = [definition(pebble, directory=f"https://127.0.0.1:{free_port()}/dir")]
    store = prepared(tmp_path, definitions)
    before = snapshot(store)
    started = time.monotonic()
    with pytest.raises(_issue.IssueFailures) as caught:
        issue(store, definitions)
    assert time.monotonic() - started < 30
    [reason] = caught.value.failures["www"]
    assert "cannot reach the ACME server (connection refused)" in reason and "127.0.0.1" in reason
    assert snapshot(store) == before


def test_failed_validation_fails_clearly_and_the_next_run_succeeds(tmp_path, pebble):
    wrong_port = free_port()  # the responder listens where pebble does not look
    definitions = [definition(pebble, port=wrong_port)]
    store = prepared(tmp_path, definitions)
    certs = snapshot(store / "certs")
    with pytest.raises(_issue.IssueFailures) as caught:
        issue(store, definitions)
    [reason] = caught.value.failures["www"]
    assert "challenge validation failed: www.example.test: http-01 connection" in reason, reason
    assert snapshot(store / "certs") == certs and not (store / "certs" / "www" / "cert.pem").exists()
    assert issue(store, [definition(pebble)])["changed"]


def test_rate_limit_is_waited_out_as_retry_after_says(tmp_path, pebble):
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        time.sleep(seconds)

    with RateLimitingProxy(pebble, count=1, retry_after="1") as proxy:
        definitions = [definition(pebble, directory=proxy.directory_url)]
        store = prepared(tmp_path, definitions)
        result = issue(store, definitions, sleep=sleep)
    assert result["changed"] and len(proxy.limited) == 1 and slept == [1.0]
    limited = [event for event in read_history(str(store / "certs" / "www")) if event["event"] == "acme_rate_limited"]
    assert limited and limited[0]["retry_after"] == 1.0


def test_rate_limit_longer_than_allowed_fails_without_waiting(tmp_path, pebble):
    with RateLimitingProxy(pebble, count=5, retry_after="3600") as proxy:
        definitions = [definition(pebble, directory=proxy.directory_url, rate_limit_wait=5)]
        store = prepared(tmp_path, definitions)
        before = snapshot(store / "certs")
        started = time.monotonic()
        with pytest.raises(_issue.IssueFailures) as caught:
            issue(store, definitions)
    assert time.monotonic() - started < 20
    [reason] = caught.value.failures["www"]
    assert "rate limited by the ACME server (HTTP 429: too many new orders recently)" in reason
    assert "wait 3600 s (Retry-After)" in reason and snapshot(store / "certs") == before


def test_deactivated_account_fails_clearly_and_leaves_the_certificate(tmp_path, pebble):
    import josepy
    from acme import client as acme_client
    from acme import messages as acme_messages

    definitions = [definition(pebble)]
    store = prepared(tmp_path, definitions)
    issue(store, definitions)
    account = store / "acme" / "default"
    key = serialization.load_pem_private_key((account / "account.key").read_bytes(), STORE_PASS.encode())
    uri = json.loads((account / "account.json").read_text())["uri"]
    network = acme_client.ClientNetwork(josepy.JWKEC(key=key), alg=josepy.ES256, verify_ssl=pebble.ca_bundle)
    client = acme_client.ClientV2(acme_client.ClientV2.get_directory(pebble.directory_url, network), network)
    regr = acme_messages.RegistrationResource(uri=uri, body=acme_messages.Registration())
    network.account = regr
    client.deactivate_registration(regr)

    before = snapshot(store / "certs")
    import datetime
    with pytest.raises(_issue.IssueFailures) as caught:
        issue(store, definitions, now=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3650))
    [reason] = caught.value.failures["www"]
    assert f"ACME account default ({uri}) is not usable: unauthorized" in reason and "deactivated" in reason
    assert "remove" in reason and str(account) in reason
    assert snapshot(store / "certs") == before


def test_external_account_binding(tmp_path):
    server = start_pebble(str(tmp_path / "pebble-eab"), eab=True)
    try:
        plain = [definition(server)]
        store = prepared(tmp_path, plain)
        with pytest.raises(_issue.IssueFailures) as caught:
            issue(store, plain)
        assert "the server requires External Account Binding" in caught.value.failures["www"][0]
        bound = [definition(server, eab_kid=EAB_KID)]
        assert issue(store, bound, eab_hmac_keys={"default": EAB_HMAC_KEY})["changed"]
        registration = json.loads((store / "acme" / "default" / "account.json").read_text())
        assert registration["eab_kid"] == EAB_KID and EAB_HMAC_KEY not in json.dumps(registration)
    finally:
        server.stop()


def test_request_playbook_issues_acme_definitions(tmp_path, pebble, ansible_playbook):
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    variables = {"certfleet_store_passphrase": STORE_PASS, "certfleet_certificates": [definition(pebble)],
                 "certfleet_acme_eab_hmac_keys": {"default": "c2VjcmV0LXRoYXQtbXVzdC1ub3QtbGVhaw"}}
    (inventory / "group_vars" / "all" / "main.yml").write_text(yaml.safe_dump(variables))
    first = ansible_playbook(["-i", str(inventory), "certfleet.tls.request", "-v"], cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert recap(first.stdout)["changed"] == 2  # store_request and store_issue
    assert "c2VjcmV0LXRoYXQtbXVzdC1ub3QtbGVhaw" not in first.stdout + first.stderr
    store = inventory / "cert_store"
    assert "issued" in events(store) and (store / "acme" / "default" / "account.key").exists()
    second = ansible_playbook(["-i", str(inventory), "certfleet.tls.request"], cwd=tmp_path)
    assert second.returncode == 0 and recap(second.stdout)["changed"] == 0
