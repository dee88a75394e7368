"""Read-side queries straight over the denormalised documents (no domain model needed)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from query.api.pagination import SortSpec, after_key, decode_cursor, encode_cursor, paged
from query.api.version_cache import MAX_VERSIONS_PER_MODEL, VersionCache
from shared.chassis.mongo import DEPLOYMENTS, MODEL_VERSIONS, MODELS, OUTBOX
from shared.contract.documents import Document
from shared.contract.ids import version_doc_id
from shared.contract.sortkeys import time_key
from shared.contract.versioning import VersionRange, precedence_key

MODEL_SORTS = {"created_at": "created_key", "updated_at": "updated_key", "name": "name_key"}
MAX_SCANNED_MODELS = 2_000  # models one request with a status/environment filter may examine
RECENT_APPLIED_REPORTS = 200  # a model's newest applied deployment reports kept in memory


@dataclass(frozen=True)
class ModelFilters:
    """The filters of ``GET /v1/models``."""

    team: str | None = None
    framework: str | None = None
    status: str | None = None
    environment: str | None = None
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


class Reads:
    """Every query the read API runs."""

    def __init__(self, db: AsyncDatabase[Document], *, version_cache: VersionCache | None = None) -> None:
        self._db, self.version_cache = db, version_cache
        self.models, self.versions = db[MODELS], db[MODEL_VERSIONS]
        self.outbox, self.deployments = db[OUTBOX], db[DEPLOYMENTS]

    def model_query(self, filters: ModelFilters, visible: dict[str, Any]) -> dict[str, Any]:
        """The MongoDB filter for ``filters`` within what the caller may see."""
        query: dict[str, Any] = dict(visible)
        if filters.team:
            query["team"] = filters.team
        if filters.framework:
            query["framework"] = filters.framework
        if filters.deployment_target:
            query["deployment_targets"] = filters.deployment_target
        if filters.tags:
            # One tag rides the multikey index; the others match the tags map exactly.
            first, *rest = filters.tags
            query["tag_pairs"] = first
            for pair in rest:
                key, _, value = pair.partition(":")
                query[f"tags.{key}"] = value
        if filters.name_prefix:
            # A range, not a regex: slugs are ASCII below 0x7f, and ranges ride the index.
            query["name_key"] = {"$gte": filters.name_prefix, "$lt": filters.name_prefix + "\x7f"}
        # Time bounds on the unique sort key, so they share its index: "~" sorts after every id.
        created: dict[str, str] = {}
        if filters.created_after:
            created["$gt"] = time_key(filters.created_after, "~")
        if filters.created_before:
            created["$lt"] = time_key(filters.created_before, "")
        if created:
            query["created_key"] = created
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
        scope = filters.scope({"visible": visible})
        query = paged(sort, self.model_query(filters, visible), cursor, scope)
        if filters.status or filters.environment:
            condition = deployment_condition(filters.status, filters.environment)
            return await self._deployed_page(query, condition, sort=sort, limit=limit, scope=scope)
        return await _page(self.models, query, sort, limit, scope)

    async def _deployed_page(
        self, query: dict[str, Any], condition: dict[str, Any], *, sort: SortSpec, limit: int, scope: str
    ) -> Page:
        """Models of ``query`` with a version in the deployment state ``condition``, with bounded work.

        Deployment state lives on versions; "everything deployed to prod" is the models with at
        least one version whose prod environment is deployed. Visible models are examined in sort
        order, a chunk at a time, and each chunk's versions asked for by model id; at most
        ``MAX_SCANNED_MODELS`` models per request, so the page may come back short with a
        ``next_cursor`` that continues the scan (found: a distinct over every team's versions).
        """
        found: list[Document] = []
        last_key: Any = None
        examined, chunk = 0, max(limit * 2, 100)
        while len(found) < limit and examined < MAX_SCANNED_MODELS:
            window = query if last_key is None else after_key(sort, query, last_key)
            batch = await self.models.find(window).sort(sort.mongo_sort()).limit(chunk).to_list()
            ids = [doc["_id"] for doc in batch]
            matching = set(await self.versions.distinct("model_id", {"model_id": {"$in": ids}, **condition}))
            for doc in batch:
                last_key, examined = doc[sort.key_field], examined + 1
                if doc["_id"] in matching:
                    found.append(doc)
                    if len(found) == limit:
                        break
            if len(batch) < chunk and len(found) < limit:
                return Page(found)  # the end of the models: no next page
        return Page(found, encode_cursor(sort, last_key, scope))

    async def model(self, team: str, name: str) -> Document | None:
        """One model by team and name."""
        return await self.models.find_one({"team": team, "name": name})

    async def model_by_id(self, model_id: str) -> Document | None:
        """One model by its stable id."""
        return await self.models.find_one({"_id": model_id})

    async def models_by_ids(self, model_ids: list[str]) -> list[Document]:
        """The models of ``model_ids`` that exist (one round trip)."""
        return await self.models.find({"_id": {"$in": model_ids}}).to_list() if model_ids else []

    async def headline_versions(self, models: list[Document]) -> dict[str, Document]:
        """Each model's headline (latest) version by model id, in one round trip."""
        wanted = {
            version_doc_id(m["_id"], precedence_key(m["latest_version"])): m["_id"]
            for m in models
            if m.get("latest_version")
        }
        if not wanted:
            return {}
        found = await self.versions.find({"_id": {"$in": list(wanted)}}).to_list()
        return {wanted[doc["_id"]]: doc for doc in found}

    async def list_versions(
        self,
        model: Document,
        *,
        version_range: VersionRange | None,
        include_prerelease: bool,
        limit: int,
        cursor: str | None,
        status: str | None = None,
        environment: str | None = None,
        lifecycle: str | None = None,
    ) -> Page:
        """A model's versions, newest SemVer precedence first, optionally by deployment state or lifecycle."""
        query: dict[str, Any] = {"model_id": model["_id"]}
        key_bounds: dict[str, str] = version_range.to_filter() if version_range else {}
        # Both forms keep the (model_id, prerelease, version_key) index usable.
        query["prerelease"] = False if not include_prerelease else {"$in": [False, True]}
        if key_bounds:
            query["version_key"] = key_bounds
        query |= deployment_condition(status, environment)
        if lifecycle:
            query["lifecycle"] = lifecycle
        scope = _fingerprint(f"{model['_id']}|{key_bounds}|{include_prerelease}|{status}|{environment}|{lifecycle}")
        every = await self.every_version(model) if not (status or environment) else None
        if every is not None:
            return _page_in_memory(every, query, _BY_PRECEDENCE, cursor, limit, scope)
        return await _page(self.versions, paged(_BY_PRECEDENCE, query, cursor, scope), _BY_PRECEDENCE, limit, scope)

    async def every_version(self, model: Document) -> list[Document] | None:
        """All of ``model``'s versions, newest first, from the cache when current; ``None`` if not cacheable."""
        if self.version_cache is None or not self.version_cache.cacheable(model):
            return None
        found = self.version_cache.get("versions", model)
        if found is None:
            query = {"model_id": model["_id"], "prerelease": {"$in": [False, True]}}
            found = await self.versions.find(query).sort("version_key", -1).limit(MAX_VERSIONS_PER_MODEL + 1).to_list()
            if len(found) > MAX_VERSIONS_PER_MODEL:
                return None
            self.version_cache.keep("versions", model, found)
        return found

    async def version_by_id(self, version_id: str) -> Document | None:
        """One version by document id (model id and precedence key)."""
        return await self.versions.find_one({"_id": version_id})

    async def latest_version(
        self, model: Document, *, include_prerelease: bool = False, include_deprecated: bool = False
    ) -> Document | None:
        """The highest active non-prerelease version (prereleases and deprecated ones too, if asked)."""
        lifecycles = ["active", "deprecated"] if include_deprecated else ["active"]
        every = await self.every_version(model)
        if every is not None:  # newest first: the first that qualifies
            stable = [False, True] if include_prerelease else [False]
            return next(
                (doc for doc in every if doc.get("prerelease") in stable and doc.get("lifecycle") in lifecycles), None
            )
        query: dict[str, Any] = {
            "model_id": model["_id"],
            "prerelease": {"$in": [False, True]} if include_prerelease else False,
            "lifecycle": {"$in": lifecycles},
        }
        docs = await self.versions.find(query).sort("version_key", -1).limit(1).to_list()
        return docs[0] if docs else None

    async def children(self, version: Document, visible: dict[str, Any], limit: int) -> list[Document]:
        """Versions registered with ``version`` as their parent, of models the caller may read."""
        parent = {f"parent.{k}": version[k] for k in ("team", "name", "version")}
        found = await self.versions.find(parent).sort("version_key", -1).limit(limit * 4).to_list()
        owners = {"_id": {"$in": sorted({v["model_id"] for v in found})}, **visible}
        readable = {m["_id"] for m in await self.models.find(owners, {"_id": 1}).to_list()}
        return [v for v in found if v["model_id"] in readable][:limit]

    async def history(self, model: Document, *, limit: int, cursor: str | None) -> Page:
        """Every change of a model, oldest first (the outbox is its event log)."""
        return await _by_position(self.outbox, {"model_id": model["_id"]}, str(model["_id"]), limit, cursor)

    async def recent_deployments(self, version: Document, limit: int) -> list[Document]:
        """A version's most recent deployment reports, newest first (the history pages oldest first)."""
        cursor = self.deployments.find({"version_id": version["_id"]}).sort("position", -1).limit(limit)
        return await cursor.to_list()

    async def readable_model_ids(self, team: str, visible: dict[str, Any]) -> list[str] | None:
        """Which of ``team``'s models ``visible`` lets the caller read: ``None`` for every one of them.

        A caller of another team reads only the models shared with it, at most
        ``MAX_SCANNED_MODELS`` of them.
        """
        if not visible or visible.get("readers") == team:
            return None
        shared = self.models.find({"team": team, **visible}, {"_id": 1}).limit(MAX_SCANNED_MODELS)
        return [doc["_id"] for doc in await shared.to_list()]

    async def team_recent(self, what: str, team: str, model_ids: list[str] | None, limit: int) -> list[Document]:
        """The newest ``limit`` ``versions`` (by registration) or ``deployments`` (by receipt) of a team's models."""
        collection, field = (self.versions, "created_at") if what == "versions" else (self.deployments, "received_at")
        query: dict[str, Any] = {"team": team}
        query["model_id"] = {"$exists": True} if model_ids is None else {"$in": model_ids}
        return await collection.find(query).sort(field, -1).limit(limit).to_list()

    async def model_deployments(
        self, model: Document, *, environment: str | None, outcome: str | None, limit: int
    ) -> list[Document]:
        """A model's most recent deployment reports across its versions, newest first.

        Applied reports are kept in memory per change of the model (each one moves its
        ``feed_key``), up to the newest ``RECENT_APPLIED_REPORTS``.
        """
        if outcome == "applied" and self.version_cache is not None and self.version_cache.cacheable(model):
            applied = self.version_cache.get("deployments", model)
            if applied is None:
                query = {"model_id": model["_id"], "outcome": "applied"}
                cursor = self.deployments.find(query).sort("received_at", -1).limit(RECENT_APPLIED_REPORTS)
                applied = await cursor.to_list()
                self.version_cache.keep("deployments", model, applied)
            if limit <= RECENT_APPLIED_REPORTS:
                return [row for row in applied if environment in (None, row.get("environment"))][:limit]
        query = {"model_id": model["_id"]} | ({"environment": environment} if environment else {})
        query |= {"outcome": outcome} if outcome else {}
        return await self.deployments.find(query).sort("received_at", -1).limit(limit).to_list()

    async def deployment_history(self, version: Document, *, limit: int, cursor: str | None) -> Page:
        """Deployment reports of a version, oldest first."""
        return await _by_position(self.deployments, {"version_id": version["_id"]}, str(version["_id"]), limit, cursor)


def deployment_condition(status: str | None, environment: str | None) -> dict[str, Any]:
    """Versions in ``status`` (overall, or in ``environment`` when given), or reported in ``environment``."""
    if environment:
        field = f"environments.{environment}"
        return {f"{field}.status": status} if status else {field: {"$exists": True}}
    if status == "registered":
        return {"status": {"$in": [None, "registered"]}}
    return {"status": status} if status else {}


_BY_PRECEDENCE = SortSpec("version", "version_key", descending=True)
_BY_POSITION = SortSpec("position", "position", descending=False)


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def _by_position(
    collection: AsyncCollection[Document], query: dict[str, Any], owner: str, limit: int, cursor: str | None
) -> Page:
    """A page of an append-only log ordered by ``position``."""
    scope = _fingerprint(owner)
    return await _page(collection, paged(_BY_POSITION, query, cursor, scope), _BY_POSITION, limit, scope)


def _page_in_memory(
    rows: list[Document], query: dict[str, Any], sort: SortSpec, cursor: str | None, limit: int, scope: str
) -> Page:
    """:func:`_page` over ``rows`` (already in ``sort`` order): the same filter forms, the same cursors."""
    after = decode_cursor(cursor, sort, scope) if cursor else None
    conditions = [(field, condition) for field, condition in query.items() if field != "model_id"]
    page: list[Document] = []
    for row in rows:
        if after is not None and not (row[sort.key_field] < after if sort.descending else row[sort.key_field] > after):
            continue
        if all(_holds(row.get(field), condition) for field, condition in conditions):
            page.append(row)
            if len(page) > limit:
                return Page(page[:limit], encode_cursor(sort, page[limit - 1][sort.key_field], scope))
    return Page(page)


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda value, bound: value > bound,
    "$gte": lambda value, bound: value >= bound,
    "$lt": lambda value, bound: value < bound,
    "$lte": lambda value, bound: value <= bound,
    "$in": lambda value, options: value in options,
}


def _holds(value: Any, condition: Any) -> bool:
    """``value`` against one filter condition of the forms :meth:`Reads.list_versions` builds."""
    if not isinstance(condition, dict):
        return bool(value == condition)
    return value is not None and all(_COMPARISONS[op](value, bound) for op, bound in condition.items())


async def _page(
    collection: AsyncCollection[Document], query: dict[str, Any], sort: SortSpec, limit: int, scope: str
) -> Page:
    """Fetch one more row than asked, to know whether a next page exists."""
    docs = await collection.find(query).sort(sort.mongo_sort()).limit(limit + 1).to_list()
    if len(docs) <= limit:
        return Page(docs)
    docs = docs[:limit]
    return Page(docs, encode_cursor(sort, docs[-1][sort.key_field], scope))
