"""Scraping a service's ``/metrics`` and reading samples out of it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.waiting import until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(base_url: str) -> tuple[Samples, set[str]]:
    """Every sample of the exposition, and every series name its families declare (with or without samples)."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{base_url}/metrics")
    response.raise_for_status()
    return parse(response.text)


def parse(exposition: str) -> tuple[Samples, set[str]]:
    """Samples and declared series names of a Prometheus text exposition."""
    samples: Samples = {}
    families: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        # The series names a query can use, whether or not the family has samples yet.
        families.update(family.name + suffix for suffix in _SERIES_SUFFIXES.get(family.type, ("",)))
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, families


_SERIES_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
}


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (sample, have), value in samples.items() if sample == name and wanted <= have)


def present(samples: Samples, name: str, **labels: str) -> bool:
    wanted = set(labels.items())
    return any(sample == name and wanted <= have for sample, have in samples)


async def eventually(base_url: str, check: Callable[[Samples], bool], *, timeout: float = 30) -> Samples:
    """Scrape until ``check`` holds and return that scrape; fail loudly after ``timeout`` s."""

    async def satisfied() -> Samples | None:
        samples, _ = await scrape(base_url)
        return samples if check(samples) else None

    # A scrape is a whole exposition: a few a second is plenty.
    return await until(satisfied, timeout=timeout, what=f"the check on the metrics of {base_url}", interval=0.25)
