"""The search query language, parsed into a plain value (no engine here).

    fraud detecton "card transactions" framework:xgboost tag:owner=alice status:deployed env:prod

Free words are ranked (typos forgiven in longer ones; the last one, while still being typed, also
matches as a prefix); ``"quoted phrases"`` must appear as written; ``field:value`` terms filter.
Every input string parses to a :class:`ParsedQuery` or an :class:`InvalidQuery` saying what to
fix: this function never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry_contract import catalog

MAX_QUERY_CHARS = 512
MAX_TERMS = 32

# Query field name → index field; tags and names are special (pairs, prefixes).
FIELD_NAMES: dict[str, str] = {
    "framework": "framework",
    "team": "team",
    "status": "status",
    "env": "environment",
    "environment": "environment",
    "target": "deployment_target",
    "deployment_target": "deployment_target",
    "lifecycle": "lifecycle",
    "tag": "tag",
    "name": "name",
}
KNOWN_VALUES: dict[str, tuple[str, ...]] = {
    "framework": catalog.FRAMEWORKS,
    "status": catalog.DEPLOYMENT_STATUSES,
    "deployment_target": catalog.DEPLOYMENT_TARGETS,
    "lifecycle": catalog.LIFECYCLE_STATES,
}
_TOKEN = re.compile(
    r'(?P<field>[A-Za-z_]+):(?:"(?P<quoted>[^"]*)"?|(?P<value>[^\s"]+))'
    r'|"(?P<phrase>[^"]*)"?'
    r'|(?P<word>[^\s"]+)'
)
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class FieldTerm:
    """A ``field:value`` filter; ``field`` is an index field name, ``value`` as typed (tags) or lowercased."""

    field: str
    value: str


@dataclass(frozen=True)
class ParsedQuery:
    """What a query asks for: free words, phrases (each a tuple of words) and field filters."""

    words: tuple[str, ...] = ()
    phrases: tuple[tuple[str, ...], ...] = ()
    fields: tuple[FieldTerm, ...] = ()
    prefix: bool = False  # the last free word is still being typed: match it as a prefix too

    @property
    def ranked(self) -> bool:
        """Whether the query has words or phrases to rank by (otherwise it only filters)."""
        return bool(self.words or self.phrases)


@dataclass(frozen=True)
class InvalidQuery:
    """A query the language cannot express, with a message that says what to change."""

    message: str


def parse_query(text: str) -> ParsedQuery | InvalidQuery:
    """Parse ``text``; an :class:`InvalidQuery` names the first problem found."""
    if len(text) > MAX_QUERY_CHARS:
        return InvalidQuery(f"the query is {len(text)} characters long; at most {MAX_QUERY_CHARS} are allowed")
    words: list[str] = []
    phrases: list[tuple[str, ...]] = []
    fields: list[FieldTerm] = []
    last_is_word = False  # a word ends the text: the user is still typing it
    for match in _TOKEN.finditer(text):
        if match["field"] is not None:
            term = field_term(match["field"], match["quoted"] if match["quoted"] is not None else match["value"])
            if isinstance(term, InvalidQuery):
                return term
            fields.append(term)
        elif match["phrase"] is not None:
            phrases.append(tuple(_WORD.findall(match["phrase"])))
        else:
            found = _WORD.findall(match["word"])
            words.extend(found)
            last_is_word = bool(found) and match.end() == len(text)
    count = len(words) + sum(len(p) for p in phrases) + len(fields)
    if count > MAX_TERMS:
        return InvalidQuery(f"the query has {count} terms; at most {MAX_TERMS} are allowed")
    return ParsedQuery(tuple(words), tuple(p for p in phrases if p), tuple(fields), prefix=last_is_word)


def field_term(name: str, value: str) -> FieldTerm | InvalidQuery:
    """The filter ``name:value``, or why it is not one."""
    field = FIELD_NAMES.get(name.lower())
    if field is None:
        return InvalidQuery(f"unknown field {name!r}; use one of: {', '.join(sorted(FIELD_NAMES))}")
    value = value.strip()
    if not value:
        return InvalidQuery(f"{name}: needs a value, e.g. {name}:{_example(field)}")
    if field == "tag":
        return _tag_term(value)
    value = value.lower()
    known = KNOWN_VALUES.get(field)
    if known is not None and value not in known:
        return InvalidQuery(f"{value!r} is not a known {name}; use one of: {', '.join(known)}")
    return FieldTerm(field, value)


def _tag_term(value: str) -> FieldTerm:
    """``tag:key=value`` (or ``key:value``, like the list filter) matches a pair; ``tag:key`` a key."""
    separator = "=" if "=" in value else ":"
    key, found, tag_value = value.partition(separator)
    return FieldTerm("tag", f"{key}={tag_value}") if found else FieldTerm("tag_key", value)


def _example(field: str) -> str:
    known = KNOWN_VALUES.get(field)
    return known[0] if known else {"tag": "owner=alice", "name": "fraud-"}.get(field, "prod")
