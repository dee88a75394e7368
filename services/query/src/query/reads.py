"""Read-side queries straight over the denormalised documents (no domain model needed)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from query.pagination import SortSpec, decode_cursor, encode_cursor
from shared.mongo import DEPLOYMENTS, MODEL_VERSIONS, MODELS, OUTBOX, Document
from shared.versioning import VersionRange

MODEL_SORTS = ("created_at", "updated_at", "name")


@dataclass(frozen=True)
class ModelFilters:
    """The filters of ``GET /v1/models``."""

    team: str | None = None
    framework: str | None = None
    status: str | None = None
    deployment_target: str | None = None
    tags: tuple[str, ...] = ()
    name_prefix: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def scope(self, extra: dict[str, Any] | None = None) -> str:
        """A short fingerprint binding a cursor to these filters."""
        raw = json.dumps({**self.__dict__, **(extra or {})}, default=str, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass
class Page:
    """One page of results and the cursor of the next, if any."""

    items: list[Document]
    next_cursor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Reads:
    """Every query the read API runs."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db
        self.models, self.versions = db[MODELS], db[MODEL_VERSIONS]
        self.outbox, self.deployments = db[OUTBOX], db[DEPLOYMENTS]

    async def model_query(self, filters: ModelFilters, visible: dict[str, Any]) -> dict[str, Any]:
        """The MongoDB filter for ``filters`` within what the caller may see."""
        query: dict[str, Any] = dict(visible)
        if filters.team:
            query["team"] = filters.team
        if filters.framework:
            query["framework"] = filters.framework
        if filters.deployment_target:
            query["deployment_targets"] = filters.deployment_target
        if filters.tags:
            query["tag_pairs"] = {"$all": list(filters.tags)}
        if filters.name_prefix:
            query["name"] = {"$regex": "^" + re.escape(filters.name_prefix)}
        created: dict[str, datetime] = {}
        if filters.created_after:
            created["$gt"] = filters.created_after
        if filters.created_before:
            created["$lt"] = filters.created_before
        if created:
            query["created_at"] = created
        if filters.status:
            status_match: Any = filters.status if filters.status != "registered" else {"$in": [None, "registered"]}
            model_ids = await self.versions.distinct("model_id", {"status": status_match})
            query["_id"] = {"$in": model_ids}
        return query

    async def list_models(
        self,
        filters: ModelFilters,
        *,
        visible: dict[str, Any],
        sort: SortSpec,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """Models matching ``filters``, one keyset page at a time."""
        query = await self.model_query(filters, visible)
        scope = filters.scope({"visible": visible})
        if cursor:
            value, last_id = decode_cursor(cursor, sort, scope)
            query = {"$and": [query, sort.after(value, last_id)]}
        docs = await self.models.find(query).sort(sort.mongo_sort()).limit(limit + 1).to_list()
        next_cursor = None
        if len(docs) > limit:
            docs = docs[:limit]
            next_cursor = encode_cursor(sort, docs[-1].get(sort.field), docs[-1]["_id"], scope)
        return Page(docs, next_cursor)

    async def model(self, team: str, name: str) -> Document | None:
        """One model by team and name."""
        return await self.models.find_one({"team": team, "name": name})

    async def model_by_id(self, model_id: str) -> Document | None:
        """One model by its stable id."""
        return await self.models.find_one({"_id": model_id})

    async def list_versions(
        self,
        model: Document,
        *,
        version_range: VersionRange | None,
        include_prerelease: bool,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """A model's versions, newest SemVer precedence first."""
        query: dict[str, Any] = {"model_id": model["_id"]}
        key_bounds: dict[str, str] = version_range.to_filter() if version_range else {}
        if not include_prerelease:
            query["prerelease"] = False
        sort = SortSpec("version_key", descending=True)
        scope = hashlib.sha256(f"{model['_id']}|{key_bounds}|{include_prerelease}".encode()).hexdigest()[:16]
        if cursor:
            value, _ = decode_cursor(cursor, sort, scope)
            key_bounds = {**key_bounds, "$lt": min(value, key_bounds.get("$lt", value))}
        if key_bounds:
            query["version_key"] = key_bounds
        docs = await self.versions.find(query).sort("version_key", -1).limit(limit + 1).to_list()
        next_cursor = None
        if len(docs) > limit:
            docs = docs[:limit]
            next_cursor = encode_cursor(sort, docs[-1]["version_key"], docs[-1]["_id"], scope)
        return Page(docs, next_cursor)

    async def version(self, model: Document, key: str) -> Document | None:
        """One version by precedence key."""
        return await self.versions.find_one({"model_id": model["_id"], "version_key": key})

    async def latest_version(self, model: Document) -> Document | None:
        """The highest non-prerelease version."""
        docs = (
            await self.versions.find({"model_id": model["_id"], "version_key": {"$gt": ""}, "prerelease": False})
            .sort("version_key", -1)
            .limit(1)
            .to_list()
        )
        return docs[0] if docs else None

    async def history(self, model: Document, *, limit: int, cursor: str | None) -> Page:
        """Every change of a model, oldest first (the outbox is its event log)."""
        return await _by_position(self.outbox, {"model_id": model["_id"]}, str(model["_id"]), limit, cursor)

    async def deployment_history(self, version: Document, *, limit: int, cursor: str | None) -> Page:
        """Deployment reports of a version, oldest first."""
        return await _by_position(self.deployments, {"version_id": version["_id"]}, str(version["_id"]), limit, cursor)


async def _by_position(
    collection: AsyncCollection[Document], query: dict[str, Any], owner: str, limit: int, cursor: str | None
) -> Page:
    """A page of an append-only log ordered by ``position``."""
    sort = SortSpec("position", descending=False)
    scope = hashlib.sha256(owner.encode()).hexdigest()[:16]
    if cursor:
        value, _ = decode_cursor(cursor, sort, scope)
        query = {**query, "position": {"$gt": value}}
    docs = await collection.find(query).sort("position", 1).limit(limit + 1).to_list()
    next_cursor = None
    if len(docs) > limit:
        docs = docs[:limit]
        next_cursor = encode_cursor(sort, docs[-1]["position"], docs[-1]["_id"], scope)
    return Page(docs, next_cursor)
