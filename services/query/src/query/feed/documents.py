"""The RAG document feed: every model a caller may read, in change order, as one document each.

Registration and the deploy tracker set a model's ``feed_key`` (a unique, byte-sortable time key)
on every change, so the feed is a compacted log: a model appears once, at its latest change, and
replaying it from any cursor converges to the current set. A model unshared from the caller's
team keeps that team in ``former_readers`` and appears as a tombstone, which tells nothing but the
id of a model the team could read before; the tombstone stands where the model was unshared
(``unshared_at``), so the owner's later changes never reach a former reader, not even as their
timing. Order and visibility are read from MongoDB, so every
query replica serves the same feed and a cursor from one resumes on another; the documents
themselves come from a :class:`~query.document_cache.DocumentCache` when it holds the model's
current change, and are rendered (and cached) when it does not.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection

from query.api.card_markdown import card_markdown
from query.api.cards import build_card
from query.feed.cache import DocumentCache
from shared.chassis.problems import Problem
from shared.contract.auth import Principal
from shared.contract.documents import Document
from shared.contract.sortkeys import time_key

MAX_VERSIONS = 20  # versions read per model document (the newest by SemVer precedence)
# Changes younger than this are not served yet: a transaction that took its key before a later one
# but commits after it would otherwise land behind a cursor already handed out (clock skew between
# services counts here too). The feed lags by this much, and no cursor skips a change.
SETTLE = timedelta(seconds=2)
LOOKUP_CHUNK = 100  # model ids per $in when reading versions
WARM_CHUNK = 500  # models rendered per round of warming the cache
RENDERS_PER_YIELD = 5
_FEED_KEY = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6} \S+")

Render = Callable[[Document, list[Document]], str]


def card_text(model: Document, versions: list[Document]) -> str:
    """The model card's markdown for the model's latest version (no deployment reports read)."""
    return card_markdown(build_card(model, versions, None, None))


def encode_cursor(feed_key: str) -> str:
    """The opaque cursor of the position after ``feed_key``."""
    return base64.urlsafe_b64encode(feed_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The feed key a cursor holds, or the invalid problem."""
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key = ""
    if not _FEED_KEY.fullmatch(key):
        raise Problem("invalid", "cursor is not a document feed cursor")
    return key


def is_tombstone(model: Document, principal: Principal) -> bool:
    """Whether ``model`` is shown to ``principal`` only as deleted: its team may no longer read it."""
    return not principal.is_platform_admin and principal.team not in (model.get("readers") or [])


def tombstone(model: Document) -> Document:
    """The deleted document of a model: its id and nothing else."""
    return {"id": model["_id"], "text": "", "metadata": {}, "updated_at": None, "deleted": True}


def document(model: Document, versions: list[Document], render: Render = card_text) -> Document:
    """A readable model as a document: its card as text, and filterable metadata."""
    ordered = sorted(versions, key=lambda v: str(v["version_key"]), reverse=True)
    return {
        "id": model["_id"],
        "text": render(model, ordered),
        "metadata": metadata(model, ordered),
        "updated_at": updated_at(model, ordered),
        "deleted": False,
    }


def metadata(model: Document, versions: Sequence[Document]) -> Document:
    """Flat JSON a vector index can filter on.

    ``statuses`` holds every deployment status of the versions read in any environment
    (``registered`` when none was reported), ``environments`` every environment reported, and
    ``lifecycle`` the latest version's lifecycle.
    """
    latest = next((v for v in versions if v.get("version") == model.get("latest_version")), None)
    states = [state for v in versions for state in (v.get("environments") or {}).items()]
    statuses = {str(s.get("status")) for _, s in states if isinstance(s, dict) and s.get("status")}
    return {
        "team": model["team"],
        "name": model["name"],
        "framework": model.get("framework"),
        "latest_version": model.get("latest_version"),
        "version_count": int(model.get("version_count") or 0),
        "tags": dict(model.get("tags") or {}),
        "deployment_targets": list(model.get("deployment_targets") or []),
        "statuses": sorted(statuses) or ["registered"],
        "environments": sorted({str(env) for env, _ in states}),
        "lifecycle": latest.get("lifecycle", "active") if latest else None,
    }


def updated_at(model: Document, versions: Sequence[Document]) -> datetime | None:
    """The model's last change: registration's ``updated_at`` or a later deployment status change."""
    times = [model.get("updated_at")]
    times += [
        s.get("updated_at") for v in versions for s in (v.get("environments") or {}).values() if isinstance(s, dict)
    ]
    found = [t.astimezone(UTC) for t in times if isinstance(t, datetime)]
    return max(found) if found else None


@dataclass
class FeedPage:
    """Documents after a cursor; ``last_key`` is the position after them (the cursor's if none)."""

    items: list[Document]
    last_key: str
    has_more: bool


class Feed:
    """Reads the feed of one caller from the models and versions collections."""

    def __init__(
        self,
        models: AsyncCollection[Document],
        versions: AsyncCollection[Document],
        *,
        render: Render = card_text,
        settle: timedelta = SETTLE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cache: DocumentCache | None = None,
    ) -> None:
        self._models, self._versions = models, versions
        self._render, self._settle, self._clock = render, settle, clock
        self._cache = cache if cache is not None else DocumentCache()

    def horizon(self) -> str:
        """The feed key below which every change has settled."""
        return time_key(self._clock() - self._settle, "")

    async def page(self, principal: Principal, *, after: str, limit: int, before: str | None = None) -> FeedPage:
        """Up to ``limit`` documents after the feed key ``after`` (``""``: from the start), below ``before``."""
        found = await self._changed(principal, after, before or self.horizon(), limit + 1)
        models, has_more = found[:limit], len(found) > limit
        return FeedPage(await self._documents(principal, models), models[-1]["feed_key"] if models else after, has_more)

    async def stream(self, principal: Principal, *, after: str, page_size: int) -> AsyncIterator[FeedPage]:
        """Every change after ``after`` up to the horizon when the stream began (so it ends under writes).

        One pass over the changes (each query of :meth:`page` would make the stand-in read every
        later change again), a page of documents at a time.
        """
        chunk: list[Document] = []
        async for model in self._each_changed(principal, after, self.horizon()):
            chunk.append(model)
            if len(chunk) == page_size:
                yield FeedPage(await self._documents(principal, chunk), chunk[-1]["feed_key"], True)
                chunk = []
        yield FeedPage(await self._documents(principal, chunk), chunk[-1]["feed_key"] if chunk else after, False)

    async def warm(self) -> int:
        """Render every model's current document into the cache, in change order; return how many.

        Run once the service is up, so the first bulk sync is served from memory too.
        """
        count, chunk = 0, []
        async for model in self._models.find({"feed_key": {"$lt": self.horizon()}}).sort("feed_key", 1):
            chunk.append(model)
            if len(chunk) == WARM_CHUNK:
                count += len(await self._rendered(chunk))
                chunk = []
        return count + len(await self._rendered(chunk))

    async def refresh(self, model_ids: Sequence[str]) -> int:
        """Render the current documents of these models (changed a moment ago) into the cache; return how many."""
        models = await self._models.find({"_id": {"$in": list(model_ids)}}).to_list()
        return len(await self._rendered(models))

    async def _documents(self, principal: Principal, models: list[Document]) -> list[Document]:
        rendered = await self._rendered([m for m in models if not is_tombstone(m, principal)])
        return [tombstone(m) if is_tombstone(m, principal) else rendered[m["_id"]] for m in models]

    async def _rendered(self, models: list[Document]) -> dict[str, Document]:
        """The document of each of ``models`` by id: cached at its feed key, else rendered from its versions."""
        found = {m["_id"]: doc for m in models if (doc := self._cache.get(m)) is not None}
        missing = [m for m in models if m["_id"] not in found]
        versions = await self._versions_of(missing)  # read after the models: see query.feed.cache
        for done, model in enumerate(missing, start=1):
            found[model["_id"]] = document(model, versions.get(model["_id"], []), self._render)
            self._cache.put(model, found[model["_id"]])
            if done % RENDERS_PER_YIELD == 0:
                await asyncio.sleep(0)  # a card takes about a millisecond: let requests in between
        return found

    async def _each_changed(self, principal: Principal, after: str, before: str) -> AsyncIterator[Document]:
        """Like :meth:`_changed`, unbounded, as one ordered pass (two merged for a team)."""
        window = {"feed_key": {"$gt": after, "$lt": before}}
        if principal.is_platform_admin:
            async for model in self._models.find(window).sort("feed_key", 1):
                yield model
            return
        readable = self._models.find({"readers": principal.team, **window}).sort("feed_key", 1)
        async for model in _merged(readable, _each(await self._unshared(principal.team, after, before))):
            yield model

    async def _changed(self, principal: Principal, after: str, before: str, limit: int) -> list[Document]:
        """Models changed in (``after``, ``before``) that the caller reads or was unshared from, in order.

        A team's feed is an index range scan (``readers_feed``) merged here with the team's
        tombstones (:meth:`_unshared`) rather than one ``$or``, which the stand-in would not serve
        from indexes.
        """
        window = {"feed_key": {"$gt": after, "$lt": before}}
        if principal.is_platform_admin:
            return await self._models.find(window).sort("feed_key", 1).limit(limit).to_list()
        readable, unshared = await asyncio.gather(
            self._models.find({"readers": principal.team, **window}).sort("feed_key", 1).limit(limit).to_list(),
            self._unshared(principal.team, after, before),
        )
        merged: list[Document] = []
        seen: set[str] = set()
        for model in heapq.merge(readable, unshared[:limit], key=lambda m: str(m["feed_key"])):
            if model["_id"] not in seen:
                seen.add(model["_id"])
                merged.append(model)
        return merged[:limit]

    async def _unshared(self, team: str, after: str, before: str) -> list[Document]:
        """The tombstones of ``team`` in (``after``, ``before``), each at the change that unshared it, in order.

        Read through ``former_readers_feed`` (every model unshared from the team, only what a
        tombstone needs) and placed by ``unshared_at``, not by the model's current ``feed_key``:
        a former reader's feed never moves again when the owner changes the model. A model
        unshared before ``unshared_at`` existed (registration backfills it) stands at its feed key.
        """
        found = await self._models.find(
            {"former_readers": team}, {"_id": 1, "feed_key": 1, "readers": 1, "unshared_at": 1}
        ).to_list()
        placed = [{**m, "feed_key": str((m.get("unshared_at") or {}).get(team) or m["feed_key"])} for m in found]
        return sorted((m for m in placed if after < m["feed_key"] < before), key=lambda m: str(m["feed_key"]))

    async def _versions_of(self, models: Sequence[Document]) -> dict[str, list[Document]]:
        """The newest ``MAX_VERSIONS`` versions of each model, in few queries.

        Models with few versions are read together (their count bounds the rows); each one with
        more is read alone, newest first, so no model's history is ever read whole.
        """
        few = [m["_id"] for m in models if int(m.get("version_count") or 0) <= MAX_VERSIONS]
        many = [m["_id"] for m in models if int(m.get("version_count") or 0) > MAX_VERSIONS]
        found: dict[str, list[Document]] = {}
        for start in range(0, len(few), LOOKUP_CHUNK):
            async for version in self._versions.find({"model_id": {"$in": few[start : start + LOOKUP_CHUNK]}}):
                found.setdefault(version["model_id"], []).append(version)
        newest = await asyncio.gather(
            *(
                self._versions.find({"model_id": mid, "prerelease": {"$in": [False, True]}})
                .sort("version_key", -1)
                .limit(MAX_VERSIONS)
                .to_list()
                for mid in many
            )
        )
        found.update(zip(many, newest, strict=True))
        # A version registered since the model was read may push a "few" model past the bound.
        return {
            mid: sorted(vs, key=lambda v: str(v["version_key"]), reverse=True)[:MAX_VERSIONS]
            for mid, vs in found.items()
        }


async def _each(models: list[Document]) -> AsyncIterator[Document]:
    for model in models:
        yield model


async def _merged(first: AsyncIterable[Document], second: AsyncIterable[Document]) -> AsyncIterator[Document]:
    """Two streams ordered by ``feed_key`` as one, each model once (a model in both is read in ``first``)."""
    sources = [aiter(first), aiter(second)]
    heads = [await anext(sources[0], None), await anext(sources[1], None)]
    seen: set[str] = set()
    while heads[0] is not None or heads[1] is not None:
        pick = 0 if heads[1] is None or (heads[0] is not None and heads[0]["feed_key"] <= heads[1]["feed_key"]) else 1
        model = heads[pick]
        assert model is not None
        heads[pick] = await anext(sources[pick], None)
        if model["_id"] not in seen:
            seen.add(model["_id"])
            yield model
