"""When to try a request again, and how long to wait first: exponential backoff with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

RETRIED_STATUSES = frozenset({429, 503})  # refused before any work was done: always safe to send again


@dataclass(frozen=True)
class RetryPolicy:
    """How often a request is tried and how long the client pauses between tries.

    Args:
        attempts: tries in all, the first included (1: never retry).
        backoff: the ceiling of the first pause in seconds; it doubles with every retry.
        max_delay: the longest pause; a ``Retry-After`` longer than this is not waited for (the
            :class:`~registry_client.errors.RateLimited` error carries it instead).

    """

    attempts: int = 4
    backoff: float = 0.25
    max_delay: float = 10.0

    def pause(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait after failed try number ``attempt`` (1-based), or ``None`` to give up.

        Full jitter (a random pause up to the exponential ceiling) keeps many clients that failed
        together from retrying together; a server's ``Retry-After`` is the least it waits.
        """
        if attempt >= self.attempts:
            return None
        ceiling = min(self.max_delay, self.backoff * 2 ** (attempt - 1))
        jitter = random.uniform(0, ceiling)
        if retry_after is None:
            return jitter
        if retry_after > self.max_delay:
            return None
        return min(self.max_delay, retry_after + jitter)


NO_RETRY = RetryPolicy(attempts=1)


def retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), or ``None``."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
