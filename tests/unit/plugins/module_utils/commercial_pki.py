# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A test PKI shaped like a commercial CA's hierarchy, which signs the store's CSRs as the CA would.

Shape (the one Cybertrust publishes for SureServer: a current issuing CA under a current root, that
root cross-signed by an older root for old clients, and an older "G2" intermediate under the old root)::

    Test Baltimore Root (old, self-signed) ─┬─ Test Global Root  (cross certificate, "cross-root")
                                            └─ Test Public CA G2 (the older intermediate)
    Test Global Root (self-signed) ──────────── Test SureServer CA G4 (issuing CA) ── server certificates

``CommercialCA.sign(csr_pem)`` issues a server certificate for a CSR: the CSR's key, its subject (without
OU, as Cybertrust issues since 2022) and its SANs, serverAuth, AIA caIssuers. The helpers below write
what a CA's e-mail or portal hands out: PEM, DER, PKCS#7, PKCS#12 and bundles.
"""

from __future__ import annotations

import datetime
import itertools
import random
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

UTC = datetime.timezone.utc
_serials = itertools.count(0x5000_0000)
ROOT_NAME = "Test Global Root"
OLD_ROOT_NAME = "Test Baltimore Root"
ISSUING_NAME = "Test SureServer CA G4"
G2_NAME = "Test Public CA G2"


@dataclass
class CommercialCA:
    """The hierarchy and its signing keys."""

    old_root: pb.Issued
    root: pb.Issued
    root_cross: pb.Issued
    issuing: pb.Issued
    g2: pb.Issued

    @property
    def root_pem(self) -> bytes:
        return self.root.pem

    def sign(self, csr_pem: bytes, *, issuer: pb.Issued | None = None, names: list | None = None, subject=None,
             not_before=None, days: int = 397, ca: bool = False, digest=None, key=None, san: bool = True) -> x509.Certificate:
        """A server certificate for the CSR, as the CA issues it (``issuer`` defaults to the SureServer CA)."""
        csr = x509.load_pem_x509_csr(csr_pem)
        issuer = issuer or self.issuing
        if subject is None:
            subject = x509.Name([attribute for attribute in csr.subject
                                 if attribute.oid != NameOID.ORGANIZATIONAL_UNIT_NAME])
        if names is None:
            try:
                names = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
            except x509.ExtensionNotFound:
                names = []
        names = [pb_name if isinstance(pb_name, x509.GeneralName) else x509.DNSName(pb_name) for pb_name in names]
        not_before = not_before or (pb.utcnow() - datetime.timedelta(hours=1))
        public_key = key.public_key() if key is not None else csr.public_key()
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.cert.subject).public_key(public_key)
                   .serial_number(next(_serials) * 1000 + random.randint(0, 999))
                   .not_valid_before(not_before).not_valid_after(not_before + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                       AuthorityInformationAccessOID.CA_ISSUERS,
                       x509.UniformResourceIdentifier("http://127.0.0.1:9/issuing.crt"))]), critical=False))
        if san and names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(issuer.key, digest or hashes.SHA256())


def commercial_ca() -> CommercialCA:
    """A fresh hierarchy (EC keys: quick to make; the server keys are whatever the store's CSRs carry)."""
    now = pb.utcnow()
    old_root = pb.make_root(OLD_ROOT_NAME, not_before=now - datetime.timedelta(days=5000), days=9000)
    root = pb.make_root(ROOT_NAME, not_before=now - datetime.timedelta(days=1500), days=7300)
    root_cross = pb.make_cross_signed(root, issuer=old_root, not_before=now - datetime.timedelta(days=1400), days=3000)
    issuing = pb.make_intermediate(ISSUING_NAME, issuer=root, not_before=now - datetime.timedelta(days=700), days=3650,
                                   path_length=0)
    g2 = pb.make_intermediate(G2_NAME, issuer=old_root, not_before=now - datetime.timedelta(days=4000), days=5000,
                              path_length=0)
    return CommercialCA(old_root=old_root, root=root, root_cross=root_cross, issuing=issuing, g2=g2)


# --- what the CA sends --------------------------------------------------------------------------

def pem(*certificates) -> bytes:
    """PEM blocks, no text around."""
    return b"".join(_cert(item).public_bytes(serialization.Encoding.PEM) for item in certificates)


def der(certificate) -> bytes:
    """One certificate in DER."""
    return _cert(certificate).public_bytes(serialization.Encoding.DER)


def mail_bundle(*certificates, crlf: bool = True) -> bytes:
    """PEM blocks with the text a CA's e-mail puts around them, Windows line ends."""
    return pb.pem_bundle([_cert(item) for item in certificates], junk=True, crlf=crlf)


def p7b(*certificates, as_pem: bool = False) -> bytes:
    """PKCS#7 certificates-only bundle, DER (.p7b) or PEM."""
    encoding = serialization.Encoding.PEM if as_pem else serialization.Encoding.DER
    return pkcs7.serialize_certificates([_cert(item) for item in certificates], encoding)


def pfx(leaf, *cas, password: bytes | None = b"pfx-Secret-1", key=None) -> bytes:
    """PKCS#12 with the certificate and its CA certificates (no key: the CA never had it)."""
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(b"server", key, _cert(leaf), [_cert(item) for item in cas], encryption)


def _cert(item):
    return item.cert if isinstance(item, pb.Issued) else item
