"""What one batch of commands writes: plain data the repository commits atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.contract.documents import Document
from shared.contract.sortkeys import text_key, time_key

HEADLINE_FIELDS = ("latest_version", "framework", "deployment_targets", "description", "tags", "tag_pairs")
# Headline fields a team can give the model itself (update_model); once given, versions no longer set them.
OWNABLE = {"description": ("description",), "tags": ("tags", "tag_pairs")}


@dataclass
class ModelChange:
    """How one model document changes, expressed without reading it first.

    The first version creates the model; ``headline`` replaces the headline fields only when its
    rank beats the stored one; ``edits`` apply to the headline only when they target the version
    that is the headline; ``readers`` (the owner team and teams it is shared with) gains and loses
    teams, and ``former_readers`` holds the teams it was unshared from (until shared again), so
    their document feed can show a tombstone; ``unshared_at`` keeps, per former reader, the feed
    key of the change that unshared it, where its tombstone stays (later changes of the model
    never reach a former reader, not even as their timing). ``feed_key`` moves the model to the end of the
    document feed on every change. ``fields`` are set as given, last (the model's own metadata and
    its aliases, which the use cases compute from the model they read; a model's commands are
    handled one at a time, in order, so nothing changes them in between). A headline field named
    in ``own_metadata`` belongs to the model and no version overwrites it. The Mongo repository
    turns this into one pipeline upsert; the fake applies :meth:`apply` in Python; the contract
    test keeps them equal.
    """

    model_id: str
    team: str
    name: str
    now: datetime
    added_versions: int = 0
    headline: dict[str, Any] | None = None
    edits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    add_readers: set[str] = field(default_factory=set)
    remove_readers: set[str] = field(default_factory=set)
    fields: dict[str, Any] = field(default_factory=dict)

    def apply(self, stored: Document | None) -> Document:
        """The model document after this change (``stored`` is ``None`` for a new model)."""
        doc = dict(stored or {})
        doc.update(self.identity())
        doc.setdefault("created_at", self.now)
        doc.setdefault("created_key", time_key(self.now, self.model_id))
        doc["updated_at"], doc["updated_key"] = self.now, time_key(self.now, self.model_id)
        doc["feed_key"] = time_key(self.now, self.model_id)
        doc["version_count"] = doc.get("version_count", 0) + self.added_versions
        readers = (set(doc.get("readers") or [self.team]) | self.add_readers) - self.remove_readers
        doc["readers"] = sorted(readers | {self.team})
        former = (set(doc.get("former_readers") or []) - self.add_readers) | self.remove_readers
        doc["former_readers"] = sorted(former)
        unshared = {team: key for team, key in (doc.get("unshared_at") or {}).items() if team not in self.add_readers}
        for team in self.remove_readers:
            unshared.setdefault(team, doc["feed_key"])
        if unshared or "unshared_at" in doc:
            doc["unshared_at"] = unshared
        owned = {f for name in doc.get("own_metadata") or [] for f in OWNABLE.get(name, ())}
        if self.headline and doc.get("latest_rank", "") < self.headline["latest_rank"]:
            doc.update({k: v for k, v in self.headline.items() if k not in owned})
        for version, fields in self.edits:
            if doc.get("latest_version") == version:
                doc.update({k: v for k, v in fields.items() if k not in owned})
        doc.update(self.fields)
        return doc

    def identity(self) -> Document:
        """Fields fixed by the model's team and name."""
        return {
            "_id": self.model_id,
            "team": self.team,
            "name": self.name,
            "name_key": text_key(self.name, self.model_id),
        }


@dataclass
class Changes:
    """Every write of one batch."""

    models: dict[str, ModelChange] = field(default_factory=dict)
    new_versions: list[Document] = field(default_factory=list)
    version_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[Document] = field(default_factory=list)
    shares_added: list[Document] = field(default_factory=list)
    shares_removed: list[str] = field(default_factory=list)
    deleted_versions: list[Document] = field(default_factory=list)  # tombstones of versions deleted
