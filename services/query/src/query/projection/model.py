"""The query service's read model: every model, version, history row and report, in memory.

Documents keep the shapes registration's and the tracker's MongoDB documents have, so the public
views (``ModelPublic.of``, ``ModelVersionPublic.of``, ...) render them unchanged. The projection
(:mod:`query.projection.apply`) is the only writer; reads never change it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from registry_contract.documents import Document

SOURCES = ("r", "d")  # "r": registration's events, "d": the deploy-tracker's
MAX_TOKENS = 8
MAX_HEADER_CHARS = 512
_TOKEN = re.compile(r"([rd])\.(mdl_[0-9a-f]{24})\.([0-9]{1,20})")


@dataclass(frozen=True)
class Token:
    """One model's revision at one owner: the read waits until the projection has applied it."""

    source: str  # "r" or "d"
    model_id: str
    revision: int

    def __str__(self) -> str:
        return f"{self.source}.{self.model_id}.{self.revision}"


def parse_tokens(header: str) -> list[Token]:
    """The tokens of an ``X-Registry-Consistency`` header, or :class:`ValueError` when malformed."""
    if len(header) > MAX_HEADER_CHARS:
        raise ValueError(f"the consistency header is longer than {MAX_HEADER_CHARS} characters")
    parts = [part.strip() for part in header.split(",")]
    if len(parts) > MAX_TOKENS:
        raise ValueError(f"at most {MAX_TOKENS} consistency tokens may be sent")
    tokens = []
    for part in parts:
        match = _TOKEN.fullmatch(part)
        if match is None:
            raise ValueError("a consistency token reads r.<model id>.<revision> or d.<model id>.<revision>")
        tokens.append(Token(match[1], match[2], int(match[3])))
    return tokens


@dataclass
class ReadModel:
    """Models, versions, lineage, history and reports by id; ``revisions`` says how far each got."""

    models: dict[str, Document] = field(default_factory=dict)
    by_name: dict[tuple[str, str], str] = field(default_factory=dict)
    versions: dict[str, dict[str, Document]] = field(default_factory=dict)  # model id -> version id -> doc
    children: dict[str, set[str]] = field(default_factory=dict)  # parent version id -> child version ids
    history: dict[str, list[Document]] = field(default_factory=dict)  # model id -> event rows, oldest first
    reports: dict[str, list[Document]] = field(default_factory=dict)  # model id -> report rows, oldest first
    revisions: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, model id) -> revision
    version_owner: dict[str, str] = field(default_factory=dict)  # version id -> model id
    # What changed since the last flush to the query's database (see query.projection.storage).
    dirty_models: set[str] = field(default_factory=set)
    dirty_versions: set[str] = field(default_factory=set)
    positions: dict[str, int] = field(default_factory=dict)  # source -> highest revision applied from it
    rewritten: set[str] = field(default_factory=set)  # models whose history or reports changed other than at the end
    _subscribers: list[Callable[[set[str]], None]] = field(default_factory=list, repr=False)
    _waiters: list[tuple[list[Token], asyncio.Future[None]]] = field(default_factory=list, repr=False)

    def model_by_name(self, team: str, name: str) -> Document | None:
        """The model ``team/name`` (exactly as registered: its id derives from both)."""
        model_id = self.by_name.get((team, name))
        return self.models.get(model_id) if model_id is not None else None

    def version(self, version_id: str) -> Document | None:
        """A version by id; None for an unknown or deleted one."""
        model_id = self.version_owner.get(version_id)
        return self.versions.get(model_id, {}).get(version_id) if model_id is not None else None

    def sorted_versions(self, model_id: str) -> list[Document]:
        """A model's versions by precedence, newest first (deleted ones are gone)."""
        found = self.versions.get(model_id, {}).values()
        return sorted((v for v in found if not v.get("deleted")), key=lambda v: v["version_key"], reverse=True)

    def version_count(self) -> int:
        """How many versions the model holds in all."""
        return len(self.version_owner)

    def has_reached(self, tokens: list[Token]) -> bool:
        """Whether every token's revision has been applied."""
        return all(self.revisions.get((t.source, t.model_id), -1) >= t.revision for t in tokens)

    async def reached(self, tokens: list[Token], timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until every token's revision has been applied."""
        if self.has_reached(tokens):
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (tokens, waiter)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see shared.outbox.relay
                await asyncio.shield(waiter)
        except TimeoutError:
            return self.has_reached(tokens)
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)
        return True

    def subscribe(self, callback: Callable[[set[str]], None]) -> None:
        """Call ``callback`` with the ids of the models changed after each applied batch."""
        self._subscribers.append(callback)

    def notify(self, changed: set[str]) -> None:
        """Tell subscribers what changed and wake the reads whose tokens are now reached."""
        if changed:
            for callback in list(self._subscribers):
                callback(changed)
        for tokens, waiter in list(self._waiters):
            if not waiter.done() and self.has_reached(tokens):
                waiter.set_result(None)

    def adopt(self, other: ReadModel) -> None:
        """Take ``other``'s contents (a rebuild), keeping this model's subscribers and waiters.

        Subscribers hear of every model either holds: one the rebuild no longer has must leave
        the search index and the caches too.
        """
        before = set(self.models)
        self.models, self.by_name, self.versions = other.models, other.by_name, other.versions
        self.children, self.history, self.reports = other.children, other.history, other.reports
        self.revisions, self.version_owner, self.positions = other.revisions, other.version_owner, other.positions
        self.dirty_models, self.dirty_versions = other.dirty_models, other.dirty_versions
        self.rewritten = other.rewritten
        self.notify(before | set(self.models))
