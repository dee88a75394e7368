"""Summary statistics the benchmarks print, written once so every table means the same thing."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], percent: float) -> float:
    """The ``percent``-th percentile (0..100) of ``values`` by nearest rank, one of the samples itself.

    Raises:
        ValueError: ``values`` is empty or ``percent`` is outside 0..100.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= percent <= 100:
        raise ValueError(f"percent {percent} is outside 0..100")
    ordered = sorted(values)
    return ordered[round(percent / 100 * (len(ordered) - 1))]
