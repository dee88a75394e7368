"""One Tantivy index per reader: the platform's, of every model, and each team's, of the models it may read.

Everything a search shows is computed from the index it runs against, not only from the documents
it matched: BM25 weighs a word by how many documents hold it and how long they are, the snippet
generator picks a fragment by the same counts, and a word counts as a typo when no document has
it. Over one index of every model, another team's private text would move a team's scores, order
and snippets (a private model containing a word lowers the score of the team's own model with
it), so a team could test guesses and count the private models that contain them. Filtering the
matches by reader does not help, since the statistics are the whole index's. Instead each team
searches an index that holds exactly what it may read (its own models and those shared with it),
and its results are the same as if nothing else existed; a platform admin, who reads everything,
searches the index of every model. A model is indexed once per reader team, so memory grows with
how widely models are shared (typically one to three copies, at most the registration's
``REGISTRATION_MAX_SHARES_PER_MODEL`` + 1); a team's index exists only while it reads a model.

Until Tantivy merges its segments, an index's statistics still count the documents replaced or
removed from it: earlier revisions of models that were readable by that team when indexed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import tantivy

from query.search.documents import SearchDocument
from query.search.schema import new_index, to_tantivy

TEAM_HEAP_BYTES = 15_000_000  # Tantivy's least writer budget; a team's changes between commits are small
TEAM_BATCH = 256  # a team's changes held before they are written and committed (a build holds a few of each)


class Shard:
    """One in-memory index and, while open, its writer."""

    def __init__(self, heap_bytes: int) -> None:
        self.index = new_index()
        self.index.config_reader("manual")
        self._heap_bytes = heap_bytes
        self._writer: tantivy.IndexWriter | None = None
        self._pending = False
        self.commits = 0  # a result computed before the last commit is not served again

    def upsert(self, model_id: str, doc: tantivy.Document) -> None:
        """Replace what this index holds for ``model_id`` with ``doc`` (visible after :meth:`commit`)."""
        writer = self._open()
        writer.delete_documents_by_term("model_id", model_id)
        writer.add_document(doc)

    def delete(self, model_id: str) -> None:
        """Remove ``model_id`` (visible after :meth:`commit`)."""
        self._open().delete_documents_by_term("model_id", model_id)

    def commit(self) -> None:
        """Make the changes visible (nothing to do without any)."""
        if not self._pending or self._writer is None:
            return
        self._writer.commit()
        self._pending = False  # only once committed: a failed commit leaves the changes pending
        self.index.reload()
        self.commits += 1

    def close(self) -> None:
        """Commit, then let the writer go once its merges are done (its threads end); the next change opens one."""
        self.commit()
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None

    def abandon(self) -> None:
        """Drop the writer and what it held uncommitted (after a failure: the next change opens a fresh one)."""
        writer, self._writer, self._pending = self._writer, None, False
        if writer is not None:
            with contextlib.suppress(Exception):  # a writer that failed may fail to roll back too
                writer.rollback()

    def searcher(self) -> tantivy.Searcher:
        """The last committed state."""
        return self.index.searcher()

    def _open(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self.index.writer(self._heap_bytes, 1)
        self._pending = True
        return self._writer


class Shards:
    """The platform's index and the teams', kept in step: each model is in the index of each of its readers.

    A team's changes are queued and written in batches, each by a writer opened for it, committed
    and closed: no team holds a writer's memory and threads between batches (measured at 10,000
    models in 12 teams: a third less memory and a faster build than keeping writers open), and a
    build that interleaves every team's models costs a few commits per team, not one per model.
    """

    def __init__(self, heap_bytes: int) -> None:
        self.everything = Shard(heap_bytes)
        self._nothing = Shard(TEAM_HEAP_BYTES)  # for a caller who reads no model
        self._teams: dict[str, Shard] = {}
        self._readers: dict[str, tuple[str, ...]] = {}  # model id → the teams whose index holds it
        self._queued: dict[str, list[tuple[str, tantivy.Document | None]]] = {}  # team → (model id, doc or delete)

    def of(self, readers: frozenset[str] | None) -> Shard:
        """The index to search for ``readers``: ``None`` is a platform admin, else the caller's one team."""
        if readers is None:
            return self.everything
        if len(readers) > 1:
            raise ValueError("a search reads as one team or as the platform")
        return next((self._teams.get(team, self._nothing) for team in readers), self._nothing)

    def team_documents(self) -> int:
        """Documents in the teams' indexes, as last committed."""
        return sum(int(shard.searcher().num_docs) for shard in list(self._teams.values()))

    def holders(self, model_id: str) -> tuple[str, ...]:
        """The teams whose index holds ``model_id`` (written, if not yet committed)."""
        return self._readers.get(model_id, ())

    def upsert(self, docs: Iterable[SearchDocument]) -> None:
        """Index ``docs`` in every index that should hold them (visible after :meth:`commit`)."""
        for doc in docs:
            indexed = to_tantivy(doc)
            readers = tuple(dict.fromkeys(doc.readers))
            for team in set(self._readers.get(doc.model_id, ())) - set(readers):  # no longer shared with it
                self._queue(team, doc.model_id, None)
            self.everything.upsert(doc.model_id, indexed)
            for team in readers:
                self._queue(team, doc.model_id, indexed)
            self._readers[doc.model_id] = readers

    def delete(self, model_ids: Iterable[str]) -> None:
        """Remove these models from every index (visible after :meth:`commit`)."""
        for model_id in model_ids:
            self.everything.delete(model_id)
            for team in self._readers.pop(model_id, ()):
                self._queue(team, model_id, None)

    def commit(self) -> None:
        """Make every change visible.

        A platform writer that fails is abandoned, as a team's is, and the failure re-raised: the next
        change opens a fresh writer instead of reusing one in an unknown state. Its uncommitted changes
        go with it; the projection, restarted by its supervisor, rebuilds them from MongoDB.
        """
        try:
            self.everything.commit()
        except BaseException:
            self.everything.abandon()
            raise
        for team in sorted(self._queued):
            self._write(team)

    def _queue(self, team: str, model_id: str, doc: tantivy.Document | None) -> None:
        queued = self._queued.setdefault(team, [])
        queued.append((model_id, doc))
        if len(queued) >= TEAM_BATCH:
            self._write(team)  # visible before the others' commit: each index is consistent on its own

    def _write(self, team: str) -> None:
        """Write, commit and close ``team``'s queued changes; on a failure they stay queued, for the next commit.

        Replaying them is harmless (an upsert replaces, a delete of the absent does nothing), whereas
        dropping them could leave an unshared model in a former reader's index.
        """
        shard = self._teams.get(team)
        if shard is None:
            shard = self._teams[team] = Shard(TEAM_HEAP_BYTES)
        try:
            for model_id, doc in self._queued.get(team, []):
                if doc is None:
                    shard.delete(model_id)
                else:
                    shard.upsert(model_id, doc)
            shard.close()
        except BaseException:
            shard.abandon()
            raise
        del self._queued[team]
        if shard.searcher().num_docs == 0:
            del self._teams[team]  # it reads nothing now: memory is kept only for teams that read a model
