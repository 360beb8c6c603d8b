# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The chain engine's validation verdicts (issue 18): name constraints, critical extensions, parse guards, keys, EKU.

Each test builds the smallest chain that shows one rule with pki_builder and asserts both the
verdict and that the message names the reason. The x509-limbo run (test_limbo.py) covers the
same rules against the public suite.
"""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import json
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._chain import constraints as _constraints
from ansible_collections.certfleet.tls.plugins.module_utils._chain import verify as _verify
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

NOW = datetime.datetime.now(datetime.timezone.utc)


def _nc(permitted=None, excluded=None):
    return (x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=excluded), True)


def _ca(cn, *, issuer, extra=(), key=None):
    return pb.make_intermediate(cn, issuer=issuer, key=key, extra_extensions=list(extra))


def _leaf(issuer, *, san=None, ips=(), cn="leaf.example.test", extra=(), subject=None):
    key = pb.make_key()
    names = [x509.DNSName(name) for name in (san if san is not None else [cn])] + [x509.IPAddress(ip) for ip in ips]
    extensions = list(extra)
    if names:
        extensions.append((x509.SubjectAlternativeName(names), False))
    extensions.append((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False))
    cert = pb.issue(subject or pb.name(cn), public_key=key.public_key(), issuer_name=issuer.cert.subject, signing_key=issuer.key,
                    ca=False, aki_key=issuer.key.public_key(), extra_extensions=extensions)
    return pb.Issued(cert, key)


def _verdict(leaf, intermediates, root, *, peer=None):
    return _verify.server_verdict(leaf.cert, [item.cert for item in intermediates], trust_anchors=[root.cert], peer_name=peer,
                                  now=NOW)


@pytest.fixture(scope="module")
def root():
    return pb.make_root("Validation Root")


# --------------------------------------------------------------------------------------------
# name constraints


@pytest.mark.parametrize("permitted, excluded, san, ips, ok", [
    ([x509.DNSName("example.test")], None, ["www.example.test"], (), True),
    ([x509.DNSName("example.test")], None, ["example.test"], (), True),
    ([x509.DNSName("example.test")], None, ["www.other.test"], (), False),
    ([x509.DNSName("example.test")], None, ["www.example.test", "evil.test"], (), False),  # every name, not the first
    ([x509.DNSName("example.test")], None, ["badexample.test"], (), False),  # label boundary
    (None, [x509.DNSName("secret.example.test")], ["a.secret.example.test"], (), False),
    (None, [x509.DNSName("secret.example.test")], ["www.example.test"], (), True),
    ([x509.DNSName("example.test")], [x509.DNSName("example.test")], ["www.example.test"], (), False),  # excluded wins
    # CVE-2025-61727: a wildcard may stand for an excluded name, or one outside the permitted subtree.
    (None, [x509.DNSName("bar.example.test")], ["*.example.test"], (), False),
    ([x509.DNSName("foo.example.test")], None, ["*.example.test"], (), False),
    ([x509.DNSName("example.test")], None, ["*.example.test"], (), True),
    ([x509.IPAddress(ipaddress.ip_network("192.0.2.0/24"))], None, ["www.example.test"], ["192.0.2.7"], True),
    ([x509.IPAddress(ipaddress.ip_network("192.0.2.0/24"))], None, ["www.example.test"], ["198.51.100.7"], False),
    (None, [x509.IPAddress(ipaddress.ip_network("::1/128"))], ["www.example.test"], ["::1"], False),
    # A constraint on one form says nothing about the others (RFC 5280 §4.2.1.10).
    ([x509.IPAddress(ipaddress.ip_network("192.0.2.0/24"))], None, ["anything.test"], (), True),
])
def test_name_constraints_dns_and_ip(root, permitted, excluded, san, ips, ok):
    ica = _ca("Constrained CA", issuer=root, extra=[_nc(permitted, excluded)])
    leaf = _leaf(ica, san=san, ips=[ipaddress.ip_address(ip) for ip in ips])
    accepted, reason = _verdict(leaf, [ica], root)
    assert accepted is ok, reason
    if not ok:
        assert "name constraints" in reason


def test_name_constraints_of_the_root_and_of_every_level(root):
    constrained_root = pb.make_root("Constrained Root", extra_extensions=[_nc([x509.DNSName("example.test")])])
    ica = _ca("Open CA", issuer=constrained_root)
    assert _verdict(_leaf(ica, san=["a.example.test"]), [ica], constrained_root)[0] is True
    accepted, reason = _verdict(_leaf(ica, san=["a.other.test"]), [ica], constrained_root)
    assert not accepted and "Constrained Root" in reason
    # An intermediate's own SAN is constrained by the CAs above it.
    ica_with_san = pb.make_intermediate("CA With SAN", issuer=constrained_root,
                                        extra_extensions=[(x509.SubjectAlternativeName([x509.DNSName("ca.other.test")]), False)])
    accepted, reason = _verdict(_leaf(ica_with_san, san=["a.example.test"]), [ica_with_san], constrained_root)
    assert not accepted and "ca.other.test" in reason


def test_narrower_constraints_below_are_applied_too(root):
    wide = _ca("Wide CA", issuer=root, extra=[_nc([x509.DNSName("foo.example.test"), x509.DNSName("bar.example.test")])])
    narrow = _ca("Narrow CA", issuer=wide, extra=[_nc([x509.DNSName("bar.example.test")])])
    assert _verdict(_leaf(narrow, san=["bar.example.test"]), [narrow, wide], root)[0] is True
    assert _verdict(_leaf(narrow, san=["foo.example.test"]), [narrow, wide], root)[0] is False


def test_self_issued_intermediate_is_not_constrained_but_the_leaf_is(root):
    ca_key = pb.make_key()
    ica = _ca("Rollover CA", issuer=root, key=ca_key, extra=[_nc([x509.DNSName("example.test")])])
    # The same CA re-issued to itself (a key rollover certificate) carries an outside name: allowed.
    rollover = pb.issue(pb.name("Rollover CA"), public_key=ca_key.public_key(), issuer_name=ica.cert.subject, signing_key=ca_key,
                        aki_key=ca_key.public_key(), extra_extensions=[(x509.SubjectAlternativeName([x509.DNSName("x.other.test")]), False)])
    rolled = pb.Issued(rollover, ca_key)
    assert _verdict(_leaf(rolled, san=["a.example.test"]), [rolled, ica], root)[0] is True
    assert _verdict(_leaf(rolled, san=["a.other.test"]), [rolled, ica], root)[0] is False


def test_directory_and_email_constraints(root):
    ica = _ca("DN CA", issuer=root, extra=[_nc([x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Good")])),
                                                x509.RFC822Name("example.test")])])
    good = _leaf(ica, subject=x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Good"),
                                         x509.NameAttribute(NameOID.COMMON_NAME, "leaf.example.test")]))
    bad = _leaf(ica, subject=x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Evil"),
                                        x509.NameAttribute(NameOID.COMMON_NAME, "leaf.example.test")]))
    assert _verdict(good, [ica], root)[0] is True
    accepted, reason = _verdict(bad, [ica], root)
    assert not accepted and "directory subtrees" in reason
    mail = _leaf(ica, subject=x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Good"),
                                         x509.NameAttribute(NameOID.EMAIL_ADDRESS, "admin@evil.test")]))
    accepted, reason = _verdict(mail, [ica], root)
    assert not accepted and "admin@evil.test" in reason


def test_subject_cn_is_constrained_as_a_dns_name_without_san(root):
    ica = _ca("CN CA", issuer=root, extra=[_nc([x509.DNSName("example.test")])])
    outside = _leaf(ica, san=[], cn="www.other.test")
    accepted, reason = _verdict(outside, [ica], root)
    assert not accepted and "www.other.test" in reason
    assert _verdict(_leaf(ica, san=[], cn="www.example.test"), [ica], root)[0] is True
    assert _verdict(_leaf(ica, san=[], cn="Web Server 1"), [ica], root)[0] is True  # not a DNS name


def test_unprocessed_name_form_under_constraint_is_rejected(root):
    ica = _ca("URI CA", issuer=root, extra=[_nc(excluded=[x509.UniformResourceIdentifier("http://evil.test")])])
    leaf = _leaf(ica, extra=[])
    assert _verdict(leaf, [ica], root)[0] is True  # no URI name: nothing to process
    with_uri = pb.issue(pb.name("uri.example.test"), public_key=pb.make_key().public_key(), issuer_name=ica.cert.subject,
                        signing_key=ica.key, ca=False, aki_key=ica.key.public_key(), extra_extensions=[
                            (x509.SubjectAlternativeName([x509.DNSName("uri.example.test"), x509.UniformResourceIdentifier("http://a.test")]), False)])
    accepted, reason = _verdict(pb.Issued(with_uri, None), [ica], root)
    assert not accepted and "not processed" in reason


def test_malformed_constraint_and_constraint_on_a_leaf(root):
    leading_dot = _ca("Dot CA", issuer=root, extra=[_nc([x509.DNSName(".example.test")])])
    accepted, reason = _verdict(_leaf(leading_dot, san=["a.example.test"]), [leading_dot], root)
    assert not accepted and "malformed dNSName name constraint" in reason
    leaf = _leaf(root, san=["a.example.test"], extra=[_nc([x509.DNSName("example.test")])])
    accepted, reason = _verdict(leaf, [], root)
    assert not accepted and "not a CA certificate" in reason


def test_name_constraint_work_is_bounded(root, monkeypatch):
    monkeypatch.setattr(_constraints, "MAX_NAME_CONSTRAINT_CHECKS", 50)
    ica = _ca("Many CA", issuer=root, extra=[_nc([x509.DNSName(f"n{i}.example.test") for i in range(20)])])
    leaf = _leaf(ica, san=[f"h{i}.n{i}.example.test" for i in range(20)])
    accepted, reason = _verdict(leaf, [ica], root)
    assert not accepted and "comparisons" in reason


def test_private_ca_name_constraints_hold_for_its_own_certificates(tmp_path):
    """The collection's private CA emits permitted subtrees; what it issues inside them validates, outside does not."""
    ca_root = pb.make_root("Private Root", extra_extensions=[_nc([x509.DNSName("corp.test"),
                                                                 x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))])])
    assert _verdict(_leaf(ca_root, san=["app.corp.test"], ips=[ipaddress.ip_address("10.1.2.3")]), [], ca_root)[0] is True
    assert _verdict(_leaf(ca_root, san=["app.corp.test"], ips=[ipaddress.ip_address("192.0.2.1")]), [], ca_root)[0] is False


# --------------------------------------------------------------------------------------------
# critical extensions (RFC 5280 §4.2)

_UNKNOWN = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55738.666.1"), b"\x05\x00")


@pytest.mark.parametrize("where", ["leaf", "intermediate", "root"])
def test_unknown_critical_extension_is_rejected_anywhere(where):
    root = pb.make_root("Crit Root", extra_extensions=[(_UNKNOWN, True)] if where == "root" else [])
    ica = _ca("Crit CA", issuer=root, extra=[(_UNKNOWN, True)] if where == "intermediate" else [])
    leaf = _leaf(ica, extra=[(_UNKNOWN, True)] if where == "leaf" else [])
    with pytest.raises(CertfleetError, match=r"unknown critical extension 1\.3\.6\.1\.4\.1\.55738\.666\.1"):
        _chain.build_chain(leaf.cert, [ica.cert], trust_anchors=[root.cert])


def test_unknown_non_critical_extension_is_fine(root):
    ica = _ca("Noncrit CA", issuer=root, extra=[(_UNKNOWN, False)])
    leaf = _leaf(ica, extra=[(_UNKNOWN, False)])
    assert _chain.build_chain(leaf.cert, [ica.cert], trust_anchors=[root.cert]).complete


def test_must_be_non_critical_extension_marked_critical(root):
    aia = x509.AuthorityInformationAccess([x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                                                                  x509.UniformResourceIdentifier("http://ca.test/ca.der"))])
    leaf = _leaf(root, extra=[(aia, True)])
    with pytest.raises(CertfleetError, match=r"authorityInfoAccess .*critical"):
        _chain.build_chain(leaf.cert, [], trust_anchors=[root.cert])


# --------------------------------------------------------------------------------------------
# parse guards: no exception from certificate content escapes


def _oid_der(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytes([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.insert(0, 0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(chunk)
    return bytes([0x06, len(body)]) + body


def _duplicate_extension(certificate) -> x509.Certificate:
    """The certificate with its second private extension's OID rewritten to the first's: a DuplicateExtension on read."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    second, first = _oid_der("1.3.6.1.4.1.55738.2"), _oid_der("1.3.6.1.4.1.55738.1")
    assert der.count(second) == 1
    return x509.load_der_x509_certificate(der.replace(second, first))


def _with_two_private_extensions(issuer, *, ca):
    extensions = [(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55738.1"), b"\x05\x00"), False),
                  (x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55738.2"), b"\x05\x00"), False)]
    if ca:
        return pb.make_intermediate("Dup CA", issuer=issuer, extra_extensions=extensions)
    return _leaf(issuer, extra=extensions)


def test_duplicate_extension_in_the_leaf_is_a_parse_result(root):
    leaf = _duplicate_extension(_with_two_private_extensions(root, ca=False).cert)
    with pytest.raises(x509.DuplicateExtension):
        list(leaf.extensions)
    with pytest.raises(CertfleetError, match=r"^certificate cannot be parsed: leaf .*DuplicateExtension"):
        _chain.build_chain(leaf, [], trust_anchors=[root.cert])
    accepted, reason = _verify.server_verdict(leaf, [], trust_anchors=[root.cert], peer_name="leaf.example.test", now=NOW)
    assert not accepted and "certificate cannot be parsed" in reason


def test_unparsable_issuer_is_left_out_and_named(root):
    ica = _with_two_private_extensions(root, ca=True)
    broken = _duplicate_extension(ica.cert)
    leaf = _leaf(ica)
    with pytest.raises(CertfleetError, match=r"was left out: certificate cannot be parsed: .*DuplicateExtension"):
        _chain.build_chain(leaf.cert, [broken], trust_anchors=[root.cert])
    # Another copy of the issuer that parses still gives the path.
    assert _chain.build_chain(leaf.cert, [broken, ica.cert], trust_anchors=[root.cert]).complete


def test_malformed_ip_constraint_and_undecodable_key_from_limbo():
    """Certificates cryptography cannot build: taken from the vendored x509-limbo testcases."""
    path = os.path.join(os.path.dirname(os.path.realpath(__file__)), *([os.pardir] * 4), "data", "limbo", "limbo-server.json.gz")
    with gzip.open(os.path.normpath(path), "rt", encoding="utf-8") as handle:
        cases = {case["id"]: case for case in json.load(handle)["testcases"]}

    def load(pem: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate(pem.encode())

    for name, pattern in (("rfc5280::nc::invalid-ipv4-address", "TypeError"), ("invalid::invalid-issuer-key", "deserialize"),
                          ("webpki::explicit-curve", "explicit curve")):
        case = cases[name]
        leaf = load(case["peer_certificate"])
        accepted, reason = _verify.server_verdict(leaf, [load(pem) for pem in case["untrusted_intermediates"]],
                                                  trust_anchors=[load(pem) for pem in case["trusted_certs"]],
                                                  peer_name=case["expected_peer_name"]["value"], now=NOW)
        assert not accepted and "certificate cannot be parsed" in reason and pattern in reason, (name, reason)


# --------------------------------------------------------------------------------------------
# decisions: weak CA keys, intermediate EKU, the leaf as a server certificate


def _root_with_key(key, cn, algorithm=hashes.SHA256()):
    subject = pb.name(cn)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, algorithm))
    return pb.Issued(cert, key)


@pytest.mark.parametrize("key, message", [
    (rsa.generate_private_key(public_exponent=65537, key_size=1024), "RSA key of 1024 bits"),
    (ec.generate_private_key(ec.SECP192R1()), "secp192r1"),
    (dsa.generate_private_key(key_size=2048), "DSA key"),
])
def test_weak_ca_keys_are_rejected(key, message):
    weak = _root_with_key(key, "Weak Root")
    leaf = _leaf(weak)
    with pytest.raises(CertfleetError, match=message):
        _chain.build_chain(leaf.cert, [], trust_anchors=[weak.cert])


def test_strong_rsa_ca_key_is_fine():
    strong = _root_with_key(rsa.generate_private_key(public_exponent=65537, key_size=2048), "Strong Root")
    assert _chain.build_chain(_leaf(strong).cert, [], trust_anchors=[strong.cert]).complete


@pytest.mark.parametrize("usages, ok", [
    ([ExtendedKeyUsageOID.CLIENT_AUTH], False),
    ([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], True),
    ([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE], True),
])
def test_intermediate_eku_must_allow_server_auth(root, usages, ok):
    ica = _ca("EKU CA", issuer=root, extra=[(x509.ExtendedKeyUsage(usages), False)])
    leaf = _leaf(ica)
    if ok:
        assert _chain.build_chain(leaf.cert, [ica.cert], trust_anchors=[root.cert]).complete
    else:
        with pytest.raises(CertfleetError, match="extKeyUsage without serverAuth"):
            _chain.build_chain(leaf.cert, [ica.cert], trust_anchors=[root.cert])


def test_leaf_must_be_a_server_certificate(root):
    client_only = pb.issue(pb.name("c.example.test"), public_key=pb.make_key().public_key(), issuer_name=root.cert.subject,
                           signing_key=root.key, ca=False, extra_extensions=[
                               (x509.SubjectAlternativeName([x509.DNSName("c.example.test")]), False),
                               (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)])
    accepted, reason = _verify.server_verdict(client_only, [], trust_anchors=[root.cert], peer_name="c.example.test", now=NOW)
    assert not accepted and "serverAuth" in reason
    ca_leaf = pb.make_intermediate("ca.example.test", issuer=root, extra_extensions=[
        (x509.SubjectAlternativeName([x509.DNSName("ca.example.test")]), False)])
    accepted, reason = _verify.server_verdict(ca_leaf.cert, [], trust_anchors=[root.cert], peer_name="ca.example.test", now=NOW)
    assert not accepted and "is a CA certificate" in reason
    good = _leaf(root)
    assert _verify.server_verdict(good.cert, [], trust_anchors=[root.cert], peer_name="leaf.example.test", now=NOW)[0] is True
    accepted, reason = _verify.server_verdict(good.cert, [], trust_anchors=[root.cert], peer_name="other.example.test", now=NOW)
    assert not accepted and "name mismatch" in reason


def test_validity_has_whole_second_granularity(root):
    end = NOW.replace(microsecond=0) + datetime.timedelta(days=1)
    leaf = pb.issue(pb.name("t.example.test"), public_key=pb.make_key().public_key(), issuer_name=root.cert.subject,
                    signing_key=root.key, ca=False, not_before=NOW - datetime.timedelta(days=1), not_after=end,
                    extra_extensions=[(x509.SubjectAlternativeName([x509.DNSName("t.example.test")]), False)])
    at_end = end + datetime.timedelta(milliseconds=5)
    assert _verify.server_verdict(leaf, [], trust_anchors=[root.cert], peer_name="t.example.test", now=at_end)[0] is True
    later = end + datetime.timedelta(seconds=1)
    assert _verify.server_verdict(leaf, [], trust_anchors=[root.cert], peer_name="t.example.test", now=later)[0] is False


def test_malformed_name_of_an_unconstrained_form_is_not_judged(root):
    ip_only = _ca("IP Only CA", issuer=root, extra=[_nc([x509.IPAddress(ipaddress.ip_network("192.0.2.0/24"))])])
    odd = _leaf(ip_only, san=["-odd-.example.test"])
    assert _verdict(odd, [ip_only], root)[0] is True  # no DNS constraint: the DNS name's syntax is not the constraint's business
    dns_only = _ca("DNS Only CA", issuer=root, extra=[_nc([x509.DNSName("example.test")])])
    accepted, reason = _verdict(_leaf(dns_only, san=["-odd-.example.test"]), [dns_only], root)
    assert not accepted and "malformed DNS name" in reason


def test_private_ca_refuses_a_ca_key_the_engine_would_reject(tmp_path):
    """Consistency: the private CA creates no CA key that the chain engine then calls weak (RSA size not a multiple of 8)."""
    from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca  # pylint: disable=import-outside-toplevel

    with pytest.raises(CertfleetError, match="a CA key needs at least 2048 bits, a multiple of 8, not 2052"):
        _ca.run_private_ca(store_path=str(tmp_path), name="corp", passphrase="correct horse battery",
                           key_spec={"type": "RSA", "size": 2052})
    assert not (tmp_path / "ca").exists()
