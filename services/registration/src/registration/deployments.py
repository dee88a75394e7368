"""Where each version runs, as registration knows it: from the tracker's deployment_status_changed events.

The deploy-tracker owns deployments; registration keeps only what its rules need (a version that
is deploying or deployed somewhere is not deleted), in its own collection, fed by the tracker's
events on ``registry.events`` and, on a first start, by the tracker's event log
(:mod:`registration.deployments_bootstrap`). Each environment keeps the revision (the tracker's
outbox position) of the event that set it, so an older event read late never undoes a newer one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError
from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from registry_contract import catalog, messages
from registry_contract.documents import Document
from registry_contract.ids import version_id
from shared.chassis.mongo import find_by_ids

TRACKER_SOURCE = "/registry/deploy-tracker"
BOOTSTRAP_MARK = "~bootstrap"  # the document noting how far the bootstrap from the tracker's log got
_SLUG = re.compile(catalog.SLUG_PATTERN)


class _StatusChanged(BaseModel):
    """What registration reads of ``deployment_status_changed`` (the tracker may send more)."""

    team: str
    name: str
    version: str
    environment: str
    status: str


@dataclass(frozen=True)
class StatusSeen:
    """One environment's new status for one version, at the tracker's revision."""

    version_id: str
    environment: str
    status: str
    revision: int  # 0: the event carried none (applied in the order read)


def status_seen(event_type: str, source: str, data: Any, revision: int | None) -> StatusSeen | None:
    """The status change an event announces, or ``None`` when it is not a valid one of the tracker's."""
    if event_type != messages.DEPLOYMENT_STATUS_CHANGED or not source.startswith(TRACKER_SOURCE):
        return None
    try:
        change = _StatusChanged.model_validate(data)
        vid = version_id(change.team, change.name, change.version)
    except (ValidationError, ValueError):
        return None
    if not _SLUG.fullmatch(change.environment) or change.status not in catalog.DEPLOYMENT_STATUSES:
        return None
    return StatusSeen(vid, change.environment, change.status, revision or 0)


class DeployedEnvironments(Protocol):
    """The table of where versions run: read by deletes, written by the subscriber and the bootstrap."""

    async def of(self, version_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each known version's ``{environment: status}``."""
        ...

    async def record(self, seen: Sequence[StatusSeen]) -> None:
        """Apply status changes, each only over an older revision of its environment."""
        ...

    async def bootstrap_mark(self) -> Document | None:
        """How far the bootstrap from the tracker's log got (``None``: never begun)."""
        ...

    async def mark_bootstrap(self, *, after: int, done: bool) -> None:
        """Note the bootstrap's progress, so a restart resumes it and a finished one is not redone."""
        ...


class MongoDeployedEnvironments:
    """:class:`DeployedEnvironments` in registration's ``deployed_environments`` collection."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self._collection = collection

    async def of(self, version_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        found = await find_by_ids(self._collection, version_ids)
        return {
            vid: {env: e["status"] for env, e in (doc.get("environments") or {}).items()} for vid, doc in found.items()
        }

    async def record(self, seen: Sequence[StatusSeen]) -> None:
        if seen:
            await self._collection.bulk_write([_newer_only(s) for s in seen], ordered=True)

    async def bootstrap_mark(self) -> Document | None:
        return await self._collection.find_one({"_id": BOOTSTRAP_MARK})

    async def mark_bootstrap(self, *, after: int, done: bool) -> None:
        await self._collection.update_one(
            {"_id": BOOTSTRAP_MARK}, {"$set": {"after": after, "done": done}}, upsert=True
        )


def _newer_only(seen: StatusSeen) -> UpdateOne:
    """The update setting one environment's status unless the stored one is as new or newer."""
    path = f"environments.{seen.environment}"  # a slug: no dot, no dollar
    newer: dict[str, Any] = {"$gt": [seen.revision, {"$ifNull": [f"${path}.revision", -1]}]}
    if seen.revision == 0:  # no revision to compare: the latest read wins, as the topic orders them
        newer = {"$literal": True}
    value = {"$literal": {"status": seen.status, "revision": seen.revision}}
    return UpdateOne({"_id": seen.version_id}, [{"$set": {path: {"$cond": [newer, value, f"${path}"]}}}], upsert=True)


class InMemoryDeployedEnvironments:
    """A fake with the same behaviour, for unit tests."""

    def __init__(self) -> None:
        self.table: dict[str, dict[str, tuple[str, int]]] = {}
        self.mark: Document | None = None

    async def of(self, version_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        return {
            vid: {env: status for env, (status, _) in self.table[vid].items()}
            for vid in version_ids
            if vid in self.table
        }

    async def record(self, seen: Sequence[StatusSeen]) -> None:
        for s in seen:
            envs = self.table.setdefault(s.version_id, {})
            stored = envs.get(s.environment)
            if s.revision == 0 or stored is None or s.revision > stored[1]:
                envs[s.environment] = (s.status, s.revision)

    async def bootstrap_mark(self) -> Document | None:
        return dict(self.mark) if self.mark is not None else None

    async def mark_bootstrap(self, *, after: int, done: bool) -> None:
        self.mark = {"_id": BOOTSTRAP_MARK, "after": after, "done": done}
