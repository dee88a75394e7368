"""The query service's assistant routes: ranked search, model cards, and the RAG document feed."""

from __future__ import annotations

import json
from typing import Unpack

import httpx

from registry_client.config import ApiBase
from registry_client.errors import RegistryError
from registry_client.reads import CatalogFilters
from registry_client.steps import Call, Emit, Items, ReadLine, as_model, exchange, pages, path, query
from registry_client.surface import endpoint, iterator
from registry_contract.assistant_views import DocumentPage, DocumentPublic, SearchHitPublic, SearchPage, StreamEnd
from registry_contract.views import ModelCardPublic

NDJSON = "application/x-ndjson"
MARKDOWN = "text/markdown"


class SearchFilters(CatalogFilters, total=False):
    """Filters of a search, on top of the ``field:value`` terms the query itself may hold."""


def _search(q: str, limit: int | None, cursor: str | None, filters: SearchFilters) -> Call[SearchPage]:
    params = query(q=q, **filters, limit=limit, cursor=cursor)
    return Call("query", "GET", path("assistant", "search"), as_model(SearchPage), params)


def _documents(limit: int | None, cursor: str | None) -> Call[DocumentPage]:
    params = query(cursor=cursor, limit=limit)
    return Call("query", "GET", path("assistant", "documents"), as_model(DocumentPage), params)


class AssistantReads(ApiBase):
    """Search, model cards and the document feed (scope ``models:read``), for assistants and RAG indexes."""

    @endpoint
    def search_page(
        self, q: str = "", *, limit: int | None = None, cursor: str | None = None, **filters: Unpack[SearchFilters]
    ) -> Call[SearchPage]:
        """One page of ranked hits, with ``total`` and ``facets`` over every match you may read.

        ``q`` takes words, ``"quoted phrases"`` and ``field:value`` terms (``framework:xgboost``,
        ``tag:owner=alice``, ``status:deployed``); an empty ``q`` only filters (newest first).
        """
        return _search(q, limit, cursor, filters)

    @iterator
    def search(
        self, q: str = "", *, page_size: int | None = None, **filters: Unpack[SearchFilters]
    ) -> Items[SearchHitPublic]:
        """Every hit of a search, best first."""
        return pages(self.config.retry, lambda cursor: _search(q, page_size, cursor, filters))

    @endpoint
    def get_card(self, team: str, name: str, *, version: str | None = None) -> Call[ModelCardPublic]:
        """A model card as structured data plus its markdown (of ``version``, default the latest)."""
        route = path("assistant", "models", team, name, "card")
        return Call("query", "GET", route, as_model(ModelCardPublic), query(version=version))

    @endpoint
    def get_card_markdown(self, team: str, name: str, *, version: str | None = None) -> Call[str]:
        """A model card as markdown only."""
        route = path("assistant", "models", team, name, "card")
        return Call("query", "GET", route, _text, query(version=version), headers={"Accept": MARKDOWN})

    @endpoint
    def documents_page(self, *, cursor: str | None = None, limit: int | None = None) -> Call[DocumentPage]:
        """One page of the document feed after ``cursor``; keep ``next_cursor`` to resume later."""
        return _documents(limit, cursor)

    @iterator
    def documents(self, *, cursor: str | None = None, page_size: int | None = None) -> Items[DocumentPublic]:
        """Every document of the feed after ``cursor``, page after page, until it is caught up.

        A model that stopped being readable comes as a tombstone (``deleted``). To resume later,
        read pages (:meth:`documents_page`) or the stream (:meth:`stream_documents`), which say where.
        """
        while True:
            page = yield from exchange(self.config.retry, _documents(page_size, cursor))
            for document in page.items:
                yield Emit(document)
            if not page.has_more or page.next_cursor in (None, cursor):
                return
            cursor = page.next_cursor

    @iterator
    def stream_documents(self, *, cursor: str | None = None) -> Items[DocumentPublic | StreamEnd]:
        """The whole feed after ``cursor`` as one NDJSON stream: documents, then a :class:`StreamEnd`.

        The last item's ``next_cursor`` is where the next export resumes.
        """
        route, headers = path("assistant", "documents"), {"Accept": NDJSON}
        call = Call("query", "GET", route, _open, query(cursor=cursor), headers=headers, stream=True)
        response = yield from exchange(self.config.retry, call)
        while (line := (yield ReadLine(response))) is not None:
            if not line.strip():
                continue
            item = json.loads(line)
            if "id" in item:
                yield Emit(DocumentPublic.model_validate(item))
                continue
            yield Emit(StreamEnd.model_validate(item))
            return
        raise RegistryError("the document stream ended before its last line; read it again from the same cursor")


def _text(response: httpx.Response) -> str:
    return response.text


def _open(response: httpx.Response) -> httpx.Response:
    return response
