"""Read-side queries over the in-memory read model (no domain model, no database).

Documents keep the shapes registration's and the tracker's documents have; lists walk the orders
of :mod:`query.api.ordering` from a :mod:`bisect` position instead of sorting per request, and
every list examines a bounded number of rows, so a page may come back short with a
``next_cursor`` that continues.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import islice
from typing import Any, TypeVar

from query.api.ordering import ModelOrders, VersionOrders, deployment_marks, moment, wanted_mark
from query.api.pagination import SortSpec, decode_cursor, encode_cursor
from query.projection.model import ReadModel
from query.projection.past import Since, every, visible_history
from query.rendered import RenderedCache
from registry_contract.documents import Document
from registry_contract.sortkeys import time_key
from registry_contract.versioning import VersionRange
from registry_contract.views import ModelPublic
from shared.chassis.problems import Problem

MODEL_SORTS = {"created_at": "created_key", "updated_at": "updated_key", "name": "name_key"}
MAX_SCANNED_MODELS = 10_000  # models one request for a list of models may examine
MAX_SCANNED_VERSIONS = 20_000  # versions one request for a version list may examine


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

    def key_bounds(self, key_field: str) -> tuple[str | None, str | None]:
        """Exclusive bounds ``(after, before)`` these filters put on ``key_field``, a model sort key."""
        if key_field == "created_key":
            after = time_key(self.created_after, "~") if self.created_after else None
            return after, time_key(self.created_before, "") if self.created_before else None
        if key_field == "name_key" and self.name_prefix:
            # No key equals a bare prefix (each ends with " <id>"), so "after the prefix" starts at it.
            return self.name_prefix, self.name_prefix + "\x7f"
        return None, None


@dataclass
class Page:
    """One page of results and the cursor of the next, if any."""

    items: list[Document]
    next_cursor: str | None = None


def readable(model: Document, visible: dict[str, Any]) -> bool:
    """Whether ``model`` is inside the caller's visibility (``{}``: everything; ``{"readers": team}``)."""
    team = visible.get("readers")
    return team is None or team in (model.get("readers") or [])


class Reads:
    """Every query the read API runs, over one :class:`ReadModel`."""

    def __init__(self, read_model: ReadModel) -> None:
        self.read_model = read_model
        self.orders = ModelOrders(read_model)
        self.version_orders = VersionOrders(read_model)
        self._model_views = RenderedCache[ModelPublic]()
        read_model.subscribe(self._model_views.forget)

    def model_view(self, model: Document) -> ModelPublic:
        """The public view of ``model``, a document of this read model, validated once per change of it."""
        view = self._model_views.get(model)
        if view is None:
            view = ModelPublic.of(model)
            self._model_views.put(model, view)
        return view

    async def list_models(
        self,
        filters: ModelFilters,
        *,
        visible: dict[str, Any],
        sort: SortSpec,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """Models matching ``filters``, one keyset page at a time, at most ``MAX_SCANNED_MODELS`` examined."""
        scope = filters.scope({"visible": visible})
        last = cursor_key(cursor, sort, scope, str)
        after, before = filters.key_bounds(sort.key_field)
        if last is not None:
            if sort.descending:
                before = min(before, last) if before is not None else last
            else:
                after = max(after, last) if after is not None else last
        mark = wanted_mark(filters.status, filters.environment)
        matches = self._matcher(filters, visible, mark)
        found: list[Document] = []
        examined, previous = 0, ""
        walk = self.orders.walk(
            self._narrowest(filters, visible), sort.key_field, after=after, before=before, descending=sort.descending
        )
        for key, model in walk:
            if examined == MAX_SCANNED_MODELS:  # the next request goes on from the last one examined
                return Page(found, encode_cursor(sort, previous, scope))
            examined, previous = examined + 1, key
            if matches(model):
                if len(found) == limit:  # one more than asked: there is a next page
                    return Page(found, encode_cursor(sort, found[-1][sort.key_field], scope))
                found.append(model)
        return Page(found)

    def _narrowest(self, filters: ModelFilters, visible: dict[str, Any]) -> tuple[str, str] | None:
        """The smallest group of models every match belongs to (``None``: every model)."""
        groups = [("tag_pairs", pair) for pair in filters.tags]
        groups += [("team", filters.team)] if filters.team else []
        groups += [("readers", str(visible["readers"]))] if visible.get("readers") else []
        mark = wanted_mark(filters.status, filters.environment)
        groups += [("deployment", mark)] if mark else []
        return min(groups, key=self.orders.size, default=None)

    def _matcher(self, filters: ModelFilters, visible: dict[str, Any], mark: str | None) -> Callable[[Document], bool]:
        """The test a model must pass, with only the conditions these filters set (run per model scanned)."""
        checks: list[Callable[[Document], bool]] = []
        if reader := visible.get("readers"):
            checks.append(lambda m: reader in (m.get("readers") or ()))
        for field, wanted in (("team", filters.team), ("framework", filters.framework)):
            if wanted:
                checks.append(partial(_equals, field, wanted))
        if target := filters.deployment_target:
            checks.append(lambda m: target in (m.get("deployment_targets") or ()))
        if filters.tags:
            tags = set(filters.tags)
            checks.append(lambda m: tags.issubset(m.get("tag_pairs") or ()))
        for field in ("created_key", "name_key"):
            after, before = filters.key_bounds(field)
            if after is not None:
                checks.append(partial(_above, field, after))
            if before is not None:
                checks.append(partial(_below, field, before))
        if mark is not None:
            deployed = ("deployment", mark)
            checks.append(lambda m: self.orders.holds(deployed, m["_id"]))
        return lambda model: all(check(model) for check in checks)

    async def model(self, team: str, name: str) -> Document | None:
        """One model by team and name."""
        return self.read_model.model_by_name(team, name)

    async def model_by_id(self, model_id: str) -> Document | None:
        """One model by its stable id."""
        return self.read_model.models.get(model_id)

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
        key_bounds = version_range.to_filter() if version_range else {}
        scope = fingerprint(f"{model['_id']}|{key_bounds}|{include_prerelease}|{status}|{environment}|{lifecycle}")
        last = cursor_key(cursor, _BY_PRECEDENCE, scope, str)
        model_id = str(model["_id"])
        ids, prefix = self.version_orders.precedence(model_id), f"{model_id}:"
        start, end = _key_range(ids, {op: prefix + key for op, key in key_bounds.items()})
        if last is not None:
            end = min(end, bisect_left(ids, prefix + last))
        mark = wanted_mark(status, environment)
        found: list[Document] = []
        for examined, position in enumerate(range(end - 1, start - 1, -1)):
            if examined == MAX_SCANNED_VERSIONS:  # the next request goes on from the last one examined
                return Page(found, encode_cursor(_BY_PRECEDENCE, ids[position + 1].removeprefix(prefix), scope))
            version = self.version_orders.version(model_id, ids[position])
            if (
                version is not None
                and (include_prerelease or not version.get("prerelease"))
                and (lifecycle is None or version.get("lifecycle") == lifecycle)
                and (mark is None or mark in deployment_marks(version))
            ):
                if len(found) == limit:
                    return Page(found, encode_cursor(_BY_PRECEDENCE, found[-1]["version_key"], scope))
                found.append(version)
        return Page(found)

    async def version_by_id(self, version_id: str) -> Document | None:
        """One version by document id (model id and precedence key); ``None`` if unknown or deleted."""
        found = self.read_model.version(version_id)
        return None if found is None or found.get("deleted") else found

    async def latest_version(
        self, model: Document, *, include_prerelease: bool = False, include_deprecated: bool = False
    ) -> Document | None:
        """The highest active non-prerelease version (prereleases and deprecated ones too, if asked)."""
        lifecycles = ("active", "deprecated") if include_deprecated else ("active",)
        model_id, versions = str(model["_id"]), self.version_orders
        newest_first = (versions.version(model_id, vid) for vid in reversed(versions.precedence(model_id)))
        wanted = (v for v in newest_first if v is not None and v.get("lifecycle") in lifecycles)
        return next((v for v in wanted if include_prerelease or not v.get("prerelease")), None)

    async def children(self, version: Document, visible: dict[str, Any], limit: int) -> list[Document]:
        """Versions registered with ``version`` as their parent, of models the caller may read."""
        models = self.read_model.models
        found = (self.read_model.version(child) for child in self.read_model.children.get(version["_id"], ()))
        shown = (
            v
            for v in found
            if v is not None
            and not v.get("deleted")
            and (owner := models.get(v["model_id"])) is not None
            and readable(owner, visible)
        )
        return heapq.nlargest(limit, shown, key=lambda v: str(v["version_key"]))

    async def history(self, model: Document, *, limit: int, cursor: str | None, since: Since | None = None) -> Page:
        """Every change of a model, oldest first (its events, as the projection applied them), from ``since`` on."""
        rows = visible_history(self.read_model.history.get(model["_id"], []), since)
        return by_position(rows, str(model["_id"]), limit, cursor)

    async def recent_deployments(
        self, version: Document, limit: int, shown: Callable[[Document], bool] = every
    ) -> list[Document]:
        """A version's most recent deployment reports the caller sees (``shown``), newest first."""
        return list(islice(filter(shown, reversed(self._reports_of(version))), limit))

    async def readable_model_ids(self, team: str, visible: dict[str, Any]) -> list[str] | None:
        """Which of ``team``'s models ``visible`` lets the caller read: ``None`` for every one of them.

        A caller of another team reads only the models shared with it, at most
        ``MAX_SCANNED_MODELS`` of them.
        """
        if not visible or visible.get("readers") == team:
            return None
        shared = (m["_id"] for m in self._team_models(team) if readable(m, visible))
        return list(islice(shared, MAX_SCANNED_MODELS))

    async def team_recent(
        self,
        what: str,
        team: str,
        model_ids: list[str] | None,
        limit: int,
        shown: Callable[[Document], Callable[[Document], bool]] | None = None,
    ) -> list[Document]:
        """The newest ``limit`` ``versions`` (by registration) or ``deployments`` (by receipt) of a team's models.

        ``shown`` answers, per model, which of its deployment reports the caller sees (every one
        without it).
        """
        if model_ids is None:
            owned = [m["_id"] for m in self._team_models(team)]
        else:
            owned = [mid for mid in model_ids if (self.read_model.models.get(mid) or {}).get("team") == team]
        if what == "versions":
            lists = [self.version_orders.by_registration(mid, limit) for mid in owned]
            return list(islice(heapq.merge(*lists, key=_registered_at, reverse=True), limit))
        models = self.read_model.models
        reports = [
            filter(shown(models[mid]) if shown else every, self.version_orders.reports_by_receipt(mid)) for mid in owned
        ]
        return list(islice(heapq.merge(*reports, key=_received_at, reverse=True), limit))

    async def model_deployments(
        self,
        model: Document,
        *,
        environment: str | None,
        outcome: str | None,
        limit: int,
        shown: Callable[[Document], bool] = every,
    ) -> list[Document]:
        """A model's most recent deployment reports the caller sees (``shown``) across its versions, newest first."""
        rows = self.version_orders.reports_by_receipt(model["_id"])
        wanted = (
            row
            for row in rows
            if environment in (None, row.get("environment")) and outcome in (None, row.get("outcome")) and shown(row)
        )
        return list(islice(wanted, limit))

    async def deployment_history(
        self, version: Document, *, limit: int, cursor: str | None, shown: Callable[[Document], bool] = every
    ) -> Page:
        """Deployment reports of a version the caller sees (``shown``), oldest first."""
        rows = self._reports_of(version)
        return by_position(rows if shown is every else list(filter(shown, rows)), str(version["_id"]), limit, cursor)

    def _reports_of(self, version: Document) -> list[Document]:
        return self.version_orders.reports_of(str(version["model_id"]), str(version["_id"]))

    def _team_models(self, team: str) -> Iterator[Document]:
        return (
            model
            for _, model in self.orders.walk(("team", team), "created_key", after=None, before=None, descending=True)
        )


_K = TypeVar("_K", str, int)
_BY_PRECEDENCE = SortSpec("version", "version_key", descending=True)
_BY_POSITION = SortSpec("position", "position", descending=False)


def fingerprint(text: str) -> str:
    """A short digest of ``text``: the scope that binds a cursor to its query."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cursor_key(cursor: str | None, sort: SortSpec, scope: str, kind: type[_K]) -> _K | None:
    """The key a cursor of this query holds (``None`` without one); the invalid problem if it holds another kind."""
    if not cursor:
        return None
    key = decode_cursor(cursor, sort, scope)
    if not isinstance(key, kind) or isinstance(key, bool):
        raise Problem("invalid", "cursor is not valid for this query")
    return key


def _equals(field: str, wanted: str, model: Document) -> bool:
    return bool(model.get(field) == wanted)


def _above(field: str, bound: str, model: Document) -> bool:
    return str(model.get(field) or "") > bound


def _below(field: str, bound: str, model: Document) -> bool:
    return str(model.get(field) or "") < bound


def _key_range(keys: list[str], bounds: dict[str, str]) -> tuple[int, int]:
    """The positions ``[start, end)`` of ``keys`` (ascending) within a version range's key bounds."""
    start, end = 0, len(keys)
    for op, bound in bounds.items():
        if op in ("$gt", "$gte", "$eq"):
            start = max(start, (bisect_right if op == "$gt" else bisect_left)(keys, bound))
        if op in ("$lt", "$lte", "$eq"):
            end = min(end, (bisect_left if op == "$lt" else bisect_right)(keys, bound))
    return start, max(start, end)


def by_position(rows: list[Document], owner: str, limit: int, cursor: str | None) -> Page:
    """A page of an append-only log ordered by ``position`` (``rows`` oldest first)."""
    scope = fingerprint(owner)
    last = cursor_key(cursor, _BY_POSITION, scope, int)
    start = bisect_right(rows, last, key=lambda row: int(row["position"])) if last is not None else 0
    page = rows[start : start + limit + 1]
    if len(page) <= limit:
        return Page(page)
    return Page(page[:limit], encode_cursor(_BY_POSITION, page[limit - 1]["position"], scope))


def _registered_at(version: Document) -> float:
    return moment(version.get("created_at"))


def _received_at(row: Document) -> float:
    return moment(row.get("received_at"))
