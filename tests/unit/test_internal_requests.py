"""Only the process itself can mark a request as internal (it then takes no second rate-limit token)."""

from typing import Any, cast

import pytest
from starlette.requests import Request

from shared.chassis.http_auth import INTERNAL_HEADER, Guard

pytestmark = pytest.mark.unit


def request(headers: dict[str, str]) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/v1/models", "headers": raw})


def guard() -> Guard:
    return Guard(keystore=cast(Any, None), limiter=cast(Any, None), access=cast(Any, None), watch=cast(Any, None))


def test_the_guards_own_headers_mark_a_request_internal() -> None:
    own = guard()
    assert own.is_internal(request(own.internal_headers))


@pytest.mark.parametrize("value", ["", "guess", "x" * 43])
def test_any_other_value_does_not(value: str) -> None:
    assert not guard().is_internal(request({INTERNAL_HEADER: value}))


def test_another_processs_secret_does_not() -> None:
    assert not guard().is_internal(request(guard().internal_headers))
