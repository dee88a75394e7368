"""Ranking quality over the judged queries: mean reciprocal rank and nDCG@10."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from query.search import SearchDocument, SearchIndex, SearchRequest, SearchResult, search_document
from tests.relevance.catalogue import CatalogueModel
from tests.relevance.judged import JUDGED, Judged

CUTOFF = 10


@dataclass(frozen=True)
class Scored:
    """How one judged query ranked."""

    judged: Judged
    reciprocal_rank: float
    ndcg: float
    top: list[str]


@dataclass(frozen=True)
class Evaluation:
    """The means over the judged set, and each query's figures."""

    mrr: float
    ndcg: float
    queries: list[Scored]


def documents(catalogue: list[CatalogueModel]) -> list[SearchDocument]:
    return [search_document(m.model, m.versions) for m in catalogue]


def build_index(catalogue: list[CatalogueModel]) -> SearchIndex:
    index = SearchIndex()
    index.upsert(documents(catalogue))
    index.commit()
    return index


def reciprocal_rank(ranked: Sequence[str], grades: dict[str, int]) -> float:
    """1 / the rank of the first relevant result within the cutoff (0 when none is)."""
    return next((1 / rank for rank, item in enumerate(ranked[:CUTOFF], 1) if grades.get(item)), 0.0)


def ndcg(ranked: Sequence[str], grades: dict[str, int]) -> float:
    """Discounted cumulative gain of the top results over the best possible, gains ``2^grade - 1``."""

    def dcg(values: Sequence[int]) -> float:
        return sum((2.0**grade - 1) / math.log2(rank + 1) for rank, grade in enumerate(values[:CUTOFF], 1))

    ideal = dcg(sorted(grades.values(), reverse=True))
    return dcg([grades.get(item, 0) for item in ranked]) / ideal if ideal else 0.0


def evaluate(index: SearchIndex, catalogue: list[CatalogueModel], judged: Sequence[Judged] = JUDGED) -> Evaluation:
    """Run every judged query as a platform admin and score its first page."""
    scored = []
    for item in judged:
        result = index.search(SearchRequest(item.query, None, limit=CUTOFF))
        assert isinstance(result, SearchResult), (item.query, result)
        ranked = [hit.model_id for hit in result.items]
        grades = item.relevant(catalogue)
        scored.append(Scored(item, reciprocal_rank(ranked, grades), ndcg(ranked, grades), ranked))
    count = len(scored)
    return Evaluation(sum(s.reciprocal_rank for s in scored) / count, sum(s.ndcg for s in scored) / count, scored)


def evaluate_per_team(
    index: SearchIndex, catalogue: list[CatalogueModel], judged: Sequence[Judged] = JUDGED
) -> Evaluation:
    """Run every judged query as each team that may read one of its relevant models, graded on what it reads."""
    scored = []
    teams = sorted({str(m.model["team"]) for m in catalogue})
    for item in judged:
        grades = item.relevant(catalogue)
        for team in teams:
            readable = {str(m.model["_id"]) for m in catalogue if team in m.model["readers"]}
            own = {model_id: grade for model_id, grade in grades.items() if model_id in readable}
            if not own:
                continue
            result = index.search(SearchRequest(item.query, frozenset({team}), limit=CUTOFF))
            assert isinstance(result, SearchResult), (item.query, result)
            ranked = [hit.model_id for hit in result.items]
            scored.append(Scored(item, reciprocal_rank(ranked, own), ndcg(ranked, own), ranked))
    count = len(scored)
    return Evaluation(sum(s.reciprocal_rank for s in scored) / count, sum(s.ndcg for s in scored) / count, scored)
