"""The models this process knows are stored: registering a version of one reads nothing of it.

A registration reads its model only to create it with its first version. Models are never
deleted, and creating one is an upsert that leaves a model another writer created first as it
was (:class:`~registration.changes.ModelChange`): so once a process has read a model, or committed
it, later versions of it need no read. That is one query less on every registration's path (the
HTTP write waits for it, and the database server answers it). Every other command that reads a
model (its readers, aliases or metadata) still reads it, and so does a batch re-run after a
conflict, which reads everything. A batch decides which models it skips before it reads any, and
works with that set (:class:`~registration.batch.Batch`'s ``stored_models``), so the bound
starting over mid-batch changes nothing. A command its sender may not send reads nothing at all:
a stranger could otherwise time its refusal to learn whether a model is known here. Models are
read majority-committed, and written by transactions under the server's default write concern
(majority, on the replica sets registration requires, unless an operator lowered it): what is
remembered here is not rolled back by a failover.
"""

from __future__ import annotations

from collections.abc import Iterable

KNOWN_MODELS_KEPT = 100_000  # model ids held at most (about 10 MB); at the cap the set starts over


class KnownModels:
    """Ids of models this process has read from, or committed to, the database."""

    def __init__(self, kept: int = KNOWN_MODELS_KEPT) -> None:
        self._ids: set[str] = set()
        self._kept = kept

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._ids

    def add(self, model_ids: Iterable[str]) -> None:
        """Remember ``model_ids`` as stored; past the cap, forget the rest (they are read again)."""
        for model_id in model_ids:
            if len(self._ids) >= self._kept:
                self._ids.clear()
            self._ids.add(model_id)
