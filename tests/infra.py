"""Endpoints of the infrastructure the tests run against, and the non-embedded ways to get them."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.chassis.settings import CommonSettings


@dataclass
class Infra:
    """Where Kafka and MongoDB are, and whether the broker supports idempotent producers."""

    kafka_bootstrap: str
    mongodb_uri: str
    idempotence: bool
    stack: Any = None  # the EmbeddedStack when the stand-ins were started here
    # The services' shared secrets (the embedded stack's own, or made for this run).
    signing_key: str = field(default_factory=lambda: secrets.token_hex(32))
    audit_chain_key: str = field(default_factory=lambda: secrets.token_hex(32))
    audit_signing_key: str = field(default_factory=lambda: secrets.token_hex(32))

    def env(self) -> dict[str, str]:
        """Shared service settings pointing at these endpoints, with test-friendly group timings."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "MONGODB_URI": self.mongodb_uri,
            "KAFKA_ENABLE_IDEMPOTENCE": str(self.idempotence).lower(),
            "KAFKA_SESSION_TIMEOUT_MS": "2000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "KAFKA_FETCH_MAX_WAIT_MS": "20",
            "EVENT_SIGNING_KEY": self.signing_key,
            "AUDIT_CHAIN_KEY": self.audit_chain_key,
            "AUDIT_SIGNING_KEY": self.audit_signing_key,
        }


def external_infra() -> Infra:
    """Servers someone else runs: ``KAFKA_BOOTSTRAP_SERVERS`` and ``MONGODB_URI``."""
    return Infra(
        kafka_bootstrap=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        mongodb_uri=os.environ["MONGODB_URI"],
        idempotence=os.environ.get("KAFKA_ENABLE_IDEMPOTENCE", "true") == "true",
    )


@contextlib.contextmanager
def testcontainers_infra() -> Iterator[Infra]:
    """Real Apache Kafka (KRaft) and a single-node MongoDB replica set in Docker.

    Needs a Docker engine and the ``testcontainers`` package (``uv sync --group containers``);
    the embedded default needs neither.
    """
    from testcontainers.core.container import DockerContainer  # type: ignore[import-not-found]
    from testcontainers.core.waiting_utils import wait_for_logs  # type: ignore[import-not-found]
    from testcontainers.kafka import KafkaContainer  # type: ignore[import-not-found]

    mongo = DockerContainer("mongo:8.0").with_command("--replSet rs0 --bind_ip_all").with_exposed_ports(27017)
    with KafkaContainer("apache/kafka:3.9.1").with_kraft() as kafka, mongo:
        wait_for_logs(mongo, "Waiting for connections")
        mongo.exec(["mongosh", "--quiet", "--eval", "rs.initiate()"])
        host, port = mongo.get_container_host_ip(), mongo.get_exposed_port(27017)
        yield Infra(
            kafka_bootstrap=kafka.get_bootstrap_server(),
            mongodb_uri=f"mongodb://{host}:{port}/?directConnection=true",
            idempotence=True,
        )


def private_topics(infra: Infra, prefix: str) -> CommonSettings:
    """Settings whose four contract topics are this test's own (``<prefix>`` for commands)."""
    return CommonSettings(
        event_signing_key=infra.signing_key,
        kafka_bootstrap_servers=infra.kafka_bootstrap,
        topic_commands=prefix,
        topic_events=f"{prefix}-e",
        topic_deploy=f"{prefix}-d",
        topic_access=f"{prefix}-a",
    )
