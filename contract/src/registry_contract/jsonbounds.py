"""Bounds on free-form JSON that reaches MongoDB: depth, size, key shape, number range.

Free-form values (a model signature, event data) are checked here before anything stores
them, because the database refuses what JSON allows (NUL or ``$``-leading keys, integers
beyond 64 bits, nesting past its limit) and a refused write would otherwise fail a whole
batch, again on every redelivery. The walk is iterative, so no input can exhaust the stack.
"""

from __future__ import annotations

import math
import re
from typing import Any

MAX_STRING = 16_384
MAX_KEY = 256
INT64 = (-(2**63), 2**63 - 1)
# MongoDB refuses NUL in field names and treats "$…" and dotted names as operators and paths.
FIELD_NAME = re.compile(r"^[^\x00.$][^\x00.]*$")
FIELD_NAME_PATTERN = FIELD_NAME.pattern


class JsonBoundsError(ValueError):
    """The value breaks a bound; the message names the first offending path."""


def check_field_name(name: str) -> None:
    """Refuse a mapping key that MongoDB cannot store as a plain field name."""
    if not FIELD_NAME.match(name) or len(name) > MAX_KEY:
        raise JsonBoundsError(
            f"key {name[:40]!r} must be 1-{MAX_KEY} characters without NUL or '.', not starting with '$'"
        )


def check_document(value: Any, *, max_depth: int, max_nodes: int, max_string: int = MAX_STRING) -> None:
    """Walk ``value`` (parsed JSON) and raise :class:`JsonBoundsError` at the first value out of bounds."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "$")]
    nodes = 0
    while stack:
        item, depth, path = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise JsonBoundsError(f"more than {max_nodes} values")
        if depth > max_depth:
            raise JsonBoundsError(f"{path}: nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise JsonBoundsError(f"{path}: keys must be strings")
                check_field_name(key)
                stack.append((child, depth + 1, f"{path}.{key[:40]}"))
        elif isinstance(item, list):
            stack.extend((child, depth + 1, f"{path}[{index}]") for index, child in enumerate(item))
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT64[0] <= item <= INT64[1]:
                raise JsonBoundsError(f"{path}: integer out of the 64-bit range")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise JsonBoundsError(f"{path}: numbers must be finite")
        elif isinstance(item, str):
            if len(item) > max_string:
                raise JsonBoundsError(f"{path}: string longer than {max_string} characters")
        else:
            raise JsonBoundsError(f"{path}: {type(item).__name__} is not a JSON value")


def depth_of(value: Any, *, limit: int) -> int:
    """Nesting depth of ``value``, counting no further than ``limit + 1`` (iterative)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest
