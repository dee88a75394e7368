"""The TLS front of the embedded stand-ins: a connection cap, an idle time-out, client certificates.

Without a cap and an idle time-out, one local user could hold every connection or thread of the
stand-in behind a front by opening connections and leaving them idle after the handshake.
"""

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry_cli.certificates import Leaf, leaf
from registry_cli.tls_proxy import Front, Limits, start
from tests.waiting import until

pytestmark = pytest.mark.integration
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def target() -> AsyncIterator[int]:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[Leaf, Leaf]:
    return leaf(tmp_path, "stack", ["127.0.0.1"]), leaf(tmp_path, "client", ["registry-client"])


async def front(target: int, certificates: tuple[Leaf, Leaf], limits: Limits) -> Front:
    server_leaf, _ = certificates
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_leaf.cert, server_leaf.key)
    context.load_verify_locations(server_leaf.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return await start(("127.0.0.1", 0), ("127.0.0.1", target), context, limits)


async def connect(server: Front, certificates: tuple[Leaf, Leaf], *, certified: bool = True) -> Connection:
    server_leaf, client_leaf = certificates
    context = ssl.create_default_context(cafile=str(server_leaf.ca))
    if certified:
        context.load_cert_chain(client_leaf.cert, client_leaf.key)
    port = server.port
    return await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")


async def round_trip(connection: Connection, data: bytes = b"ping") -> bytes:
    reader, writer = connection
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), 10)


async def refused(server: Front, certificates: tuple[Leaf, Leaf], *, certified: bool = True) -> bool:
    """Whether a connection is cut before carrying a byte (at the handshake or at the first read)."""
    try:
        connection = await connect(server, certificates, certified=certified)
        await round_trip(connection)
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
        return True
    connection[1].close()
    return False


async def test_connections_beyond_the_cap_are_closed_and_room_is_made_again(
    target: int, certificates: tuple[Leaf, Leaf]
) -> None:
    server = await front(target, certificates, Limits(max_connections=2, idle_seconds=60))
    async with server:
        first, second = await connect(server, certificates), await connect(server, certificates)
        assert await round_trip(first) == b"ping" and await round_trip(second) == b"ping"
        assert await refused(server, certificates)
        assert await round_trip(first) == b"ping"  # those within the cap are untouched
        first[1].close()

        async def room_again() -> bool:
            return not await refused(server, certificates)

        await until(room_again, timeout=10, what="a connection accepted once one of the two closed")
        second[1].close()


async def test_an_idle_connection_is_closed_and_a_busy_one_kept(certificates: tuple[Leaf, Leaf]) -> None:
    # On an event loop of its own: the session's loop can stall for a second (another test's
    # leftovers), longer than a busy connection's gap, and a stalled loop fires the idle timer first.
    async def scenario() -> None:
        async with await asyncio.start_server(echo, "127.0.0.1", 0) as target:
            server = await front(target.sockets[0].getsockname()[1], certificates, Limits(idle_seconds=2.0))
            async with server:
                idle = await connect(server, certificates)
                assert await round_trip(idle) == b"ping"
                # The busy one talks until the front has closed the idle one (its read sees the
                # end): the test waits on that, and each gap of the busy one is far below the limit.
                busy = await connect(server, certificates)
                closed = asyncio.ensure_future(idle[0].read())
                rounds = 0
                async with asyncio.timeout(20):
                    while not closed.done():
                        assert await round_trip(busy) == b"ping"
                        rounds += 1
                        await asyncio.sleep(0.05)
                assert await closed == b""  # the front closed it
                assert rounds > 1 and await round_trip(busy) == b"ping"  # kept through it and after
                busy[1].close()
                idle[1].close()

    await asyncio.to_thread(asyncio.run, scenario())


async def test_a_client_without_a_certificate_is_refused(target: int, certificates: tuple[Leaf, Leaf]) -> None:
    server = await front(target, certificates, Limits())
    async with server:
        assert await refused(server, certificates, certified=False)
        assert not await refused(server, certificates)
