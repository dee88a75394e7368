"""Correlation id carried through HTTP requests, Kafka messages and log lines."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import TypeGuard

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def new_id() -> str:
    """Make a fresh, globally unique identifier."""
    return uuid.uuid4().hex


def current() -> str | None:
    """The correlation id of the operation being handled, if any."""
    return _correlation_id.get()


_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def acceptable(correlation_id: object) -> TypeGuard[str]:
    """Whether a correlation id given by a caller is a short token that may be kept and logged."""
    return isinstance(correlation_id, str) and _ACCEPTABLE.match(correlation_id) is not None


def bind(correlation_id: str | None) -> str:
    """Make ``correlation_id`` (or a new one) current for this task (log lines carry it: shared.chassis.logs).

    A value that is not a short token is replaced, so callers cannot inject text into logs.
    """
    value = correlation_id if acceptable(correlation_id) else new_id()
    _correlation_id.set(value)
    return value
