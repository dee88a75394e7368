"""Settings of an audit service of one test's own: its topics, consumer group, database and keys."""

from __future__ import annotations

import secrets
import uuid

from audit.config import AuditSettings
from tests.infra import Infra


def audit_settings(infra: Infra, db_name: str) -> AuditSettings:
    """The audit service on topics and a database of this test's own."""
    suffix = uuid.uuid4().hex[:8]
    env = infra.env()
    return AuditSettings(
        kafka_bootstrap_servers=infra.kafka_bootstrap,
        mongodb_uri=infra.mongodb_uri,
        mongodb_database=db_name,
        kafka_enable_idempotence=infra.idempotence,
        kafka_session_timeout_ms=int(env["KAFKA_SESSION_TIMEOUT_MS"]),
        kafka_heartbeat_interval_ms=int(env["KAFKA_HEARTBEAT_INTERVAL_MS"]),
        kafka_fetch_max_wait_ms=int(env["KAFKA_FETCH_MAX_WAIT_MS"]),
        topic_commands=f"commands-{suffix}",
        topic_events=f"events-{suffix}",
        topic_deploy=f"deploy-{suffix}",
        topic_access=f"access-{suffix}",
        consumer_group=f"audit-{suffix}",
        event_signing_key=infra.signing_key,
        chain_key=secrets.token_hex(32),
        signing_key=secrets.token_hex(32),
    )
