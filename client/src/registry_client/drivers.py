"""The two drivers of the operations' steps (:mod:`registry_client.steps`), over ``httpx.Client`` and ``AsyncClient``.

Neither knows any route: each only sends, sleeps, reads lines and hands items over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import httpx

from registry_client.config import CORRELATION_HEADER, ApiBase, ClientOptions
from registry_client.consistency import CONSISTENCY_HEADER
from registry_client.steps import Emit, Flow, Items, ReadLine, Send, Sleep, Step

R = TypeVar("R")
T = TypeVar("T")


class _Operation:
    """One operation in progress: its correlation id and the streamed responses it opened."""

    def __init__(self, correlation_id: str) -> None:
        self.correlation_id = correlation_id
        self.streams: list[httpx.Response] = []
        self.lines: dict[int, Any] = {}


def _request(client: ApiBase, http: httpx.Client | httpx.AsyncClient, step: Send, op: _Operation) -> httpx.Request:
    """The request of ``step``; a read of the query service carries the tokens of the writes it must see."""
    arguments = client.config.request(step.call, op.correlation_id)
    if step.call.service == "query" and CONSISTENCY_HEADER not in step.call.headers:
        tokens = client.consistency.header_for(step.call.path)
        if tokens:
            arguments["headers"][CONSISTENCY_HEADER] = tokens
    return http.build_request(**arguments)


def _answered(client: ApiBase, step: Send, response: httpx.Response, op: _Operation) -> None:
    """Note what an answer tells the client: its correlation id and, of a write, its consistency token."""
    client.last_correlation_id = response.headers.get(CORRELATION_HEADER, op.correlation_id)
    header = response.headers.get(CONSISTENCY_HEADER)
    if header and step.call.method != "GET" and response.is_success:
        kept = client.consistency.remember(header)
        if kept:
            client.last_consistency_token = ",".join(kept)


class SyncDriver(ApiBase):
    """Runs operations over ``httpx.Client``; a context manager that closes its connections."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._configure(api_key, options)
        self._http = httpx.Client(transport=transport, timeout=self.config.timeout)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _run(self, flow: Flow[R]) -> R:
        op = _Operation(self.config.operation_correlation())
        try:
            reply: Any = None
            while True:
                try:
                    step = flow.send(reply)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
                reply = self._perform(step, op)
        finally:
            self._end(flow, op)

    def _iterate(self, flow: Items[T]) -> Iterator[T]:
        op = _Operation(self.config.operation_correlation())
        try:
            reply: Any = None
            while True:
                try:
                    step = flow.send(reply)
                except StopIteration:
                    return
                if isinstance(step, Emit):
                    reply = None
                    yield step.item
                else:
                    reply = self._perform(step, op)
        finally:
            self._end(flow, op)

    def _perform(self, step: Step | Emit[Any], op: _Operation) -> Any:
        if isinstance(step, Sleep):
            self._sleep(step.seconds)
            return None
        if isinstance(step, ReadLine):
            lines: Iterator[str] = op.lines.setdefault(id(step.response), step.response.iter_lines())
            return next(lines, None)
        if not isinstance(step, Send):
            raise TypeError(f"an operation that returns one result emitted {step!r}")
        try:
            response = self._http.send(_request(self, self._http, step, op), stream=step.call.stream)
        except httpx.TransportError as failure:
            return failure
        if step.call.stream:
            op.streams.append(response)
            if not response.is_success:
                response.read()
        _answered(self, step, response, op)
        return response

    def _sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    @staticmethod
    def _end(flow: Any, op: _Operation) -> None:
        flow.close()
        for response in op.streams:
            response.close()


class AsyncDriver(ApiBase):
    """Runs operations over ``httpx.AsyncClient``; an async context manager that closes its connections."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._configure(api_key, options)
        self._http = httpx.AsyncClient(transport=transport, timeout=self.config.timeout)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    aclose = close

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _run(self, flow: Flow[R]) -> R:
        op = _Operation(self.config.operation_correlation())
        try:
            reply: Any = None
            while True:
                try:
                    step = flow.send(reply)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
                reply = await self._perform(step, op)
        finally:
            await self._end(flow, op)

    async def _iterate(self, flow: Items[T]) -> AsyncIterator[T]:
        op = _Operation(self.config.operation_correlation())
        try:
            reply: Any = None
            while True:
                try:
                    step = flow.send(reply)
                except StopIteration:
                    return
                if isinstance(step, Emit):
                    reply = None
                    yield step.item
                else:
                    reply = await self._perform(step, op)
        finally:
            await self._end(flow, op)

    async def _perform(self, step: Step | Emit[Any], op: _Operation) -> Any:
        if isinstance(step, Sleep):
            await self._sleep(step.seconds)
            return None
        if isinstance(step, ReadLine):
            lines: AsyncIterator[str] = op.lines.setdefault(id(step.response), step.response.aiter_lines())
            return await anext(lines, None)
        if not isinstance(step, Send):
            raise TypeError(f"an operation that returns one result emitted {step!r}")
        try:
            response = await self._http.send(_request(self, self._http, step, op), stream=step.call.stream)
        except httpx.TransportError as failure:
            return failure
        if step.call.stream:
            op.streams.append(response)
            if not response.is_success:
                await response.aread()
        _answered(self, step, response, op)
        return response

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    @staticmethod
    async def _end(flow: Any, op: _Operation) -> None:
        flow.close()
        for response in op.streams:
            await response.aclose()
