"""Opaque keyset cursors: stable under concurrent inserts, unlike skip/offset paging.

Lists sort on unique keys (see :mod:`registry_contract.sortkeys`), so the cursor is the last key seen
and the next page starts right after it (:mod:`query.api.ordering`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from shared.chassis.problems import Problem


@dataclass(frozen=True)
class SortSpec:
    """A sort on a unique key field."""

    name: str
    key_field: str
    descending: bool

    @classmethod
    def parse(cls, text: str, allowed: dict[str, str]) -> SortSpec:
        """Parse ``name`` or ``-name``; ``allowed`` maps sort names to their key fields."""
        name = text.lstrip("-")
        if name not in allowed:
            raise Problem("invalid", f"sort must be one of {', '.join(allowed)} (prefix '-' for descending)")
        return cls(name, allowed[name], text.startswith("-"))

    @property
    def token(self) -> str:
        """The sort as written in a query string."""
        return ("-" if self.descending else "") + self.name


def pack(position: dict[str, Any]) -> str:
    """An opaque cursor holding ``position`` (compact JSON, URL-safe base64 without padding)."""
    raw = json.dumps(position, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def unpack(cursor: str) -> dict[str, Any]:
    """The position a cursor of :func:`pack` holds; raises ``ValueError`` (or Key/TypeError) if it is not one."""
    raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    if not isinstance(raw, dict):
        raise ValueError("it is not a cursor")
    return raw


def encode_cursor(sort: SortSpec, last_key: Any, scope: str) -> str:
    """Pack the position after the last row of a page."""
    return pack({"s": sort.token, "k": last_key, "q": scope})


def decode_cursor(cursor: str, sort: SortSpec, scope: str) -> Any:
    """Unpack a cursor; it must come from the same query (same filters and sort)."""
    try:
        raw = unpack(cursor)
        if raw["s"] != sort.token or raw["q"] != scope:
            raise ValueError("it belongs to another query")
        return raw["k"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Problem("invalid", f"cursor is not valid for this query: {exc}") from None
