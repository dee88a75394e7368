"""The one way times are written in the public contract: RFC 3339 in UTC with a ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer


def utc_text(moment: datetime) -> str:
    """``moment`` as RFC 3339 in UTC (a naive time is taken to be UTC, as BSON stores it)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


# A datetime field of a response or event model: serialized with :func:`utc_text`.
UtcTime = Annotated[datetime, PlainSerializer(utc_text, return_type=str, when_used="json")]
