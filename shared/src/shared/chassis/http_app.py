"""The app every service starts from: lifespan, problem+json, health, metrics, auth, access events, CORS."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import structlog
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from registry_contract.documents import Document
from shared.chassis import metrics, problems
from shared.chassis.access import AccessLog, FailureWatch
from shared.chassis.cors import ListedOrigins
from shared.chassis.federation import Federation, RemoteFederation
from shared.chassis.fetch_waits import FetchWaits
from shared.chassis.health import Readiness, health_router
from shared.chassis.heap import RETURN_FREE_MEMORY, return_free_memory
from shared.chassis.http_auth import Guard
from shared.chassis.http_observe import Observe
from shared.chassis.kafka import ping as kafka_ping
from shared.chassis.key_evictions import KeyEvictions
from shared.chassis.keystore import KeyStore, MongoKeyStore
from shared.chassis.keystore_remote import RemoteKeyStore
from shared.chassis.lag import LagMonitor
from shared.chassis.mongo import API_KEYS, database
from shared.chassis.ratelimit import RateLimiter
from shared.chassis.request_bounds import RequestBounds
from shared.chassis.settings import CommonSettings
from shared.chassis.signing import EventSigner
from shared.chassis.supervision import Background, TaskSupervisor
from shared.chassis.verifiers import VerifierSource

Hook = Callable[[], Awaitable[None]]
log = structlog.get_logger("registry.http")
VERSION = "0.1.0"
FREE_MEMORY_SECONDS = 5.0  # how often a service gives pages freed inside it back to the system


@dataclass
class Service:
    """What a service's routes and workers are built from.

    The service registers its start-up work (:meth:`on_start`) and background tasks
    (:meth:`in_background`) after it has built them; the app's lifespan runs them, each
    background task under ``supervisor`` (restarted with back-off when it dies).
    """

    app: FastAPI
    db: AsyncDatabase[Document]
    guard: Guard
    access: AccessLog
    keystore: KeyStore
    limiter: RateLimiter
    signer: EventSigner
    settings: CommonSettings
    broker: KafkaBroker
    client: AsyncMongoClient[Document]
    readiness: Readiness
    monitor: LagMonitor | None
    supervisor: TaskSupervisor
    start_hooks: list[Hook] = field(default_factory=list)  # run in order, before the broker starts
    background: dict[str, Background] = field(default_factory=dict)
    stop_hooks: dict[str, Hook] = field(default_factory=dict)  # run at shutdown, after Kafka and MongoDB
    evictions: KeyEvictions | None = None

    def federate(self, federation: Federation) -> None:
        """Authenticate OpenID Connect tokens with ``federation`` (registration's own verifier)."""
        self.guard.federation = federation
        if self.evictions is not None:
            self.evictions.federation = federation

    def on_start(self, hook: Hook) -> None:
        """Run ``hook`` at start-up, before the broker starts (indexes, recovery)."""
        self.start_hooks.append(hook)

    def in_background(self, name: str, run: Background) -> None:
        """Run ``run`` from after the broker starts until shutdown (relays, workers), restarted if it dies."""
        self.background[name] = run

    def on_stop(self, name: str, hook: Hook) -> None:
        """Run ``hook`` at shutdown, once the background tasks are stopped (other clients' closes)."""
        self.stop_hooks[name] = hook


async def stop_within(tasks: list[asyncio.Task[None]], closers: Mapping[str, Hook], *, grace: float) -> None:
    """Cancel the background tasks, then run each closer (Kafka, MongoDB), each step within ``grace``.

    A step that overruns (a broker that never answers a LeaveGroup, a task that swallows its
    cancellation) is logged and skipped: a service asked to stop must stop, and what it did not
    finish is redone by whoever takes over its partitions and outbox.
    """
    for task in tasks:
        task.cancel()
    if tasks:
        _, stuck = await asyncio.wait(tasks, timeout=grace)
        for task in stuck:
            log.warning("background task did not stop in time", task=task.get_name(), grace_seconds=grace)
    for what, close in closers.items():
        try:
            await asyncio.wait_for(close(), grace)
        except TimeoutError:
            log.warning("shutdown step did not finish in time", step=what, grace_seconds=grace)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start-up hooks, then the broker and the background tasks; on shutdown all of it, bounded."""
    service: Service = app.state.service
    for hook in service.start_hooks:
        await hook()
    await service.broker.start()
    workers: dict[str, Background] = {
        "access-events": service.access.run,
        "readiness": lambda: service.readiness.watch(service.settings.readiness_sample_seconds),
        **service.background,
    }
    if service.monitor is not None:
        workers["consumer-lag"] = service.monitor.run
    tasks = service.supervisor.start(workers)
    try:
        yield
    finally:
        closers = {"kafka": service.broker.stop, "mongodb": service.client.close, **service.stop_hooks}
        await stop_within(tasks, closers, grace=service.settings.shutdown_grace_seconds)


def service_app(
    *,
    settings: CommonSettings,
    client: AsyncMongoClient[Document],
    broker: KafkaBroker,
    consumer_groups: dict[str, list[str]] | None = None,
    owns_keys: bool = False,
    verifiers: VerifierSource | None = None,
) -> Service:
    """An app that starts the broker, access events and the lag monitor, and closes all on shutdown.

    The service registers its start-up hooks and background tasks on the returned :class:`Service`
    once it has built them. ``consumer_groups`` maps each of the service's consumer groups to its
    topics, for the lag gauge. The service that ``owns_keys`` (registration) checks keys against its
    ``api_keys``, signatures with ``verifiers``; every other asks registration (:class:`RemoteKeyStore`).
    """
    db = database(client, settings)
    signer = EventSigner.from_settings(settings)
    access = AccessLog(broker, topic=settings.topic_access, service=settings.service_name, signer=signer)
    remote: RemoteKeyStore | None = None
    keystore: KeyStore
    if owns_keys:
        if verifiers is None:
            raise ValueError("the service that owns keys verifies signatures with its own verifiers")
        keystore = MongoKeyStore(db[API_KEYS], ttl=settings.key_cache_seconds, verifiers=verifiers)
    else:
        if verifiers is not None:
            raise ValueError("only the service that owns keys reads verifiers itself; the others ask registration")
        keystore = remote = RemoteKeyStore.of(settings)
    limiter = RateLimiter(rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst)
    watch = FailureWatch(threshold=settings.auth_failure_threshold, window=settings.auth_failure_window_seconds)
    # Registration verifies tokens itself (it sets the guard's federation); the others ask it.
    federation = None if owns_keys else RemoteFederation.of(settings)
    guard = Guard(keystore=keystore, limiter=limiter, access=access, watch=watch, federation=federation)
    readiness = Readiness({})
    monitor = LagMonitor(settings, consumer_groups, interval=settings.lag_sample_seconds) if consumer_groups else None
    supervisor = TaskSupervisor(
        first_pause=settings.background_task_restart_seconds,
        max_pause=settings.background_task_restart_max_seconds,
        settle=settings.background_task_settle_seconds,
    )

    metrics.set_build_info(settings.service_name)
    app = FastAPI(
        title=f"Model Registry: {settings.service_name}",
        description=(
            "Every refusal is `application/problem+json`. A request for a route this service does not serve "
            "answers 404 (405 for a method it does not take) naming the service that serves it."
        ),
        version=VERSION,
        lifespan=_lifespan,
    )
    problems.install(app, service=settings.service_name)
    # Added before the observing middleware below, so it runs inside it (correlation id, metrics).
    app.add_middleware(RequestBounds, guard=guard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(Observe)
    if settings.cors_allowed_origins:
        # Added last, so outermost: a browser's preflight carries no key and is answered here,
        # and every answer from inside (a 401, a 413, the 500 of a bug) gets the CORS headers.
        app.add_middleware(ListedOrigins, origins=settings.cors_allowed_origins)
    if settings.trusted_proxies:
        # Outermost of all: everything inside sees the scheme and client the trusted proxy reports.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)

    async def mongo_ping() -> None:
        await client.admin.command("ping")

    async def broker_ping() -> None:
        await kafka_ping(broker)

    readiness.checks.update({"mongodb": mongo_ping, "kafka": broker_ping})
    app.include_router(health_router(readiness, monitor.consumers if monitor else None, supervisor.down))
    service = Service(
        app=app,
        db=db,
        guard=guard,
        access=access,
        keystore=keystore,
        limiter=limiter,
        signer=signer,
        settings=settings,
        broker=broker,
        client=client,
        readiness=readiness,
        monitor=monitor,
        supervisor=supervisor,
    )
    # Every service gives freed memory back; the query replaces this round with its own ("heap"),
    # which also keeps full collections off its read model.
    if RETURN_FREE_MEMORY is not None:  # glibc's (musl and macOS have no such call)
        service.in_background("heap", lambda: return_free_memory(FREE_MEMORY_SECONDS))
    if remote is not None:
        service.on_stop("key-introspection", remote.close)
    if federation is not None:
        service.on_stop("token-introspection", federation.close)
    # Every replica drops a key (or a trust rule's principals) from its caches as soon as its event arrives.
    service.evictions = KeyEvictions(settings, keystore, signer, federation)
    service.in_background("key-evictions", service.evictions.run)
    if settings.kafka_fetch_idle_max_wait_ms:  # quiet consumers ask the broker less often
        fetch_waits = FetchWaits(settings.kafka_fetch_idle_max_wait_ms)
        fetch_waits.follow_subscribers(broker)
        service.in_background("fetch-waits", fetch_waits.run)
    app.state.service, app.state.guard = service, guard
    return service
