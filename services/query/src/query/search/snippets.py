"""Snippets: for each hit, the fragment of each shown field that explains the match, matched words marked.

Tantivy's snippet generator marks the terms of term and phrase queries only; words that matched
through a prefix or a typo-tolerant query are found here, among the words of the hits themselves
(the engine lists them; a small edit-distance check picks the ones a typo could mean), and added
to the query the generator sees. This affects what is marked, never what matched nor the score.
"""

from __future__ import annotations

from dataclasses import dataclass

import tantivy
from tantivy import Occur, Query

from query.search.parser import ParsedQuery
from query.search.queries import QueryBuilder, fuzzy_distance
from query.search.schema import ALL_WORDS, SNIPPET_FIELDS

SNIPPET_CHARS = 160
MAX_PREFIX_VARIANTS = 20


@dataclass(frozen=True)
class Snippet:
    """A fragment of a field with the character ranges ``[start, end)`` of its matched words."""

    fragment: str
    highlights: tuple[tuple[int, int], ...]
    html: str


def highlight_query(
    builder: QueryBuilder, searcher: tantivy.Searcher, parsed: ParsedQuery, ranking: Query, hits: Query
) -> Query:
    """``ranking`` plus exact terms for the words that its prefix and fuzzy parts matched in ``hits``."""
    variants = sorted(matched_variants(builder, searcher, parsed, hits))
    stems = {stem for word in variants for stem in builder.stemmed(word)}
    extra = [Query.term_query(builder.schema, field, stem) for field in SNIPPET_FIELDS for stem in sorted(stems)]
    return Query.boolean_query([(Occur.Should, query) for query in [ranking, *extra]])


def matched_variants(builder: QueryBuilder, searcher: tantivy.Searcher, parsed: ParsedQuery, hits: Query) -> set[str]:
    """Indexed words of ``hits`` that the word being typed starts, or that a mistyped word is close to."""
    found: set[str] = set()
    for word, typing in builder.free_words(parsed):
        plain = builder.plain(word)
        if not plain:
            continue
        if typing:
            found |= {term for term, _ in searcher.terms_with_prefix(ALL_WORDS, plain[0], hits, MAX_PREFIX_VARIANTS)}
        distance = fuzzy_distance(plain[0])
        if distance and searcher.doc_freq(ALL_WORDS, plain[0]) == 0:  # no such word: a typo
            nearby = searcher.terms_with_prefix(ALL_WORDS, plain[0][0], hits)
            found |= {term for term, _ in nearby if within(term, plain[0], distance)}
    return found


def within(a: str, b: str, distance: int) -> bool:
    """Whether ``a`` is at most ``distance`` edits from ``b`` (a swap of neighbours is one edit)."""
    if abs(len(a) - len(b)) > distance:
        return False
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > distance:
            return False
        before, row = row, current
    return row[-1] <= distance


def snippets(
    searcher: tantivy.Searcher, schema: tantivy.Schema, query: Query, docs: list[tantivy.Document]
) -> list[dict[str, Snippet]]:
    """For each of ``docs``, a snippet of each shown field where ``query`` marks something."""
    found: list[dict[str, Snippet]] = [{} for _ in docs]
    for field in SNIPPET_FIELDS:
        generator = tantivy.SnippetGenerator.create(searcher, query, schema, field)
        generator.set_max_num_chars(SNIPPET_CHARS)
        for snippets_of_doc, doc in zip(found, docs, strict=True):
            snippet = generator.snippet_from_doc(doc)
            if snippet.highlighted():
                snippets_of_doc[field] = _snippet(snippet)
    return found


def _snippet(snippet: tantivy.Snippet) -> Snippet:
    """Tantivy's byte ranges as character ranges, so they index the Python string."""
    fragment = snippet.fragment()
    encoded = fragment.encode()

    def chars(offset: int) -> int:
        return len(encoded[:offset].decode(errors="ignore"))

    ranges = tuple((chars(r.start), chars(r.end)) for r in snippet.highlighted())
    return Snippet(fragment, ranges, snippet.to_html())
