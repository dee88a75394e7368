"""Outbox rows: the codec between events and rows, their numbering, and what a relay reads (no I/O)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from datetime import datetime, timedelta
from typing import Protocol

from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.times import to_stored_precision


def writer_id() -> str:
    """A writer id unique to this process: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Numbering:
    """Numbers outbox rows under a lock, so one writer's commits are numbered in commit order.

    ``seq`` is dense per writer (numbers of a failed commit are given back), so the relay can ask
    for exactly the next ``limit`` rows by range: the stand-in materialises every row a query's
    range matches, whatever the limit. ``position`` is time-based and orders rows of all writers.
    """

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self._last_position = 0
        self._seq = 0

    def take(self, rows: list[Document], writer: str) -> int:
        """Number ``rows``; return the sequence to restore if their commit fails."""
        before = self._seq
        for row in rows:
            self._last_position = max(self._last_position + 1, time.time_ns())
            self._seq += 1
            row["position"], row["seq"], row["writer"] = self._last_position, self._seq, writer
        return before

    def give_back(self, seq: int) -> None:
        """Undo :meth:`take` after a failed commit, keeping the sequence gap-free."""
        self._seq = seq

    @property
    def last(self) -> int:
        """The number of this writer's latest committed row (0 before the first)."""
        return self._seq


class OutboxLog(Protocol):
    """What the relay needs: this writer's id, the rows after a checkpoint, and checkpoints."""

    writer: str

    async def register_writer(self) -> None:
        """Create this writer's relay checkpoint."""
        ...

    async def pending(self, writer: str, limit: int) -> list[Document]:
        """Outbox rows of ``writer`` after its checkpoint, oldest first."""
        ...

    async def advance(self, writer: str, seq: int) -> None:
        """Move ``writer``'s checkpoint to ``seq`` (everything up to it is published)."""
        ...

    async def stale_writers(self, idle: timedelta) -> list[str]:
        """Other writers whose checkpoint has not moved for ``idle``: their processes are gone."""
        ...

    async def forget_writer(self, writer: str) -> None:
        """Drop a drained writer's checkpoint."""
        ...

    async def unsent(self) -> tuple[int, datetime | None]:
        """How many of this writer's rows are not published yet, and the time of the oldest."""
        ...

    async def park(self, rows: list[tuple[str, str]]) -> None:
        """Mark rows (by id) the broker refused for good, with the reason; they stay for inspection."""
        ...


def event_from_outbox(doc: Document) -> CloudEvent:
    """Rebuild the CloudEvent that an outbox row stands for, its ``revision`` the row's ``position``.

    The position orders every row of the writer's service, so it is the model's revision after
    this event (what a consistency token names); a row not yet numbered has none.
    """
    return CloudEvent(
        id=doc["_id"],
        source=doc["source"],
        type=doc["type"],
        time=doc["time"],
        subject=doc.get("subject"),
        correlation_id=doc["correlation_id"],
        causation_id=doc.get("causation_id"),
        data=doc["data"],
        revision=doc.get("position"),
    )


def outbox_row(event: CloudEvent, *, key: str, team: str | None, model_id: str | None) -> Document:
    """The outbox row of ``event`` (the inverse of :func:`event_from_outbox`), numbered at commit.

    Its time is cut to the millisecond, as BSON stores it: the relay publishes a row from memory
    or from the database, and either way the event says the same.
    """
    return {
        "_id": event.id,
        "type": event.type,
        "source": event.source,
        "subject": event.subject,
        "time": to_stored_precision(event.time),
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "key": key,
        "data": event.data,
        "team": team,
        "model_id": model_id,
    }
