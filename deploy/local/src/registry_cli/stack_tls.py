"""The embedded stack's TLS material (``registry up --tls``): one server certificate, one client's.

Every server of the stack (the TLS fronts of the broker and of both databases, the four services)
presents the ``stack`` certificate, valid for the stack's host and ``localhost``; every client of
the broker and the databases (the services, the CLI, tools), whose fronts all require a client
certificate, presents ``client``. Both are signed by the data directory's CA (:mod:`registry_cli.certificates`),
which is what every client trusts. PyMongo wants a client's certificate and key in one file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_cli.certificates import Leaf, leaf
from registry_cli.config import StackSettings
from registry_cli.files import write_private
from registry_client.kafka_tls import kafka_tls_options


@dataclass(frozen=True)
class StackTls:
    """The files: the server's chain and key, the client's combined PEM, and the CA."""

    server: Leaf
    client: Leaf
    client_pem: Path

    @property
    def ca(self) -> Path:
        """The CA every client trusts."""
        return self.server.ca


def stack_tls(settings: StackSettings) -> StackTls:
    """Make (once) and return the stack's certificates."""
    server = leaf(settings.tls_dir, "stack", [settings.host, "localhost"])
    client = leaf(settings.tls_dir, "client", ["registry-client"])
    combined = settings.tls_dir / "client-combined.pem"
    pem = client.cert.read_bytes() + client.key.read_bytes()
    if not combined.exists() or combined.read_bytes() != pem:  # made again with the client's certificate
        write_private(combined, pem)
    return StackTls(server, client, combined)


def service_tls_env(settings: StackSettings, service: str) -> dict[str, str]:
    """What a service process is told with ``--tls``: Kafka over TLS, its own HTTPS, whom to trust."""
    if not settings.tls:
        return {}
    tls = stack_tls(settings)
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CAFILE": str(tls.ca.resolve()),
        "KAFKA_SSL_CERTFILE": str(tls.client.cert.resolve()),  # the broker's front requires it
        "KAFKA_SSL_KEYFILE": str(tls.client.key.resolve()),
        "HTTP_TLS_CERT_FILE": str(tls.server.cert.resolve()),
        "HTTP_TLS_KEY_FILE": str(tls.server.key.resolve()),
        "INTERNAL_CA_FILE": str(tls.ca.resolve()),  # the tracker's and audit's calls to registration
    }
    if service == "query":
        # The console's calls to registration and audit (httpx) trust the stack's CA. Only there:
        # it replaces the system's CAs, which the tracker's webhook deliveries to the world need.
        env["SSL_CERT_FILE"] = str(tls.ca.resolve())
    return env


def kafka_client_options(settings: StackSettings) -> dict[str, Any]:
    """What the CLI's Kafka clients (``registry produce``, ``registry dlq``) add for this stack.

    With ``--tls`` (``REGISTRY_STACK_TLS=true``): TLS trusting the stack's CA, presenting its client
    certificate, which the broker's front requires; nothing otherwise.
    """
    if not settings.tls:
        return {}
    tls = stack_tls(settings)
    return kafka_tls_options(str(tls.ca), str(tls.client.cert), str(tls.client.key))


def tls_front_argv(settings: StackSettings, *, listen: int, to: int) -> list[str]:
    """The command of a TLS front (:mod:`registry_cli.tls_proxy`) on ``listen`` for a stand-in on ``to``.

    Every front requires a client certificate signed by the stack's CA: nobody without the
    stack's client key gets through, to the broker (which has no authentication of its own) or
    to a database.
    """
    tls = stack_tls(settings)
    return [
        sys.executable,
        "-m",
        "registry_cli.tls_proxy",
        "--listen",
        f"{settings.host}:{listen}",
        "--to",
        f"127.0.0.1:{to}",  # the stand-in behind listens on loopback only
        "--cert",
        str(tls.server.cert.resolve()),
        "--key",
        str(tls.server.key.resolve()),
        "--client-ca",
        str(tls.ca.resolve()),
        "--max-connections",
        str(settings.tls_front_max_connections),
        "--idle-seconds",
        str(settings.tls_front_idle_seconds),
    ]
