"""What the model page shows, computed from API answers: environments, metric comparisons, timelines."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

# Metrics where less is better (by a word in their name); for every other metric more is better.
LOWER_IS_BETTER = ("loss", "error", "latency", "rmse", "mae", "mse", "mape", "perplexity", "time", "size")
# Environments in promotion order first; any other after them, by name.
ENVIRONMENT_ORDER = ("dev", "development", "test", "qa", "staging", "canary", "preprod", "prod", "production")

Json = dict[str, Any]


def environment_key(name: str) -> tuple[int, str]:
    """Sort key of an environment: promotion order, then name."""
    return (ENVIRONMENT_ORDER.index(name) if name in ENVIRONMENT_ORDER else len(ENVIRONMENT_ORDER), name)


def environments_of(versions: list[Json]) -> list[str]:
    """Every environment any of ``versions`` was reported in, in promotion order."""
    names = {name for version in versions for name in (version.get("environments") or {})}
    return sorted(names, key=environment_key)


@dataclass(frozen=True)
class MetricRow:
    """One metric of a version beside the same metric of the version before it."""

    name: str
    value: float | None
    previous: float | None

    @property
    def change(self) -> float | None:
        """The value minus the previous version's value, when both versions have the metric."""
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``""`` (unchanged, or not comparable), by the metric's direction."""
        change = self.change
        if not change:
            return ""
        lower_is_better = any(word in self.name.lower() for word in LOWER_IS_BETTER)
        return "better" if (change < 0) == lower_is_better else "worse"


def compare_metrics(version: Json, previous: Json | None) -> list[MetricRow]:
    """The metrics of ``version`` and of ``previous`` (the next lower SemVer version), by name."""
    mine: Json = version.get("metrics") or {}
    theirs: Json = (previous or {}).get("metrics") or {}
    return [MetricRow(name, mine.get(name), theirs.get(name)) for name in sorted(set(mine) | set(theirs))]


def previous_of(versions: list[Json], selected: Json) -> Json | None:
    """The version just below ``selected`` by SemVer precedence (``versions`` is newest first)."""
    for index, version in enumerate(versions):
        if version["version"] == selected["version"]:
            return versions[index + 1] if index + 1 < len(versions) else None
    return None


def timelines(reports: list[Json]) -> list[tuple[str, list[Json]]]:
    """Deployment reports per environment (promotion order), each newest first as the API gave them."""
    by_environment: dict[str, list[Json]] = defaultdict(list)
    for report in reports:
        by_environment[str(report.get("environment"))].append(report)
    return [(name, by_environment[name]) for name in sorted(by_environment, key=environment_key)]


def facet_links(facets: Json, chosen: dict[str, str]) -> list[tuple[str, list[tuple[str, int, bool]]]]:
    """Each facet's values with their counts, and whether the value is the current filter."""
    shown = ("framework", "status", "team", "environment")
    return [
        (name, [(value, count, chosen.get(name) == value) for value, count in (facets.get(name) or {}).items()])
        for name in shown
        if facets.get(name)
    ]
