# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``acme`` issuer provider (RFC 8555): an ACME CA issues the definition's CSR unattended.

This module is private to the certfleet.tls collection: its API may change
without notice. JWS signing, nonces, External Account Binding and the order flow come from the
``acme`` library (the one certbot is built on) rather than being hand-made: a signature or nonce
mistake there is found by certbot's users long before ours. Around it this module adds what a
fleet run needs: every network wait bounded (per request and per order), ``badNonce`` retried
until it stops (pebble rejects 5 % of good nonces on purpose), ``rateLimited`` / HTTP 429 waited
out as Retry-After says within a bounded total wait, the account key kept in the store encrypted
with the store passphrase, the chain chosen by issuer name, and each state transition of an
order recorded in the definition's history.

A definition::

    issuer:
      provider: acme
      directory: https://acme.example.net/directory
      account: default            # the store's acme/<account>/ (key and registration)
      contact: [admin@example.net]
      terms_agreed: true
      eab_kid: kid-1              # the HMAC key comes from store_issue's acme_eab_hmac_keys (no_log)
      ca_bundle: /etc/ssl/acme-ca.pem
      challenge: {type: http-01, responder: standalone, address: "", port: 80}
      preferred_chain: ISRG Root X1
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import json
import os
import time
import traceback
import urllib.parse

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._issuers import acme_challenges
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.base import (
    IssueContext,
    Issued,
    IssuerProvider,
    RunSettings,
    renew_before_days,
)
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._store.store import (
    ensure_directory,
    sha256_hex,
    write_file_atomic,
)

ACME_IMPORT_ERROR = None
try:
    import josepy
    import requests
    from acme import client as acme_client
    from acme import errors as acme_errors
    from acme import messages as acme_messages
    from acme import challenges as acme_challenge_types
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
except ImportError:
    ACME_IMPORT_ERROR = traceback.format_exc()
    HAS_ACME = False
else:
    HAS_ACME = True

    class _BoundedNetwork(acme_client.ClientNetwork):
        """The library's network layer with every wait bounded and the retries a fleet run needs.

        ``deadline`` (time.monotonic) bounds every request of the current order; ``badNonce`` is retried up to
        ``NONCE_RETRIES`` times with a fresh nonce (the library retries once); ``rateLimited`` / 429 is waited
        out as Retry-After says while the total wait stays within ``rate_limit_wait`` and the deadline."""

        def __init__(self, key, *, alg, verify, timeout: float, rate_limit_wait: float, recorder, sleep=time.sleep):
            super().__init__(key, alg=alg, verify_ssl=verify, user_agent="certfleet.tls", timeout=timeout)
            self.request_timeout = timeout
            self.rate_limit_wait = rate_limit_wait
            self.waited = 0.0
            self.deadline = time.monotonic() + timeout * 4
            self.recorder = recorder
            self.sleep = sleep
            self.last_response = None

        def _send_request(self, method, url, *args, **kwargs):
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise CertfleetError(f"the order deadline passed before {method} {url}")
            kwargs["timeout"] = min(self.request_timeout, remaining)
            kwargs["allow_redirects"] = False
            response = super()._send_request(method, url, *args, **kwargs)
            self.last_response = response
            return response

        def get(self, url, content_type=acme_client.ClientNetwork.JSON_CONTENT_TYPE, **kwargs):
            return self._waiting_out_rate_limits(lambda: super(_BoundedNetwork, self).get(url, content_type, **dict(kwargs)))

        def post(self, *args, **kwargs):
            def once():
                for attempt in range(NONCE_RETRIES + 1):
                    try:
                        return self._post_once(*args, **dict(kwargs))
                    except acme_messages.Error as exc:
                        if exc.code != "badNonce" or attempt == NONCE_RETRIES:
                            raise
                        self.recorder("bad_nonce", attempt=attempt + 1)
                raise AssertionError("unreachable")
            return self._waiting_out_rate_limits(once)

        def _waiting_out_rate_limits(self, call):
            while True:
                try:
                    return call()
                except (acme_messages.Error, acme_errors.ClientError) as exc:
                    response = self.last_response
                    status = getattr(response, "status_code", None)
                    if not (status == 429 or getattr(exc, "code", None) == "rateLimited"):
                        raise
                    header = response.headers.get("Retry-After") if response is not None else None
                    wait = retry_after_seconds(header, now=datetime.datetime.now(datetime.timezone.utc))
                    left = min(self.rate_limit_wait - self.waited, self.deadline - time.monotonic())
                    if wait > left:
                        raise CertfleetError(
                            f"rate limited by the ACME server (HTTP 429{': ' + exc.detail if getattr(exc, 'detail', None) else ''}); "
                            f"it asks to wait {wait:.0f} s (Retry-After), more than the {max(left, 0):.0f} s left of "
                            f"issuer.rate_limit_wait / the order timeout; run again later") from None
                    self.recorder("rate_limited", retry_after=round(wait, 3))
                    self.sleep(wait)
                    self.waited += wait


# badNonce is retried this many times: with pebble's 5 % rejection, 8 failures in a row happen once in 4e10.
NONCE_RETRIES = 8
DEFAULT_ACCOUNT = "default"
DEFAULTS = {"account": DEFAULT_ACCOUNT, "contact": [], "terms_agreed": False, "eab_kid": None, "ca_bundle": None,
            "validate_certs": True, "preferred_chain": None, "order_timeout": 300, "request_timeout": 30,
            "rate_limit_wait": 300}
CHALLENGE_DEFAULTS = {"type": "http-01", "responder": None, "address": "", "port": 80, "webroot": None, "command": None,
                      "timeout": 60}
RESPONDERS = {"http-01": ("standalone", "webroot"), "dns-01": ("command",)}
ISSUER_KEYS = {"provider", "profile", "directory"} | set(DEFAULTS) | {"challenge"}
LIMITS = {"order_timeout": (10, 3600), "request_timeout": (1, 300), "rate_limit_wait": (0, 3600)}
# What the server sends back is bounded: a certificate chain longer than this, or larger, is refused.
MAX_CHAIN_CERTIFICATES = 10
MAX_CHAIN_BYTES = 256 * 1024
MAX_ALTERNATE_CHAINS = 5


def _problems_of(definition: dict) -> tuple[dict, list[str]]:
    issuer = definition.get("issuer") or {}
    settings = dict(DEFAULTS)
    settings.update({key: value for key, value in issuer.items() if key in DEFAULTS and value is not None})
    problems = []
    if "eab_hmac_key" in issuer:
        problems.append("issuer.eab_hmac_key must not be in a definition (it would be logged): give it in "
                        "store_issue's acme_eab_hmac_keys by account name (certfleet_acme_eab_hmac_keys, in Vault)")
    unknown = sorted(set(issuer) - ISSUER_KEYS - {"eab_hmac_key"})
    if unknown:
        problems.append(f"issuer: unknown key(s) {', '.join(unknown)} for provider acme")
    directory = issuer.get("directory")
    parsed = urllib.parse.urlsplit(directory) if isinstance(directory, str) else None
    if parsed is None or parsed.scheme not in ("https", "http") or not parsed.hostname:
        problems.append(f"issuer.directory {directory!r} must be the http(s) URL of the ACME server's directory")
    elif parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "::1", "localhost"):
        problems.append(f"issuer.directory {directory}: plain http is accepted on loopback only; use https")
    settings["directory"] = directory
    if not isinstance(settings["account"], str) or not layout.NAME_PATTERN.fullmatch(settings["account"]):
        problems.append(f"issuer.account {settings['account']!r} must be letters, digits, '.', '_' or '-' (it names a store directory)")
    contact = settings["contact"]
    contact = [contact] if isinstance(contact, str) else contact
    if not isinstance(contact, list) or not all(isinstance(item, str) and item and len(item) < 256 for item in contact):
        problems.append("issuer.contact must be a list of e-mail addresses or mailto: URLs")
        contact = []
    settings["contact"] = [item if item.startswith("mailto:") else f"mailto:{item}" for item in contact]
    for key in ("terms_agreed", "validate_certs"):
        if not isinstance(settings[key], bool):
            problems.append(f"issuer.{key} must be true or false")
    for key in ("eab_kid", "ca_bundle", "preferred_chain"):
        if settings[key] is not None and (not isinstance(settings[key], str) or not settings[key]):
            problems.append(f"issuer.{key} must be a non-empty string")
    for key, (low, high) in LIMITS.items():
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            problems.append(f"issuer.{key} must be a number of seconds from {low} to {high}, not {value!r}")
    challenge = dict(CHALLENGE_DEFAULTS)
    raw = issuer.get("challenge") or {}
    if not isinstance(raw, dict):
        problems.append("issuer.challenge must be a dict (type, responder, address, port, webroot)")
        raw = {}
    unknown = sorted(set(raw) - set(CHALLENGE_DEFAULTS))
    if unknown:
        problems.append(f"issuer.challenge: unknown key(s) {', '.join(unknown)}")
    challenge.update({key: value for key, value in raw.items() if key in CHALLENGE_DEFAULTS and value is not None})
    responders = RESPONDERS.get(challenge["type"])
    if responders is None:
        problems.append(f"issuer.challenge.type {challenge['type']!r} must be http-01 or dns-01")
        responders = RESPONDERS["http-01"]
    challenge["responder"] = challenge["responder"] or responders[0]
    if challenge["responder"] not in responders:
        problems.append(f"issuer.challenge.responder {challenge['responder']!r} must be {' or '.join(responders)} "
                        f"for {challenge['type']}")
    elif challenge["responder"] == "command" and (
            not isinstance(challenge["command"], list) or not challenge["command"]
            or not all(isinstance(item, str) and item for item in challenge["command"]) or not os.path.isabs(challenge["command"][0])):
        problems.append("issuer.challenge.command must be a list: an absolute program path, then its arguments")
    elif challenge["responder"] == "webroot" and (not isinstance(challenge["webroot"], str) or not os.path.isabs(challenge["webroot"])):
        problems.append("issuer.challenge.webroot must be an absolute directory path for responder webroot")
    port = challenge["port"]
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        problems.append(f"issuer.challenge.port {port!r} must be a TCP port (1-65535)")
    timeout = challenge["timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 1 <= timeout <= 600:
        problems.append(f"issuer.challenge.timeout {timeout!r} must be a number of seconds from 1 to 600")
    if not isinstance(challenge["address"], str):
        problems.append("issuer.challenge.address must be a string (empty: every address)")
    settings["challenge"] = challenge
    return settings, problems


def acme_settings(definition: dict) -> dict:
    """The ``issuer`` of an acme definition with defaults filled in; raises CertfleetError listing every problem."""
    settings, problems = _problems_of(definition)
    if problems:
        error = CertfleetError(f"{definition.get('name')}: {'; '.join(problems)}")
        error.errors = problems
        raise error
    return settings


def retry_after_seconds(header: str | None, *, now: datetime.datetime, default: float = 5.0) -> float:
    """Seconds a Retry-After header asks to wait (RFC 9110 section 10.2.3: seconds or an HTTP date); ``default``
    when absent or unreadable, never negative."""
    if header is None:
        return default
    header = header.strip()
    if header.isdigit():
        return float(int(header))
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return default
    if when is None:
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def split_pem_chain(text: str, *, source: str) -> list:
    """The certificates of a PEM chain the server sent, bounded in size and count."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    if len(data) > MAX_CHAIN_BYTES:
        raise CertfleetError(f"{source}: {len(data)} bytes, more than a certificate chain ({MAX_CHAIN_BYTES}); refused")
    certificates = _chain.load_certificates(data, source=source).certificates
    if not certificates or len(certificates) > MAX_CHAIN_CERTIFICATES:
        raise CertfleetError(f"{source}: {len(certificates)} certificates; expected 1 to {MAX_CHAIN_CERTIFICATES}")
    return [item.certificate for item in certificates]


def _common_name(name) -> str | None:
    from cryptography.x509.oid import NameOID
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def choose_chain(chains: list[list], preferred: str | None) -> tuple[list, str]:
    """The chain to serve among the default one (first) and the alternates: the first whose topmost certificate
    was issued by ``preferred`` (its issuer's common name, as certbot's --preferred-chain), or whose topmost
    certificate is that CA; else the default. Returns (chain, why)."""
    if not preferred:
        return chains[0], "default chain"
    for number, chain in enumerate(chains):
        top = chain[-1]
        if _common_name(top.issuer) == preferred or _common_name(top.subject) == preferred:
            return chain, "default chain" if number == 0 else f"alternate chain {number} (issuer {preferred})"
    return chains[0], f"default chain (no chain issued by {preferred!r} offered)"


def history_event(event: str, **fields) -> dict:
    """One history event of the ACME flow (``acme_order``, ``acme_authorization``, ...): no secret, no None."""
    return dict({key: value for key, value in fields.items() if value is not None}, event=event)


MAX_REASON = 600  # characters of a server's problem text kept in a message


def describe_acme_error(exc) -> str:
    """A person-readable reason from an ACME problem document or a library error (bounded: the server wrote it)."""
    text = _describe_acme_error(exc)
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "..."


def _describe_acme_error(exc) -> str:
    if HAS_ACME and isinstance(exc, acme_messages.Error):
        text = f"{exc.typ.rsplit(':', 1)[-1] if exc.typ else 'error'}: {exc.detail or exc.title or 'no detail given'}"
        for sub in exc.subproblems or ():
            identifier = getattr(getattr(sub, "identifier", None), "value", None)
            text += f"; {identifier or ''} {sub.detail or ''}".rstrip()
        return text
    if HAS_ACME and isinstance(exc, acme_errors.ValidationError):
        parts = []
        for authzr in exc.failed_authzrs:
            for challenge in authzr.body.challenges:
                if challenge.error is not None:
                    parts.append(f"{authzr.body.identifier.value}: {challenge.chall.typ} {describe_acme_error(challenge.error)}")
        return "challenge validation failed: " + "; ".join(parts)
    if HAS_ACME and isinstance(exc, acme_errors.TimeoutError):
        return "the order did not complete within issuer.order_timeout"
    return str(exc) or type(exc).__name__


def require_acme() -> None:
    if not HAS_ACME:
        raise CertfleetError("issuer.provider acme needs the Python 'acme' library on the controller "
                             "(pip install 'acme>=3,<6', see requirements.txt)")


class _Account:
    """One ACME account of the store, opened for a run: key, registration and a client."""

    def __init__(self, name: str, settings: dict, client, key, uri: str):
        self.name = name
        self.settings = settings
        self.client = client
        self.key = key
        self.uri = uri


class AcmeProvider(IssuerProvider):
    """``issuer: {provider: acme, directory: <url>, ...}``: an ACME CA validates the names and signs the CSR."""

    name = "acme"

    def __init__(self, *, passphrase: str | None = None, eab_hmac_keys: dict | None = None, sleep=time.sleep):
        self._passphrase = passphrase
        self._eab_hmac_keys = dict(eab_hmac_keys or {})
        self._sleep = sleep
        self._run: RunSettings | None = None
        self._accounts: dict = {}
        self._account_settings: dict = {}
        self._events: list = []

    # -- phase 1 and the session ------------------------------------------------------------------
    def check(self, definition: dict) -> list[str]:
        problems = _problems_of(definition)[1]
        try:
            renew_before_days(definition)
        except CertfleetError as exc:
            problems.append(str(exc))
        return problems

    @contextlib.contextmanager
    def session(self, run: RunSettings, definitions: list[dict]):
        self._run = run
        for definition in definitions:
            settings = acme_settings(definition)
            seen = self._account_settings.setdefault(settings["account"], settings)
            if seen["directory"] != settings["directory"]:
                raise CertfleetError(f"{definition['name']}: ACME account {settings['account']} is used with two directories "
                                     f"({seen['directory']} and {settings['directory']}); give each its own issuer.account")
        yield

    # -- deciding -------------------------------------------------------------------------------
    def needs_issuance(self, context: IssueContext) -> tuple[bool, str]:
        settings = acme_settings(context.definition)
        if context.csr_pem is None and not context.check_mode:
            raise CertfleetError(f"no {layout.filename('csr')} in {context.stored.directory}: run certfleet.tls.store_request "
                                 f"(the request playbook) first")
        return renewal_decision(context.current, context.stored.state, csr_pem=context.csr_pem, directory=settings["directory"],
                                renew_before=renew_before_days(context.definition), now=context.now)

    # -- obtaining ------------------------------------------------------------------------------
    def obtain(self, context: IssueContext) -> Issued:
        settings = acme_settings(context.definition)
        if context.check_mode or context.csr_pem is None:
            return Issued(None, reason=context.reason)
        require_acme()
        events: list[dict] = []
        account = self._account(settings["account"], events)
        network = account.client.net
        started = time.monotonic()
        network.deadline = started + settings["order_timeout"]
        network.waited = 0.0
        network.recorder = lambda kind, **fields: events.append(history_event(f"acme_{kind}", **fields))
        try:
            certificate, chain, order_uri, why = self._order(context, account, settings, events)
        except CertfleetError as exc:
            raise CertfleetError(f"ACME order at {settings['directory']} failed: {exc}") from None
        except (acme_messages.Error, acme_errors.Error, josepy.errors.Error, ValueError) as exc:
            raise CertfleetError(f"ACME order at {settings['directory']} failed: {describe_acme_error(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise CertfleetError(f"ACME order at {settings['directory']} failed: {_network_reason(exc)}") from None
        events.append(history_event("acme_chain", chosen=why))
        details = {"acme_directory": settings["directory"], "acme_account": settings["account"]}
        return Issued(certificate, chain, details=dict(details, acme_order=order_uri), reason=context.reason,
                      history=events)

    def _order(self, context: IssueContext, account: _Account, settings: dict, events: list) -> tuple:
        client = account.client
        csr_pem = context.csr_pem
        wall_deadline = datetime.datetime.now() + datetime.timedelta(seconds=settings["order_timeout"])
        order = client.new_order(csr_pem)
        events.append(history_event("acme_order", status=order.body.status.name, order=order.uri,
                                    identifiers=[identifier.value for identifier in order.body.identifiers]))
        responder = acme_challenges.responder_for(settings["challenge"])
        kind = settings["challenge"]["type"]
        pending = []
        for authorization in order.authorizations:
            identifier = authorization.body.identifier.value
            if authorization.body.status == acme_messages.STATUS_VALID:
                events.append(history_event("acme_authorization", identifier=identifier, status="valid", reused=True))
                continue
            offered = [challenge for challenge in authorization.body.challenges if challenge.chall.typ == kind]
            if not offered:
                kinds = ", ".join(sorted(challenge.chall.typ for challenge in authorization.body.challenges))
                raise CertfleetError(f"the server offers no {kind} challenge for {identifier} (offered: {kinds or 'none'})")
            pending.append((identifier, offered[0]))
        with responder:
            for identifier, challenge in pending:
                response, validation = challenge.response_and_validation(account.key)
                if isinstance(challenge.chall, acme_challenge_types.DNS01):
                    # A wildcard's record is the base domain's (RFC 8555 section 8.4).
                    domain = identifier[2:] if identifier.startswith("*.") else identifier
                    responder.add(challenge.chall.validation_domain_name(domain), validation)
                else:
                    responder.add(challenge.chall.encode("token"), validation)
                client.answer_challenge(challenge, response)
                events.append(history_event("acme_challenge", identifier=identifier, type=kind, status="answered",
                                            responder=settings["challenge"]["responder"]))
            order = client.poll_authorizations(order, wall_deadline)
        for authorization in order.authorizations:
            events.append(history_event("acme_authorization", identifier=authorization.body.identifier.value,
                                        status=authorization.body.status.name))
        order = client.finalize_order(order, wall_deadline, fetch_alternative_chains=bool(settings["preferred_chain"]))
        events.append(history_event("acme_order", status=order.body.status.name, order=order.uri))
        chains = [split_pem_chain(order.fullchain_pem, source="the certificate the ACME server sent")]
        for number, text in enumerate((order.alternative_fullchains_pem or [])[:MAX_ALTERNATE_CHAINS], start=1):
            chains.append(split_pem_chain(text, source=f"alternate chain {number} the ACME server sent"))
        served, why = choose_chain(chains, settings["preferred_chain"])
        leaf = served[0]
        csr = x509.load_pem_x509_csr(csr_pem)
        if leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
                csr.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            raise CertfleetError("the certificate the ACME server sent is not for the key of the definition's CSR")
        return leaf, served[1:], order.uri, why

    # -- the account ----------------------------------------------------------------------------
    def _account(self, name: str, events: list) -> _Account:
        if name in self._accounts:
            return self._accounts[name]
        settings = self._account_settings[name]
        store_path = self._run.store_path
        if not self._passphrase:
            raise CertfleetError(f"ACME account {name}: no store passphrase to encrypt its key (store_issue passphrase)")
        key_path = layout.acme_account_path(store_path, name, "key")
        registration_path = layout.acme_account_path(store_path, name, "registration")
        key_pem = _read(key_path)
        try:
            registration = json.loads(_read(registration_path) or b"{}")
        except ValueError:
            raise CertfleetError(f"{registration_path}: not valid JSON; fix or remove it (the account key stays)") from None
        if not isinstance(registration, dict):
            raise CertfleetError(f"{registration_path}: expected a JSON object")
        if registration and registration.get("directory") != settings["directory"]:
            raise CertfleetError(f"ACME account {name} is registered at {registration.get('directory')}, not "
                                 f"{settings['directory']}; give the definition another issuer.account")
        if key_pem is None:
            private_key = ec.generate_private_key(ec.SECP256R1())
        else:
            private_key = _chain.extract_private_key(key_pem, source=key_path, passphrase=self._passphrase)
        jwk = josepy.JWKEC(key=private_key) if isinstance(private_key, ec.EllipticCurvePrivateKey) else josepy.JWKRSA(key=private_key)
        alg = josepy.ES256 if isinstance(private_key, ec.EllipticCurvePrivateKey) else josepy.RS256
        verify = (settings["ca_bundle"] or True) if settings["validate_certs"] else False
        network = _BoundedNetwork(jwk, alg=alg, verify=verify, timeout=settings["request_timeout"],
                                  rate_limit_wait=settings["rate_limit_wait"], recorder=lambda *a, **k: None, sleep=self._sleep)
        network.deadline = time.monotonic() + settings["order_timeout"]
        try:
            directory = acme_client.ClientV2.get_directory(settings["directory"], network)
            client = acme_client.ClientV2(directory, network)
            if registration.get("uri") and key_pem is not None:
                regr = acme_messages.RegistrationResource(uri=registration["uri"], body=acme_messages.Registration())
                network.account = regr
                try:
                    client.query_registration(regr)
                except acme_messages.Error as exc:
                    raise CertfleetError(
                        f"ACME account {name} ({registration['uri']}) is not usable: {describe_acme_error(exc)}; if it was "
                        f"deactivated, remove {layout.acme_account_dir(store_path, name)} or name another issuer.account "
                        f"to register a new one") from None
                uri = registration["uri"]
            else:
                uri = self._register(name, settings, client, jwk, directory)
                self._write_account(name, settings, private_key, uri)
                events.append(history_event("acme_account_registered", account=name, uri=uri))
        except CertfleetError:
            raise
        except (acme_messages.Error, acme_errors.Error, josepy.errors.Error, ValueError) as exc:
            raise CertfleetError(f"ACME server {settings['directory']}: {describe_acme_error(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise CertfleetError(f"ACME server {settings['directory']}: {_network_reason(exc)}") from None
        account = _Account(name, settings, client, jwk, uri)
        self._accounts[name] = account
        return account

    def _register(self, name: str, settings: dict, client, jwk, directory) -> str:
        meta = directory.meta
        terms = getattr(meta, "terms_of_service", None)
        if terms and not settings["terms_agreed"]:
            raise CertfleetError(f"ACME account {name}: the server asks to agree to its terms of service ({terms}); "
                                 f"read them and set issuer.terms_agreed: true")
        binding = None
        if settings["eab_kid"]:
            hmac_key = self._eab_hmac_keys.get(name)
            if not hmac_key:
                raise CertfleetError(f"ACME account {name}: issuer.eab_kid is set but acme_eab_hmac_keys has no HMAC key "
                                     f"for account {name}")
            try:
                binding = acme_messages.ExternalAccountBinding.from_data(
                    account_public_key=jwk.public_key(), kid=settings["eab_kid"], hmac_key=hmac_key, directory=directory)
            except (ValueError, TypeError, josepy.errors.Error):
                raise CertfleetError(f"ACME account {name}: the EAB HMAC key is not base64url") from None
        elif getattr(meta, "external_account_required", False):
            raise CertfleetError(f"ACME account {name}: the server requires External Account Binding; set issuer.eab_kid "
                                 f"and the HMAC key in acme_eab_hmac_keys (both from the CA)")
        fields = {"terms_of_service_agreed": bool(settings["terms_agreed"]) or None}
        registration = acme_messages.NewRegistration.from_data(
            email=",".join(item[len("mailto:"):] for item in settings["contact"]) or None,
            external_account_binding=binding, **{key: value for key, value in fields.items() if value is not None})
        try:
            regr = client.new_account(registration)
        except acme_errors.ConflictError as exc:  # the key already has an account (a registration file was lost)
            return str(exc)
        return regr.uri

    def _write_account(self, name: str, settings: dict, private_key, uri: str) -> None:
        """The account key (encrypted with the store passphrase) and its registration, written before any order."""
        store_path = self._run.store_path
        directory = layout.acme_account_dir(store_path, name)
        ensure_directory(directory, 0o700, store_path=store_path)
        key_pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(self._passphrase.encode("utf-8")))
        write_file_atomic(layout.acme_account_path(store_path, name, "key"), key_pem, option=f"ACME account {name} key",
                          store_path=store_path)
        record = {"uri": uri, "directory": settings["directory"], "contact": settings["contact"],
                  "eab_kid": settings["eab_kid"], "registered": self._run.now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        write_file_atomic(layout.acme_account_path(store_path, name, "registration"),
                          (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"),
                          option=f"ACME account {name} registration", store_path=store_path)


def renewal_decision(current, state: dict, *, csr_pem: bytes | None, directory: str, renew_before: int,
                     now: datetime.datetime) -> tuple[bool, str]:
    """(True, why) when the ACME CA must issue now: no certificate, another CSR or issuer, or the renewal window."""
    if current is None:
        return True, "no certificate yet"
    record = state.get("certificate") or {}
    if record.get("provider") != "acme" or record.get("acme_directory") != directory:
        return True, f"issuer changed to ACME {directory}"
    if csr_pem is not None and record.get("csr_sha256") not in (None, sha256_hex(csr_pem)):
        return True, "the CSR changed"
    not_after = current.not_valid_after_utc
    renew_from = not_after - datetime.timedelta(days=renew_before)
    if now >= renew_from:
        return True, f"renewal due: expires {not_after:%Y-%m-%d}, renew_before_days {renew_before}"
    return False, f"valid until {not_after:%Y-%m-%d}, renewal from {renew_from:%Y-%m-%d}"


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(1024 * 1024)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CertfleetError(f"{path}: cannot read ({exc.strerror})") from None


def _network_reason(exc) -> str:
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS verification of the ACME server failed (give issuer.ca_bundle): {text[:300]}"
    if isinstance(exc, requests.exceptions.Timeout):
        return "the ACME server did not answer within issuer.request_timeout"
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = "connection refused" if "refused" in text.lower() else text[:300]
        return f"cannot reach the ACME server ({reason})"
    return text[:300]
