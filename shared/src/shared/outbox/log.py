"""The outbox log in MongoDB: rows after a writer's checkpoint, checkpoints, parking."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ServerSelectionTimeoutError

from registry_contract.documents import Document
from shared.chassis.pacing import AtMostEvery
from shared.outbox.rows import Numbering

CHECKPOINT_SAVE_SECONDS = 1.0  # a process's own checkpoint is stored at most this often
COMMITTED_KEPT = 10_000  # this writer's committed, unpublished rows kept for the relay, at most


class MongoOutboxLog:
    """:class:`OutboxLog` over an outbox collection and its checkpoints; services' repositories extend it."""

    def __init__(
        self, outbox: AsyncCollection[Document], checkpoints: AsyncCollection[Document], *, writer: str
    ) -> None:
        self._outbox, self._checkpoints, self.writer = outbox, checkpoints, writer
        self._numbering = Numbering()
        self._published = 0  # this writer's checkpoint: only this process advances it
        self._saves = AtMostEvery(CHECKPOINT_SAVE_SECONDS)  # when its own checkpoint is stored
        # This writer's rows committed and not yet published, in sequence order: the relay takes
        # them from here rather than reading back what this process has just written (one query
        # per commit on the database server). Only a gap-free run right after the checkpoint is
        # kept; anything else (too many while Kafka is away) is read from the database as before.
        self._committed: list[Document] = []
        # A commit that raised may still have landed (its result unknown): its numbers are given
        # back and reused, so the database may hold two rows under one number. Until the relay has
        # read past them from the database, no row is served from memory.
        self._read_back_until = 0

    async def commit_numbered(
        self,
        client: AsyncMongoClient[Document],
        rows: list[Document],
        write: Callable[[AsyncClientSession], Awaitable[None]],
    ) -> None:
        """Number ``rows`` after this writer's earlier commits and run ``write`` in one transaction.

        The numbers are given back if the transaction fails, so the sequence stays gap-free.
        """
        async with self._numbering.lock:
            before = self._numbering.take(rows, self.writer)
            try:
                # Not causally consistent: the session holds this one transaction, which reads
                # nothing an earlier operation of it wrote. A causal session's retried transaction
                # opens with a readConcern (afterClusterTime) that the embedded stand-in refuses
                # on registration's bulkWrite (mongod accepts it), failing a write conflict's retry.
                async with client.start_session(causal_consistency=False) as session:
                    await session.with_transaction(_unreachable_ends(write))
            except BaseException:
                self._numbering.give_back(before)
                self._read_back_until = max(self._read_back_until, before + len(rows))
                raise
            self._keep_committed(rows)

    def _keep_committed(self, rows: list[Document]) -> None:
        """Keep ``rows`` (just committed) for the relay if they continue the kept run without a gap."""
        if not rows or self._published < self._read_back_until:
            return
        follows = self._committed[-1]["seq"] if self._committed else self._published
        if rows[0]["seq"] == follows + 1 and len(self._committed) + len(rows) <= COMMITTED_KEPT:
            self._committed.extend(rows)

    async def commit_with_rows(
        self,
        client: AsyncMongoClient[Document],
        rows: list[Document],
        write: Callable[[AsyncClientSession], Awaitable[None]],
    ) -> None:
        """Run ``write`` and insert the outbox ``rows`` in one transaction (a change and its events)."""

        async def both(session: AsyncClientSession) -> None:
            await write(session)
            await self._outbox.insert_many(rows, session=session)

        await self.commit_numbered(client, rows, both)

    async def register_writer(self) -> None:
        await self._checkpoints.update_one(
            {"_id": self.writer}, {"$setOnInsert": {"seq": 0}, "$set": {"seen_at": datetime.now(UTC)}}, upsert=True
        )

    async def pending(self, writer: str, limit: int) -> list[Document]:
        if writer == self.writer and self._from_memory():
            return self._committed[:limit]
        if writer == self.writer and self._published:
            after = self._published  # only this process advances its own checkpoint: no read needed
        else:
            checkpoint = await self._checkpoints.find_one({"_id": writer})
            after = checkpoint["seq"] if checkpoint else 0
        query = {"writer": writer, "seq": {"$gt": after, "$lte": after + limit}}
        return await self._outbox.find(query).sort("seq", 1).to_list()

    def _from_memory(self) -> bool:
        """Whether the kept rows are exactly this writer's next ones, and no unsure commit is in the way."""
        return (
            bool(self._committed)
            and self._committed[0]["seq"] == self._published + 1
            and self._published >= self._read_back_until
        )

    async def advance(self, writer: str, seq: int) -> None:
        """Move ``writer``'s checkpoint to ``seq``; this process's own is stored at most every second.

        Only this process advances its own checkpoint and it reads it from memory, so storing it
        serves a restart alone: storing it per batch cost every registration one more durable
        update. A process that dies publishes its last second again (consumers dedupe on the
        event id); the relay's heartbeat (``seq`` 0) always stores it, with ``seen_at``.
        """
        if writer == self.writer:
            self._published = max(self._published, seq)
            if self._committed and self._committed[0]["seq"] <= self._published:
                del self._committed[: self._published - self._committed[0]["seq"] + 1]
            if not self._saves.due() and seq:
                return
            seq = self._published
        await self._checkpoints.update_one(
            {"_id": writer}, {"$max": {"seq": seq}, "$set": {"seen_at": datetime.now(UTC)}}, upsert=True
        )

    async def stale_writers(self, idle: timedelta) -> list[str]:
        cutoff = datetime.now(UTC) - idle
        docs = await self._checkpoints.find({"seen_at": {"$lt": cutoff}}).to_list()
        return [doc["_id"] for doc in docs if doc["_id"] != self.writer]

    async def forget_writer(self, writer: str) -> None:
        await self._checkpoints.delete_one({"_id": writer})

    async def park(self, rows: list[tuple[str, str]]) -> None:
        now = datetime.now(UTC)
        kept = {row["_id"]: row for row in self._committed}
        for row_id, reason in rows:
            marks = {"parked_reason": reason, "parked_at": now}
            await self._outbox.update_one({"_id": row_id}, {"$set": marks})
            if row_id in kept:  # the relay's copy says so too, as the database's does
                kept[row_id].update(marks)

    async def unsent(self) -> tuple[int, datetime | None]:
        # Sequences are dense and both ends are known here: the backlog is a subtraction, and
        # the database is asked only for the oldest row's time, by point lookup, when there is one.
        backlog = max(0, self._numbering.last - self._published)
        if not backlog:
            return 0, None
        oldest = await self._outbox.find_one({"writer": self.writer, "seq": self._published + 1}, {"time": 1})
        return backlog, oldest["time"] if oldest else None


def _unreachable_ends(
    write: Callable[[AsyncClientSession], Awaitable[None]],
) -> Callable[[AsyncClientSession], Awaitable[None]]:
    """``write``, failing the transaction at once when no server could be selected for it.

    The driver labels that failure a transient transaction error, so ``with_transaction`` would run
    the transaction again and again for two minutes (its own limit) while an HTTP write waited and
    its client timed out. Raised unlabelled, after the client's ``serverSelectionTimeoutMS``, it
    ends the transaction: a request answers 503 (the error is still a connection failure, which
    :func:`shared.chassis.consuming.is_transient` counts as transient) and a consumer backs off
    and retries its batch, as when a read before the transaction found no server.
    """

    async def bounded(session: AsyncClientSession) -> None:
        try:
            await write(session)
        except ServerSelectionTimeoutError as exc:
            raise ServerSelectionTimeoutError(str(exc)) from exc  # a new error: without the label

    return bounded
