# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private keys: generate, load, inspect, serialise.

This module is private to the certfleet.tls collection: its API may change
without notice. Functions take and return bytes and cryptography objects.
"""

from __future__ import annotations

import re

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import (
    HAS_CRYPTOGRAPHY,
    CertfleetError,
    public_key_fingerprint,
)

if HAS_CRYPTOGRAPHY:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    CURVES = {"secp256r1": ec.SECP256R1, "secp384r1": ec.SECP384R1}
else:  # pragma: no cover
    CURVES = {}

KEY_TYPES = ("RSA", "ECC")
KEY_FORMATS = ("pkcs8", "pkcs1")
# RSA 2048 bits: the minimum of the CA/Browser Forum Baseline Requirements (6.1.5) and the size
# Cybertrust's SureServer CSR guide asks for.
DEFAULT_RSA_SIZE = 2048
RSA_PUBLIC_EXPONENT = 65537

_PEM_KEY_BLOCK = re.compile(rb"-----BEGIN ((?:RSA |EC |ENCRYPTED |DSA |OPENSSH )?PRIVATE KEY)-----(.*?)-----END \1-----", re.S)


def generate_private_key(*, key_type: str = "RSA", size: int = DEFAULT_RSA_SIZE, curve: str = "secp256r1"):
    """New private key of the requested type."""
    if key_type == "RSA":
        if size < 1024 or size > 16384:
            raise CertfleetError(f"size: RSA key size {size} is outside 1024..16384 bits")
        return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=size)
    if key_type == "ECC":
        if curve not in CURVES:
            raise CertfleetError(f"curve: '{curve}' is not supported; use one of {', '.join(CURVES)}")
        return ec.generate_private_key(CURVES[curve]())
    raise CertfleetError(f"type: '{key_type}' is not supported; use one of {', '.join(KEY_TYPES)}")


def serialize_private_key(private_key, *, key_format: str = "pkcs8", passphrase: str | None = None) -> bytes:
    """PEM bytes; with a passphrase PKCS#8 uses PBES2 AES-256-CBC, PKCS#1 OpenSSL's AES-256-CBC PEM encryption."""
    if key_format == "pkcs8":
        private_format = serialization.PrivateFormat.PKCS8
    elif key_format == "pkcs1":
        # TraditionalOpenSSL is PKCS#1 for RSA and SEC 1 for EC keys, as `openssl rsa` / `openssl ec` write them.
        private_format = serialization.PrivateFormat.TraditionalOpenSSL
    else:
        raise CertfleetError(f"format: '{key_format}' is not supported; use one of {', '.join(KEY_FORMATS)}")
    if passphrase:
        encryption = serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
    else:
        encryption = serialization.NoEncryption()
    return private_key.private_bytes(serialization.Encoding.PEM, private_format, encryption)


def inspect_private_key_pem(data: bytes) -> dict:
    """Format and encryption of a PEM key, read from its armour without decrypting it."""
    match = _PEM_KEY_BLOCK.search(data)
    if not match:
        return {"format": None, "encrypted": None}
    label, body = match.group(1), match.group(2)
    if label == b"ENCRYPTED PRIVATE KEY":
        return {"format": "pkcs8", "encrypted": True}
    if label == b"PRIVATE KEY":
        return {"format": "pkcs8", "encrypted": False}
    if label in (b"RSA PRIVATE KEY", b"EC PRIVATE KEY"):
        return {"format": "pkcs1", "encrypted": b"Proc-Type: 4,ENCRYPTED" in body}
    return {"format": label.decode("ascii").split()[0].lower(), "encrypted": None}


def load_private_key(data: bytes, *, source: str = "private key", passphrase: str | bytes | None = None):
    """Load a PEM (or DER) private key; failures raise CertfleetError naming ``source`` and the rule that broke.

    The one key loader of the collection: ``_chain.extract_private_key`` uses it for the key inside
    bundles and PKCS#12 files.
    """
    password = (passphrase if isinstance(passphrase, bytes) else passphrase.encode("utf-8")) if passphrase else None
    armour = inspect_private_key_pem(data)
    if armour["format"] is None and not data.startswith(b"\x30"):
        raise CertfleetError(f"{source}: not a private key (no PEM 'PRIVATE KEY' block and not DER)")
    if armour["encrypted"] and password is None:
        raise CertfleetError(f"{source}: the key is encrypted and no passphrase was given")
    if armour["encrypted"] is False and password is not None:
        # cryptography refuses a password for an unencrypted key; the key opens
        # without one, which is what callers that test candidates want to learn.
        password = None
    try:
        if armour["format"] is None:
            return serialization.load_der_private_key(data, password)
        return serialization.load_pem_private_key(data, password)
    except TypeError as exc:
        if "not encrypted" in str(exc):
            raise CertfleetError(f"{source}: a passphrase was given but the key is not encrypted") from None
        raise CertfleetError(f"{source}: the key is encrypted and no passphrase was given") from None
    except ValueError as exc:
        if armour["encrypted"]:
            raise CertfleetError(f"{source}: wrong passphrase (the key could not be decrypted)") from None
        raise CertfleetError(f"{source}: malformed private key ({_first_line(exc)})") from None
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm and Rust-side errors too
        raise CertfleetError(f"{source}: cannot load the private key ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def key_type_name(key) -> str:
    """'RSA', 'ECC', or another algorithm name for keys this collection does not generate."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RSA"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ECC"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "Ed25519"
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "Ed448"
    return type(key).__name__


def key_info(key) -> dict:
    """Type, size, curve and SPKI SHA-256 fingerprint of a private or public key."""
    public_key = key.public_key() if hasattr(key, "private_bytes") else key
    key_type = key_type_name(public_key)
    return {
        "type": key_type,
        "size": getattr(public_key, "key_size", None),
        "curve": public_key.curve.name if key_type == "ECC" else None,
        "fingerprint": public_key_fingerprint(public_key),
    }


def key_mismatches(key, *, key_type: str, size: int, curve: str) -> list[str]:
    """Ways in which an existing key differs from the requested type / size / curve."""
    info = key_info(key)
    if info["type"] != key_type:
        return [f"type is {info['type']}, {key_type} requested"]
    if key_type == "RSA" and info["size"] != size:
        return [f"size is {info['size']} bits, {size} requested"]
    if key_type == "ECC" and info["curve"] != curve:
        return [f"curve is {info['curve']}, {curve} requested"]
    return []


def same_public_key(first, second) -> bool:
    """True when two keys (private or public) share the public key."""
    return key_info(first)["fingerprint"] == key_info(second)["fingerprint"]


REGENERATE_CHOICES = ("never", "fail", "partial_idempotence", "full_idempotence", "always")


def plan_private_key(
    existing: bytes | None,
    *,
    key_type: str,
    size: int,
    curve: str,
    key_format: str,
    passphrase: str | None,
    current_passphrase: str | None,
    regenerate: str,
) -> dict:
    """Decide, without side effects, what to do with the key file: keep, convert or generate.

    Returns {"action", "reason", "key", "before"}; "key" is the loaded key when
    it is kept or converted. Raises CertfleetError when the rules forbid acting.
    """
    if existing is None:
        return _plan("generate", "the key file does not exist")
    armour = inspect_private_key_pem(existing)
    if regenerate == "always":
        return _plan("generate", "regenerate=always", before=armour)
    # current_passphrase means "this is the key to keep": it is the only
    # passphrase tried, and failing to open the key never replaces it.
    opening_passphrase = current_passphrase if current_passphrase is not None else passphrase
    try:
        key = load_private_key(existing, source="path", passphrase=opening_passphrase)
    except CertfleetError as exc:
        if current_passphrase is None and regenerate == "full_idempotence":
            return _plan("generate", f"the existing key cannot be opened ({exc}); regenerate=full_idempotence", before=armour)
        hint = "check current_passphrase" if current_passphrase is not None else (
            "give current_passphrase to re-encrypt it, or regenerate=full_idempotence to replace it")
        raise CertfleetError(f"{exc}; the existing key is left untouched ({hint})") from None
    before = dict(armour, **key_info(key))
    mismatches = key_mismatches(key, key_type=key_type, size=size, curve=curve)
    if mismatches:
        if regenerate == "fail":
            raise CertfleetError(f"path: the existing key does not match the options ({'; '.join(mismatches)}) and regenerate=fail")
        if regenerate != "never":
            return _plan("generate", f"the existing key does not match: {'; '.join(mismatches)}", before=before)
    want_encrypted = bool(passphrase)
    reasons = []
    if armour["format"] != key_format:
        reasons.append(f"format {armour['format'] or 'DER'} -> {key_format}")
    if bool(armour["encrypted"]) != want_encrypted:
        reasons.append("encrypt" if want_encrypted else "decrypt")
    elif want_encrypted and current_passphrase is not None and current_passphrase != passphrase:
        reasons.append("change passphrase")
    if reasons:
        return _plan("convert", f"same key, {', '.join(reasons)}", key=key, before=before)
    return _plan("keep", "the existing key matches", key=key, before=before)


def _plan(action: str, reason: str, *, key=None, before: dict | None = None) -> dict:
    return {"action": action, "reason": reason, "key": key, "before": before}
