"""Rendered feed documents kept in memory, each valid for exactly one change of its model.

Rendering a model card costs far more than reading the model from memory, and a feed is read
again and again by every vector index that syncs from it. A model's ``feed_key`` moves on every
change that alters its document, and the read model tells which models each batch of events
changed (:meth:`DocumentCache.forget` drops them at once), so a document rendered for one key is
current for exactly as long as the model still has that key. The feed renders only what it misses.
"""

from __future__ import annotations

from registry_contract.documents import Document

DEFAULT_CAPACITY = 50_000  # documents; a card is a few kilobytes, so on the order of 200 MB at most


class DocumentCache:
    """The newest rendered document of each model, under the feed key it was rendered for."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._entries: dict[str, tuple[str, Document]] = {}

    def get(self, model: Document) -> Document | None:
        """The document of ``model`` (as the read model holds it) if it was rendered at its current key."""
        entry = self._entries.get(model["_id"])
        return entry[1] if entry is not None and entry[0] == model.get("feed_key") else None

    def put(self, model: Document, document: Document) -> None:
        """File ``document`` as ``model``'s at its feed key; past capacity, the longest unrefreshed entry goes."""
        self._entries.pop(model["_id"], None)  # re-inserted last: dict order is refresh order
        self._entries[model["_id"]] = (str(model.get("feed_key")), document)
        while len(self._entries) > self._capacity:
            del self._entries[next(iter(self._entries))]

    def forget(self, model_ids: set[str]) -> None:
        """Drop the documents of models that changed (a :meth:`ReadModel.subscribe` callback)."""
        for model_id in model_ids:
            self._entries.pop(model_id, None)

    def __len__(self) -> int:
        return len(self._entries)
