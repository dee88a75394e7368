"""Signed provenance: verify an OpenSSF model-signing signature against a team's keys, offline.

The registry holds a version's artifact URI, never its files, so what it verifies is the signature
over the model's manifest: a Sigstore bundle whose DSSE envelope signs an in-toto statement listing
every file with its digest. The bundle must name its key by a ``publicKey`` hint (model-signing's
key signer writes one since 1.0): that picks the one trusted key model-signing's elliptic-key
verifier checks the envelope with, so a signature costs one key and one check, and a bundle of
another kind (a certificate, a chain) is refused, never handed to a verifier that does not expect
it. The verified statement is recorded on the version: signer, algorithm, subject, manifest and its
digest. Nothing here does I/O; the work is bounded by the bundle's size (``catalog.MAX_PROVENANCE_BYTES``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from registry_contract.documents import Document

# The curves a team's signing key may use, and the name of the signatures each verifies.
ALGORITHMS = {"secp256r1": "ecdsa-sha256-nistp256", "secp384r1": "ecdsa-sha384-nistp384"}
_KINDS = (
    (rsa.RSAPublicKey, "RSA"),
    (ed25519.Ed25519PublicKey, "Ed25519"),
    (ed448.Ed448PublicKey, "Ed448"),
    (dsa.DSAPublicKey, "DSA"),
)


class SignatureRefused(ValueError):
    """The signature is refused; the message says why (``bad_signature``)."""


@dataclass(frozen=True)
class PublicKeyInfo:
    """What registration keeps of a public key it accepted."""

    pem: str  # normalized: the key re-encoded
    algorithm: str
    fingerprint: str  # sha256:<hex> of the DER SubjectPublicKeyInfo
    hint: str  # hex sha256 of the PEM, as model-signing names its key in a bundle


def read_public_key(pem: str) -> PublicKeyInfo:
    """The key ``pem`` holds, or a ``ValueError`` saying precisely why it is refused."""
    try:
        key = serialization.load_pem_public_key(pem.strip().encode())
    except (ValueError, TypeError, exceptions.UnsupportedAlgorithm):
        raise ValueError(
            "public_key is not a PEM public key (-----BEGIN PUBLIC KEY-----, SubjectPublicKeyInfo)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        kind = next((name for kind, name in _KINDS if isinstance(key, kind)), "non-elliptic-curve")
        raise ValueError(f"public_key is of type {kind}: only elliptic-curve keys on P-256 or P-384 are accepted")
    curve = key.curve.name
    if curve not in ALGORITHMS:
        raise ValueError(f"public_key is on curve {curve}: only P-256 (secp256r1) and P-384 (secp384r1) are accepted")
    return _info(key)


def _info(key: ec.EllipticCurvePublicKey) -> PublicKeyInfo:
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKeyInfo(
        pem=pem.decode(),
        algorithm=ALGORITHMS[key.curve.name],
        fingerprint="sha256:" + hashlib.sha256(der).hexdigest(),
        hint=hashlib.sha256(pem).hexdigest(),
    )


@dataclass(frozen=True)
class TrustedKey:
    """One of the team's signing keys, ready to verify with."""

    key_id: str
    name: str
    public_key: ec.EllipticCurvePublicKey
    info: PublicKeyInfo

    @classmethod
    def of(cls, record: Document) -> TrustedKey:
        """The key of a stored ``signing_keys`` record."""
        key = serialization.load_pem_public_key(str(record["public_key"]).encode())
        assert isinstance(key, ec.EllipticCurvePublicKey)  # only such keys are stored
        return cls(record["_id"], record["name"], key, _info(key))


def verify(signature: dict[str, Any], keys: Sequence[TrustedKey], *, now: datetime) -> Document:
    """The provenance to record for ``signature``, or :class:`SignatureRefused` saying why it is refused.

    model-signing (and Sigstore's models) are imported on the first signature, not at start: they
    are a fifth of registration's memory and 0.4 s of its start, which a registry whose teams sign
    nothing never needs.
    """
    from registration.signature_check import check

    return check(signature, keys, now=now)
