"""``build_app(settings)``: wiring of the audit service."""

from __future__ import annotations

from fastapi import FastAPI

from audit import metrics, routes
from audit.chain import ChainKey, Verifier
from audit.config import AuditSettings
from audit.migration import migrate
from audit.signing import KeyRing, SigningKey
from audit.storage import INDEXES
from audit.store import AuditStore
from audit.subscribers import register_audit_subscriber
from shared.chassis import asyncapi
from shared.chassis.http_app import service_app
from shared.chassis.identity import RecordIdentity
from shared.chassis.kafka import make_broker
from shared.chassis.mongo import database, ensure_indexes, make_client, pinger
from shared.chassis.settings import ConfigurationError


class SigningKeyMissing(ConfigurationError):
    """The audit service was started without ``AUDIT_SIGNING_KEY``."""


def build_app(settings: AuditSettings) -> FastAPI:
    """Consume every topic into the hash-chained ``audit_log`` and serve it."""
    legacy = ChainKey(settings.chain_key.get_secret_value().encode()) if settings.chain_key is not None else None
    if settings.signing_key is None:
        raise SigningKeyMissing(
            "AUDIT_SIGNING_KEY is not set: the audit chain's heads are signed with it "
            "(an Ed25519 seed, e.g. python -c 'import secrets; print(secrets.token_hex(32))'); "
            "keep it outside the database"
        )
    signer = SigningKey.parse(settings.signing_key.get_secret_value())
    verifier = Verifier(KeyRing.of(signer, settings.retired_public_keys), legacy=legacy)
    client = make_client(settings)
    log_client = make_client(settings.log_settings()) if settings.log_mongodb_uri else client
    broker = make_broker(settings)
    service = service_app(
        settings=settings,
        client=client,
        broker=broker,
        consumer_groups={settings.consumer_group: settings.all_topics()},
    )
    log_db = database(log_client, settings)
    store = AuditStore(log_client, log_db, signer=signer, verifier=verifier, retention=settings.retention())

    async def start() -> None:
        await ensure_indexes(log_db, INDEXES)
        await migrate(log_client, log_db, signer=signer, legacy=legacy)  # keyed chains, once
        for chain, length in (await store.chain_lengths()).items():  # chains are long before this process
            topic, _, partition = chain.rpartition(":")
            metrics.CHAIN_LENGTH.labels(topic, partition).set(length)

    service.on_start(start)
    service.readiness.checks["audit_chains"] = store.ready  # a chain whose head cannot be trusted
    identity = RecordIdentity.of(settings, keystore=service.keystore, signer=service.signer)
    register_audit_subscriber(broker, settings, append=store.append, identity=identity, probe=pinger(log_client))
    if log_client is not client:

        async def log_database_ping() -> None:
            await log_client.admin.command("ping")

        service.readiness.checks["audit_mongodb"] = log_database_ping
        service.on_stop("audit-mongodb", log_client.close)
    service.app.state.verifier, service.app.state.signer, service.app.state.audit_db = verifier, signer, log_db
    service.app.state.audit_store = store  # its newest entry anchors a page's windows (audit.newest)
    service.app.state.evidence_topics = {  # what an evidence bundle reads, in its order of priority
        "events": settings.topic_events,
        "commands": settings.topic_commands,
        "deploy": settings.topic_deploy,
        "access": settings.topic_access,
    }
    service.app.include_router(routes.router)
    asyncapi.serve(service.app, settings, consumes=["commands", "events", "deploy", "access"], publishes=["access"])
    return service.app
