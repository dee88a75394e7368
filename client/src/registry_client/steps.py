"""Requests as data, and the client's logic as generators of steps (sans-I/O).

Every operation of the API is written once, as a generator that yields what it needs done —
:class:`Send` a :class:`Call`, :class:`Sleep`, :class:`ReadLine` of a streamed answer, or
:class:`Emit` an item to the caller — and receives the result back. The sync and the async client
are two small drivers of the same generators (:mod:`registry_client.drivers`): retries, paging,
polling and response parsing exist once, and tests can step through them without a clock or a socket.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from registry_client.errors import problem_error
from registry_client.retry import RETRIED_STATUSES, RetryPolicy, retry_after

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
R = TypeVar("R")
Item = TypeVar("Item", covariant=True)
M = TypeVar("M", bound=BaseModel)

Service = Literal["registration", "query", "deploy-tracker", "audit"]
SERVICES: tuple[Service, ...] = ("registration", "query", "deploy-tracker", "audit")
IDEMPOTENCY_KEY = "Idempotency-Key"
# Methods whose repetition changes nothing more (RFC 9110 §9.2.2): safe to resend after a lost answer.
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# Failures before a byte of the request left: any request may be sent again after these.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Call(Generic[T_co]):
    """One HTTP request of the API and how to read its successful answer."""

    service: Service
    method: str
    path: str
    parse: Callable[[httpx.Response], T_co]
    params: list[tuple[str, str]] = field(default_factory=list)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    stream: bool = False
    timeout: float | None = None  # seconds, instead of the client's (a request that asks the server to wait)

    @property
    def replayable(self) -> bool:
        """Whether sending it again after a lost answer is safe: idempotent, or carrying an ``Idempotency-Key``."""
        return self.method in _IDEMPOTENT_METHODS or IDEMPOTENCY_KEY in self.headers


@dataclass(frozen=True)
class Send:
    """Send ``call``; the driver answers with the ``httpx.Response`` or the ``httpx.TransportError``."""

    call: Call[Any]


@dataclass(frozen=True)
class Sleep:
    """Pause before the next step."""

    seconds: float


@dataclass(frozen=True)
class ReadLine:
    """The next line of a streamed response (``None`` at its end)."""

    response: httpx.Response


@dataclass(frozen=True)
class Emit(Generic[Item]):
    """Hand ``item`` to the caller of an iterating operation."""

    item: Item


Step: TypeAlias = Send | Sleep | ReadLine
Flow: TypeAlias = Generator[Step, Any, R]
Items: TypeAlias = Generator[Step | Emit[T], Any, None]


def exchange(policy: RetryPolicy, call: Call[T]) -> Flow[T]:
    """Send ``call`` until it succeeds or may not be retried; return the parsed answer or raise its problem.

    Retried: 429 (after at least its ``Retry-After``) and 503, which the services answer before
    doing anything; connection failures before the request left; and any connection failure of a
    request that is safe to resend (:attr:`Call.replayable`). Every try sends the same headers, so
    a write's ``Idempotency-Key`` is the same on each and the registry applies it once.
    """
    attempt = 0
    while True:
        attempt += 1
        reply = yield Send(call)
        if isinstance(reply, httpx.TransportError):
            pause = policy.pause(attempt) if call.replayable or isinstance(reply, _NOT_SENT) else None
            if pause is None:
                raise reply
        elif reply.status_code in RETRIED_STATUSES:
            pause = policy.pause(attempt, retry_after(reply))
            if pause is None:
                raise problem_error(reply)
        elif reply.is_success:
            return call.parse(reply)
        else:
            raise problem_error(reply)
        yield Sleep(pause)


class Paged(Protocol[Item]):
    """A page of a list: its items and the cursor that continues it."""

    @property
    def items(self) -> Sequence[Item]: ...

    @property
    def next_cursor(self) -> str | None: ...


def pages(
    policy: RetryPolicy, page_call: Callable[[str | None], Call[Paged[T]]], cursor: str | None = None
) -> Items[T]:
    """Emit every item of a list, page after page, as long as a page has a ``next_cursor``."""
    while True:
        page = yield from exchange(policy, page_call(cursor))
        for item in page.items:
            yield Emit(item)
        stalled = not page.items and page.next_cursor == cursor  # no progress: never loop for ever
        if page.next_cursor is None or stalled:
            return
        cursor = page.next_cursor


# --- building calls --------------------------------------------------------------------------


def as_model(model: type[M]) -> Callable[[httpx.Response], M]:
    """A parser of answers whose body is ``model`` as JSON."""
    return lambda response: model.model_validate_json(response.content)


def no_content(response: httpx.Response) -> None:
    """The parser of answers without a body (204)."""
    return None


def segment(value: str) -> str:
    """``value`` as one path segment (``@`` of aliases kept, ``/`` and the rest escaped)."""
    return quote(value, safe="@")


def path(*parts: str) -> str:
    """A path under ``/v1`` from its segments, each escaped."""
    return "/v1/" + "/".join(segment(part) for part in parts)


_QUERY_NAMES = {"tags": "tag", "version_range": "range"}


def query(**values: Any) -> list[tuple[str, str]]:
    """Query parameters: ``None`` left out, booleans as ``true``/``false``, times as ISO 8601, tags repeated."""
    params: list[tuple[str, str]] = []
    for name, value in values.items():
        key = _QUERY_NAMES.get(name, name)
        if value is None:
            continue
        if name == "tags":
            pairs = value.items() if isinstance(value, Mapping) else (tuple(str(v).split(":", 1)) for v in value)
            params += [(key, f"{k}:{v}") for k, v in pairs]
        elif isinstance(value, bool):
            params.append((key, "true" if value else "false"))
        elif isinstance(value, datetime):
            params.append((key, value.isoformat()))
        else:
            params.append((key, str(value)))
    return params


def body(**fields: Any) -> dict[str, Any]:
    """A JSON body of the fields given (``None`` left out, pydantic models as their JSON)."""
    return {name: jsonable(value) for name, value in fields.items() if value is not None}


def jsonable(value: Any) -> Any:
    """``value`` with pydantic models (also inside lists and mappings) turned into JSON-ready data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def idempotency(key: str | None) -> dict[str, str]:
    """The ``Idempotency-Key`` header of one logical write: ``key``, or a fresh one made once for all its tries."""
    return {IDEMPOTENCY_KEY: key or uuid.uuid4().hex}
