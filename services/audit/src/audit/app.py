"""``build_app(settings)``: wiring of the audit service."""

from __future__ import annotations

from fastapi import FastAPI

from audit import metrics, routes
from audit.chain import ChainKey
from audit.config import AuditSettings
from audit.store import AuditStore
from audit.subscribers import register_audit_subscriber
from shared.chassis import asyncapi
from shared.chassis.http_app import service_app
from shared.chassis.identity import RecordIdentity
from shared.chassis.kafka import make_broker
from shared.chassis.mongo import AUDIT_HEADS, AUDIT_LOG, AUDIT_VERIFIED, ensure_indexes, make_client, pinger
from shared.chassis.settings import ConfigurationError


class ChainKeyMissing(ConfigurationError):
    """The audit service was started without ``AUDIT_CHAIN_KEY``."""


def build_app(settings: AuditSettings) -> FastAPI:
    """Consume every topic into the hash-chained ``audit_log`` and serve it."""
    if settings.chain_key is None:
        raise ChainKeyMissing(
            "AUDIT_CHAIN_KEY is not set: the audit chain is keyed with it "
            "(e.g. python -c 'import secrets; print(secrets.token_hex(32))'); keep it outside the database"
        )
    client = make_client(settings)
    broker = make_broker(settings)
    service = service_app(
        settings=settings,
        client=client,
        broker=broker,
        consumer_groups={settings.consumer_group: settings.all_topics()},
    )
    chain_key = ChainKey(settings.chain_key.get_secret_value().encode())
    store = AuditStore(client, service.db, key=chain_key, retention=settings.retention())

    async def start() -> None:
        await ensure_indexes(service.db, [AUDIT_LOG, AUDIT_HEADS, AUDIT_VERIFIED])
        for chain, length in (await store.chain_lengths()).items():  # chains are long before this process
            topic, _, partition = chain.rpartition(":")
            metrics.CHAIN_LENGTH.labels(topic, partition).set(length)

    service.on_start(start)
    identity = RecordIdentity(keystore=service.keystore, signer=service.signer)
    register_audit_subscriber(broker, settings, append=store.append, identity=identity, probe=pinger(client))
    service.app.state.chain_key = chain_key
    service.app.include_router(routes.router)
    asyncapi.serve(service.app, settings, consumes=["commands", "events", "deploy", "access"], publishes=["access"])
    return service.app
