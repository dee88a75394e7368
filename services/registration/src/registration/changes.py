"""What one batch of commands writes: plain data the repository commits atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry_contract.documents import Document


@dataclass
class ModelChange:
    """How one model document changes, expressed without reading it first.

    Registration keeps of a model only what its own rules read: who may read it (``readers``: the
    owner team and the teams it is shared with), its aliases and its own metadata. Its headline,
    version count and list keys are the query projection's, which derives them from the events;
    so registering a version of an existing model writes no model document at all.

    ``creates`` inserts the model (its first version is being registered); should another writer
    have inserted it first, that one stands. ``add_readers`` and ``remove_readers`` change who may
    read it; ``fields`` are set as given, last (the model's own metadata and aliases, which the use
    cases compute from the model they read; a model's commands are handled one at a time, in
    order, so nothing changes them in between). The Mongo repository turns this into one pipeline
    upsert; the fake applies :meth:`apply` in Python; the contract test keeps them equal.
    """

    model_id: str
    team: str
    name: str
    now: datetime
    creates: bool = False
    add_readers: set[str] = field(default_factory=set)
    remove_readers: set[str] = field(default_factory=set)
    fields: dict[str, Any] = field(default_factory=dict)

    def writes(self) -> bool:
        """Whether the model document changes at all."""
        return self.creates or bool(self.add_readers or self.remove_readers or self.fields)

    def apply(self, stored: Document | None) -> Document:
        """The model document after this change (``stored`` is ``None`` for a new model)."""
        doc = dict(stored or {})
        doc.update(self.identity())
        doc.setdefault("created_at", self.now)
        readers = (set(doc.get("readers") or [self.team]) | self.add_readers) - self.remove_readers
        doc["readers"] = sorted(readers | {self.team})
        doc.update(self.fields)
        return doc

    def identity(self) -> Document:
        """Fields fixed by the model's team and name."""
        return {"_id": self.model_id, "team": self.team, "name": self.name}


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
