"""Ranked search over models: documents, the query language, and the in-memory Tantivy index."""

from query.search.documents import SearchDocument, search_document
from query.search.index import Hit, SearchIndex, SearchRequest, SearchResult
from query.search.parser import FieldTerm, InvalidQuery, ParsedQuery, parse_query
from query.search.queries import SearchFilters
from query.search.snippets import Snippet

__all__ = [
    "FieldTerm",
    "Hit",
    "InvalidQuery",
    "ParsedQuery",
    "SearchDocument",
    "SearchFilters",
    "SearchIndex",
    "SearchRequest",
    "SearchResult",
    "Snippet",
    "parse_query",
    "search_document",
]
