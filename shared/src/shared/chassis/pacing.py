"""Pacing of writes that may lag behind what they record: a position stored at most every so often."""

from __future__ import annotations

import time


class AtMostEvery:
    """Says whether something done often is due again: at most once every ``seconds``, the first time at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: float | None = None

    def due(self) -> bool:
        """Whether ``seconds`` have passed since it was last due (and, if so, it is due now)."""
        now = time.monotonic()
        if self._last is not None and now - self._last < self.seconds:
            return False
        self._last = now
        return True
