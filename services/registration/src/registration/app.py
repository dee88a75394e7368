"""``build_app(settings)``: the one place where the registration service is wired together."""

from __future__ import annotations

from fastapi import FastAPI

from registration import (
    curation_routes,
    internal_routes,
    keys_routes,
    log_routes,
    metrics,
    routes,
    signing_keys_routes,
    trust_rules_routes,
    whoami_routes,
)
from registration.config import RegistrationSettings
from registration.deployments_bootstrap import TrackerLog, keep_bootstrapping
from registration.federation import LocalFederation
from registration.group_commit import GroupCommit
from registration.handlers import Command, Outcome, checked_first, handle_commands
from registration.key_events import announce_unannounced
from registration.repository import MongoRepository
from registration.signatures import SignatureCheck
from registration.signing_keys import SigningKeys
from registration.storage import (
    API_KEYS,
    OUTBOX,
    SIGNING_KEYS,
    TRUST_RULES,
    create_indexes,
    move_tombstones,
    require_bulk_write,
    retire_model_fields,
)
from registration.subscribers import register_command_subscriber, register_deployment_subscriber
from registration.tokens import TokenVerifier
from registration.trust_rules import TrustRules
from shared.chassis import asyncapi
from shared.chassis.http_app import service_app
from shared.chassis.identity import RecordIdentity
from shared.chassis.kafka import make_broker
from shared.chassis.mongo import make_client, pinger
from shared.chassis.ratelimit import RateLimiter
from shared.chassis.verifiers import VerifierBox, sealed_verifiers
from shared.outbox.changes import ChangeLog
from shared.outbox.reading import WindowedLog
from shared.outbox.relay import OutboxRelay, kafka_publisher
from shared.outbox.rows import writer_id


def build_app(settings: RegistrationSettings) -> FastAPI:
    """Wire the Kafka consumer, the outbox relay and the HTTP write API."""
    client = make_client(settings)
    broker = make_broker(settings)
    # Keys' signature verifiers are sealed in their records; the other services fetch them here.
    verifier_box = VerifierBox.of(settings, sealing_keys=settings.key_verifier_sealing_keys)
    service = service_app(
        settings=settings,
        client=client,
        broker=broker,
        consumer_groups={
            settings.consumer_group: [settings.topic_commands],
            settings.deployments_group: [settings.topic_events],
        },
        owns_keys=True,  # API keys are registration's; the other services ask it (internal_routes)
        verifiers=sealed_verifiers(verifier_box),
    )
    repo = MongoRepository(client, service.db, writer=writer_id())
    relay = OutboxRelay(
        repo=repo,
        publish=kafka_publisher(broker, settings.topic_events, service.signer),
        batch_size=settings.relay_batch_size,
        interval=settings.relay_interval_seconds,
        name="outbox",
    )

    # Key changes are announced through the same outbox as the command outcomes (key_events).
    changes = ChangeLog(repo, client, wake=relay.notify)
    # OpenID Connect tokens: verified here for every service (the others ask internal_routes).
    trust_rules = TrustRules(service.db[TRUST_RULES], changes, service.db[API_KEYS])
    verifier = TokenVerifier.of(settings)
    federation = LocalFederation(verifier, trust_rules, settings.oidc_sign_in_rules, ttl=settings.key_cache_seconds)
    service.federate(federation)
    service.on_stop("token-verifier", verifier.close)
    # Signed provenance: registrations' signatures are verified against their team's keys.
    signing_keys = SigningKeys(service.db[SIGNING_KEYS], changes)
    check_signatures = SignatureCheck(signing_keys)

    async def handle_batch(commands: list[Command]) -> list[Outcome]:
        outcomes = await handle_commands(
            commands,
            repo=repo,
            artifact_schemes=settings.artifact_schemes,
            retries=settings.commit_retries,
            max_shares=settings.max_shares_per_model,
            check_signatures=check_signatures,
        )
        relay.notify()
        metrics.observe(outcomes, commands, service.access, topic=settings.topic_commands)
        return outcomes

    # HTTP writes arriving together share one transaction, as the Kafka path's polls do.
    group_commit = GroupCommit(handle_batch, max_commands=settings.http_group_commit_max)

    async def handle_one(command: Command) -> Outcome:
        # A signature is verified before its command queues: a slow check holds no other request's write.
        checked = await checked_first(
            command, artifact_schemes=settings.artifact_schemes, check_signatures=check_signatures
        )
        return await group_commit.submit(checked)

    async def prepare_storage() -> None:
        await require_bulk_write(service.db)
        await create_indexes(service.db)
        await retire_model_fields(service.db)
        await move_tombstones(service.db)

    async def announce_keys() -> None:
        await announce_unannounced(changes, service.db[API_KEYS])

    # Where versions run, from the tracker's events; a first start reads the tracker's log too.
    tracker_log = TrackerLog.of(settings)

    async def bootstrap_deployments() -> None:
        await keep_bootstrapping(repo.deployments, tracker_log)

    service.on_start(prepare_storage)
    service.on_start(announce_keys)
    service.in_background("outbox-relay", relay.run)
    service.in_background("deployments-bootstrap", bootstrap_deployments)
    service.on_stop("tracker-log", tracker_log.close)
    identity = RecordIdentity.of(settings, keystore=service.keystore, signer=service.signer)
    register_command_subscriber(
        broker,
        settings,
        handle_batch=handle_batch,
        identity=identity,
        limiter=RateLimiter(rate=settings.command_rate_per_second, burst=settings.command_burst),
        probe=pinger(client),
    )
    register_deployment_subscriber(
        broker, settings, deployments=repo.deployments, identity=identity, probe=pinger(client)
    )
    service.app.state.handle_one = handle_one
    # Events: every replica reads key revocations to evict its key cache (shared.chassis.key_evictions).
    asyncapi.serve(service.app, settings, consumes=["commands", "events"], publishes=["events", "access"])
    service.app.include_router(routes.router)
    service.app.include_router(curation_routes.router)
    service.app.include_router(keys_routes.router)
    service.app.include_router(trust_rules_routes.router)
    service.app.include_router(signing_keys_routes.router)
    service.app.include_router(whoami_routes.router)
    service.app.include_router(internal_routes.router)
    service.app.include_router(log_routes.router)
    service.app.state.event_log = WindowedLog(service.db[OUTBOX])
    service.app.state.verifier_box = verifier_box
    service.app.state.relay = relay
    service.app.state.repo = repo
    service.app.state.changes = changes
    service.app.state.trust_rules, service.app.state.federation = trust_rules, federation
    service.app.state.signing_keys = signing_keys
    return service.app
