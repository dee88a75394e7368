"""``build_app(settings)``: wiring of the deploy-tracker service."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Counter

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.handlers import Report, handle_reports
from deploy_tracker.repository import MongoRepository
from deploy_tracker.routes import build_router
from deploy_tracker.subscribers import register_event_subscriber, register_report_subscriber
from deploy_tracker.webhook_routes import build_webhook_router
from deploy_tracker.webhooks import DeliveryWorker, fan_out
from shared.envelope import CloudEvent
from shared.http_app import service_app
from shared.identity import RecordIdentity
from shared.kafka import make_broker
from shared.mongo import (
    DEPLOY_OUTBOX,
    DEPLOY_RELAY_CHECKPOINTS,
    DEPLOYMENTS,
    WEBHOOK_DELIVERIES,
    WEBHOOKS,
    ensure_indexes,
    make_client,
    pinger,
)
from shared.outbox import OutboxRelay, kafka_publisher, writer_id

REPORTS = Counter(
    "registry_deploy_reports_total",
    "Deployment reports recorded, by outcome (applied, out_of_order, rejected) and reject reason",
    ["outcome", "reason"],
)


def build_app(settings: DeployTrackerSettings) -> FastAPI:
    """Consume deployment reports, relay status events, serve the HTTP bridge."""
    client = make_client(settings)
    broker = make_broker(settings)

    async def start() -> None:
        await ensure_indexes(
            service.db, [DEPLOYMENTS, DEPLOY_OUTBOX, DEPLOY_RELAY_CHECKPOINTS, WEBHOOKS, WEBHOOK_DELIVERIES]
        )

    service = service_app(
        settings=settings,
        client=client,
        broker=broker,
        on_start=[start],
        background={"deploy-outbox-relay": lambda: relay.run(), "webhook-deliveries": lambda: worker.run()},
        consumer_groups={
            settings.consumer_group: [settings.topic_deploy],
            settings.webhook_group: [settings.topic_events],
        },
    )
    repo = MongoRepository(client, service.db, writer=writer_id())
    identity = RecordIdentity(keystore=service.keystore, signer=service.signer)
    probe = pinger(client)
    relay = OutboxRelay(
        repo=repo,
        publish=kafka_publisher(broker, settings.topic_events, service.signer),
        batch_size=settings.relay_batch_size,
        interval=settings.relay_interval_seconds,
        name="deploy_outbox",
    )

    async def handle_batch(reports: list[Report]) -> None:
        history = await handle_reports(reports, repo=repo)
        relay.notify()
        for row in history:
            REPORTS.labels(row["outcome"], row.get("reason", "")).inc()

    register_report_subscriber(
        broker,
        settings,
        handle_batch=handle_batch,
        identity=identity,
        probe=probe,
    )
    worker = DeliveryWorker(service.db, settings)

    async def deliver(events: list[CloudEvent]) -> int:
        created = await fan_out(service.db, events)
        worker.enqueue(created)
        return len(created)

    register_event_subscriber(broker, settings, fan_out=deliver, identity=identity, probe=probe)
    service.app.include_router(
        build_router(broker=broker, topic=settings.topic_deploy, guard=service.guard, signer=service.signer)
    )
    service.app.include_router(build_webhook_router(db=service.db, guard=service.guard, settings=settings))
    return service.app
