"""Reading an owner's event log over HTTP (``GET /internal/v1/events``): bootstrap, catch-up and rebuild.

Registration and the deploy-tracker each serve the events their relay published on
``registry.events``, ordered by position, in pages; the projection applies them exactly as if
they had come from the topic.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import ValidationError

from registry_contract.envelope import CloudEvent
from shared.chassis.verifiers import INTERNAL_TOKEN_HEADER

EVENTS_PATH = "/internal/v1/events"
PAGE = 1_000  # events per request, the most an owner serves


class OwnerUnavailable(ConnectionError):
    """The owner could not be reached, or answered with an error: try again later."""


class OwnerLog:
    """One owner's event log (``source`` is ``r`` for registration, ``d`` for the deploy-tracker)."""

    def __init__(
        self,
        source: str,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        ca_file: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.source, self._base_url, self._token, self._timeout = source, base_url.rstrip("/"), token, timeout
        self._verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self._transport = transport

    def __repr__(self) -> str:
        return f"OwnerLog({self.source!r}, {self._base_url!r})"

    async def pages(self, after: int) -> AsyncIterator[list[CloudEvent]]:
        """The owner's events after position ``after``, a page at a time, until its end."""
        async with httpx.AsyncClient(
            base_url=self._base_url, timeout=self._timeout, verify=self._verify, transport=self._transport
        ) as client:
            cursor: int | None = after
            while cursor is not None:
                body = await self._page(client, cursor)
                items = body.get("items") or []
                events = [_event(item) for item in items]
                if events:
                    yield events
                following = body.get("next_after")
                cursor = int(following) if following is not None and items and int(following) > cursor else None

    async def _page(self, client: httpx.AsyncClient, after: int) -> dict[str, Any]:
        try:
            answer = await client.get(
                EVENTS_PATH, params={"after": after, "limit": PAGE}, headers={INTERNAL_TOKEN_HEADER: self._token}
            )
        except httpx.TransportError as exc:
            raise OwnerUnavailable(f"{self._base_url} unreachable: {type(exc).__name__}") from exc
        if answer.status_code != 200:
            raise OwnerUnavailable(f"{self._base_url}{EVENTS_PATH} answered {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            raise OwnerUnavailable(f"{self._base_url}{EVENTS_PATH} answered something other than JSON") from None
        if not isinstance(body, dict):
            raise OwnerUnavailable(f"{self._base_url}{EVENTS_PATH} answered something other than a page")
        return body


def _event(item: Any) -> CloudEvent:
    """One served event as a CloudEvent (``revision`` is its position at the owner)."""
    try:
        return CloudEvent.model_validate(item)
    except ValidationError as exc:
        raise OwnerUnavailable(f"an owner served an event that does not parse: {exc.error_count()} errors") from None
