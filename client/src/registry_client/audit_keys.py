"""Ed25519 checks of the audit service's signatures: ``registry audit check``, ``verify --bundle`` (``audit`` extra).

Only this module imports ``cryptography``; the rest of the check is the contract's
(:mod:`registry_contract.audit_chain`), which needs nothing but the standard library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from registry_contract.audit_chain import SignatureCheck, signed_message


def key_id(raw: bytes) -> str:
    """A key's ``kid``: the first 16 hex digits of the SHA-256 of the raw public key."""
    return hashlib.sha256(raw).hexdigest()[:16]


def raw_key(text: str) -> bytes:
    """The raw 32 bytes of an Ed25519 public key given as 64 hex digits or a PEM ``PUBLIC KEY``.

    Raises:
        ValueError: neither, or not an Ed25519 key.

    """
    text = text.strip()
    if not text.startswith("-----BEGIN"):
        return bytes.fromhex(text)
    try:
        loaded = serialization.load_pem_public_key(text.encode())
    except UnsupportedAlgorithm:
        raise ValueError("the PEM key is of a type this library cannot read, not an Ed25519 key") from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError("the PEM key is not an Ed25519 key")
    return loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def signature_check(public_keys: Iterable[str]) -> SignatureCheck:
    """A verifier that accepts signatures by any of ``public_keys`` (Ed25519: 64 hex digits, or PEM).

    Raises:
        ValueError: a key is neither 32 bytes of hex nor an Ed25519 PEM public key.

    """
    keys: dict[str, Ed25519PublicKey] = {}
    for text in public_keys:
        raw = raw_key(text)
        keys[key_id(raw)] = Ed25519PublicKey.from_public_bytes(raw)

    def verify(kind: str, fields: Mapping[str, Any], signature: Any) -> bool:
        if not isinstance(signature, Mapping) or (key := keys.get(str(signature.get("kid")))) is None:
            return False
        try:
            key.verify(bytes.fromhex(str(signature.get("sig"))), signed_message(kind, fields))
        except (InvalidSignature, ValueError):
            return False
        return True

    return verify
