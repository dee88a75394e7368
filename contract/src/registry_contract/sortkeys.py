"""Unique, byte-sortable keys for keyset pagination.

Each key is the sort value followed by the document id, so one single-field range condition
(``key < last``) continues a page: no ``$or`` tie-break, which both real MongoDB and the
stand-in serve from one index range scan.
"""

from __future__ import annotations

from datetime import UTC, datetime

_SEPARATOR = " "  # sorts before every slug character, so "ab" < "abc"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
_TIME_LENGTH = len("2026-01-01T00:00:00.000000")


def time_key(moment: datetime, doc_id: str) -> str:
    """Fixed-width UTC timestamp then id."""
    return moment.astimezone(UTC).strftime(_TIME_FORMAT) + _SEPARATOR + doc_id


def time_of_key(key: str) -> datetime | None:
    """The instant a :func:`time_key` (or a cursor, which is one) starts with; ``None`` for anything else."""
    try:
        return datetime.strptime(key[:_TIME_LENGTH], _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def text_key(text: str, doc_id: str) -> str:
    """Text then id."""
    return text + _SEPARATOR + doc_id
