"""Per-key token buckets.

Limits are per process: with N replicas behind a load balancer a key may reach N times the
configured rate. That keeps the check free of I/O; a shared limit would need a shared store.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` tokens per second refill a bucket of ``burst``; each request takes one."""

    def __init__(
        self, *, rate: float, burst: int, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self._max, self._clock = rate, burst, max_keys, clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, limit: tuple[float, int] | None = None) -> float:
        """Take a token for ``key``: 0.0 when allowed, else the seconds until one is available.

        ``limit`` (per second, burst) overrides the defaults for keys that carry their own.
        """
        rate, burst = limit or (self.rate, self.burst)
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(burst), now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        self._buckets.move_to_end(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate
