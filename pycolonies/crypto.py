"""Keys, ids and recoverable secp256k1 signatures, byte-compatible with ColonyOS.

* A private key is 32 bytes, written as 64 lowercase hex characters.
* An id is ``sha3_256(hex(uncompressed public key))`` taken over the *hex text*.
* A signature is ``r || s || v`` (65 bytes, v in {0, 1}) over ``sha3_256(message)``,
  written as 130 hex characters; only low-S signatures are accepted.
"""

from __future__ import annotations

import functools
import hashlib
import os

import coincurve

_CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = _CURVE_ORDER // 2


class SignatureError(ValueError):
    """A signature that cannot be decoded, is malformed, or does not verify."""


def sha3_hex(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha3_256(data).hexdigest()


def generate_private_key() -> str:
    """A fresh private key as 64 hex characters (random scalar in [1, n-1])."""
    while True:
        candidate = int.from_bytes(os.urandom(32), "big")
        if 0 < candidate < _CURVE_ORDER:
            return candidate.to_bytes(32, "big").hex()


@functools.lru_cache(maxsize=256)
def _private_key(prvkey: str) -> coincurve.PrivateKey:
    """The key object (cached: a client signs every request with the same few keys)."""
    try:
        raw = bytes.fromhex(prvkey)
    except (ValueError, TypeError) as exc:
        raise ValueError("private key must be 64 hex characters") from exc
    if len(raw) != 32:
        raise ValueError("private key must be 64 hex characters (32 bytes)")
    scalar = int.from_bytes(raw, "big")
    if not 0 < scalar < _CURVE_ORDER:
        raise ValueError("private key is out of range for secp256k1")
    return coincurve.PrivateKey(raw)


def public_key_hex(prvkey: str) -> str:
    """Uncompressed public key (``04 || X || Y``) as 130 hex characters."""
    return _private_key(prvkey).public_key.format(compressed=False).hex()


def id_from_public_key(pubkey_uncompressed: bytes) -> str:
    return sha3_hex(pubkey_uncompressed.hex())


def derive_id(prvkey: str) -> str:
    """The ColonyOS id of a private key."""
    return sha3_hex(public_key_hex(prvkey))


def sign(message: str | bytes, prvkey: str) -> str:
    """Recoverable signature of ``sha3_256(message)`` as 130 hex characters."""
    if isinstance(message, str):
        message = message.encode()
    digest = hashlib.sha3_256(message).digest()
    return _private_key(prvkey).sign_recoverable(digest, hasher=None).hex()


def recover_id(message: str | bytes, signature_hex: str) -> str:
    """Recover the signer's id from a message and its signature, or raise SignatureError."""
    if isinstance(message, str):
        message = message.encode()
    try:
        sig = bytes.fromhex(signature_hex)
    except (ValueError, TypeError) as exc:
        raise SignatureError("Invalid signature, not hex encoded") from exc
    if len(sig) != 65:
        raise SignatureError("Invalid signature length")
    s_value = int.from_bytes(sig[32:64], "big")
    if s_value == 0 or s_value > _HALF_ORDER:
        raise SignatureError("Signature s value is over half the order")
    if sig[64] not in (0, 1):
        raise SignatureError("Invalid signature recovery id")
    digest = hashlib.sha3_256(message).digest()
    try:
        pub = coincurve.PublicKey.from_signature_and_message(sig, digest, hasher=None)
    except Exception as exc:  # coincurve raises plain Exception/ValueError on bad input
        raise SignatureError("Invalid signature, public key recovery failed") from exc
    return id_from_public_key(pub.format(compressed=False))


class Crypto:
    """The reference SDK's crypto object: ``Crypto().prvkey()``, ``.id(k)``, ``.sign(data, k)``."""

    def __init__(self, native: bool = False) -> None:
        self.native = native  # accepted for compatibility; coincurve is always used

    def prvkey(self) -> str:
        return generate_private_key()

    def id(self, prvkey: str) -> str:
        return derive_id(prvkey)

    def sign(self, data: str, prvkey: str) -> str:
        return sign(data, prvkey)

    def recid(self, data: str, signature: str) -> str:
        return recover_id(data, signature)
