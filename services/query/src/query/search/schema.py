"""The index's fields, its two text analyzers, and a search document as a Tantivy document.

Text is indexed twice: stemmed, per field, for BM25 ranking, phrases and snippets; and unstemmed,
in two catch-all fields (the name, everything), for typo-tolerant and prefix matching, which must
compare what the user typed with the words as written ("detecton" is one edit from "detection",
three from its stem "detect"). Filter values are single untokenized terms in fast fields, so a
filter is one term lookup and a facet one terms aggregation.
"""

from __future__ import annotations

import tantivy

from query.search.documents import SearchDocument

STEMMED = "registry_stemmed"
WORDS = "registry_words"
MAX_TOKEN_CHARS = 40

# Stemmed text fields and their BM25 weights; the stored ones are shown as snippets.
TEXT_BOOSTS: dict[str, float] = {"name": 4.0, "tags": 1.5, "description": 1.0, "facts": 1.0, "documentation": 0.6}
SNIPPET_FIELDS = ("name", "description", "tags", "documentation")
NAME_WORDS, ALL_WORDS = "name_words", "all_words"
# Exact-value fields: the key filters and facets use (multi-valued where the document has a tuple).
FILTER_FIELDS = (
    "model_id",
    "team",
    "name_raw",
    "framework",
    "deployment_target",
    "tag",
    "tag_key",
    "status",
    "environment",
    "env_status",
    "lifecycle",
    "readers",
)
UPDATED = "updated"
SUMMARY = "summary"  # stored, not indexed: what a hit shows


def analyzer(*, stem: bool) -> tantivy.TextAnalyzer:
    """Split on anything not a letter or digit, drop overlong tokens, lowercase, fold accents[, stem]."""
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(MAX_TOKEN_CHARS))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )
    return (builder.filter(tantivy.Filter.stemmer("english")) if stem else builder).build()


def build_schema() -> tantivy.Schema:
    """The fields of :data:`TEXT_BOOSTS`, the word fields, the filter fields and the sort key."""
    builder = tantivy.SchemaBuilder()
    for field in TEXT_BOOSTS:
        builder.add_text_field(field, stored=field in SNIPPET_FIELDS, tokenizer_name=STEMMED)
    for field in (NAME_WORDS, ALL_WORDS):
        builder.add_text_field(field, tokenizer_name=WORDS, index_option="freq")
    for field in FILTER_FIELDS:
        builder.add_text_field(field, stored=field == "model_id", fast=True, tokenizer_name="raw")
    builder.add_integer_field(UPDATED, fast=True)
    builder.add_bytes_field(SUMMARY, stored=True, indexed=False)
    return builder.build()


def new_index() -> tantivy.Index:
    """An empty in-memory index with the analyzers registered."""
    index = tantivy.Index(build_schema())
    index.register_tokenizer(STEMMED, analyzer(stem=True))
    index.register_tokenizer(WORDS, analyzer(stem=False))
    return index


def to_tantivy(doc: SearchDocument) -> tantivy.Document:
    """``doc`` as the fields of :func:`build_schema`."""
    text = {"name": doc.name, "tags": doc.tags, "description": doc.description, "facts": doc.facts}
    return tantivy.Document(
        **text,
        documentation=doc.documentation,
        name_words=doc.name,
        all_words="\n".join([*text.values(), doc.documentation]),
        model_id=doc.model_id,
        team=doc.team,
        name_raw=doc.name,
        framework=[doc.framework] if doc.framework else [],
        deployment_target=list(doc.deployment_targets),
        tag=list(doc.tag_pairs),
        tag_key=list(doc.tag_keys),
        status=list(doc.statuses),
        environment=list(doc.environments),
        env_status=list(doc.env_statuses),
        lifecycle=list(doc.lifecycles),
        readers=list(doc.readers),
        updated=doc.updated,
        summary=doc.summary.encode(),
    )
