"""What the assistant routes answer: ranked search hits and the RAG document feed.

Model cards are in :mod:`registry_contract.views` (``ModelCardPublic``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from registry_contract.times import UtcTime
from registry_contract.views import ModelPublic, ModelVersionPublic


class SnippetPublic(BaseModel):
    """Why a field matched: a fragment of it, the matched words' ``[start, end)`` ranges, and as HTML."""

    fragment: str
    highlights: list[tuple[int, int]]
    html: str = Field(description="the fragment with matched words in <b>; the text itself is escaped")


class SearchHitPublic(BaseModel):
    """One model found, with its latest version and the snippets that explain the match."""

    score: float = Field(
        description="BM25 relevance, its statistics counted over only the models the caller may read (other teams' "
        "private models change no score); 0 when the query only filters (newest first)"
    )
    model: ModelPublic
    latest_version: ModelVersionPublic | None = None
    snippets: dict[str, SnippetPublic] = {}


class SearchPage(BaseModel):
    """A page of ranked hits; ``total`` and ``facets`` count every match the caller may read."""

    items: list[SearchHitPublic]
    total: int
    facets: dict[str, dict[str, int]] = Field(
        description="counts per framework, status, team, deployment_target and environment"
    )
    next_cursor: str | None = None
    relaxed: bool = Field(False, description="no model had all the words, so these have some of them")


class DocumentPublic(BaseModel):
    """One model as a retrieval document; a tombstone (``deleted``) carries only the id."""

    id: str = Field(description="the model id: stable, so re-indexing a document replaces it")
    text: str = Field(description="the model card as markdown (empty for a tombstone)")
    metadata: dict[str, Any] = Field(
        description="team, name, framework, latest_version, version_count, tags, deployment_targets, "
        "statuses, environments, lifecycle (of the latest version); empty for a tombstone"
    )
    updated_at: UtcTime | None = Field(description="the model's last change (null for a tombstone)")
    deleted: bool = Field(description="true: the model is no longer readable by you; delete it from your index")


class DocumentPage(BaseModel):
    """Documents in change order, and the cursor to resume after them."""

    items: list[DocumentPublic]
    next_cursor: str | None = Field(
        description="resume here next time, even at the end of the feed (null only if the feed was empty "
        "and no cursor was given)"
    )
    has_more: bool = Field(description="false once the feed is caught up; poll again later from next_cursor")


class StreamEnd(BaseModel):
    """The last line of an NDJSON stream: where to resume (it has no ``id``, unlike a document)."""

    next_cursor: str | None
