"""An in-memory :class:`~deploy_tracker.handlers.Repository` for unit tests, behaving like the MongoDB one."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from pymongo.errors import DuplicateKeyError

from deploy_tracker.handlers import Changes
from registry_contract.documents import Document
from shared.chassis.mongo import DUPLICATE_KEY
from shared.outbox.memory import InMemoryOutboxLog


class InMemoryRepository(InMemoryOutboxLog):
    """Report history, known versions and the outbox in dicts; a batch is written whole or not at all."""

    def __init__(self, writer: str = "memory") -> None:
        super().__init__(writer)
        self.history: dict[str, Document] = {}
        self.versions: dict[str, Document] = {}

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
        async with self.numbering.lock:
            self.add_rows(changes.outbox)
            changes.stamp_revisions()
            for row in changes.history:
                self.history[row["_id"]] = copy.deepcopy(row)
            for row in changes.learned:
                self.versions.setdefault(row["_id"], copy.deepcopy(row))
            for vid, fields in changes.version_sets.items():
                if vid in self.versions:  # like an update without upsert
                    self.versions[vid].update(copy.deepcopy(fields))
            for vid, fields in changes.approvals.items():
                if vid in self.versions and self.versions[vid].get("revision", 0) < fields["revision"]:
                    self.versions[vid].update(copy.deepcopy(fields))
            for vid, fields in changes.provenance.items():
                if vid in self.versions and self.versions[vid].get("provenance_verified") is None:
                    self.versions[vid].update(fields)
