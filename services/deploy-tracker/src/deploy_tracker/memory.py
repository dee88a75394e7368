"""An in-memory :class:`~deploy_tracker.handlers.Repository` for unit tests, behaving like the MongoDB one."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pymongo.errors import DuplicateKeyError

from deploy_tracker.handlers import Changes
from shared.contract.documents import Document
from shared.outbox.rows import Numbering

DUPLICATE_KEY = 11000


class InMemoryRepository:
    """Report history, versions and the outbox in dicts; a batch is written whole or not at all."""

    def __init__(self, writer: str = "memory") -> None:
        self.writer = writer
        self.history: dict[str, Document] = {}
        self.versions: dict[str, Document] = {}
        self.outbox: dict[str, Document] = {}
        self.checkpoints: dict[str, Document] = {}
        self._numbering = Numbering()

    async def seen(self, report_keys: Sequence[str]) -> set[str]:
        return {key for key in report_keys if key in self.history}

    async def versions_by_id(self, version_ids: Sequence[str]) -> dict[str, Document]:
        return {vid: copy.deepcopy(self.versions[vid]) for vid in version_ids if vid in self.versions}

    async def commit(self, changes: Changes) -> None:
        """Write ``changes`` whole; an id already taken refuses all of it, as MongoDB's unique ``_id`` does."""
        taken = [row["_id"] for row in changes.history if row["_id"] in self.history]
        taken += [row["_id"] for row in changes.outbox if row["_id"] in self.outbox]
        if taken:
            raise DuplicateKeyError(f"duplicate key: {taken[0]}", DUPLICATE_KEY)
        async with self._numbering.lock:
            self._numbering.take(changes.outbox, self.writer)
            for row in changes.history:
                self.history[row["_id"]] = copy.deepcopy(row)
            for vid, fields in changes.version_sets.items():
                if vid in self.versions:  # like an update without upsert
                    self.versions[vid].update(copy.deepcopy(fields))
            for row in changes.outbox:
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
