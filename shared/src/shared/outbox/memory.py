"""An in-memory outbox log for the services' in-memory repositories (unit tests), like the MongoDB one."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from registry_contract.documents import Document
from shared.outbox.rows import Numbering


class InMemoryOutboxLog:
    """:class:`~shared.outbox.rows.OutboxLog` over dicts; a repository adds its own collections."""

    def __init__(self, writer: str = "memory") -> None:
        self.writer = writer
        self.outbox: dict[str, Document] = {}
        self.checkpoints: dict[str, Document] = {}
        self.numbering = Numbering()

    def add_rows(self, rows: list[Document]) -> None:
        """Number ``rows`` and store them (call under ``numbering.lock``, with the batch's other writes)."""
        self.numbering.take(rows, self.writer)
        for row in rows:
            self.outbox[row["_id"]] = copy.deepcopy(row)

    async def register_writer(self) -> None:
        self.checkpoints.setdefault(self.writer, {"seq": 0})["seen_at"] = datetime.now(UTC)

    async def pending(self, writer: str, limit: int) -> list[Document]:
        after = self.checkpoints.get(writer, {}).get("seq", 0)
        rows = [d for d in self.outbox.values() if d["writer"] == writer and after < d["seq"] <= after + limit]
        return copy.deepcopy(sorted(rows, key=lambda d: d["seq"]))

    async def advance(self, writer: str, seq: int) -> None:
        checkpoint = self.checkpoints.setdefault(writer, {"seq": 0})
        checkpoint["seq"] = max(checkpoint["seq"], seq)
        checkpoint["seen_at"] = datetime.now(UTC)

    async def stale_writers(self, idle: timedelta) -> list[str]:
        cutoff = datetime.now(UTC) - idle
        return [w for w, c in self.checkpoints.items() if w != self.writer and c["seen_at"] < cutoff]

    async def forget_writer(self, writer: str) -> None:
        self.checkpoints.pop(writer, None)

    async def park(self, rows: list[tuple[str, str]]) -> None:
        now = datetime.now(UTC)
        for row_id, reason in rows:
            if row_id in self.outbox:
                self.outbox[row_id] |= {"parked_reason": reason, "parked_at": now}

    async def unsent(self) -> tuple[int, datetime | None]:
        after = self.checkpoints.get(self.writer, {}).get("seq", 0)
        rows = [d for d in self.outbox.values() if d["writer"] == self.writer and d["seq"] > after]
        oldest = min(rows, key=lambda d: d["seq"], default=None)
        return len(rows), oldest["time"] if oldest else None
