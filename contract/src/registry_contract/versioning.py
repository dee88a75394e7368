"""SemVer 2.0 precedence as a byte-sortable string, so MongoDB can index and sort versions.

Two versions get the same key exactly when SemVer gives them equal precedence (build metadata
is ignored), which is what makes a unique index reject ``1.0.0+a`` after ``1.0.0+b``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import semver

_RELEASE = "~"  # sorts after "-": a release outranks every prerelease of the same core
_PRERELEASE = "-"
_SEPARATOR = " "  # sorts before every identifier character, so a shorter identifier list ranks lower
_COMPARATOR = re.compile(r"^\s*(>=|<=|>|<|==|=)?\s*(\S+)\s*$")


def _number(digits: int | str) -> str:
    text = str(digits)
    return f"{len(text):03d}{text}"


def precedence_key(version: semver.Version | str) -> str:
    """Encode ``version`` so that byte order equals SemVer precedence."""
    parsed = semver.Version.parse(version) if isinstance(version, str) else version
    core = ".".join(_number(part) for part in (parsed.major, parsed.minor, parsed.patch))
    if not parsed.prerelease:
        return core + _RELEASE
    identifiers = []
    for identifier in parsed.prerelease.split("."):
        # Numeric identifiers rank below alphanumeric ones and compare numerically.
        identifiers.append("0" + _number(identifier) if identifier.isdigit() else "1" + identifier)
    return core + _PRERELEASE + _SEPARATOR.join(identifiers)


@dataclass(frozen=True)
class VersionRange:
    """A conjunction of comparators such as ``>=1.2.0,<2.0.0``, as MongoDB key bounds."""

    bounds: dict[str, str]

    def to_filter(self) -> dict[str, str]:
        """The ``version_key`` condition for a MongoDB query."""
        return dict(self.bounds)


_OPERATORS = {">=": "$gte", "<=": "$lte", ">": "$gt", "<": "$lt", "=": "$eq", "==": "$eq", None: "$eq"}


def parse_range(expression: str) -> VersionRange:
    """Parse a comma-separated comparator list, raising ``ValueError`` on anything else."""
    bounds: dict[str, str] = {}
    for part in expression.split(","):
        match = _COMPARATOR.match(part)
        if not match:
            raise ValueError(f"{part.strip()!r} is not a comparator like '>=1.2.0'")
        operator, version = match.groups()
        try:
            key = precedence_key(version)
        except ValueError:
            raise ValueError(f"{version!r} is not a SemVer 2.0 version") from None
        mongo_op = _OPERATORS[operator]
        if mongo_op in bounds:
            raise ValueError(f"range repeats the {operator or '='} comparator")
        bounds[mongo_op] = key
    return VersionRange(bounds)
