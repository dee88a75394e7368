"""The audit service's Ed25519 key: it signs the chains' heads, checkpoints and every 64th entry.

Only the service holds the private key (``AUDIT_SIGNING_KEY``); the public keys are published
(``GET /v1/audit/public-keys``, the docs), so anyone can check a chain and nobody who can only
read, or write the database, can extend one. Each signature names its key (``kid``, the first 16
hex digits of the SHA-256 of the raw public key), so a rotated key's signatures still verify
while its public key is listed as retired (``AUDIT_RETIRED_PUBLIC_KEYS``).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry_contract.audit_chain import signed_message
from shared.chassis.settings import ConfigurationError

__all__ = ["ALGORITHM", "KeyRing", "PublicKey", "SigningKey", "signed_message"]

ALGORITHM = "Ed25519"


@dataclass(frozen=True)
class PublicKey:
    """A public key that verifies the audit service's signatures."""

    key: Ed25519PublicKey
    status: str = "current"  # or "retired": verifies old signatures, signs nothing new

    @property
    def raw(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def kid(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()[:16]

    @classmethod
    def parse(cls, text: str, *, status: str = "current") -> PublicKey:
        """A public key given as 64 hex digits (the raw key) or a PEM ``PUBLIC KEY``."""
        text = text.strip()
        try:
            if text.startswith("-----BEGIN"):
                loaded = serialization.load_pem_public_key(text.encode())
                if not isinstance(loaded, Ed25519PublicKey):
                    raise ValueError("not an Ed25519 key")
                return cls(loaded, status)
            return cls(Ed25519PublicKey.from_public_bytes(bytes.fromhex(text)), status)
        except ValueError as exc:
            raise ConfigurationError(f"not an Ed25519 public key (64 hex digits or PEM): {exc}") from exc

    def public(self) -> dict[str, str]:
        """As ``GET /v1/audit/public-keys`` lists it."""
        return {"kid": self.kid, "alg": ALGORITHM, "public_key": self.raw.hex(), "status": self.status}


class SigningKey:
    """The audit service's private key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = PublicKey(private.public_key())

    @classmethod
    def parse(cls, text: str) -> SigningKey:
        """A private key given as 64 hex digits (the 32-byte seed) or a PEM ``PRIVATE KEY`` (PKCS#8)."""
        text = text.strip()
        try:
            if text.startswith("-----BEGIN"):
                loaded = serialization.load_pem_private_key(text.encode(), password=None)
                if not isinstance(loaded, Ed25519PrivateKey):
                    raise ValueError("not an Ed25519 key")
                return cls(loaded)
            return cls(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text)))
        except ValueError as exc:
            raise ConfigurationError(
                f"AUDIT_SIGNING_KEY is not an Ed25519 private key (64 hex digits or PEM): {exc}"
            ) from exc

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    def seed_hex(self) -> str:
        """The key as ``AUDIT_SIGNING_KEY`` takes it."""
        raw = self._private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return raw.hex()

    def sign(self, kind: str, fields: Mapping[str, Any]) -> dict[str, str]:
        """A signature over ``fields`` as stored beside them: ``{"kid": …, "sig": hex}``."""
        return {"kid": self.public.kid, "sig": self._private.sign(signed_message(kind, fields)).hex()}


@functools.lru_cache(maxsize=65_536)
def _valid(public: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` by ``public`` covers ``message``; remembered, since verification walks repeat."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


class KeyRing:
    """The public keys signatures are checked against: the current one and any retired ones."""

    def __init__(self, keys: Iterable[PublicKey]) -> None:
        self.keys = {key.kid: key for key in keys}

    @classmethod
    def of(cls, signer: SigningKey | None, retired: str = "") -> KeyRing:
        """The signer's public key and the retired ones (comma- or newline-separated)."""
        listed = [PublicKey.parse(text, status="retired") for text in retired.replace("\n", ",").split(",") if text]
        current = [signer.public] if signer else []
        return cls([*listed, *current])

    def verify(self, kind: str, fields: Mapping[str, Any], signature: Any) -> bool:
        """Whether ``signature`` (as :meth:`SigningKey.sign` made it) is by a listed key over ``fields``."""
        if not isinstance(signature, Mapping):
            return False
        key = self.keys.get(str(signature.get("kid")))
        try:
            raw = bytes.fromhex(str(signature.get("sig")))
        except ValueError:
            return False
        if key is None:
            return False
        return _valid(key.raw, raw, signed_message(kind, fields))

    def public(self) -> list[dict[str, str]]:
        """Every listed key, current first."""
        return sorted((key.public() for key in self.keys.values()), key=lambda k: k["status"] != "current")
