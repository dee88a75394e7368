"""Read-your-writes: the consistency tokens of a client's own writes, sent back on its reads.

Every write answers with ``X-Registry-Consistency: <token>``, the model's revision at its owner
after the write: ``r.<model_id>.<revision>`` from registration, ``d.<model_id>.<revision>`` from
the deploy-tracker (and a Kafka outcome event carries the same as ``ce_revision``). A read of the
query service that sends tokens back waits, bounded, until that replica's projection has applied
them, so it sees those writes (or answers 503 when it could not catch up in time).

:class:`ConsistencyTokens` keeps the newest token per (owner, model), bounded; the clients send
a model's tokens on every read of that model and the most recent few on lists and searches.
:func:`consistent` adds tokens another process handed over.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import unquote

from registry_contract.ids import model_id

CONSISTENCY_HEADER = "X-Registry-Consistency"
CONSISTENCY_ENV = "REGISTRY_CONSISTENCY"
DEFAULT_CAPACITY = 1024  # models whose newest token is kept
MAX_SENT = 8  # the query service takes at most 8 tokens a read
_TOKEN = re.compile(r"([rd])\.(mdl_[0-9a-f]{24})\.([0-9]{1,20})")
_MODEL_ROUTE = re.compile(r"/v1/(?:assistant/)?models/([^/]+)/([^/]+)(?:/.*)?")
_MODEL_ID_ROUTE = re.compile(r"/v1/models/id/(mdl_[0-9a-f]{24})")

Key = tuple[str, str]  # (owner "r" or "d", model id)

_handed_over: ContextVar[tuple[str, ...]] = ContextVar("registry_client_consistency", default=())


def parse_token(text: str) -> tuple[Key, int] | None:
    """``((owner, model_id), revision)`` of one token, or ``None`` when it is not one."""
    match = _TOKEN.fullmatch(text.strip())
    if match is None:
        return None
    return (match[1], match[2]), int(match[3])


def parsed_tokens(header: str) -> list[tuple[Key, int]]:
    """The well-formed tokens of a comma-separated header value, parsed; anything else is left out."""
    return [parsed for parsed in map(parse_token, header.split(",")) if parsed is not None]


def split_tokens(header: str) -> list[str]:
    """The well-formed tokens of a comma-separated header value; anything else is left out."""
    return [f"{owner}.{model}.{revision}" for (owner, model), revision in parsed_tokens(header)]


def token_of(owner: str, model: str, revision: int) -> str:
    """The token of ``revision`` of ``model`` at ``owner`` (``r``: registration, ``d``: the deploy-tracker)."""
    token = f"{owner}.{model}.{revision}"
    if parse_token(token) is None:
        raise ValueError(f"not a consistency token: {token!r}")
    return token


def model_of_route(route: str) -> str | None:
    """The model id a read's path is about (``/v1/models/<team>/<name>…``, its card, ``/v1/models/id/<id>``)."""
    by_id = _MODEL_ID_ROUTE.fullmatch(route)
    if by_id is not None:
        return by_id[1]
    by_name = _MODEL_ROUTE.fullmatch(route)
    if by_name is None:
        return None
    return model_id(unquote(by_name[1]), unquote(by_name[2]))


@contextmanager
def consistent(*tokens: str) -> Iterator[tuple[str, ...]]:
    """Send ``tokens`` (each may be comma-separated) on every query read made inside the block.

    For tokens another process handed over (a CI job that registered, a later job that reads);
    this thread or task only. A malformed token raises ``ValueError`` here rather than a 400 later.
    """
    chosen: list[str] = []
    for value in tokens:
        for part in value.split(","):
            if parse_token(part) is None:
                raise ValueError(f"not a consistency token: {part.strip()!r}")
            chosen.append(part.strip())
    reset = _handed_over.set(_handed_over.get() + tuple(chosen))
    try:
        yield tuple(chosen)
    finally:
        _handed_over.reset(reset)


class ConsistencyTokens:
    """The newest revision of each model this client wrote, per owner; the oldest forgotten past ``capacity``.

    Safe to share between threads and between an HTTP client and a Kafka producer.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, *, pinned: Iterable[str] = ()) -> None:
        self.capacity = capacity
        self._newest: OrderedDict[Key, int] = OrderedDict()  # least recently written first
        self._lock = threading.Lock()
        self.pinned = tuple(split_tokens(",".join(pinned)))  # sent on every read (``REGISTRY_CONSISTENCY``)

    @classmethod
    def from_environment(cls, capacity: int = DEFAULT_CAPACITY) -> ConsistencyTokens:
        """A store that also sends the tokens of ``REGISTRY_CONSISTENCY`` on every read."""
        return cls(capacity, pinned=[os.environ.get(CONSISTENCY_ENV, "")])

    def __len__(self) -> int:
        return len(self._newest)

    def remember(self, header: str) -> list[str]:
        """Keep the tokens of a write's answer (malformed ones are ignored); return those kept."""
        found = parsed_tokens(header)
        with self._lock:
            for key, revision in found:
                self._newest[key] = max(revision, self._newest.get(key, revision))
                self._newest.move_to_end(key)
            while len(self._newest) > self.capacity:
                self._newest.popitem(last=False)
        return [f"{owner}.{model}.{revision}" for (owner, model), revision in found]

    def of_model(self, model: str) -> list[str]:
        """The tokens remembered for ``model`` (one per owner that answered a write of it)."""
        with self._lock:
            found = [(owner, self._newest.get((owner, model))) for owner in "rd"]
        return [f"{owner}.{model}.{revision}" for owner, revision in found if revision is not None]

    def recent(self, limit: int = MAX_SENT) -> list[str]:
        """The tokens of the ``limit`` most recent writes, newest first."""
        with self._lock:
            keys = list(self._newest)[-limit:] if limit > 0 else []
            return [f"{owner}.{model}.{self._newest[(owner, model)]}" for owner, model in reversed(keys)]

    def header_for(self, route: str) -> str | None:
        """What a query read of ``route`` sends: handed-over tokens, then the model's own (or the recent ones).

        At most :data:`MAX_SENT`; ``None`` when there is nothing to wait for.
        """
        model = model_of_route(route)
        own = self.of_model(model) if model is not None else self.recent()
        chosen = list(dict.fromkeys([*_handed_over.get(), *self.pinned, *own]))[:MAX_SENT]
        return ",".join(chosen) or None
