"""``GET /v1/assistant/documents``: the RAG document feed, as JSON pages or one NDJSON stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse

from query.deps import CONSISTENT, INVALID, REFUSALS, UNAVAILABLE, Caller, Cursor, Limit
from query.feed.documents import Feed, FeedPage, decode_cursor, encode_cursor
from registry_contract import catalog
from registry_contract.assistant_views import DocumentPage, DocumentPublic, StreamEnd
from registry_contract.auth import Principal

NDJSON = "application/x-ndjson"
STREAM_PAGE = catalog.MAX_PAGE_SIZE  # documents read per query while streaming

router = APIRouter(
    prefix="/v1/assistant", tags=["assistant"], responses=REFUSALS | INVALID | UNAVAILABLE, dependencies=CONSISTENT
)


async def feed(request: Request) -> Feed:
    """The service's one feed (its document cache is shared by every request)."""
    found: Feed = request.app.state.feed
    return found


def _cursor_of(page: FeedPage) -> str | None:
    return encode_cursor(page.last_key) if page.last_key else None


async def _ndjson(feed: Feed, caller: Principal, after: str) -> AsyncIterator[str]:
    """Each document on its own line, a page at a time, then a :class:`StreamEnd` line.

    A page goes out as one chunk: a write per document would cost an event-loop turn each.
    """
    last = after
    async for page in feed.stream(caller, after=after, page_size=STREAM_PAGE):
        if page.items:
            yield "".join(DocumentPublic.model_validate(item).model_dump_json() + "\n" for item in page.items)
        last = page.last_key
    yield StreamEnd(next_cursor=encode_cursor(last) if last else None).model_dump_json() + "\n"


@router.get(
    "/documents",
    response_model=DocumentPage,
    responses={
        200: {
            "content": {
                NDJSON: {
                    "schema": {"type": "string"},
                    "description": "one DocumentPublic per line, then one StreamEnd line",
                }
            }
        }
    },
)
async def get_documents(
    caller: Caller,
    feed: Annotated[Feed, Depends(feed)],
    cursor: Cursor = None,
    limit: Limit = catalog.DEFAULT_PAGE_SIZE,
    accept: Annotated[str | None, Header()] = None,
) -> DocumentPage | StreamingResponse:
    """Every model you can read as a document for a vector index, in change order.

    A model appears once, at its latest change (a card edit, a new version, a deployment status
    change, a share); one unshared from your team appears once more as a tombstone
    (``deleted: true``). Replaying from ``next_cursor`` keeps an index in sync; changes show up
    after a settle delay of a few seconds. With ``Accept: application/x-ndjson`` the whole feed
    from ``cursor`` streams as NDJSON (``limit`` ignored), ending with ``{"next_cursor": …}``.
    """
    after = decode_cursor(cursor) if cursor else ""
    if accept and any(part.split(";")[0].strip() == NDJSON for part in accept.split(",")):
        return StreamingResponse(_ndjson(feed, caller, after), media_type=NDJSON)
    page = await feed.page(caller, after=after, limit=limit)
    return DocumentPage(
        items=[DocumentPublic.model_validate(item) for item in page.items],
        next_cursor=_cursor_of(page),
        has_more=page.has_more,
    )
