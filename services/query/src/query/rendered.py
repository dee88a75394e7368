"""What is rendered from a model's document (a feed card, a public view), kept until the model changes.

Rendering costs far more than reading the model from memory: a model card for the feed, which
every vector index that syncs from it reads again and again, and the public view of each model
of a list (a page of 200 models spent two fifths of its time validating them). A model's
``feed_key`` moves on every change that alters its document, and the read model tells which
models each batch of events changed (:meth:`RenderedCache.forget` drops them at once), so what
was rendered at one key is current for exactly as long as the model still has that key. Each
reader renders only what it misses.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from registry_contract.documents import Document

DEFAULT_CAPACITY = 50_000  # renderings; a card is a few kilobytes, so on the order of 200 MB at most
Rendered = TypeVar("Rendered")


class RenderedCache(Generic[Rendered]):
    """The newest rendering of each model, under the feed key it was rendered at."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._entries: dict[str, tuple[str, Rendered]] = {}

    def get(self, model: Document) -> Rendered | None:
        """The rendering of ``model`` (as the read model holds it) if it was made at its current key."""
        entry = self._entries.get(model["_id"])
        return entry[1] if entry is not None and entry[0] == model.get("feed_key") else None

    def put(self, model: Document, rendered: Rendered) -> None:
        """File ``rendered`` as ``model``'s at its feed key; past capacity, the longest unrefreshed entry goes."""
        self._entries.pop(model["_id"], None)  # re-inserted last: dict order is refresh order
        self._entries[model["_id"]] = (str(model.get("feed_key")), rendered)
        while len(self._entries) > self._capacity:
            del self._entries[next(iter(self._entries))]

    def forget(self, model_ids: set[str]) -> None:
        """Drop the renderings of models that changed (a :meth:`ReadModel.subscribe` callback)."""
        for model_id in model_ids:
            self._entries.pop(model_id, None)

    def __len__(self) -> int:
        return len(self._entries)
