"""The RAG document feed: every model a caller may read, in change order, as one document each.

Registration and the deploy tracker set a model's ``feed_key`` (a unique, byte-sortable time key)
on every change, so the feed is a compacted log: a model appears once, at its latest change, and
replaying it from any cursor converges to the current set. A model unshared from the caller's
team keeps that team in ``former_readers`` and appears as a tombstone, which tells nothing but the
id of a model the team could read before; the tombstone stands where the model was unshared
(``unshared_at``), so the owner's later changes never reach a former reader, not even as their
timing. Order and visibility come from the read model (its models in ``feed_key`` order, see
:mod:`query.api.ordering`), which every query replica builds from the same events, so a cursor
from one resumes on another; the documents themselves come from a
:class:`~query.rendered.RenderedCache` when it holds the model's current change, and are
rendered (and cached) when it does not.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from query.api.card_markdown import card_markdown
from query.api.cards import build_card
from query.api.reads import Reads
from query.rendered import RenderedCache
from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.sortkeys import time_key
from shared.chassis.problems import Problem

MAX_VERSIONS = 20  # versions read per model document (the newest by SemVer precedence)
# Changes younger than this are not served yet: a transaction that took its key before a later one
# but commits after it would otherwise land behind a cursor already handed out (clock skew between
# services counts here too). The feed lags by this much, and no cursor skips a change.
SETTLE = timedelta(seconds=2)
RENDER_SLICE_SECONDS = 0.003  # rendering yields to the event loop this often (a card takes about a millisecond)
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
    """Reads the feed of one caller from the read model."""

    def __init__(
        self,
        reads: Reads,
        *,
        render: Render = card_text,
        settle: timedelta = SETTLE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cache: RenderedCache[Document] | None = None,
    ) -> None:
        self._reads = reads
        self._render, self._settle, self._clock = render, settle, clock
        self._cache = cache if cache is not None else RenderedCache[Document]()

    def horizon(self) -> str:
        """The feed key below which every change has settled."""
        return time_key(self._clock() - self._settle, "")

    async def page(self, principal: Principal, *, after: str, limit: int, before: str | None = None) -> FeedPage:
        """Up to ``limit`` documents after the feed key ``after`` (``""``: from the start), below ``before``."""
        found = self._changed(principal, after, before or self.horizon(), limit + 1)
        models, has_more = found[:limit], len(found) > limit
        return FeedPage(await self._documents(principal, models), models[-1]["feed_key"] if models else after, has_more)

    async def stream(self, principal: Principal, *, after: str, page_size: int) -> AsyncIterator[FeedPage]:
        """Every change after ``after`` up to the horizon when the stream began (so it ends under writes).

        Each page starts from the last key of the one before: the read model may change while a
        page is being sent, and a key, unlike a position, stays put.
        """
        before = self.horizon()
        while True:
            page = await self.page(principal, after=after, limit=page_size, before=before)
            yield page
            if not page.has_more:
                return
            after = page.last_key

    async def warm(self) -> int:
        """Render every model's current document into the cache, in change order; return how many.

        Run once the read model is loaded, so the first bulk sync is served from memory too.
        """
        walk = self._reads.orders.walk(None, "feed_key", after=None, before=self.horizon(), descending=False)
        return len(await self._rendered([model for _, model in walk]))

    async def refresh(self, model_ids: Sequence[str]) -> int:
        """Render the current documents of these models (changed a moment ago) into the cache; return how many."""
        models = self._reads.read_model.models
        return len(await self._rendered([models[mid] for mid in model_ids if mid in models]))

    async def _documents(self, principal: Principal, models: list[Document]) -> list[Document]:
        rendered = await self._rendered([m for m in models if not is_tombstone(m, principal)])
        return [tombstone(m) if is_tombstone(m, principal) else rendered[m["_id"]] for m in models]

    async def _rendered(self, models: list[Document]) -> dict[str, Document]:
        """The document of each of ``models`` by id: cached at its feed key, else rendered from its versions."""
        found = {m["_id"]: doc for m in models if (doc := self._cache.get(m)) is not None}
        missing = [m for m in models if m["_id"] not in found]
        slice_ends = time.perf_counter() + RENDER_SLICE_SECONDS
        for model in missing:
            # The model and its versions are read together, between two awaits: one state of both.
            newest = self._reads.version_orders.newest(model["_id"], MAX_VERSIONS)
            found[model["_id"]] = document(model, newest, self._render)
            self._cache.put(model, found[model["_id"]])
            if time.perf_counter() >= slice_ends:  # let requests in between
                await asyncio.sleep(0)
                slice_ends = time.perf_counter() + RENDER_SLICE_SECONDS
        return found

    def _changed(self, principal: Principal, after: str, before: str, limit: int) -> list[Document]:
        """Models changed in (``after``, ``before``) that the caller reads or was unshared from, in order.

        A team's feed is its readable models in feed order merged with its tombstones
        (:meth:`_unshared`).
        """
        orders = self._reads.orders
        if principal.is_platform_admin:
            return _first(orders.walk(None, "feed_key", after=after, before=before, descending=False), limit)
        group = ("readers", principal.team)
        readable = _first(orders.walk(group, "feed_key", after=after, before=before, descending=False), limit)
        merged: list[Document] = []
        seen: set[str] = set()
        for model in heapq.merge(readable, self._unshared(principal.team, after, before)[:limit], key=_feed_key):
            if model["_id"] not in seen:
                seen.add(model["_id"])
                merged.append(model)
        return merged[:limit]

    def _unshared(self, team: str, after: str, before: str) -> list[Document]:
        """The tombstones of ``team`` in (``after``, ``before``), each at the change that unshared it, in order.

        Every model unshared from the team, placed by ``unshared_at``, not by the model's current
        ``feed_key``: a former reader's feed never moves again when the owner changes the model. A
        model unshared before ``unshared_at`` existed (registration backfills it) stands at its feed key.
        """
        walk = self._reads.orders.walk(("former_readers", team), "feed_key", after=None, before=None, descending=False)
        placed = [
            {
                "_id": m["_id"],
                "readers": m.get("readers") or [],
                "feed_key": str((m.get("unshared_at") or {}).get(team) or m["feed_key"]),
            }
            for _, m in walk
        ]
        return sorted((m for m in placed if after < m["feed_key"] < before), key=_feed_key)


def _first(walk: Iterable[tuple[str, Document]], limit: int) -> list[Document]:
    found: list[Document] = []
    for _, model in walk:
        if len(found) == limit:
            break
        found.append(model)
    return found


def _feed_key(model: Document) -> str:
    return str(model["feed_key"])
