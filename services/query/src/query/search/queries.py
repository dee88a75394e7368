"""A parsed query, the list filters and the caller's visibility as one Tantivy query.

Ranking is Tantivy's BM25: each free word is the best of its stemmed matches across the text
fields (weighted by :data:`~query.search.schema.TEXT_BOOSTS`), plus constant-score bonuses for a
typo-tolerant match and, for the word being typed, a prefix match. A typo-tolerant match includes
the exact word, so an exact match always scores above a fuzzy-only one. Filters and visibility are
required clauses that add nothing to the score.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import tantivy
from tantivy import Occur, Query

from query.search.parser import FieldTerm, ParsedQuery
from query.search.schema import ALL_WORDS, NAME_WORDS, TEXT_BOOSTS, analyzer

# Words that say nothing about which model is meant (in this catalogue every document is a model).
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "model",
        "models",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "which",
        "with",
        "what",
        "where",
        "who",
    ]
)
TIE_BREAKER = 0.2  # how much a word's matches in other fields add to its best field
FUZZY_BOOST, FUZZY_NAME_BOOST = 0.3, 1.0
PREFIX_BOOST, PREFIX_NAME_BOOST = 0.4, 1.5
MIN_PREFIX_CHARS = 2


@dataclass(frozen=True)
class SearchFilters:
    """The filters of ``GET /v1/models``, applied to search too; ``tags`` are ``key:value`` strings."""

    team: str | None = None
    framework: str | None = None
    deployment_target: str | None = None
    tags: tuple[str, ...] = ()
    name_prefix: str | None = None
    status: str | None = None
    environment: str | None = None
    lifecycle: str | None = None

    def terms(self) -> list[FieldTerm]:
        """The filters as query-language field terms."""
        single = {
            "team": self.team,
            "framework": self.framework,
            "deployment_target": self.deployment_target,
            "name": self.name_prefix,
            "status": self.status,
            "environment": self.environment,
            "lifecycle": self.lifecycle,
        }
        terms = [FieldTerm(field, value.lower()) for field, value in single.items() if value]
        pairs = (pair.partition(":") for pair in self.tags)
        return terms + [FieldTerm("tag", f"{key}={value}") for key, _, value in pairs]


def fuzzy_distance(word: str) -> int:
    """Edits forgiven in ``word``: none below 5 characters, one up to 8, two beyond."""
    return 0 if len(word) < 5 else 1 if len(word) <= 8 else 2


def content_words(words: Sequence[str]) -> list[str]:
    """``words`` once each (where each last appears), without stopwords unless nothing else is left."""
    unique = list({word.lower(): word for word in reversed(words)}.values())[::-1]
    kept = [word for word in unique if word.lower() not in STOPWORDS]
    return kept or unique


class QueryBuilder:
    """Builds queries against one schema, analysing words exactly as the index did."""

    def __init__(self, schema: tantivy.Schema) -> None:
        self.schema = schema
        self._stemmed = analyzer(stem=True)
        self._plain = analyzer(stem=False)

    def build(
        self, parsed: ParsedQuery, filters: SearchFilters, readers: frozenset[str] | None, *, relaxed: bool = False
    ) -> Query:
        """Everything the caller asked for, within what ``readers`` may see (``None``: everything)."""
        clauses = [self.ranking(parsed, relaxed=relaxed) or Query.all_query()]
        clauses += [self.filter(term) for term in combined_terms([*parsed.fields, *filters.terms()])]
        if readers is not None:
            clauses.append(self._constant(Query.term_set_query(self.schema, "readers", sorted(readers))))
        return Query.boolean_query([(Occur.Must, clause) for clause in clauses])

    def ranking(self, parsed: ParsedQuery, *, relaxed: bool = False) -> Query | None:
        """The scored part: every phrase, and most of the free words (all of up to two; any one if ``relaxed``)."""
        scored = [self.word(word, prefix=typing) for word, typing in self.free_words(parsed)]
        word_clauses = [clause for clause in scored if clause is not None]
        phrases = [phrase for phrase in map(self.phrase, parsed.phrases) if phrase is not None]
        must = [(Occur.Must, phrase) for phrase in phrases]
        if word_clauses:
            should = [(Occur.Should, clause) for clause in word_clauses]
            needed = 1 if relaxed else required_words(len(word_clauses))
            must.append((Occur.Must, Query.boolean_query(should, needed)))
        return Query.boolean_query(must) if must else None

    @staticmethod
    def free_words(parsed: ParsedQuery) -> list[tuple[str, bool]]:
        """The words that rank, each with whether it is the one still being typed."""
        words = content_words(parsed.words)
        typing = parsed.prefix and bool(words) and words[-1].lower() == parsed.words[-1].lower()
        return [(word, typing and i == len(words) - 1) for i, word in enumerate(words)]

    def word(self, word: str, *, prefix: bool) -> Query | None:
        """One free word: its best exact (stemmed) field match, plus fuzzy and prefix bonuses."""
        stemmed, plain = self._stemmed.analyze(word), self._plain.analyze(word)
        if not stemmed or not plain:
            return None
        parts = [self.exact(stemmed[0])]
        distance = fuzzy_distance(plain[0])
        if distance:
            parts += self._fuzzy(plain[0], distance, prefix=False, boosts=(FUZZY_NAME_BOOST, FUZZY_BOOST))
        if prefix and len(plain[0]) >= MIN_PREFIX_CHARS:
            parts += self._fuzzy(plain[0], 0, prefix=True, boosts=(PREFIX_NAME_BOOST, PREFIX_BOOST))
        return Query.boolean_query([(Occur.Should, part) for part in parts])

    def exact(self, term: str) -> Query:
        """An analysed term in every text field, scored by its best field."""
        fields = [self._boosted(Query.term_query(self.schema, f, term), boost) for f, boost in TEXT_BOOSTS.items()]
        return Query.disjunction_max_query(fields, TIE_BREAKER)

    def phrase(self, words: Sequence[str]) -> Query | None:
        """The words, analysed, next to each other in one text field."""
        terms: list[str | tuple[int, str]] = [term for word in words for term in self._stemmed.analyze(word)]
        if len(terms) < 2:
            return self.exact(str(terms[0])) if terms else None
        fields = [self._boosted(Query.phrase_query(self.schema, f, terms), b) for f, b in TEXT_BOOSTS.items()]
        return Query.disjunction_max_query(fields, TIE_BREAKER)

    def filter(self, term: FieldTerm) -> Query:
        """A required, unscored exact match (a name prefix for ``name``)."""
        if term.field == "name":
            return self._constant(Query.fuzzy_term_query(self.schema, "name_raw", term.value, 0, True, True))
        return self._constant(Query.term_query(self.schema, term.field, term.value))

    def stemmed(self, word: str) -> list[str]:
        """``word`` as the stemmed fields index it."""
        return self._stemmed.analyze(word)

    def plain(self, word: str) -> list[str]:
        """``word`` as the word fields index it."""
        return self._plain.analyze(word)

    def _fuzzy(self, word: str, distance: int, *, prefix: bool, boosts: tuple[float, float]) -> list[Query]:
        return [
            self._boosted(Query.fuzzy_term_query(self.schema, field, word, distance, True, prefix), boost)
            for field, boost in zip((NAME_WORDS, ALL_WORDS), boosts, strict=True)
        ]

    @staticmethod
    def _boosted(query: Query, boost: float) -> Query:
        return query if boost == 1.0 else Query.boost_query(query, boost)

    @staticmethod
    def _constant(query: Query) -> Query:
        return Query.const_score_query(query, 0.0)


def required_words(count: int) -> int:
    """How many of ``count`` free words a model must match: all of one or two, two thirds of more."""
    return count if count <= 2 else count - count // 3


def combined_terms(terms: Iterable[FieldTerm]) -> list[FieldTerm]:
    """``terms``, with a status and an environment meaning "in that status in that environment"."""
    terms = list(dict.fromkeys(terms))
    statuses = [t.value for t in terms if t.field == "status"]
    environments = [t.value for t in terms if t.field == "environment"]
    if not (statuses and environments):
        return terms
    others = [t for t in terms if t.field not in ("status", "environment")]
    return others + [FieldTerm("env_status", f"{env}={status}") for env in environments for status in statuses]
