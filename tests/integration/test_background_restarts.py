"""Every background task of every service is restarted when it dies, counted, and named by /readyz while down.

Each service runs in-process (its lifespan starts its tasks) over the session's broker and
database, on topics and a database of the test's own, with quick restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from cryptography.fernet import Fernet
from fastapi import FastAPI
from faststream.kafka.subscriber.usecase import BatchSubscriber
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from audit.app import build_app as build_audit
from deploy_tracker.app import build_app as build_deploy_tracker
from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.secret_box import SecretBox
from deploy_tracker.webhook_secrets import new_secret
from deploy_tracker.webhooks import DeliveryWorker, fan_out
from query import mcp_server
from query.app import build_app as build_query
from query.config import QuerySettings
from query.search_projection import SearchProjection
from registration.app import build_app as build_registration
from registration.config import RegistrationSettings
from registration.repository import MongoRepository
from shared.chassis.http_app import stop_within
from shared.chassis.kafka import ensure_topics
from shared.chassis.keystore import issue_key
from shared.chassis.mongo import WEBHOOK_DELIVERIES, WEBHOOKS, ensure_indexes
from shared.chassis.settings import CommonSettings
from shared.chassis.supervision import Background, TaskSupervisor
from shared.contract.envelope import CloudEvent
from tests.factories import ADMIN_KEY, binary_record, register_event, store_admin_key
from tests.infra import Infra
from tests.integration.audit_settings import audit_settings
from tests.kafka_tools import Collector, caused_by, publish_raw
from tests.waiting import serving, until

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
# Restart quickly, and count a restarted task as up once it has run half a second.
QUICK_RESTARTS = {
    "background_task_restart_seconds": 0.05,
    "background_task_restart_max_seconds": 0.2,
    "background_task_settle_seconds": 0.5,
}
# What each service runs in the background: the chassis' tasks and the service's own.
CHASSIS = {"access-events", "readiness", "key-evictions"}
TASKS = {
    "registration": {*CHASSIS, "consumer-lag", "outbox-relay"},
    "query": {*CHASSIS, "search-projection", "feed-cache", "mcp"},
    "deploy-tracker": {*CHASSIS, "consumer-lag", "deploy-outbox-relay", "webhook-deliveries"},
    "audit": {*CHASSIS, "consumer-lag"},
}


def shared_settings(infra: Infra, db_name: str) -> dict[str, Any]:
    """Settings every service of one test shares: endpoints, its own topics and database, quick restarts."""
    suffix, env = uuid.uuid4().hex[:8], infra.env()
    return {
        "kafka_bootstrap_servers": infra.kafka_bootstrap,
        "mongodb_uri": infra.mongodb_uri,
        "mongodb_database": db_name,
        "kafka_enable_idempotence": infra.idempotence,
        "kafka_session_timeout_ms": int(env["KAFKA_SESSION_TIMEOUT_MS"]),
        "kafka_heartbeat_interval_ms": int(env["KAFKA_HEARTBEAT_INTERVAL_MS"]),
        "kafka_fetch_max_wait_ms": int(env["KAFKA_FETCH_MAX_WAIT_MS"]),
        "kafka_topic_partitions": 1,
        "topic_commands": f"commands-{suffix}",
        "topic_events": f"events-{suffix}",
        "topic_deploy": f"deploy-{suffix}",
        "topic_access": f"access-{suffix}",
        "lag_sample_seconds": 1,
        "event_signing_key": infra.signing_key,
        **QUICK_RESTARTS,
    }


def service_settings(service: str, infra: Infra, db_name: str) -> CommonSettings:
    common = shared_settings(infra, db_name)
    group = f"{service}-{uuid.uuid4().hex[:8]}"
    if service == "registration":
        return RegistrationSettings(**common, consumer_group=group, relay_interval_seconds=0.05)
    if service == "query":
        return QuerySettings(**common)
    if service == "deploy-tracker":
        keys = Fernet.generate_key().decode()
        return DeployTrackerSettings(
            **common, consumer_group=group, webhook_group=f"{group}-w", webhook_secret_keys=keys
        )
    return audit_settings(infra, db_name).model_copy(update=QUICK_RESTARTS)  # its topics, group and chain key


BUILD: dict[str, Callable[[Any], FastAPI]] = {
    "registration": build_registration,
    "query": build_query,
    "deploy-tracker": build_deploy_tracker,
    "audit": build_audit,
}


class Outage:
    """A fault injected into background work: what it breaks raises while the outage lasts."""

    def __init__(self) -> None:
        self.on = False
        self.raised = 0

    def fail(self) -> None:
        if self.on:
            self.raised += 1
            raise AutoReconnect("connection reset by peer (injected)")

    def breaking(self, run: Background) -> Background:
        """``run``, failing at its start while the outage lasts."""

        async def broken() -> None:
            self.fail()
            await run()

        return broken


def restarts(task: str) -> float:
    return REGISTRY.get_sample_value("registry_background_task_restarts_total", {"task": task}) or 0.0


def task_up(task: str) -> float | None:
    return REGISTRY.get_sample_value("registry_background_task_up", {"task": task})


@contextlib.asynccontextmanager
async def running(app: FastAPI, base_url: str, headers: Mapping[str, str] = ADMIN) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url, headers=dict(headers), timeout=10) as http:
            yield http


async def tasks_down(http: httpx.AsyncClient) -> set[str]:
    """The background tasks ``/readyz`` names as down (empty when it answers 200)."""
    response = await http.get("/readyz")
    if response.status_code == 200:
        return set()
    assert response.status_code == 503, response.text
    return {error["task"] for error in response.json()["errors"] if "task" in error}


async def wait_down(http: httpx.AsyncClient, names: Iterable[str]) -> None:
    wanted = set(names)

    async def named() -> bool:
        return wanted <= await tasks_down(http)

    await until(named, what=f"/readyz naming {sorted(wanted)} as down", interval=0.02)


async def wait_ready(http: httpx.AsyncClient) -> None:
    async def ready() -> bool:
        return (await http.get("/readyz")).status_code == 200

    await until(ready, timeout=30, what="/readyz answering 200 again")


@pytest.mark.parametrize("service", list(TASKS))
async def test_every_background_task_of_the_service_is_restarted_while_it_dies_and_ready_once_it_runs(
    service: str, infra: Infra, db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = service_settings(service, infra, db_name)
    await ensure_topics(settings)
    outage = Outage()
    start = TaskSupervisor.start

    def start_breaking(self: TaskSupervisor, tasks: Mapping[str, Background]) -> list[Any]:
        return start(self, {name: outage.breaking(run) for name, run in tasks.items()})

    monkeypatch.setattr(TaskSupervisor, "start", start_breaking)
    before = {name: restarts(name) for name in TASKS[service]}
    outage.on = True  # every task dies at its start until the outage ends
    async with running(BUILD[service](settings), f"http://{service}") as http:
        await wait_down(http, TASKS[service])

        async def restarted_each() -> bool:
            return all(restarts(name) > before[name] for name in TASKS[service])

        await until(restarted_each, what="every task restarted at least once")
        assert all(task_up(name) == 0 for name in TASKS[service])
        assert (await http.get("/healthz")).status_code == 200  # alive: the process needs no restart

        outage.on = False
        await wait_ready(http)
        assert all(task_up(name) == 1 for name in TASKS[service])
        assert await tasks_down(http) == set()


async def test_an_outbox_relay_that_dies_at_start_is_restarted_and_publishes_what_was_registered(
    infra: Infra, db_name: str, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    # The relay registers its writer before its loop, outside the loop's own retries: with MongoDB
    # away at that moment, the task used to die and nothing was ever published again.
    settings = service_settings("registration", infra, db_name)
    assert isinstance(settings, RegistrationSettings)
    await ensure_topics(settings)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
    await store_admin_key(client[db_name])
    await client.close()
    outage = Outage()
    register_writer = MongoRepository.register_writer

    async def failing_register_writer(self: MongoRepository) -> None:
        outage.fail()
        await register_writer(self)

    monkeypatch.setattr(MongoRepository, "register_writer", failing_register_writer)
    before = restarts("outbox-relay")
    outage.on = True
    async with (
        Collector(infra.kafka_bootstrap, settings.topic_events) as events,
        running(build_registration(settings), "http://registration") as http,
    ):
        await wait_down(http, ["outbox-relay"])
        body = {"version": "1.0.0", "framework": "xgboost", "artifact_uri": "s3://ml-models/relay/1.0.0/model.tar.gz"}
        created = await http.post(f"/v1/models/r-{unique}/relay/versions", json=body)
        assert created.status_code == 201, created.text  # the write is committed; only its event waits
        await until(lambda: asyncio.sleep(0, restarts("outbox-relay") > before), what="the relay restarted")

        outage.on = False
        await wait_ready(http)
        await events.wait_for(lambda record: record.key == f"r-{unique}/relay".encode())


async def reader_key(infra: Infra, db_name: str, team: str) -> dict[str, str]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
    try:
        await store_admin_key(client[db_name])
        key, _ = await issue_key(
            client[db_name]["api_keys"], team=team, name="reader", scopes=["models:read"], created_by="tests"
        )
    finally:
        await client.close()
    return {"Authorization": f"Bearer {key.token}"}


async def test_a_search_projection_that_dies_is_restarted_and_an_unshare_then_hides_the_model(
    infra: Infra, db_name: str, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    # The finding: apply() raised once (a MongoDB error), the task stayed dead and /readyz 200, and
    # the team the model was unshared from kept finding it, description and snippets included.
    common = shared_settings(infra, db_name)
    registration = RegistrationSettings(**common, consumer_group=f"r-{unique}", relay_interval_seconds=0.05)
    await ensure_topics(registration)
    owner, other, word = f"own-{unique}", f"other-{unique}", f"quokka{unique}"
    theirs = await reader_key(infra, db_name, other)
    outage = Outage()
    apply = SearchProjection.apply

    async def failing_apply(self: SearchProjection, records: Iterable[Any]) -> None:
        batch = list(records)
        if outage.on and (batch or outage.raised):
            outage.fail()  # from the first batch of events once armed (the unshare's) until repaired
        await apply(self, batch)

    monkeypatch.setattr(SearchProjection, "apply", failing_apply)
    before = restarts("search-projection")
    async with (
        running(build_registration(registration), "http://registration") as writes,
        running(build_query(QuerySettings(**common)), "http://query", theirs) as reads,
    ):
        model = f"/v1/models/{owner}/secret-model"
        body = {
            "version": "1.0.0",
            "framework": "xgboost",
            "artifact_uri": "s3://ml-models/secret/1.0.0",
            "description": f"{word} pricing",
        }
        assert (await writes.post(f"{model}/versions", json=body)).status_code == 201
        assert (await writes.put(f"{model}/shares/{other}")).status_code == 200

        async def found_by_them() -> bool:
            response = await reads.get("/v1/assistant/search", params={"q": word})
            return response.status_code == 200 and response.json()["total"] == 1

        await until(found_by_them, what="the shared model in the other team's search")
        await wait_ready(reads)

        outage.on = True
        assert (await writes.delete(f"{model}/shares/{other}")).status_code == 204
        await wait_down(reads, ["search-projection"])
        assert outage.raised >= 1

        outage.on = False
        await wait_ready(reads)
        assert restarts("search-projection") > before
        page = (await reads.get("/v1/assistant/search", params={"q": word})).json()
        assert page["total"] == 0 and page["items"] == []
        owners = await reads.get("/v1/assistant/search", params={"q": word}, headers=ADMIN)
        assert owners.json()["total"] == 1  # the index is whole again, not emptied

        # And the restarted projection follows events again: shared anew, found anew.
        assert (await writes.put(f"{model}/shares/{other}")).status_code == 200
        await until(found_by_them, what="the re-shared model in the other team's search")


async def test_a_consumer_whose_fetch_loop_dies_is_restarted_and_handles_commands_again(
    infra: Infra, db_name: str, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    # The consumers' fetch loops are FastStream's tasks, restarted by FastStream itself (handler
    # errors never reach them: consuming.BatchRunner). This pins that a loop that dies comes back.
    settings = service_settings("registration", infra, db_name)
    assert isinstance(settings, RegistrationSettings)
    await ensure_topics(settings)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
    await store_admin_key(client[db_name])
    await client.close()
    broken: list[str] = []
    get_msg = BatchSubscriber.get_msg

    async def failing_get_msg(self: BatchSubscriber, consumer: AIOKafkaConsumer) -> Any:
        if not broken:
            broken.append("fetch")
            raise RuntimeError("the fetch loop broke (injected)")
        return await get_msg(self, consumer)

    monkeypatch.setattr(BatchSubscriber, "get_msg", failing_get_msg)
    command = register_event(f"c-{unique}", "model", token=ADMIN_KEY.token)
    async with (
        running(build_registration(settings), "http://registration"),
        Collector(infra.kafka_bootstrap, settings.topic_events) as events,
    ):
        await publish_raw(
            infra.kafka_bootstrap, settings.topic_commands, [(*binary_record(command), f"c-{unique}/model".encode())]
        )
        await events.wait_for(caused_by(command.id))  # its outcome, whatever it is: the command was consumed
    assert broken == ["fetch"]


async def test_an_mcp_endpoint_whose_session_manager_died_is_restarted_and_answers_again(
    infra: Infra, db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK's session manager runs once per instance: restarted as it was, the task died again at
    # once, for ever, and /mcp answered 503 "starting or stopping".
    settings = QuerySettings(**shared_settings(infra, db_name))
    await ensure_topics(settings)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
    await store_admin_key(client[db_name])
    await client.close()
    died: list[str] = []

    async def serve_then_fail_once() -> None:
        if not died:  # while its session manager runs, as a failure of its task group would
            died.append("mcp")
            raise RuntimeError("the session manager's task group failed (injected)")
        await anyio.sleep_forever()

    monkeypatch.setattr(mcp_server, "anyio", SimpleNamespace(sleep_forever=serve_then_fail_once))
    before = restarts("mcp")
    async with running(build_query(settings), "http://query") as http:
        await until(lambda: asyncio.sleep(0, restarts("mcp") > before), what="the MCP task restarted")
        await wait_ready(http)
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"},
            },
        }
        answer = await http.post("/mcp", json=initialize, headers={"Accept": "application/json, text/event-stream"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["serverInfo"]["name"]
    assert died == ["mcp"]


async def test_a_webhook_worker_that_died_delivers_what_was_queued_while_it_was_down(
    infra: Infra, db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    db = client[db_name]
    await ensure_indexes(db, [WEBHOOKS, WEBHOOK_DELIVERIES])
    box = SecretBox([Fernet.generate_key().decode()])
    worker = DeliveryWorker(db, DeployTrackerSettings(allow_private_webhooks=True), box=box)
    hits: list[str] = []

    async def hook(request: Request) -> Response:
        hits.append(request.headers.get("content-type", ""))
        return Response(status_code=204)

    outage = Outage()
    make_client = httpx.AsyncClient

    def failing_client(**options: Any) -> httpx.AsyncClient:
        outage.fail()  # e.g. a CA bundle that cannot be read while it is being replaced
        return make_client(**options)

    monkeypatch.setattr(httpx, "AsyncClient", failing_client)  # only the worker makes clients here
    supervisor = TaskSupervisor(first_pause=0.05, max_pause=0.2, settle=0.2)
    outage.on = True
    try:
        async with serving([Route("/hook", hook, methods=["POST"])]) as port:
            await db[WEBHOOKS].insert_one(
                {"_id": "wh_restart", "team": "t", "url": f"http://127.0.0.1:{port}/hook", "event_types": ["*"]}
                | {"active": True, "secret": box.seal(new_secret())}
            )
            (running,) = supervisor.start({"webhook-deliveries": worker.run})
            await until(lambda: asyncio.sleep(0, "webhook-deliveries" in supervisor.down()), what="the worker died")
            events = [CloudEvent(source="/t", type="t", data={"team": "t", "n": n}) for n in range(3)]
            worker.enqueue(await fan_out(db, events))  # queued while the worker is down

            outage.on = False
            await until(lambda: asyncio.sleep(0, len(hits) == 3), what="the three deliveries made after the restart")
            await until(lambda: asyncio.sleep(0, supervisor.down() == {}), what="the worker up again")
            await stop_within([running], {}, grace=5)
    finally:
        await client.drop_database(db_name)
        await client.close()
