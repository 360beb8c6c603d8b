"""Hostile loopback peers and certificates for the scanner's hardening tests.

``HostileSMTP(mode)`` listens on 127.0.0.1 and answers every connection with one attack:

* ``ehlo_flood`` - a normal greeting, then endless ``250-`` lines in answer to EHLO.
* ``greeting_flood`` - endless ``220-`` lines instead of a greeting.
* ``long_line`` - a normal greeting, then one ``250-`` line that never ends (no line feed).
* ``trickle`` - a normal greeting, then an endless EHLO reply at one byte a second.

Each connection has its own thread that writes until the client goes away, so the scanner
sees the socket full at all times (the flood) or never quite done (the trickle).

``unparsable_leaf`` and ``long_chain`` build the certificates a hostile server presents:
a leaf whose subject holds a T61String that is not valid text (cryptography parses names
lazily, OpenSSL serves it), and a long chain without key identifiers.
"""
from __future__ import annotations

import json
import socket
import threading
from unittest import mock

import pytest
from ansible.module_utils import _internal, basic
from ansible.module_utils.common.text.converters import to_bytes

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

MODES = ("ehlo_flood", "greeting_flood", "long_line", "trickle")
_FLOOD_LINE = b"250-FLOOD " + b"x" * 54 + b"\r\n"


class HostileSMTP:
    """A loopback SMTP peer that attacks with ``mode``; a context manager (``port`` once entered)."""

    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode}")
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.sent = 0
        self.connections = 0

    def __enter__(self) -> "HostileSMTP":
        thread = threading.Thread(target=self._accept, name=f"hostile-smtp-{self.mode}", daemon=True)
        thread.start()
        self.threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in list(self.threads):
            thread.join(5)
        self.sock.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _send(self, conn: socket.socket, data: bytes) -> bool:
        try:
            conn.sendall(data)
        except OSError:
            return False
        self.sent += len(data)
        return True

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(1.0)
        try:
            if self.mode == "greeting_flood":
                chunk = b"220-FLOOD " + b"x" * 54 + b"\r\n"
                self._flood(conn, chunk * 1024)
                return
            if not self._send(conn, b"220 hostile.test ESMTP\r\n"):
                return
            try:
                conn.recv(1024)  # the EHLO
            except OSError:
                return
            if self.mode == "ehlo_flood":
                self._flood(conn, _FLOOD_LINE * 1024)
            elif self.mode == "long_line":
                self._send(conn, b"250-")
                self._flood(conn, b"x" * 65536)
            else:
                while True:
                    for value in b"250-trickle\r\n":
                        if self.stopping.is_set() or not self._send(conn, bytes((value,))):
                            return
                        if self.stopping.wait(1.0):
                            return
        finally:
            conn.close()

    def _flood(self, conn: socket.socket, chunk: bytes) -> None:
        while not self.stopping.is_set():
            try:
                conn.sendall(chunk)
            except socket.timeout:
                continue  # the client is not reading right now: keep the pressure on
            except OSError:
                return
            self.sent += len(chunk)


# --------------------------------------------------------------------------------------------
# certificates


def _der_length(data: bytes, offset: int) -> tuple[int, int]:
    """(content length, offset of the content) of the DER element whose tag is at ``offset``."""
    first = data[offset + 1]
    if first < 0x80:
        return first, offset + 2
    size = first & 0x7F
    return int.from_bytes(data[offset + 2:offset + 2 + size], "big"), offset + 2 + size


def _tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + content


def _reassemble(tbs: bytes, certificate: x509.Certificate, issuer_key) -> bytes:
    """A certificate from a patched TBSCertificate, re-signed with the issuer's EC key (same algorithm)."""
    signature = issuer_key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    outer = certificate.public_bytes(serialization.Encoding.DER)
    # Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }: keep the algorithm as it is.
    _length, content = _der_length(outer, 0)
    tbs_length, tbs_content = _der_length(outer, content)
    algorithm_at = tbs_content + tbs_length
    algorithm_length, algorithm_content = _der_length(outer, algorithm_at)
    algorithm = outer[algorithm_at:algorithm_content + algorithm_length]
    return _tlv(0x30, tbs + algorithm + _tlv(0x03, b"\x00" + signature))


def patched(certificate: x509.Certificate, issuer_key, old: bytes, new: bytes) -> bytes:
    """DER of ``certificate`` with ``old`` (found once in the TBSCertificate) replaced by ``new`` of the same length, re-signed."""
    if len(old) != len(new):
        raise ValueError("the patch must keep the length")
    tbs = certificate.tbs_certificate_bytes
    if tbs.count(old) != 1:
        raise ValueError("unexpected TBSCertificate layout")
    return _reassemble(tbs.replace(old, new), certificate, issuer_key)


# Bytes that are neither UTF-8 nor ASCII: a T61String or IA5String holding them does not decode.
_NOT_TEXT = b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28"


def unparsable_leaf(cn: str, *, issuer: pb.Issued, field: str = "subject", ca: bool = False) -> tuple[bytes, object]:
    """(DER, private key) of a certificate that loads but whose ``field`` raises when read.

    ``subject``: the O attribute is a T61String of bytes that are not text (OpenSSL serves it;
    cryptography decodes names only when they are read). ``san``: a dNSName that is not IA5.
    ``key``: an EC public key that is not a point of the curve.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    placeholder = "QQQQQQQQ"
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if field == "subject":
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, placeholder, _ASN1Type.T61String))
    san = [f"{placeholder.lower()}.{cn}" if field == "san" else cn]
    certificate = pb.issue(x509.Name(attributes), public_key=key.public_key(), issuer_name=issuer.cert.subject,
                           signing_key=issuer.key, ca=ca, aki_key=issuer.key.public_key(), san=san)
    if field == "subject":
        old = bytes((0x14, len(placeholder))) + placeholder.encode("ascii")
        new = bytes((0x14, len(placeholder))) + _NOT_TEXT
    elif field == "san":
        old, new = placeholder.lower().encode("ascii"), _NOT_TEXT
    elif field == "key":
        old = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        new = b"\x04" + b"\x01" * (len(old) - 1)
    else:
        raise ValueError(f"unknown field {field}")
    return patched(certificate, issuer.key, old, new), key


def long_chain(count: int, *, cn: str = "hostile.scan.test") -> tuple[list[x509.Certificate], object]:
    """(leaf + ``count`` - 1 CA certificates, leaf key): no key identifiers, every CA named alike, sent top first.

    Every CA has the same subject and issuer name, so a name never rules a candidate issuer out,
    and the issuers follow the leaf in reverse order: a search that tries every candidate in turn
    needs count² / 2 signature checks.
    """
    ca_name = pb.name("Hostile Loop CA")
    keys = [ec.generate_private_key(ec.SECP256R1()) for _number in range(count)]
    cas = []
    for number in range(1, count):
        signer = keys[number + 1] if number + 1 < count else ec.generate_private_key(ec.SECP256R1())
        cas.append(pb.issue(ca_name, public_key=keys[number].public_key(), issuer_name=ca_name, signing_key=signer,
                            ski=False, days=30))
    leaf = pb.issue(pb.name(cn), public_key=keys[0].public_key(), issuer_name=ca_name, signing_key=keys[1], ca=False,
                    ski=False, san=[cn], days=30)
    return [leaf] + list(reversed(cas)), keys[0]


def run_module(capsys, main, args: dict) -> dict:
    """A module's main() in-process with real arguments (as tests/unit/plugins/modules/conftest.py does): its JSON result."""
    payload = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)}))
    with mock.patch.object(basic, "_ANSIBLE_ARGS", payload), mock.patch.object(basic, "_ANSIBLE_PROFILE", "legacy", create=True), \
            mock.patch.object(_internal, "is_controller", False):
        with pytest.raises(SystemExit):
            main()
    return json.loads(capsys.readouterr().out)
