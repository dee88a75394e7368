"""Which MLflow models ``--models`` chooses, and what each of its patterns matched.

A pattern is a shell glob (``*``, ``?``, ``[abc]``) compared without regard to case with a model's
MLflow name and with the registry name it becomes: ``card-*`` chooses ``Card Fraud XGB``
(``card-fraud-xgb``). MLflow's own ``LIKE`` filter is case-sensitive and knows only the MLflow
name, so the choice is made here, over the names the listing found.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from registry_client.cli.mlflow_import.naming import slugify


@dataclass(frozen=True)
class Selection:
    """The patterns of one import; none chooses every model."""

    patterns: tuple[str, ...] = ()

    def chooses(self, name: str) -> bool:
        """Whether the MLflow model ``name`` is imported."""
        return not self.patterns or any(matches(pattern, name) for pattern in self.patterns)

    def matched(self, names: Iterable[str]) -> dict[str, list[str]]:
        """Per pattern, in the order given, the MLflow names it matched (in ``names``' order)."""
        listed = list(names)
        return {pattern: [name for name in listed if matches(pattern, name)] for pattern in self.patterns}


def matches(pattern: str, name: str) -> bool:
    """Whether ``pattern`` matches the MLflow name ``name`` or its slug, case aside."""
    wanted = pattern.casefold()
    slug = slugify(name)
    return fnmatchcase(name.casefold(), wanted) or (slug is not None and fnmatchcase(slug, wanted))
