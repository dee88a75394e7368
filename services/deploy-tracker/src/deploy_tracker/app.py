"""``build_app(settings)``: wiring of the deploy-tracker service."""

from __future__ import annotations

import structlog
from fastapi import FastAPI

from deploy_tracker import internal_routes, metrics, routes, webhook_routes
from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.handlers import handle_reports
from deploy_tracker.known_versions import CatchUp, KnownVersions, Registration, VersionLookup
from deploy_tracker.outcomes import OutcomeWatch
from deploy_tracker.reports import Report
from deploy_tracker.repository import MongoRepository
from deploy_tracker.secret_box import SecretBox, reseal_all
from deploy_tracker.storage import DEPLOYMENTS, WEBHOOKS, ensure_storage
from deploy_tracker.subscribers import (
    register_event_subscriber,
    register_report_subscriber,
    register_version_subscriber,
)
from deploy_tracker.webhooks import DeliveryWorker, fan_out
from registry_contract.envelope import CloudEvent
from shared.chassis import asyncapi
from shared.chassis.http_app import service_app
from shared.chassis.identity import RecordIdentity
from shared.chassis.kafka import make_broker
from shared.chassis.mongo import make_client, pinger
from shared.outbox.changes import ChangeLog
from shared.outbox.relay import OutboxRelay, kafka_publisher
from shared.outbox.rows import writer_id

log = structlog.get_logger(__name__)


def build_app(settings: DeployTrackerSettings) -> FastAPI:
    """Consume deployment reports, relay status events, serve the HTTP bridge."""
    client = make_client(settings)
    broker = make_broker(settings)
    service = service_app(
        settings=settings,
        client=client,
        broker=broker,
        consumer_groups={
            settings.consumer_group: [settings.topic_deploy],
            settings.webhook_group: [settings.topic_events],
            settings.versions_group: [settings.topic_events],
        },
    )
    repo = MongoRepository(client, service.db, writer=writer_id())
    identity = RecordIdentity.of(settings, keystore=service.keystore, signer=service.signer)
    probe = pinger(client)
    relay = OutboxRelay(
        repo=repo,
        publish=kafka_publisher(broker, settings.topic_events, service.signer),
        batch_size=settings.relay_batch_size,
        interval=settings.relay_interval_seconds,
        name="deploy_outbox",
    )

    approval_environments = frozenset(settings.approval_environments)
    provenance_environments = frozenset(settings.provenance_environments)
    known = KnownVersions(service.db)
    registration = Registration.of(settings, timeout=settings.version_lookup_timeout_seconds)
    lookup = VersionLookup(registration, forget_after=settings.version_lookup_forget_seconds)

    async def handle_batch(reports: list[Report]) -> None:
        history = await handle_reports(
            reports,
            repo=repo,
            approval_environments=approval_environments,
            provenance_environments=provenance_environments,
            lookup=lookup,
            recheck=lookup.recheck,
        )
        relay.notify()
        for row in history:
            metrics.REPORTS.labels(row["outcome"], row.get("reason", "")).inc()

    register_report_subscriber(
        broker,
        settings,
        handle_batch=handle_batch,
        identity=identity,
        probe=probe,
    )
    box = SecretBox.from_setting(settings.webhook_secret_keys)
    worker = DeliveryWorker(service.db, settings, box=box)

    async def deliver(events: list[CloudEvent]) -> int:
        created = await fan_out(service.db, events)
        worker.enqueue(created)
        return len(created)

    register_event_subscriber(broker, settings, fan_out=deliver, identity=identity, probe=probe)
    register_version_subscriber(broker, settings, learn=known.learn_events, identity=identity, probe=probe)

    async def create_indexes() -> None:
        await ensure_storage(service.db, settings)  # with the retention of webhook deliveries

    async def restore_deployment_state() -> None:
        if restored := await known.restore_deployment_state():
            log.info("deployment state of versions restored from the tracker's history", versions=restored)

    async def reseal_secrets() -> None:
        if resealed := await reseal_all(service.db[WEBHOOKS], box):
            log.info("webhook secrets re-sealed under the newest key", subscriptions=resealed)

    service.on_start(create_indexes)
    service.on_start(restore_deployment_state)  # an upgrade from registration-held state, once
    service.on_start(reseal_secrets)
    service.in_background("deploy-outbox-relay", relay.run)
    service.in_background("webhook-deliveries", worker.run)
    service.in_background("known-versions-catch-up", CatchUp(registration, known).run)
    service.on_stop("registration-client", registration.close)
    # What the routes' dependencies read from each request (the guard is set by service_app).
    service.app.state.report_bridge = routes.ReportBridge(broker, settings.topic_deploy, service.signer)
    service.app.state.outcome_watch = OutcomeWatch(
        service.db[DEPLOYMENTS],
        max_seconds=settings.report_wait_max_seconds,
        concurrency=settings.report_wait_concurrency,
    )
    service.app.state.db, service.app.state.settings = service.db, settings
    service.app.state.event_log = repo  # GET /internal/v1/events
    service.app.state.secret_box = box
    service.app.state.changes = ChangeLog(repo, client, wake=relay.notify)  # webhook changes as events
    service.app.include_router(routes.router)
    service.app.include_router(webhook_routes.router)
    service.app.include_router(internal_routes.router)
    asyncapi.serve(service.app, settings, consumes=["deploy", "events"], publishes=["events", "access", "deploy"])
    return service.app
