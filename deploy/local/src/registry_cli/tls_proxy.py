"""``python -m registry_cli.tls_proxy``: TLS in front of the embedded broker and database servers.

Neither stand-in serves TLS well enough to rely on. The broker (tansu 0.6, DESIGN §7) has TLS
flags, but its command line refuses the certificate and the key together. SecantusDB has TLS
options, but it runs each handshake on its one accept thread without a time-out: a client that
connects in plain text (or stalls) holds up every other connection until it gives up, which
``tests/e2e/test_tls_stack.py`` would show. So with ``registry up --tls`` each listens on a
loopback port nothing else is told about (the broker advertises this proxy's address, so the
connections its metadata sends clients to are TLS too), and this process serves TLS on the
stack's ports, each connection's handshake on its own task and bounded in time, optionally
requiring a client certificate signed by ``--client-ca`` (mutual TLS, as the databases do).

    python -m registry_cli.tls_proxy --listen 127.0.0.1:9092 --to 127.0.0.1:19092 --cert c.pem --key k.pem \
        [--client-ca ca.pem]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable

CHUNK = 64 * 1024
HANDSHAKE_SECONDS = 10.0


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def handler(
    target_host: str, target_port: int
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A connection handler relaying each TLS client to the broker, both directions at once."""

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            broker_reader, broker_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, broker_writer), _pipe(broker_reader, client_writer))

    return relay


async def serve(listen: tuple[str, int], target: tuple[str, int], context: ssl.SSLContext) -> None:
    """Relay until SIGTERM or SIGINT."""
    server = await asyncio.start_server(
        handler(*target), listen[0], listen[1], ssl=context, ssl_handshake_timeout=HANDSHAKE_SECONDS
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    async with server:
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
    args = parser.parse_args(argv)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        context.load_verify_locations(args.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    asyncio.run(serve(_address(args.listen), _address(args.to), context))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
