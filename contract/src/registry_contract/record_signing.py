"""Producers sign what they publish with their API key, never send it on the bus.

In the manner of AWS SigV4: the producer derives a *signing key* from its API key's secret, and
sends the key id (``ce_keyid``) and an HMAC-SHA256 under the signing key (``ce_signature``) over
one canonical string of the record. The registry keeps only a sealed copy of the signing key (the
*verifier*), so whoever reads a topic learns nothing that authenticates anywhere, and a signature
says nothing about the key's secret.

The canonical string is eight lines joined by line feeds (LF, no trailing one)::

    REGISTRY-HMAC-SHA256-V1
    <key id>
    <ce_id>
    <ce_source>
    <ce_type>
    <ce_time, exactly as sent>
    <ce_subject, or empty>
    <lowercase hex SHA-256 of the record's value bytes>

signing key = HMAC-SHA256(key = UTF-8 secret of ``mr_<id>_<secret>``, message = ``registry-signing-v1``);
``ce_signature`` = ``v1=`` + lowercase hex HMAC-SHA256(key = signing key, message = UTF-8 canonical string).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from registry_contract.auth import parse_api_key

ALGORITHM = "REGISTRY-HMAC-SHA256-V1"
SIGNING_CONTEXT = b"registry-signing-v1"
KEYID_HEADER = "ce_keyid"
SIGNATURE_HEADER = "ce_signature"
VERSION_PREFIX = "v1="
KEY_ID_FORMAT = re.compile(r"[A-Za-z0-9]{8}")  # the id part of mr_<id>_<secret>
SIGNATURE_FORMAT = re.compile(r"v1=[0-9a-f]{64}")


class NotAKey(ValueError):
    """A producer was given something that is not an API key of the form ``mr_<id>_<secret>``."""


@dataclass(frozen=True)
class RecordProof:
    """What a record presents as proof of its producer: the key id, the signature, what it signs."""

    key_id: str
    signature: str
    canonical: str
    time_sent: bool  # whether ce_time was present: a signature over no time has no window
    flaw: str | None = None  # why the key id or signature is not in its format: such a proof verifies nothing


def proof_flaw(key_id: str, signed: str) -> str | None:
    """Why ``ce_keyid`` or ``ce_signature`` is not in its format, or ``None`` when both are."""
    if not KEY_ID_FORMAT.fullmatch(key_id):
        return f"{KEYID_HEADER} is not a key id (8 letters or digits)"
    if not SIGNATURE_FORMAT.fullmatch(signed):
        return f"{SIGNATURE_HEADER} is not v1= and 64 lowercase hex digits"
    return None


def signing_key(secret: str) -> bytes:
    """The signing key (and the registry's verifier) of an API key's secret part."""
    return hmac.new(secret.encode(), SIGNING_CONTEXT, hashlib.sha256).digest()


def canonical_string(
    *, key_id: str, event_id: str, source: str, event_type: str, time: str, subject: str | None, value: bytes
) -> str:
    """The one string a record's signature covers (module docstring)."""
    digest = hashlib.sha256(value).hexdigest()
    return "\n".join((ALGORITHM, key_id, event_id, source, event_type, time, subject or "", digest))


def signature(key: bytes, canonical: str) -> str:
    """``ce_signature`` of ``canonical`` under a signing key."""
    return VERSION_PREFIX + hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def signature_matches(verifier: bytes, proof: RecordProof) -> bool:
    """Whether ``proof``'s signature was made with ``verifier`` (constant-time, over bytes: any text compares)."""
    if proof.flaw is not None:
        return False
    return hmac.compare_digest(signature(verifier, proof.canonical).encode(), proof.signature.encode())


def signature_headers(api_key: str, *, attributes: dict[str, str], value: bytes) -> list[tuple[str, bytes]]:
    """``ce_keyid`` and ``ce_signature`` of a record with these ``ce_`` attribute values (no ``ce_`` prefix).

    Raises :class:`NotAKey` when ``api_key`` is not in the key format.
    """
    parsed = parse_api_key(api_key)
    if parsed is None:
        raise NotAKey("a record is signed with an API key of the form mr_<id>_<secret>")
    key_id, secret = parsed
    canonical = canonical_string(
        key_id=key_id,
        event_id=attributes["id"],
        source=attributes["source"],
        event_type=attributes["type"],
        time=attributes["time"],
        subject=attributes.get("subject"),
        value=value,
    )
    return [(KEYID_HEADER, key_id.encode()), (SIGNATURE_HEADER, signature(signing_key(secret), canonical).encode())]
