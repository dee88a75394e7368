"""What the teams' trust rules and signing keys share: records kept when deleted, each change committed with its event.

Both are written through the HTTP API only, in one transaction with the one event the change
announces, whose id derives from the record (a change is announced once; the audit log keeps it
for ever). A deleted record stays, marked, so its id is never reused.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from registration.batch import SOURCE
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from shared.outbox.changes import ChangeLog


def announcement(namespace: uuid.UUID, event_type: str, record_id: str, data: BaseModel) -> CloudEvent:
    """The one event of ``event_type`` for the record ``record_id`` (its id derives from both)."""
    return CloudEvent(
        id=uuid.uuid5(namespace, f"{event_type}:{record_id}").hex,
        source=SOURCE,
        type=event_type,
        data=data.model_dump(mode="json"),
    )


class TeamRecords:
    """A collection of one kind of team record (``_id``, ``team``, ``deleted``, ``created_at``)."""

    def __init__(self, collection: AsyncCollection[Document], changes: ChangeLog) -> None:
        self.collection, self._changes = collection, changes

    async def _commit_new(self, record: Document, event: CloudEvent) -> None:
        """Store ``record`` and announce ``event``, atomically."""

        async def insert(session: AsyncClientSession) -> None:
            await self.collection.insert_one(record, session=session)

        await self._changes.commit([event], insert)

    async def _mark_deleted(self, record: Document, event: CloudEvent) -> None:
        """Mark ``record`` deleted and announce ``event``, atomically (one already deleted stays as it is)."""

        async def mark(session: AsyncClientSession) -> None:
            deleted = {"$set": {"deleted": True, "deleted_at": datetime.now(UTC)}}
            await self.collection.update_one({"_id": record["_id"], "deleted": False}, deleted, session=session)

        await self._changes.commit([event], mark)

    async def live(self, team: str, record_id: str) -> Document | None:
        """The team's record ``record_id``, unless deleted."""
        return await self.collection.find_one({"_id": record_id, "team": team, "deleted": False})

    async def of_team(self, team: str) -> list[Document]:
        """The team's live records, oldest first."""
        return await self.collection.find({"team": team, "deleted": False}).sort("created_at", 1).to_list()
