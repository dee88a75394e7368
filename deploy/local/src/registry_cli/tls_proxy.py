"""``python -m registry_cli.tls_proxy``: TLS in front of the embedded broker and database servers.

Neither stand-in serves TLS well enough to rely on. The broker (tansu 0.6) has TLS
flags, but its command line refuses the certificate and the key together. SecantusDB has TLS
options, but it runs each handshake on its one accept thread without a time-out: a client that
connects in plain text (or stalls) holds up every other connection until it gives up, which
``tests/e2e/test_tls_stack.py`` would show. So with ``registry up --tls`` each listens on a
loopback port nothing else is told about (the broker advertises this proxy's address, so the
connections its metadata sends clients to are TLS too), and this process serves TLS on the
stack's ports, each connection's handshake on its own task and bounded in time, optionally
requiring a client certificate signed by ``--client-ca`` (mutual TLS: every front of the stack).

A front holds at most ``--max-connections`` connections: one more is closed at once, before its
handshake costs anything, so a local user cannot exhaust the stand-in's descriptors or threads
through it. A connection with no byte either way for ``--idle-seconds`` is closed (Kafka brokers
close idle connections after ``connections.max.idle.ms``, 10 minutes, which is the default here;
the drivers reconnect).

    python -m registry_cli.tls_proxy --listen 127.0.0.1:9092 --to 127.0.0.1:19092 --cert c.pem --key k.pem \
        [--client-ca ca.pem] [--max-connections 1024] [--idle-seconds 600]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import ssl
import sys
from dataclasses import dataclass
from typing import Any

CHUNK = 64 * 1024
HANDSHAKE_SECONDS = 10.0


@dataclass(frozen=True)
class Limits:
    """How many connections a front holds at once, and how long one may sit idle."""

    max_connections: int = 1024
    idle_seconds: float = 600.0


class _Activity:
    """Set ``idle`` once a connection has carried no byte, either way, for ``idle_seconds``."""

    def __init__(self, idle_seconds: float) -> None:
        self.idle = asyncio.Event()
        self._seconds = idle_seconds
        self._timer = asyncio.get_running_loop().call_later(idle_seconds, self.idle.set)

    def touch(self) -> None:
        self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._seconds, self.idle.set)

    def stop(self) -> None:
        self._timer.cancel()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, activity: _Activity) -> None:
    try:
        while data := await reader.read(CHUNK):
            activity.touch()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _relay(connection: socket.socket, target: tuple[str, int], context: ssl.SSLContext, limits: Limits) -> None:
    """TLS with the client on ``connection``, then both directions relayed to ``target`` at once."""
    loop = asyncio.get_running_loop()
    client_reader = asyncio.StreamReader(limit=2 * CHUNK)
    protocol = asyncio.StreamReaderProtocol(client_reader)
    try:
        transport, _ = await loop.connect_accepted_socket(
            lambda: protocol, connection, ssl=context, ssl_handshake_timeout=HANDSHAKE_SECONDS
        )
    except (OSError, ssl.SSLError, TimeoutError):
        connection.close()
        return
    client_writer = asyncio.StreamWriter(transport, protocol, client_reader, loop)
    try:
        target_reader, target_writer = await asyncio.open_connection(*target)
    except OSError:
        transport.abort()
        return
    activity = _Activity(limits.idle_seconds)
    pipes: asyncio.Future[Any] = asyncio.gather(
        _pipe(client_reader, target_writer, activity), _pipe(target_reader, client_writer, activity)
    )
    idle: asyncio.Future[Any] = asyncio.ensure_future(activity.idle.wait())
    try:
        await asyncio.wait({pipes, idle}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        activity.stop()
        idle.cancel()
        if not pipes.done():  # idle, or this front stopping: both sides cut (the pipes close them otherwise)
            for writer in (client_writer, target_writer):
                writer.transport.abort()
        with contextlib.suppress(Exception):
            await pipes


class Front:
    """A listening TLS front, its connections each relayed on a task of its own.

    Beyond ``limits.max_connections`` open connections, a new one is closed as soon as it is
    accepted, before its handshake; one idle for ``limits.idle_seconds`` is closed on both sides.
    """

    def __init__(self, listener: socket.socket, target: tuple[str, int], context: ssl.SSLContext, limits: Limits):
        self.listener, self.target, self.context, self.limits = listener, target, context, limits
        self.active = 0
        self._connections: set[asyncio.Task[None]] = set()
        self._accepting = asyncio.create_task(self._accept())

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.listener.getsockname()[1])

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                connection, _ = await loop.sock_accept(self.listener)
            except OSError:  # out of descriptors, a connection reset while queued: keep serving
                await asyncio.sleep(0.1)
                continue
            if self.active >= self.limits.max_connections:
                connection.close()
                continue
            self.active += 1
            task = asyncio.create_task(self._serve(connection))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _serve(self, connection: socket.socket) -> None:
        try:
            await _relay(connection, self.target, self.context, self.limits)
        finally:
            self.active -= 1

    async def close(self) -> None:
        """Stop accepting and cut every connection."""
        self._accepting.cancel()
        self.listener.close()
        for task in [self._accepting, *self._connections]:
            task.cancel()
        await asyncio.gather(self._accepting, *self._connections, return_exceptions=True)

    async def __aenter__(self) -> Front:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


async def start(
    listen: tuple[str, int], target: tuple[str, int], context: ssl.SSLContext, limits: Limits = Limits()
) -> Front:
    """A front listening on ``listen`` (port 0: any free one) for the plain server on ``target``."""
    family = socket.getaddrinfo(*listen, type=socket.SOCK_STREAM)[0][0]
    listener = socket.create_server(listen, family=family, backlog=128)
    listener.setblocking(False)
    return Front(listener, target, context, limits)


async def serve(
    listen: tuple[str, int], target: tuple[str, int], context: ssl.SSLContext, limits: Limits = Limits()
) -> None:
    """Relay until SIGTERM or SIGINT."""
    front = await start(listen, target, context, limits)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    async with front:
        await stopping.wait()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str]) -> int:
    """Serve TLS on ``--listen`` and relay to ``--to`` until stopped."""
    parser = argparse.ArgumentParser(prog="registry_cli.tls_proxy")
    parser.add_argument("--listen", required=True, help="host:port to serve TLS on")
    parser.add_argument("--to", required=True, help="host:port of the plain service behind")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca", help="require a client certificate signed by this CA")
    parser.add_argument("--max-connections", type=int, default=Limits.max_connections, help="beyond: closed at once")
    parser.add_argument("--idle-seconds", type=float, default=Limits.idle_seconds, help="close one idle this long")
    args = parser.parse_args(argv)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        context.load_verify_locations(args.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    limits = Limits(max_connections=args.max_connections, idle_seconds=args.idle_seconds)
    asyncio.run(serve(_address(args.listen), _address(args.to), context, limits))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
