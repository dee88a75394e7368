"""Console sessions in MongoDB: sealed keys, idle and absolute expiry, flashes shown once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from query.console.sessions import Flash, Sessions, seal, unseal
from registry_contract.auth import Principal

pytestmark = pytest.mark.integration

KEY = "mr_AbCdEfGh_" + "s" * 43


def principal() -> Principal:
    return Principal(key_id="AbCdEfGh", team="fraud", scopes=frozenset({"models:read"}))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_key_sealed_under_one_session_opens_under_no_other() -> None:
    sealed = seal("session-a", KEY)
    assert unseal("session-a", sealed) == KEY
    assert unseal("session-b", sealed) is None and unseal("session-a", sealed[:-1] + b"x") is None
    assert KEY.encode() not in sealed


async def test_a_session_ends_when_idle_and_at_its_lifetime(mongo_database: AsyncDatabase[dict[str, Any]]) -> None:
    clock = Clock()
    sessions = Sessions(
        mongo_database["console_sessions"], lifetime=timedelta(hours=8), idle=timedelta(minutes=30), clock=clock
    )
    idle_id, _ = await sessions.create(KEY, principal())
    busy_id, _ = await sessions.create(KEY, principal())
    for _ in range(20):  # the busy one is used every 25 minutes, for 8 h 20 min
        clock.now += timedelta(minutes=25)
        opened = await sessions.open(busy_id)
        if clock.now < datetime(2026, 11, 27, 20, 0, tzinfo=UTC):
            assert opened is not None and opened.api_key == KEY, clock.now
        else:
            assert opened is None  # the lifetime is absolute, however busy
    assert await sessions.open(idle_id) is None


async def test_a_flash_is_shown_once_and_not_to_fragments(mongo_database: AsyncDatabase[dict[str, Any]]) -> None:
    sessions = Sessions(mongo_database["console_sessions"], lifetime=timedelta(hours=1), idle=timedelta(minutes=5))
    session_id, _ = await sessions.create(KEY, principal())
    await sessions.flash(session_id, Flash("ok", "approved"))
    fragment = await sessions.open(session_id, take_flash=False)
    page = await sessions.open(session_id)
    again = await sessions.open(session_id)
    assert fragment is not None and fragment.flash is None
    assert page is not None and page.flash == Flash("ok", "approved")
    assert again is not None and again.flash is None
    await sessions.close(session_id)
    assert await sessions.open(session_id) is None


async def test_the_database_holds_neither_the_session_id_nor_the_key(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    sessions = Sessions(mongo_database["console_sessions"], lifetime=timedelta(hours=1), idle=timedelta(minutes=5))
    session_id, _ = await sessions.create(KEY, principal())
    stored = await mongo_database["console_sessions"].find_one({})
    assert stored is not None and session_id not in repr(stored) and "s" * 43 not in repr(stored)
