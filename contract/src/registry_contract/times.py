"""The one way times are written in the public contract: RFC 3339 in UTC with a ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def utc_text(moment: datetime) -> str:
    """``moment`` as RFC 3339 in UTC (a naive time is taken to be UTC, as BSON stores it)."""
    return in_utc(moment).isoformat().replace("+00:00", "Z")


def in_utc(moment: datetime) -> datetime:
    """``moment`` with a UTC offset (a naive time is taken to be UTC); a time already in UTC as it is."""
    offset = moment.utcoffset()
    if offset is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC) if offset else moment


def as_utc(value: object) -> datetime | None:
    """A stored or written time (a datetime, or RFC 3339 text) in UTC; ``None`` for anything else or unreadable."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return in_utc(value) if isinstance(value, datetime) else None


def to_stored_precision(moment: datetime) -> datetime:
    """``moment`` cut to the millisecond, as BSON stores it: what is written is what is read back."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# A datetime field of a response or event model. It holds UTC from validation on, so pydantic-core
# writes it as utc_text does, "…Z", with no Python call per time written: a serializer hook here
# cost a list of 200 models 0.6 ms of its 5.
UtcTime = Annotated[datetime, AfterValidator(in_utc)]
