"""The teams' trust rules (``trust_rules``), each change committed with its event.

A rule is written and deleted through the HTTP API only (:mod:`registration.trust_rules_routes`),
with its ``trust_rule_created`` or ``trust_rule_deleted`` event (:mod:`registration.team_records`).
A deleted rule is kept, marked, so an acting-for lookup names it gone.
"""

from __future__ import annotations

import secrets
import string
import uuid
from datetime import UTC, datetime

from pymongo.asynchronous.collection import AsyncCollection

from registration.team_records import TeamRecords, announcement
from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.identity_events import TRUST_RULE_CREATED, TRUST_RULE_DELETED, TrustRuleChanged
from registry_contract.trust_rules import TrustRuleCreate, TrustRulePublic
from shared.outbox.changes import ChangeLog

_IDS = uuid.UUID("0b6f3c52-2f7e-4d1e-9a58-3c6d2b8e7f14")  # namespace of trust-rule event ids
_ALPHABET = string.ascii_letters + string.digits


def new_rule_id() -> str:
    """Eight random characters, the shape of a key id: a service acting for a token's caller names it alike."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(8))


def public(record: Document) -> TrustRulePublic:
    """The rule as its team's admins see it."""
    return TrustRulePublic.model_validate({**record, "rule_id": record["_id"]})


def rule_event(record: Document, event_type: str, *, actor: Principal) -> CloudEvent:
    """The one event of ``event_type`` for the rule ``record``."""
    data = TrustRuleChanged(
        team=record["team"],
        actor=actor.key_id,
        actor_team=actor.team,
        rule_id=record["_id"],
        issuer=record["issuer"],
        claims=record["claims"],
        scopes=record["scopes"],
        description=record.get("description"),
    )
    return announcement(_IDS, event_type, record["_id"], data)


class TrustRules(TeamRecords):
    """The ``trust_rules`` collection: reads, and writes with their events."""

    def __init__(
        self, collection: AsyncCollection[Document], changes: ChangeLog, keys: AsyncCollection[Document]
    ) -> None:
        super().__init__(collection, changes)
        self._keys = keys

    async def create(self, team: str, body: TrustRuleCreate, *, actor: Principal) -> Document:
        """Store a new rule for ``team`` and announce it, atomically."""
        rule_id = new_rule_id()
        while await self._keys.find_one({"_id": rule_id}, {"_id": 1}) is not None:
            rule_id = new_rule_id()  # a service acting for a caller names a key or a rule by one id
        record: Document = {
            "_id": rule_id,
            "team": team,
            "issuer": body.issuer,
            "claims": dict(body.claims),
            "scopes": sorted(set(body.scopes)),
            "description": body.description,
            "created_at": datetime.now(UTC),
            "created_by": actor.key_id,
            "deleted": False,
        }
        await self._commit_new(record, rule_event(record, TRUST_RULE_CREATED, actor=actor))
        return record

    async def delete(self, record: Document, *, actor: Principal) -> None:
        """Mark ``record`` deleted and announce it, atomically (a rule already deleted stays as it is)."""
        await self._mark_deleted(record, rule_event(record, TRUST_RULE_DELETED, actor=actor))

    async def count(self, team: str) -> int:
        """How many live rules the team holds."""
        return await self.collection.count_documents({"team": team, "deleted": False})

    async def by_id(self, rule_id: str) -> Document | None:
        """A live rule by id alone (a service acting for a token's caller names the rule)."""
        return await self.collection.find_one({"_id": rule_id, "deleted": False})
