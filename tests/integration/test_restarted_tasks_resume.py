"""What a background task does once restarted: publishes, re-indexes, answers, delivers what waited.

Each test breaks one task the way it breaks in production, sees it restarted, and then checks
that its work resumes with nothing lost.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from pymongo import AsyncMongoClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.secret_box import SecretBox
from deploy_tracker.storage import WEBHOOK_DELIVERIES, WEBHOOKS, declared_indexes
from deploy_tracker.webhook_secrets import new_secret
from deploy_tracker.webhooks import DeliveryWorker, fan_out
from query.app import build_app as build_query
from query.config import QuerySettings
from query.search.projection import SearchProjection
from registration.app import build_app as build_registration
from registration.config import RegistrationSettings
from registration.repository import MongoRepository
from registry_contract.envelope import CloudEvent
from shared.chassis.http_app import stop_within
from shared.chassis.kafka import ensure_topics
from shared.chassis.keystore import issue_key
from shared.chassis.mongo import ensure_indexes
from shared.chassis.supervision import TaskSupervisor
from tests.factories import store_admin_key
from tests.infra import Infra
from tests.integration.key_owner import asking_registration_for_keys
from tests.integration.restarting import (
    ADMIN,
    Outage,
    registration_with_admin,
    restarts,
    running,
    shared_settings,
    wait_down,
    wait_ready,
)
from tests.kafka_tools import Collector
from tests.waiting import serving, until

pytestmark = pytest.mark.integration


async def test_an_outbox_relay_that_dies_at_start_is_restarted_and_publishes_what_was_registered(
    infra: Infra, db_name: str, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    # The relay registers its writer before its loop, outside the loop's own retries: with MongoDB
    # away at that moment, the task used to die and nothing was ever published again.
    settings = await registration_with_admin(infra, db_name)
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
    # The finding: apply() raised once (then a MongoDB error), the task stayed dead and /readyz 200, and
    # the team the model was unshared from kept finding it, description and snippets included.
    common = shared_settings(infra, db_name)
    registration = RegistrationSettings(**common, consumer_group=f"r-{unique}", relay_interval_seconds=0.05)
    await ensure_topics(registration, partitions=1)
    owner, other, word = f"own-{unique}", f"other-{unique}", f"quokka{unique}"
    theirs = await reader_key(infra, db_name, other)
    outage = Outage()
    apply = SearchProjection.apply

    async def failing_apply(self: SearchProjection, changed: set[str]) -> None:
        if outage.on and (changed or outage.raised):
            outage.fail()  # from the first change once armed (the unshare's) until repaired
        await apply(self, changed)

    monkeypatch.setattr(SearchProjection, "apply", failing_apply)
    before = restarts("search-projection")
    async with (
        running(build_registration(registration), "http://registration") as writes,
        asking_registration_for_keys(QuerySettings(**common)) as query,  # keys are registration's
        running(build_query(query), "http://query", theirs) as reads,
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
        # While down, its index no longer follows the events: search refuses rather than show the
        # model to the team it was just unshared from (the console and MCP search call this route).
        # The supervisor may already have restarted it: a restart builds the index afresh from the
        # read model, which holds the unshare, so a search that answers must not show the model.
        refused = await reads.get("/v1/assistant/search", params={"q": word})
        if refused.status_code == 503:
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert int(refused.headers["Retry-After"]) > 0 and word not in refused.text
        else:
            assert refused.status_code == 200 and refused.json()["total"] == 0, refused.text

        outage.on = False
        await wait_ready(reads)
        assert restarts("search-projection") > before
        searched = await reads.get("/v1/assistant/search", params={"q": word})
        assert searched.status_code == 200, searched.text
        page = searched.json()
        assert page["total"] == 0 and page["items"] == []
        owners = await reads.get("/v1/assistant/search", params={"q": word}, headers=ADMIN)
        assert owners.json()["total"] == 1  # the index is whole again, not emptied

        # And the restarted projection follows events again: shared anew, found anew.
        assert (await writes.put(f"{model}/shares/{other}")).status_code == 200
        await until(found_by_them, what="the re-shared model in the other team's search")


async def test_a_webhook_worker_that_died_delivers_what_was_queued_while_it_was_down(
    infra: Infra, db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    db = client[db_name]
    await ensure_indexes(db, declared_indexes(), [WEBHOOKS, WEBHOOK_DELIVERIES])
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
