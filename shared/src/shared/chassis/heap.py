"""Keeping the garbage collector's full collections short in a service that holds a large heap.

CPython's full (generation 2) collection walks every container object that survived earlier
collections. A service that keeps its data in memory (the query's read model: tens of objects per
version) makes each full collection, and so the request that triggers it, longer as the data
grows: under a steady stream of registrations the reads' p99 grew minute by minute. Objects that
have survived a collection are moved to the permanent generation (``gc.freeze``), which
collections skip, so a full collection only walks what was allocated since. An object frozen and
later dropped is still freed by reference counting; only one left in a reference cycle after it
was frozen is kept, so the permanent generation is collected too, rarely.
"""

from __future__ import annotations

import asyncio
import gc
import time

import structlog

log = structlog.get_logger(__name__)


async def freeze_survivors(every_seconds: float, *, full_every_seconds: float) -> None:
    """Every ``every_seconds``, collect and freeze what survived; every ``full_every_seconds``, everything."""
    last_full = time.monotonic()
    while True:
        await asyncio.sleep(every_seconds)
        if time.monotonic() - last_full >= full_every_seconds:
            gc.unfreeze()  # a collection of everything: cycles dropped since they were frozen
            last_full = time.monotonic()
        started = time.perf_counter()
        gc.collect()
        gc.freeze()
        log.debug("heap frozen", seconds=round(time.perf_counter() - started, 3), frozen=gc.get_freeze_count())
