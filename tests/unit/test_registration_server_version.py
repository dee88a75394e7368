"""Registration refuses to start on a MongoDB server older than its writes need (before 8.0)."""

from types import SimpleNamespace
from typing import Any

import pytest

from registration.storage import UnsupportedServer, require_bulk_write

pytestmark = pytest.mark.unit


def database_speaking(wire_version: int) -> Any:
    """A database whose server answers ``hello`` with ``wire_version`` (all require_bulk_write asks)."""

    async def command(name: str) -> dict[str, object]:
        assert name == "hello"
        return {"isWritablePrimary": True, "maxWireVersion": wire_version}

    return SimpleNamespace(client=SimpleNamespace(admin=SimpleNamespace(command=command)))


async def test_a_server_before_8_0_is_refused_with_what_is_needed() -> None:
    with pytest.raises(UnsupportedServer, match=r"MongoDB 8\.0 or later.*wire version 21"):
        await require_bulk_write(database_speaking(21))  # MongoDB 7.0


@pytest.mark.parametrize("wire_version", [25, 27])  # MongoDB 8.0, and the embedded stand-in's
async def test_a_server_with_bulk_write_is_accepted(wire_version: int) -> None:
    await require_bulk_write(database_speaking(wire_version))
