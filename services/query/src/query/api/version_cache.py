"""What recently read models hold (their versions, their applied deployments), valid while they stand.

Registration and the deploy tracker move a model's ``feed_key`` in the same transaction as every
change to it, to any of its versions, and with every applied deployment report (the document feed
relies on the same rule). What was read while the model had key ``K`` is therefore current for as
long as the model's document still says ``K``: a reader that has just read the model (which every
route does, for visibility) knows whether its cached part is current, and re-reads it when not.
So a version whose registration has answered is listed at once on every replica (read-your-writes),
and an unchanged model's versions are filtered and paged in memory, with no second MongoDB read.
"""

from __future__ import annotations

from collections import OrderedDict

from shared.contract.documents import Document

MAX_VERSIONS_PER_MODEL = 1_000  # a model with more is always listed from MongoDB


class VersionCache:
    """A bounded LRU of (part, model id) → (the model's ``feed_key``, that part of it).

    The parts are ``versions`` (newest SemVer first) and ``deployments`` (applied reports, newest
    first).
    """

    def __init__(self, max_models: int) -> None:
        self.max_models = max_models
        self._entries: OrderedDict[tuple[str, str], tuple[str, list[Document]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def cacheable(self, model: Document) -> bool:
        """Whether ``model``'s versions may be kept: it has a change key and not too many versions."""
        return (
            self.max_models > 0
            and bool(model.get("feed_key"))
            and model.get("version_count", 0) <= MAX_VERSIONS_PER_MODEL
        )

    def get(self, part: str, model: Document) -> list[Document] | None:
        """``part`` of ``model`` if it was read at the model's current change, else ``None``. Never mutate it."""
        entry = self._entries.get((part, model["_id"]))
        if entry is None or entry[0] != model.get("feed_key"):
            return None
        self._entries.move_to_end((part, model["_id"]))
        return entry[1]

    def keep(self, part: str, model: Document, rows: list[Document]) -> None:
        """Remember ``part`` of ``model``, read after ``model`` (so at its change or a later one)."""
        self._entries[(part, model["_id"])] = (str(model["feed_key"]), rows)
        self._entries.move_to_end((part, model["_id"]))
        while len(self._entries) > self.max_models:
            self._entries.popitem(last=False)
