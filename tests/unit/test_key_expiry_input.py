"""A key's expires_at: any time the schema allows is answered, never a server error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from registration.keys_routes import ApiKeyCreate

pytestmark = pytest.mark.unit


def test_a_time_without_a_utc_equivalent_is_refused_not_a_crash() -> None:
    # Found by the API fuzzer: year 1 at +00:03 has no UTC time, and converting it raised OverflowError (a 500).
    with pytest.raises(ValidationError, match="out of range"):
        ApiKeyCreate.model_validate({"name": "k", "scopes": ["models:read"], "expires_at": "0001-01-01T00:00:00+00:03"})


def test_expiry_is_kept_in_utc_and_a_naive_time_is_utc() -> None:
    body = {"name": "k", "scopes": ["models:read"]}
    assert ApiKeyCreate.model_validate(body | {"expires_at": "2099-01-01T02:00:00+02:00"}).expires_at == datetime(
        2099, 1, 1, tzinfo=UTC
    )
    assert ApiKeyCreate.model_validate(body | {"expires_at": "2099-01-01T00:00:00"}).expires_at == datetime(
        2099, 1, 1, tzinfo=UTC
    )
