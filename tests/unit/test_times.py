"""Times in responses and events: RFC 3339 in UTC, written one way whatever the stored time's zone."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from bson.tz_util import utc as bson_utc
from pydantic import BaseModel

from registry_contract.times import UtcTime, utc_text

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 123), "2026-01-02T03:04:05.000123Z"),  # naive, as BSON stores it: UTC
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=bson_utc), "2026-01-02T03:04:05Z"),  # a tz-aware driver's UTC
        (datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T01:04:05.000007Z"),
        (datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=-3))), "2026-01-01T04:00:00Z"),
    ],
)
def test_a_time_is_written_in_utc_with_a_z(moment: datetime, text: str) -> None:
    assert utc_text(moment) == text


class Stamped(BaseModel):
    at: UtcTime


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 123), "2026-01-02T03:04:05.000123Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=bson_utc), "2026-01-02T03:04:05Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T01:04:05.120000Z"),
    ],
)
def test_a_response_time_is_written_as_utc_text_writes_it(moment: datetime, text: str) -> None:
    assert utc_text(moment) == text
    assert Stamped(at=moment).model_dump(mode="json") == {"at": text}
    assert Stamped(at=moment).model_dump_json() == f'{{"at":"{text}"}}'
    assert Stamped.model_validate_json(f'{{"at":"{moment.isoformat()}"}}').model_dump(mode="json") == {"at": text}
