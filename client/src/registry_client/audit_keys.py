"""Ed25519 checks of the audit service's signatures, for ``registry audit check`` (the ``audit`` extra).

Only this module imports ``cryptography``; the rest of the check is the contract's
(:mod:`registry_contract.audit_chain`), which needs nothing but the standard library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from registry_contract.audit_chain import SignatureCheck, signed_message


def key_id(raw: bytes) -> str:
    """A key's ``kid``: the first 16 hex digits of the SHA-256 of the raw public key."""
    return hashlib.sha256(raw).hexdigest()[:16]


def signature_check(public_keys: Iterable[str]) -> SignatureCheck:
    """A verifier that accepts signatures by any of ``public_keys`` (raw Ed25519 keys, 64 hex digits).

    Raises:
        ValueError: a key is not 32 bytes of hex.

    """
    keys: dict[str, Ed25519PublicKey] = {}
    for text in public_keys:
        raw = bytes.fromhex(text.strip())
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
