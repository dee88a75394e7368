"""Opaque keyset cursors: stable under concurrent inserts, unlike skip/offset paging."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.problems import Problem


@dataclass(frozen=True)
class SortSpec:
    """A sort on one field, with ``_id`` as the tie-breaker in the same direction."""

    field: str
    descending: bool

    @classmethod
    def parse(cls, text: str, allowed: tuple[str, ...]) -> SortSpec:
        """Parse ``field`` or ``-field``; only ``allowed`` fields are accepted."""
        field = text.lstrip("-")
        if field not in allowed:
            raise Problem(
                422,
                "Invalid sort",
                f"sort must be one of {', '.join(allowed)} (prefix '-' for descending)",
                type_="urn:registry:problem:invalid",
            )
        return cls(field, text.startswith("-"))

    @property
    def token(self) -> str:
        """The sort as written in a query string."""
        return ("-" if self.descending else "") + self.field

    def mongo_sort(self) -> list[tuple[str, int]]:
        """The MongoDB sort document."""
        direction = -1 if self.descending else 1
        return [(self.field, direction), ("_id", direction)]

    def after(self, value: Any, last_id: Any) -> dict[str, Any]:
        """Condition for the rows after (``value``, ``last_id``) in this order."""
        op = "$lt" if self.descending else "$gt"
        return {"$or": [{self.field: {op: value}}, {self.field: value, "_id": {op: last_id}}]}


def encode_cursor(sort: SortSpec, value: Any, last_id: Any, scope: str) -> str:
    """Pack the position after the last row of a page."""
    if isinstance(value, datetime):
        value = {"$dt": value.isoformat()}
    raw = json.dumps({"s": sort.token, "v": value, "i": last_id, "q": scope}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: SortSpec, scope: str) -> tuple[Any, Any]:
    """Unpack a cursor; it must come from the same query (same filters and sort)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if raw["s"] != sort.token or raw["q"] != scope:
            raise ValueError("cursor belongs to another query")
        value = raw["v"]
        if isinstance(value, dict) and "$dt" in value:
            value = datetime.fromisoformat(value["$dt"])
        return value, raw["i"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Problem(
            422,
            "Invalid cursor",
            f"cursor is not valid for this query: {exc}",
            type_="urn:registry:problem:invalid-cursor",
        ) from None
