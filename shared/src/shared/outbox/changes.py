"""Configuration changes published through a service's outbox: the write and its events commit together."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError

from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from shared.chassis.mongo import is_duplicate_key
from shared.outbox.log import MongoOutboxLog
from shared.outbox.rows import outbox_row

Write = Callable[[AsyncClientSession], Awaitable[None]]


class AlreadyAnnounced(Exception):
    """An event of this change, by its id, is in the outbox already: the change was made and announced."""


class ChangeLog:
    """Commits a change (keys, webhooks) and its events, keyed by team, in one transaction; wakes the relay."""

    def __init__(self, log: MongoOutboxLog, client: AsyncMongoClient[Document], *, wake: Callable[[], None]) -> None:
        self._log, self._client, self._wake = log, client, wake

    async def commit(self, events: Sequence[CloudEvent], write: Write) -> None:
        """Run ``write`` and add ``events`` to the outbox atomically.

        Raises :class:`AlreadyAnnounced` (the transaction undone) when an event's id is already in
        the outbox: events with ids derived from what they announce are announced once.
        """
        rows = [outbox_row(e, key=e.data["team"], team=e.data["team"], model_id=None) for e in events]
        try:
            await self._log.commit_with_rows(self._client, rows, write)
        except (DuplicateKeyError, BulkWriteError) as exc:
            if not is_duplicate_key(exc):
                raise
            raise AlreadyAnnounced(str(exc)) from None
        self._wake()
