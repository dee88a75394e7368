"""The in-memory search index of models: ranked results, snippets and facets, within what a caller may read.

Use from one writer and any number of readers: a single task (the projection that consumes
``registry.events``) calls :meth:`SearchIndex.upsert`, :meth:`~SearchIndex.delete` and
:meth:`~SearchIndex.commit`; :meth:`~SearchIndex.search` may be called from the event loop or any
thread at the same time. Tantivy releases the GIL while it searches, aggregates and commits, and
each search reads one consistent snapshot (the last commit), so a search never sees half an
upsert. A commit with nothing pending costs nothing; one with changes costs milliseconds of CPU,
so the projection commits a round of changes at most every half second (:mod:`query.search.projection`).

A team searches an index of only the models it may read (:mod:`query.search.shards`), so its
scores, order, snippets, totals and facets are what they would be if nothing else existed.

Results are kept per snapshot, like Elasticsearch's request cache: the same search against the same
commit has the same answer, so a repeated search (a dashboard, an assistant asking again, the next
keystroke's predecessor) costs a dictionary lookup, until the next commit of the index it ran
against (another team's private change leaves a team's cached answers, and so its timings, alone).
"""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

import tantivy
from tantivy import Query

from query.search.documents import SearchDocument
from query.search.parser import InvalidQuery, ParsedQuery, parse_query
from query.search.queries import QueryBuilder, SearchFilters
from query.search.schema import SUMMARY, UPDATED
from query.search.shards import Shard, Shards
from query.search.snippets import Snippet, highlight_query, snippets
from registry_contract import catalog

FACETS = ("framework", "status", "team", "deployment_target", "environment")
FACET_SIZE = 50
MAX_OFFSET = 10_000
WRITER_HEAP_BYTES = 50_000_000
RESULT_CACHE_ENTRIES = 2_048  # searches answered from memory until the next commit (a page is ~10 KB)
Stamp = tuple[Shard, int]  # the index a result was computed from, and its commits then


@dataclass(frozen=True)
class SearchRequest:
    """A search as the caller asked for it: ``readers`` is the caller's team, or ``None`` for a platform admin."""

    q: str
    readers: frozenset[str] | None
    filters: SearchFilters = field(default_factory=SearchFilters)
    limit: int = catalog.DEFAULT_PAGE_SIZE
    offset: int = 0


@dataclass(frozen=True)
class Hit:
    """One model found; ``score`` is 0 when the query only filters (newest first, then)."""

    model_id: str
    score: float
    snippets: dict[str, Snippet] = field(default_factory=dict)
    summary: bytes = b""  # the search document's summary (JSON), as indexed


@dataclass(frozen=True)
class SearchResult:
    """One page of hits, and over all of them (not just this page) the total and facet counts."""

    total: int
    items: list[Hit]
    facets: dict[str, dict[str, int]]
    relaxed: bool = False  # no model had enough of the words: these have some of them

    @functools.cached_property
    def items_json(self) -> list[bytes]:
        """Each hit as JSON, encoded once however often a cached result is served."""
        return [hit_json(hit) for hit in self.items]


def hit_json(hit: Hit) -> bytes:
    """One hit as JSON: its score and snippets, then the model and latest version as the index holds them.

    The held part comes from the same index snapshot as the visibility filter that let the hit
    through, so a page never mixes two moments (the index trails MongoDB by the event lag, well
    under a second). It was validated when it was indexed and is spliced in as it is: parsing and
    re-serializing ten models per search would cost more than the search itself.
    """
    snippets = {
        name: {"fragment": s.fragment, "highlights": s.highlights, "html": s.html} for name, s in hit.snippets.items()
    }
    head = json.dumps({"score": hit.score, "snippets": snippets}, separators=(",", ":")).encode()
    return head[:-1] + b"," + hit.summary[1:]


class SearchIndex:
    """Models searchable by text, filterable by exact values, counted by facet."""

    def __init__(self, *, heap_bytes: int = WRITER_HEAP_BYTES, cached: int = RESULT_CACHE_ENTRIES) -> None:
        self._shards = Shards(heap_bytes)
        self._schema = self._shards.everything.index.schema  # every shard's: one schema
        self._builder = QueryBuilder(self._schema)
        self._results: OrderedDict[SearchRequest, tuple[Stamp, SearchResult]] = OrderedDict()
        self._results_capacity = cached
        self._results_lock = threading.Lock()  # searches run in worker threads

    def upsert(self, docs: Iterable[SearchDocument]) -> None:
        """Add ``docs``, each replacing what the index held for its model (visible after :meth:`commit`)."""
        self._shards.upsert(docs)

    def delete(self, model_ids: Iterable[str]) -> None:
        """Remove these models (visible after :meth:`commit`)."""
        self._shards.delete(model_ids)

    def commit(self) -> None:
        """Make every change so far visible to searches."""
        self._shards.commit()

    def holders(self, model_id: str) -> tuple[str, ...]:
        """The teams whose index holds ``model_id`` (written, if not yet committed)."""
        return self._shards.holders(model_id)

    def stamp(self, readers: frozenset[str] | None) -> Stamp:
        """The index that ``readers`` search and its commits so far: a cached result is served while they hold."""
        shard = self._shards.of(readers)
        return shard, shard.commits

    def __len__(self) -> int:
        return int(self._shards.everything.searcher().num_docs)

    def team_documents(self) -> int:
        """Documents in the teams' indexes: one per model and team that may read it (what sharing costs)."""
        return self._shards.team_documents()

    def search(self, request: SearchRequest) -> SearchResult | InvalidQuery:
        """Ranked hits with snippets, the total and the facets; or why the request cannot be run.

        When no model has enough of the free words, the search is run again needing any one of
        them, and the result says so (``relaxed``): better a ranked guess than nothing.
        """
        parsed = parse_query(request.q)
        if isinstance(parsed, InvalidQuery):
            return parsed
        if not 1 <= request.limit <= catalog.MAX_PAGE_SIZE or not 0 <= request.offset <= MAX_OFFSET:
            return InvalidQuery(f"limit must be 1 to {catalog.MAX_PAGE_SIZE} and offset 0 to {MAX_OFFSET}")
        stamp = self.stamp(request.readers)
        if (cached := self._cached(request, stamp)) is not None:
            return cached
        searcher = stamp[0].searcher()  # read after the stamp: never older than it
        result = self._run(searcher, parsed, request, relaxed=False)
        if result.total == 0 and len(self._builder.free_words(parsed)) > 1:
            result = self._run(searcher, parsed, request, relaxed=True)
        self._remember(request, result, stamp)
        return result

    def cached(self, request: SearchRequest) -> SearchResult | None:
        """The result of ``request`` if it was computed since its index last committed (cheap: no search)."""
        return self._cached(request, self.stamp(request.readers))

    def _cached(self, request: SearchRequest, stamp: Stamp) -> SearchResult | None:
        with self._results_lock:
            if (cached := self._results.get(request)) is not None and cached[0] == stamp:
                self._results.move_to_end(request)
                return cached[1]
        return None

    def _remember(self, request: SearchRequest, result: SearchResult, stamp: Stamp) -> None:
        """Keep ``result`` unless its index committed since the search began (it may be of either snapshot)."""
        with self._results_lock:
            if stamp != self.stamp(request.readers) or self._results_capacity == 0:
                return
            self._results[request] = (stamp, result)
            if len(self._results) > self._results_capacity:
                self._results.popitem(last=False)

    def _run(
        self, searcher: tantivy.Searcher, parsed: ParsedQuery, request: SearchRequest, *, relaxed: bool
    ) -> SearchResult:
        query = self._builder.build(parsed, request.filters, request.readers, relaxed=relaxed)
        order = None if parsed.ranked else UPDATED  # a query that only filters lists the newest first
        found = searcher.search(query, request.limit, count=True, order_by_field=order, offset=request.offset)
        hits = [(float(score) if parsed.ranked else 0.0, searcher.doc(address)) for score, address in found.hits]
        return SearchResult(
            total=int(getattr(found, "count", 0) or 0),  # ``count`` is missing from tantivy's type stub
            items=self._hits(searcher, parsed, hits, relaxed=relaxed),
            facets=facet_counts(searcher, query),
            relaxed=relaxed,
        )

    def _hits(
        self,
        searcher: tantivy.Searcher,
        parsed: ParsedQuery,
        hits: list[tuple[float, tantivy.Document]],
        *,
        relaxed: bool,
    ) -> list[Hit]:
        ids = [str(doc.get_first("model_id")) for _, doc in hits]
        summaries = [bytes(doc.get_first(SUMMARY) or b"") for _, doc in hits]
        ranking = self._builder.ranking(parsed, relaxed=relaxed)
        if ranking is None or not hits:
            found: list[dict[str, Snippet]] = [{} for _ in hits]
        else:
            shown = Query.term_set_query(self._schema, "model_id", ids)
            marking = highlight_query(self._builder, searcher, parsed, ranking, shown)
            found = snippets(searcher, self._schema, marking, [doc for _, doc in hits])
        return [
            Hit(i, score, s, summary) for i, (score, _), s, summary in zip(ids, hits, found, summaries, strict=True)
        ]


def facet_counts(searcher: tantivy.Searcher, query: Query) -> dict[str, dict[str, int]]:
    """Models matching ``query`` per value of each of :data:`FACETS` (most frequent first)."""
    aggregations = {name: {"terms": {"field": name, "size": FACET_SIZE}} for name in FACETS}
    result = searcher.aggregate(query, aggregations)
    return {
        name: {str(bucket["key"]): int(bucket["doc_count"]) for bucket in result.get(name, {}).get("buckets", [])}
        for name in FACETS
    }
