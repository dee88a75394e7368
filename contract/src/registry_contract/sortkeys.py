"""Unique, byte-sortable keys for keyset pagination.

Each key is the sort value followed by the document id, so one single-field range condition
(``key < last``) continues a page: no ``$or`` tie-break, which both real MongoDB and the
stand-in serve from one index range scan.
"""

from __future__ import annotations

from datetime import UTC, datetime

_SEPARATOR = " "  # sorts before every slug character, so "ab" < "abc"


def time_key(moment: datetime, doc_id: str) -> str:
    """Fixed-width UTC timestamp then id."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + _SEPARATOR + doc_id


def text_key(text: str, doc_id: str) -> str:
    """Text then id."""
    return text + _SEPARATOR + doc_id
