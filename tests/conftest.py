"""Test infrastructure: the embedded broker and database (or real ones), chosen by a setting.

``REGISTRY_TEST_INFRA`` = ``embedded`` (default: start the embedded Kafka and MongoDB stand-ins),
``testcontainers`` (real Apache Kafka and a MongoDB replica set in Docker) or ``external``
(``KAFKA_BOOTSTRAP_SERVERS`` and ``MONGODB_URI`` point at running servers).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from registry_cli.config import StackSettings
from registry_cli.secrets import load_or_create
from registry_cli.stack import EmbeddedStack
from shared.chassis.logs import configure_logging
from tests.browser import browser_page, chromium_browser, phone_page
from tests.factories import ADMIN_KEY
from tests.infra import Infra, external_infra, testcontainers_infra
from tests.mlflow_server import mlflow_server
from tests.oidc_provider import STACK_IDENTITY_PREFIXES, OidcProvider, stack_environment
from tests.throwaway import throwaway_settings

# Fixtures defined elsewhere: a seeded MLflow tracking server, and Debian's Chromium driven by
# Playwright (one browser per run; a page per test, desktop- or phone-sized).
__all__ = ["browser_page", "chromium_browser", "mlflow_server", "phone_page"]


def _stack_settings(tmp: Path) -> StackSettings:
    return throwaway_settings(tmp, partitions=3, bootstrap_admin_key=ADMIN_KEY.token, prometheus_scrape_interval="1s")


@pytest.fixture(scope="session")
async def infra(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Infra]:
    """Kafka and MongoDB endpoints for the whole run."""
    mode = os.environ.get("REGISTRY_TEST_INFRA", "embedded")
    if mode == "external":
        yield external_infra()
        return
    if mode == "testcontainers":
        with testcontainers_infra() as endpoints:
            yield endpoints
        return
    # Services inherit the environment: a short key cache makes revocation tests quick.
    os.environ.setdefault("KEY_CACHE_SECONDS", "1")
    # Consumer lag is sampled every second instead of every 15 s, so tests see it move.
    os.environ.setdefault("LAG_SAMPLE_SECONDS", "1")
    # A stopped service closes what its peers left open after a second, not five (TLS stacks).
    os.environ.setdefault("HTTP_SHUTDOWN_SECONDS", "1")
    # Webhook tests deliver to a receiver on loopback, with quick retries and time-outs.
    os.environ.setdefault("DEPLOY_TRACKER_ALLOW_PRIVATE_WEBHOOKS", "true")
    os.environ.setdefault("DEPLOY_TRACKER_WEBHOOK_BACKOFF_SECONDS", "0.2")
    os.environ.setdefault("DEPLOY_TRACKER_WEBHOOK_TIMEOUT_SECONDS", "1")
    os.environ.setdefault("DEPLOY_TRACKER_WEBHOOK_MAX_ATTEMPTS", "3")
    # Versions go to work in `secure` only with verified provenance (tests/e2e/test_provenance.py).
    os.environ.setdefault("DEPLOY_TRACKER_PROVENANCE_ENVIRONMENTS", "secure")
    settings = _stack_settings(tmp_path_factory.mktemp("stack"))
    stack = EmbeddedStack(settings, quiet=True)
    await stack.start_infrastructure()
    try:
        secrets = load_or_create(settings.data_dir)
        yield Infra(
            kafka_bootstrap=settings.kafka_bootstrap,
            mongodb_uri=settings.mongodb_uri,
            idempotence=False,
            stack=stack,
            signing_key=secrets.event_signing_key,
            audit_chain_key=secrets.audit_chain_key,
            audit_signing_key=secrets.audit_signing_key,
        )
    finally:
        await stack.stop()


@pytest.fixture(scope="session")
async def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OidcProvider]:
    """A real OpenID Connect provider on loopback, which the end-to-end stack trusts."""
    provider = OidcProvider(tmp_path_factory.mktemp("oidc"))
    await provider.start()
    try:
        yield provider
    finally:
        await provider.stop()


@pytest.fixture(scope="session")
async def stack(infra: Infra, oidc_provider: OidcProvider) -> AsyncIterator[EmbeddedStack]:
    """The four services as separate processes over the session's broker and database."""
    if infra.stack is None:
        pytest.fail("the end-to-end stack needs REGISTRY_TEST_INFRA=embedded")
    os.environ.update(stack_environment(oidc_provider))  # the services inherit it
    await infra.stack.start_services()
    yield infra.stack


@pytest.fixture
async def mongo_database(infra: Infra, db_name: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """A fresh database on the session's MongoDB, dropped afterwards."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    yield client[db_name]
    await client.drop_database(db_name)
    await client.close()


@pytest.fixture
def db_name() -> str:
    """A fresh database per test, so tests never see each other's documents."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def mongo(infra: Infra) -> AsyncIterator[AsyncMongoClient[dict[str, object]]]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    yield client
    await client.close()


@pytest.fixture
def unique() -> Iterator[str]:
    """A fresh slug fragment for names, so tests never collide."""
    yield uuid.uuid4().hex[:10]


@pytest.fixture(autouse=True)
def _dump_tasks_before_the_timeout(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print every asyncio task's stack shortly before pytest-timeout fires.

    pytest-timeout shows only thread stacks, and an async test that hangs is an idle event loop
    in ``select``: the awaiting coroutine is what says where it hangs.
    """
    timeout = request.config.getini("timeout")
    delay = float(timeout) - 30 if timeout else 0
    if delay <= 0:
        yield
        return
    timer = threading.Timer(delay, _dump_tasks)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _dump_tasks() -> None:
    loop = _session_loop
    if loop is None or loop.is_closed():
        return

    def dump() -> None:
        for task in asyncio.all_tasks(loop):
            print(f"--- {task.get_name()}", file=sys.stderr)
            task.print_stack(file=sys.stderr)

    loop.call_soon_threadsafe(dump)


_session_loop: asyncio.AbstractEventLoop | None = None


@pytest.fixture(scope="session", autouse=True)
async def _remember_the_session_loop() -> AsyncIterator[None]:
    global _session_loop
    _session_loop = asyncio.get_running_loop()
    yield
    _session_loop = None


@pytest.fixture(autouse=True)
async def _no_background_task_outlives_its_service() -> AsyncIterator[None]:
    """Fail a test whose in-process service left a supervised background task running.

    Every test shares one event loop: a task that survived its service's shutdown (it swallowed
    the cancellation) runs for the rest of the session and slows every test after it.
    """
    before = asyncio.all_tasks()
    yield
    leaked = [
        task
        for task in asyncio.all_tasks() - before
        if not task.done() and getattr(task.get_coro(), "__qualname__", "") == "TaskSupervisor.keep"
    ]
    for task in leaked:
        task.cancel()  # the next tests run without it
    names = sorted(task.get_name() for task in leaked)
    assert not leaked, f"background tasks still running after their service stopped: {names}"


def pytest_configure(config: pytest.Config) -> None:
    """Log in-process services as the services log: plain text at INFO.

    Unconfigured, structlog prints every DEBUG line and renders each traceback with rich, which
    costs a CPU-second a time: a task failing in a loop then starves the event loop every test shares.
    """
    configure_logging(service="tests", fmt="console", level="INFO")


# Every test is one of these kinds, so that selecting by kind (``-m unit``) runs every test of it.
KINDS = ("unit", "integration", "e2e", "deploy")


def unmarked_modules(items: Iterable[pytest.Item]) -> list[str]:
    """The modules holding a test marked with none of :data:`KINDS`, sorted."""
    return sorted(
        {item.nodeid.split("::")[0] for item in items if not any(item.get_closest_marker(kind) for kind in KINDS)}
    )


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects: an unmarked test fails the run whatever is selected
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a test of no kind; then run the scan of every topic for credentials last, after the suite's traffic."""
    unmarked = unmarked_modules(items)
    if unmarked:
        raise pytest.UsageError(
            f"tests with none of the markers {', '.join(KINDS)} (set pytestmark in the module): {', '.join(unmarked)}"
        )
    items.sort(key=lambda item: item.nodeid.startswith("tests/e2e/test_nothing_on_the_bus.py"))


@pytest.fixture(autouse=True)
def _only_the_stack_trusts_the_test_provider(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide the identity settings the session's stack was started with from tests that build settings themselves.

    The services inherit them through the environment (see ``stack``); a unit or integration test
    that makes ``RegistrationSettings()`` or ``QuerySettings()`` must see the defaults, whatever ran before.
    """
    if request.node.get_closest_marker("e2e"):
        return
    for name in [name for name in os.environ if name.startswith(STACK_IDENTITY_PREFIXES)]:
        monkeypatch.delenv(name)
