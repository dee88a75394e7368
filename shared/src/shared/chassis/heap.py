"""Keeping the garbage collector's full collections short in a service that holds a large heap.

CPython's full (generation 2) collection walks every container object that survived earlier
collections. A service that keeps its data in memory (the query's read model: tens of objects per
version) makes each full collection, and so the request that triggers it, longer as the data
grows: under a steady stream of registrations the reads' p99 grew minute by minute. Objects that
have survived a collection are moved to the permanent generation (``gc.freeze``), which
collections skip, so a full collection only walks what was allocated since. An object frozen and
later dropped is still freed by reference counting; only one left in a reference cycle after it
was frozen is kept, so the permanent generation is collected too, rarely.

Memory freed inside the process is not given back to the system by itself: glibc's allocator keeps
the pages of a freed region that is not at the top of its heap, and the search index's writers
(native code, tens of MB each while a round is written) and the projection's transient objects
leave such regions behind. Each round also asks glibc to return them (``malloc_trim``, in a
worker thread, which the call lets run without the GIL); on another C library it is skipped.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


def _glibc_trim() -> Callable[[], object] | None:
    """The C library's ``malloc_trim(0)`` (glibc), or ``None`` where it has none (musl, macOS)."""
    # The process's own symbols, libc's among them: find_library would run ldconfig at import.
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    return (lambda: trim(0)) if trim is not None else None


RETURN_FREE_MEMORY = _glibc_trim()


async def return_free_memory(every_seconds: float) -> None:
    """Every ``every_seconds``, give the pages freed inside the process back to the system (glibc only)."""
    while RETURN_FREE_MEMORY is not None:
        await asyncio.sleep(every_seconds)
        await asyncio.to_thread(RETURN_FREE_MEMORY)


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
        # Not gc.get_freeze_count(): it walks the permanent generation's list, millions of objects
        # in a large read model (40-55 ms for 3 million, measured), on the event loop, each round.
        log.debug("heap frozen", seconds=round(time.perf_counter() - started, 3))
        if RETURN_FREE_MEMORY is not None:
            await asyncio.to_thread(RETURN_FREE_MEMORY)
