"""Scenario certificates for the scan range: one class of endpoint problem each.

``build_range_pki()`` makes every certificate (EC P-256 unless a scenario needs RSA);
``SCENARIOS`` says, for each class, what the server presents and how the scanner must
classify it. Built with ``pki_builder`` plus the two things it does not do on purpose:
SHA-1 signatures and 1024-bit RSA keys.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

SERVER_NAME = "www.scan.test"
OTHER_NAME = "other.scan.test"
DAY = datetime.timedelta(days=1)


def weak_leaf(cn: str, *, issuer: pb.Issued, hash_name: str = "sha256", rsa_bits: int | None = None,
              days: int = 90, san: list[str] | None = None) -> pb.Issued:
    """A leaf signed with ``hash_name`` (sha1 allowed) and/or with an RSA key of ``rsa_bits``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits) if rsa_bits else ec.generate_private_key(ec.SECP256R1())
    now = pb.utcnow() - DAY
    builder = (
        x509.CertificateBuilder()
        .subject_name(pb.name(cn))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in san or [cn]]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    )
    cert = builder.sign(issuer.key, hashes.SHA256())
    if hash_name == "sha1":
        cert = _resign_sha1(cert, issuer.key)
    return pb.Issued(cert, key, f"rsa{rsa_bits}" if rsa_bits else "ec256", cn)


def _der_tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + content


def _resign_sha1(cert: x509.Certificate, issuer_key) -> x509.Certificate:
    """The same certificate signed with sha1WithRSAEncryption (cryptography >= 47 refuses to make one).

    sha256WithRSAEncryption and sha1WithRSAEncryption OIDs encode to the same length, so the
    TBSCertificate keeps its structure; it is re-signed and the certificate reassembled.
    """
    if not isinstance(issuer_key, rsa.RSAPrivateKey):
        raise ValueError("SHA-1 re-signing needs an RSA issuer")
    sha256_rsa = bytes.fromhex("06092a864886f70d01010b")
    sha1_rsa = bytes.fromhex("06092a864886f70d010105")
    tbs = cert.tbs_certificate_bytes
    if tbs.count(sha256_rsa) != 1:
        raise ValueError("unexpected TBSCertificate layout")
    tbs = tbs.replace(sha256_rsa, sha1_rsa)
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    algorithm = _der_tlv(0x30, sha1_rsa + b"\x05\x00")
    der = _der_tlv(0x30, tbs + algorithm + _der_tlv(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def pem_of(items: list) -> bytes:
    """PEM of certificates (Issued or x509) in order."""
    return b"".join((item.cert if isinstance(item, pb.Issued) else item).public_bytes(serialization.Encoding.PEM) for item in items)


@dataclass
class Scenario:
    """One endpoint class: what its server does and the verdict the scanner must reach."""

    name: str
    kind: str = "tls"  # tls, http, silent, closed, smtp, smtp_no_starttls, reset, sni_reject
    chain: list = field(default_factory=list)  # Issued, leaf first: what the server sends
    server_name: str = SERVER_NAME
    weak: bool = False  # the server needs OpenSSL security level 0
    host: str = "127.0.0.1"
    expected_fingerprint: str | None = None
    outcome: str = "ok"
    status: str = "ok"
    failing: dict = field(default_factory=dict)  # check -> status for every check that is not ok

    @property
    def key(self):
        """Private key of the leaf."""
        return self.chain[0].key if self.chain else None


@dataclass
class RangePKI:
    """Every CA and the scenarios built on them."""

    root: pb.Issued
    intermediate: pb.Issued
    private_root: pb.Issued
    scenarios: dict

    @property
    def trust_pem(self) -> bytes:
        """The test trusted CA set: the scan test root only."""
        return self.root.pem


def build_range_pki() -> RangePKI:
    """The CAs and one Scenario per endpoint class."""
    now = pb.utcnow()
    root = pb.make_root("Scan Test Root", days=3650)
    inter = pb.make_intermediate("Scan Test Int", issuer=root, days=1825)
    int_a = pb.make_intermediate("Scan Test Int A", issuer=root, days=1825)
    int_b = pb.make_intermediate("Scan Test Int B", issuer=int_a, days=1500)
    short_int = pb.make_intermediate("Scan Short Int", issuer=root, days=45)
    private_root = pb.make_root("Scan Private Root", days=3650)
    private_int = pb.make_intermediate("Scan Private Int", issuer=private_root, days=1825)
    rsa_int = pb.make_intermediate("Scan RSA Int", issuer=root, key_type="rsa2048", days=1825)

    def leaf(**kwargs) -> pb.Issued:
        kwargs.setdefault("days", 90)
        return pb.make_leaf(SERVER_NAME, issuer=kwargs.pop("issuer", inter), **kwargs)

    healthy = leaf()
    other = leaf()
    self_key = pb.make_key()
    self_signed = pb.Issued(pb.issue(pb.name(SERVER_NAME), public_key=self_key.public_key(), issuer_name=pb.name(SERVER_NAME),
                                     signing_key=self_key, ca=False, days=90, san=[SERVER_NAME]), self_key, "ec256", SERVER_NAME)
    scenarios = [
        Scenario("healthy", chain=[healthy, inter]),
        Scenario("healthy_rsa_chain", chain=[leaf(issuer=rsa_int), rsa_int]),
        Scenario("expired", chain=[leaf(not_before=now - 100 * DAY, not_after=now - 5 * DAY), inter],
                 status="critical", failing={"expiry": "critical"}),
        Scenario("expiring_10_days", chain=[leaf(not_before=now - 80 * DAY, not_after=now + 10 * DAY + datetime.timedelta(hours=2)), inter],
                 status="critical", failing={"expiry": "critical"}),
        Scenario("expiring_20_days", chain=[leaf(not_before=now - 70 * DAY, not_after=now + 20 * DAY + datetime.timedelta(hours=2)), inter],
                 status="warning", failing={"expiry": "warning"}),
        Scenario("missing_intermediate", chain=[leaf()], status="critical",
                 failing={"chain_complete": "critical", "trust": "critical"}),
        Scenario("wrong_order", chain=[leaf(issuer=int_b), int_a, int_b], status="warning",
                 failing={"chain_order": "warning"}),
        Scenario("wrong_host", chain=[pb.make_leaf(OTHER_NAME, issuer=inter, days=90), inter], status="critical",
                 failing={"hostname": "critical"}),
        Scenario("self_signed", chain=[self_signed], status="critical",
                 failing={"self_signed": "warning", "trust": "critical"}),
        Scenario("untrusted_private_ca", chain=[leaf(issuer=private_int), private_int, private_root], status="critical",
                 failing={"trust": "critical"}),
        Scenario("sha1_signed", chain=[weak_leaf(SERVER_NAME, issuer=rsa_int, hash_name="sha1"), rsa_int], weak=True,
                 status="critical", failing={"signature": "critical"}),
        Scenario("rsa_1024", chain=[weak_leaf(SERVER_NAME, issuer=inter, rsa_bits=1024), inter], weak=True,
                 status="critical", failing={"key_size": "critical"}),
        Scenario("fingerprint_mismatch", chain=[healthy, inter], expected_fingerprint=pb_fingerprint(other),
                 status="critical", failing={"fingerprint": "critical"}),
        Scenario("fingerprint_match", chain=[healthy, inter], expected_fingerprint=pb_fingerprint(healthy)),
        Scenario("long_validity", chain=[leaf(days=825), inter], status="warning", failing={"validity_period": "warning"}),
        Scenario("intermediate_expires_first", chain=[leaf(issuer=short_int, days=90), short_int], status="warning",
                 failing={"intermediate_expiry": "warning"}),
        Scenario("closed_port", kind="closed", outcome="refused", status="critical", failing={"connect": "critical"}),
        Scenario("silent_port", kind="silent", outcome="timeout", status="critical", failing={"connect": "critical"}),
        Scenario("plain_http", kind="http", outcome="not_tls", status="critical", failing={"connect": "critical"}),
        Scenario("reset", kind="reset", outcome="reset", status="critical", failing={"connect": "critical"}),
        Scenario("sni_rejected", kind="sni_reject", chain=[healthy, inter], server_name="unknown.scan.test",
                 outcome="handshake_failure", status="critical", failing={"connect": "critical"}),
        Scenario("smtp_starttls", kind="smtp", chain=[healthy, inter]),
        Scenario("smtp_without_starttls", kind="smtp_no_starttls", chain=[healthy, inter], outcome="starttls_failure",
                 status="critical", failing={"connect": "critical"}),
        Scenario("ipv6_healthy", chain=[healthy, inter], host="::1"),
    ]
    return RangePKI(root=root, intermediate=inter, private_root=private_root,
                    scenarios={scenario.name: scenario for scenario in scenarios})


def pb_fingerprint(issued: pb.Issued) -> str:
    """SHA-256 of a certificate as colon hex."""
    from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import certificate_fingerprint  # pylint: disable=import-outside-toplevel

    return certificate_fingerprint(issued.cert, "sha256")
