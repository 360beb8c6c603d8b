# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small factory for throw-away test PKIs built with real cryptography objects.

Typical use::

    root = make_root("Test Root")
    inter = make_intermediate("Test Int", issuer=root)
    leaf = make_leaf("www.example.test", issuer=inter)
    cross = make_cross_signed(inter, issuer=other_root)  # same subject + key, other issuer

Every helper returns an ``Issued`` (certificate + private key + how that key
signs). Keys are EC P-256 unless ``key_type`` says otherwise.
"""

from __future__ import annotations

import datetime
import itertools
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

UTC = datetime.timezone.utc
KEY_TYPES = ("ec256", "ec384", "rsa2048", "rsa2048-pss")

_serials = itertools.count(0x1000)


def utcnow() -> datetime.datetime:
    """Current time, second precision (X.509 UTCTime has no fractions)."""
    return datetime.datetime.now(UTC).replace(microsecond=0)


def make_key(key_type: str = "ec256"):
    """New private key: ec256, ec384, rsa2048 or rsa2048-pss (an RSA key that signs with PSS)."""
    if key_type == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type in ("rsa2048", "rsa2048-pss"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unknown key type {key_type}")


def name(cn: str, **attributes: str) -> x509.Name:
    """``x509.Name`` from a CN plus optional C / O / OU / ST / L keyword attributes."""
    oids = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME, "L": NameOID.LOCALITY_NAME,
            "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME}
    parts = [x509.NameAttribute(oids[key], value) for key, value in attributes.items()]
    parts.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(parts)


@dataclass
class Issued:
    """A certificate together with its private key and the key type that signs with it."""

    cert: x509.Certificate
    key: object
    key_type: str = "ec256"
    label: str = ""

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    @property
    def subject(self) -> x509.Name:
        return self.cert.subject


def _sign_args(key_type: str) -> dict:
    if key_type == "rsa2048-pss":
        return {"algorithm": hashes.SHA256(),
                "rsa_padding": padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)}
    if key_type == "ec384":
        return {"algorithm": hashes.SHA384()}
    return {"algorithm": hashes.SHA256()}


def issue(
    subject: x509.Name,
    *,
    public_key,
    issuer_name: x509.Name,
    signing_key,
    signing_key_type: str = "ec256",
    ca: bool | None = True,
    path_length: int | None = None,
    key_usage: str | None = "default",
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    days: int = 365,
    ski: bool = True,
    aki_key=None,
    aia_ca_issuers: str | None = None,
    san: list[str] | None = None,
    extra_extensions: list[tuple[x509.ExtensionType, bool]] | None = None,
    serial: int | None = None,
) -> x509.Certificate:
    """Low-level certificate factory: every knob explicit (ca=None leaves basicConstraints out)."""
    not_before = not_before or (utcnow() - datetime.timedelta(days=1))
    not_after = not_after or (not_before + datetime.timedelta(days=days))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial if serial is not None else next(_serials))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
    if key_usage == "default":
        key_usage = "ca" if ca else "leaf"
    if key_usage == "ca":
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    elif key_usage == "leaf":
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=True, data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
    elif key_usage == "no_cert_sign":
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    if ski:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    if aki_key is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(aki_key), critical=False)
    if aia_ca_issuers:
        builder = builder.add_extension(x509.AuthorityInformationAccess([
            x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(aia_ca_issuers))
        ]), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    for extension, critical in extra_extensions or ():
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, **_sign_args(signing_key_type))


def make_root(cn: str, *, key_type: str = "ec256", key=None, **kwargs) -> Issued:
    """Self-signed CA root (basicConstraints CA:TRUE, keyCertSign)."""
    key = key or make_key(key_type)
    subject = name(cn)
    cert = issue(subject, public_key=key.public_key(), issuer_name=subject, signing_key=key,
                 signing_key_type=key_type, aki_key=key.public_key(), **kwargs)
    return Issued(cert, key, key_type, cn)


def make_intermediate(cn: str, *, issuer: Issued, key_type: str = "ec256", key=None, **kwargs) -> Issued:
    """CA certificate signed by ``issuer``."""
    key = key or make_key(key_type)
    cert = issue(name(cn), public_key=key.public_key(), issuer_name=issuer.cert.subject, signing_key=issuer.key,
                 signing_key_type=issuer.key_type, aki_key=issuer.key.public_key(), **kwargs)
    return Issued(cert, key, key_type, cn)


def make_cross_signed(subject: Issued, *, issuer: Issued, label: str = "", **kwargs) -> Issued:
    """Same subject and key as ``subject`` but signed by another ``issuer`` (a cross certificate)."""
    cert = issue(subject.cert.subject, public_key=subject.key.public_key(), issuer_name=issuer.cert.subject,
                 signing_key=issuer.key, signing_key_type=issuer.key_type, aki_key=issuer.key.public_key(), **kwargs)
    return Issued(cert, subject.key, subject.key_type, label or f"{subject.label} (cross-signed by {issuer.label})")


def make_leaf(cn: str, *, issuer: Issued, key_type: str = "ec256", key=None, san: list[str] | None = None, **kwargs) -> Issued:
    """Server certificate (CA:FALSE, serverAuth, SAN = CN unless given)."""
    key = key or make_key(key_type)
    kwargs.setdefault("ca", False)
    cert = issue(name(cn), public_key=key.public_key(), issuer_name=issuer.cert.subject, signing_key=issuer.key,
                 signing_key_type=issuer.key_type, aki_key=issuer.key.public_key(), san=san or [cn], **kwargs)
    return Issued(cert, key, key_type, cn)


def make_expired(cn: str, *, issuer: Issued | None = None, days_ago: int = 10, **kwargs) -> Issued:
    """A certificate whose validity ended ``days_ago`` days ago (self-signed root when no issuer)."""
    end = utcnow() - datetime.timedelta(days=days_ago)
    kwargs.setdefault("not_before", end - datetime.timedelta(days=365))
    kwargs.setdefault("not_after", end)
    if issuer is None:
        return make_root(cn, **kwargs)
    return make_intermediate(cn, issuer=issuer, **kwargs)


@dataclass
class StandardPKI:
    """root -> int1 -> int2 -> leaf, plus an old root cross-signing int1 and root, and noise."""

    root: Issued
    old_root: Issued
    int1: Issued
    int1_x: Issued
    root_x: Issued
    int2: Issued
    leaf: Issued
    expired_int: Issued
    leaf_under_expired: Issued
    unrelated_root: Issued
    unrelated_int: Issued
    extra: dict = field(default_factory=dict)

    @property
    def pile(self) -> list[Issued]:
        """Every CA certificate a CA might hand over, including cross and unrelated ones."""
        return [self.root, self.old_root, self.int1, self.int1_x, self.root_x, self.int2,
                self.unrelated_root, self.unrelated_int]

    @property
    def pile_certs(self) -> list[x509.Certificate]:
        """``pile`` as plain ``x509.Certificate`` objects."""
        return [issued.cert for issued in self.pile]


def standard_pki(*, key_type: str = "ec256") -> StandardPKI:
    """The test hierarchy used across the chain tests."""
    now = utcnow()
    old_root = make_root("Test Old Root", key_type=key_type, not_before=now - datetime.timedelta(days=3650), days=7300)
    root = make_root("Test Root", key_type=key_type, not_before=now - datetime.timedelta(days=400), days=7300)
    root_x = make_cross_signed(root, issuer=old_root, not_before=now - datetime.timedelta(days=300), days=3000)
    int1 = make_intermediate("Test Int1", issuer=root, key_type=key_type, not_before=now - datetime.timedelta(days=200), days=3000)
    int1_x = make_cross_signed(int1, issuer=old_root, not_before=now - datetime.timedelta(days=200), days=2900)
    int2 = make_intermediate("Test Int2", issuer=int1, key_type=key_type, not_before=now - datetime.timedelta(days=100), days=2000)
    leaf = make_leaf("www.example.test", issuer=int2, key_type=key_type, days=200)
    expired_int = make_expired("Test Expired Int", issuer=root, key_type=key_type)
    leaf_under_expired = make_leaf("old.example.test", issuer=expired_int, key_type=key_type,
                                   not_before=now - datetime.timedelta(days=30), days=60)
    unrelated_root = make_root("Unrelated Root", key_type="ec256")
    unrelated_int = make_intermediate("Unrelated Int", issuer=unrelated_root)
    return StandardPKI(root=root, old_root=old_root, int1=int1, int1_x=int1_x, root_x=root_x, int2=int2, leaf=leaf,
                       expired_int=expired_int, leaf_under_expired=leaf_under_expired,
                       unrelated_root=unrelated_root, unrelated_int=unrelated_int)


# --- encoders producing the files a CA or an admin hands over ---------------------------------

def pem_bundle(certs: list, *, junk: bool = True, crlf: bool = False) -> bytes:
    """PEM blocks, optionally with the human text CAs put around them, optionally CRLF."""
    parts = []
    for index, item in enumerate(certs):
        cert = item.cert if isinstance(item, Issued) else item
        if junk:
            parts.append(f"Certificate {index}:\n    subject={cert.subject.rfc4514_string()}\n  (copied from the portal)\n".encode())
        parts.append(cert.public_bytes(serialization.Encoding.PEM))
    if junk:
        parts.append(b"-- end of mail --\n")
    data = b"".join(parts)
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    return data


def p7b(certs: list, *, pem: bool = False) -> bytes:
    """PKCS#7 certs-only bundle (DER, or PEM ``-----BEGIN PKCS7-----``)."""
    encoding = serialization.Encoding.PEM if pem else serialization.Encoding.DER
    return pkcs7.serialize_certificates([c.cert if isinstance(c, Issued) else c for c in certs], encoding)


def pfx(leaf: Issued, cas: list, *, password: bytes = b"secret", friendly_name: bytes = b"test") -> bytes:
    """PKCS#12 holding leaf key + certificate + CA certificates."""
    return pkcs12.serialize_key_and_certificates(
        friendly_name, leaf.key, leaf.cert, [c.cert if isinstance(c, Issued) else c for c in cas],
        serialization.BestAvailableEncryption(password))


def put_definition(store, name: str, issued: Issued, intermediate: Issued, *, passphrase: str) -> None:
    """Write a definition's key (encrypted with passphrase), certificate and chain into a store directory (pathlib.Path)
    the way the store lays them out, for tests that need a current generation without running the request engine."""
    directory = store / "certs" / name
    directory.mkdir(parents=True)
    (directory / "key.pem").write_bytes(issued.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(passphrase.encode())))
    (directory / "cert.pem").write_bytes(issued.pem)
    (directory / "chain.pem").write_bytes(intermediate.pem)
