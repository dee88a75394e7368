"""Console sign-ins: a random session id in the cookie, the API key (or ID token) sealed under it in MongoDB.

The browser holds only the session id (``HttpOnly``, ``SameSite=Strict``). MongoDB holds the
session under the id's SHA-256, and the API key encrypted (AES-GCM) under a key derived from the
id itself. A copy of the database therefore yields neither a usable cookie nor a usable key, and
any replica holding the cookie can open the session: no secret has to be shared between them.

A session ends at sign-out, after ``idle`` seconds without a request, or ``lifetime`` seconds
after sign-in, whichever comes first; the TTL index removes it at ``expires_at``. A session opened
through the identity provider holds the ID token in the key's place, and ends when the token expires.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from registry_contract.auth import Principal
from registry_contract.documents import Document

SEAL_INFO = b"model-registry console session: sealed API key"
NONCE_BYTES = 12
# Sliding the idle deadline costs a write, so it moves at most once a minute per session.
SLIDE_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Flash:
    """The outcome of the last action, shown once on the next page."""

    kind: str  # "ok" or "problem"
    message: str


@dataclass(frozen=True)
class Person:
    """Who opened a session through the identity provider (the header names them, not a key id)."""

    issuer: str
    subject: str
    name: str | None = None
    email: str | None = None

    @property
    def shown_as(self) -> str:
        """Their name, else their email, else the provider's subject."""
        return self.name or self.email or self.subject


@dataclass(frozen=True)
class Session:
    """An open session: whose key it holds, and the token its forms must carry."""

    api_key: str  # the API key, or the ID token of a session opened through the identity provider
    key_id: str
    team: str
    csrf_token: str
    expires_at: datetime
    flash: Flash | None = None
    person: Person | None = None  # set when opened through the identity provider


def record_id(session_id: str) -> str:
    """The id a record is kept under: the SHA-256 of the id only the browser holds."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def _sealing_key(session_id: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SEAL_INFO).derive(session_id.encode())
    return AESGCM(derived)


def seal(session_id: str, api_key: str) -> bytes:
    """``api_key`` encrypted under ``session_id``, bound to the record's id (a sign-in flow's secrets too)."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + _sealing_key(session_id).encrypt(nonce, api_key.encode(), record_id(session_id).encode())


def unseal(session_id: str, sealed: bytes) -> str | None:
    """The text sealed under ``session_id``, or ``None`` if it was not sealed under that id."""
    try:
        plain = _sealing_key(session_id).decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], record_id(session_id).encode()
        )
    except (InvalidTag, ValueError):
        return None
    return plain.decode()


class Sessions:
    """The ``console_sessions`` collection."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        *,
        lifetime: timedelta,
        idle: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.collection, self.lifetime, self.idle, self.clock = collection, lifetime, idle, clock

    async def create(
        self, api_key: str, principal: Principal, *, person: Person | None = None, not_after: datetime | None = None
    ) -> tuple[str, Session]:
        """A new session for an authenticated key: its id (for the cookie only) and the session.

        ``person`` and ``not_after`` (the ID token's expiry, which the session never outlives) are
        those of a sign-in through the identity provider, whose ID token is ``api_key``.
        """
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        expires_at = now + self.lifetime if not_after is None else min(now + self.lifetime, not_after)
        session = Session(
            api_key=api_key,
            key_id=principal.key_id,
            team=principal.team,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=expires_at,
            person=person,
        )
        record: Document = {
            "_id": record_id(session_id),
            "sealed_key": seal(session_id, api_key),
            "via": "api_key" if person is None else "oidc",
            "key_id": principal.key_id,
            "team": principal.team,
            "csrf_token": session.csrf_token,
            "created_at": now,
            "expires_at": expires_at,
            "idle_until": min(now + self.idle, expires_at),
        }
        if person is not None:
            record["person"] = asdict(person)
        await self.collection.insert_one(record)
        return session_id, session

    async def open(self, session_id: str, *, take_flash: bool = True) -> Session | None:
        """The live session of ``session_id`` (its idle deadline moved on), or ``None``."""
        now = self.clock()
        live = {"_id": record_id(session_id), "expires_at": {"$gt": now}, "idle_until": {"$gt": now}}
        record = await self.collection.find_one(live)
        if record is None:
            return None
        change: dict[str, Any] = {}
        if record["idle_until"] - self.idle + SLIDE_EVERY <= now:
            change["$set"] = {"idle_until": min(now + self.idle, record["expires_at"])}
        if take_flash and record.get("flash"):
            change["$unset"] = {"flash": ""}
        if change:
            # Taken only if still there, so two tabs never both show one flash.
            await self.collection.find_one_and_update(live, change, return_document=ReturnDocument.BEFORE)
        api_key = unseal(session_id, record["sealed_key"])
        if api_key is None:
            return None
        flash = record.get("flash") if take_flash else None
        person = record.get("person")
        return Session(
            api_key=api_key,
            key_id=record["key_id"],
            team=record["team"],
            csrf_token=record["csrf_token"],
            expires_at=record["expires_at"],
            flash=Flash(kind=flash["kind"], message=flash["message"]) if flash else None,
            person=Person(**person) if person else None,
        )

    async def flash(self, session_id: str, flash: Flash) -> None:
        """Keep ``flash`` for the session's next page."""
        await self.collection.update_one(
            {"_id": record_id(session_id)}, {"$set": {"flash": {"kind": flash.kind, "message": flash.message}}}
        )

    async def close(self, session_id: str) -> None:
        """End the session (sign-out, or its key no longer authenticates)."""
        await self.collection.delete_one({"_id": record_id(session_id)})
