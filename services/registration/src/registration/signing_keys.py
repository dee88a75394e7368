"""The teams' signing keys (``signing_keys``), each change committed with its event.

A key is added and deleted through the HTTP API only (:mod:`registration.signing_keys_routes`),
with its ``signing_key_created`` or ``signing_key_deleted`` event (:mod:`registration.team_records`).
A deleted key is kept, marked; versions it verified keep their recorded provenance.

Two admins adding keys at once cannot go past what one may: unique indexes over the team's live
keys refuse a second key with the same fingerprint, and a second key in the same quota ``slot``
(each live key holds one of ``0 … quota-1``), so a team never holds more keys than its quota.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

from registration.provenance import PublicKeyInfo, TrustedKey
from registration.team_records import TeamRecords, announcement
from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.identity_events import SIGNING_KEY_CREATED, SIGNING_KEY_DELETED, SigningKeyChanged
from registry_contract.signing_keys import SigningKeyCreate, SigningKeyPublic
from shared.outbox.changes import AlreadyAnnounced

_IDS = uuid.UUID("6a0f7d3e-5b8c-4f21-9e47-1d2c3b4a5f60")  # namespace of signing-key event ids
_TRIES = 5  # adds racing for the same free slot: each try after a loss reads the slots again


class AlreadyTrusted(Exception):
    """The team already trusts this key (``record``)."""

    def __init__(self, record: Document) -> None:
        super().__init__(record["_id"])
        self.record = record


class QuotaReached(Exception):
    """The team holds as many live keys as its quota allows (or other adds kept taking the free slots)."""


def new_key_id() -> str:
    """``sk_`` and 16 random hex digits."""
    return "sk_" + secrets.token_hex(8)


def public(record: Document) -> SigningKeyPublic:
    """The key as its team's admins see it."""
    return SigningKeyPublic.model_validate({**record, "key_id": record["_id"]})


def key_event(record: Document, event_type: str, *, actor: Principal) -> CloudEvent:
    """The one event of ``event_type`` for the signing key ``record``."""
    data = SigningKeyChanged(
        team=record["team"],
        actor=actor.key_id,
        actor_team=actor.team,
        key_id=record["_id"],
        name=record["name"],
        algorithm=record["algorithm"],
        fingerprint=record["fingerprint"],
        public_key=record["public_key"],
        description=record.get("description"),
    )
    return announcement(_IDS, event_type, record["_id"], data)


class SigningKeys(TeamRecords):
    """The ``signing_keys`` collection: reads, and writes with their events."""

    async def create(
        self, team: str, body: SigningKeyCreate, info: PublicKeyInfo, *, actor: Principal, quota: int
    ) -> Document:
        """Store a new key for ``team`` in a free quota slot and announce it, atomically.

        Raises :class:`AlreadyTrusted` or :class:`QuotaReached`, also when a concurrent add won.
        """
        for _ in range(_TRIES):
            live = await self.of_team(team)
            if (same := next((doc for doc in live if doc["fingerprint"] == info.fingerprint), None)) is not None:
                raise AlreadyTrusted(same)
            taken = {doc.get("slot") for doc in live}
            free = [slot for slot in range(quota) if slot not in taken]
            if len(live) >= quota or not free:
                raise QuotaReached(team)
            try:
                return await self._insert(team, body, info, actor=actor, slot=free[0])
            except AlreadyAnnounced:  # a unique index: another add took the slot or the key meanwhile
                continue
        raise QuotaReached(team)

    async def _insert(
        self, team: str, body: SigningKeyCreate, info: PublicKeyInfo, *, actor: Principal, slot: int
    ) -> Document:
        record: Document = {
            "_id": new_key_id(),
            "team": team,
            "name": body.name,
            "algorithm": info.algorithm,
            "fingerprint": info.fingerprint,
            "public_key": info.pem,
            "description": body.description,
            "created_at": datetime.now(UTC),
            "created_by": actor.key_id,
            "deleted": False,
            "slot": slot,
        }
        await self._commit_new(record, key_event(record, SIGNING_KEY_CREATED, actor=actor))
        return record

    async def delete(self, record: Document, *, actor: Principal) -> None:
        """Mark ``record`` deleted and announce it, atomically (a key already deleted stays as it is)."""
        await self._mark_deleted(record, key_event(record, SIGNING_KEY_DELETED, actor=actor))

    async def trusted(self, teams: set[str]) -> dict[str, list[TrustedKey]]:
        """The live keys of each of ``teams``, ready to verify with (oldest first)."""
        found: dict[str, list[TrustedKey]] = {team: [] for team in teams}
        cursor = self.collection.find({"team": {"$in": sorted(teams)}, "deleted": False}).sort("created_at", 1)
        async for record in cursor:
            found[record["team"]].append(TrustedKey.of(record))
        return found
