"""Registration refuses to delete a deployed version, knowing deployments only from the tracker's events and log."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from deploy_tracker.app import build_app as build_tracker
from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.storage import DEPLOY_OUTBOX
from registration.storage import DEPLOYED_ENVIRONMENTS
from registry_cli.config import free_port
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from registry_contract.ids import model_id, version_id
from shared.chassis.kafka import ensure_topics
from shared.chassis.signing import EventSigner
from shared.outbox.rows import outbox_row
from tests.infra import Infra
from tests.integration.registration_inprocess import registration_settings, running
from tests.integration.restarting import service_settings
from tests.kafka_tools import publish_raw
from tests.waiting import until

pytestmark = pytest.mark.integration
ARTIFACT = {"artifact_uri": "s3://models/card/1", "framework": "scikit-learn"}
TRACKER = "/registry/deploy-tracker"


def status_changed(
    team: str, name: str, version: str, environment: str, status: str, *, source: str = TRACKER, **attrs: Any
) -> CloudEvent:
    data = {
        "model_id": model_id(team, name),
        "team": team,
        "name": name,
        "version": version,
        "environment": environment,
        "previous_status": None,
        "status": status,
        "overall_status": status,
        "report_id": uuid.uuid4().hex,
    }
    return CloudEvent(
        source=source, type=messages.DEPLOYMENT_STATUS_CHANGED, subject=f"{team}/{name}", data=data, **attrs
    )


async def register(http: Any, name: str, *versions: str) -> None:
    for version in versions:
        answer = await http.post(f"/v1/models/fraud/{name}/versions", json={"version": version, **ARTIFACT})
        assert answer.status_code == 201, answer.text


async def test_a_deployed_version_is_not_deleted_a_retired_one_is_and_only_signed_events_count(
    infra: Infra, db_name: str, mongo: AsyncMongoClient[dict[str, Any]], unique: str
) -> None:
    settings = await registration_settings(infra, db_name)
    signer = EventSigner(infra.signing_key.encode())
    name = f"card-{unique}"
    key = f"fraud/{name}".encode()

    def signed(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]], bytes]:
        value, headers = signer.encode(event)
        return value, [(n, v.encode()) for n, v in headers.items()], key

    async with running(settings) as http:
        await register(http, name, "1.0.0", "2.0.0", "3.0.0")
        records = [
            signed(status_changed("fraud", name, "1.0.0", "prod", "deployed", revision=10)),
            signed(status_changed("fraud", name, "2.0.0", "prod", "deployed", revision=11)),
            signed(status_changed("fraud", name, "2.0.0", "prod", "retired", revision=13)),
            # Read late (a bootstrap, a redelivery): older than what 2.0.0's prod already says.
            signed(status_changed("fraud", name, "2.0.0", "prod", "deploying", revision=12)),
            # Anyone may produce to the topic: an unsigned record says nothing.
            (*status_changed("fraud", name, "3.0.0", "prod", "deployed", revision=14).to_kafka(), key),
            # A record of another source says nothing about deployments either.
            signed(status_changed("fraud", name, "3.0.0", "qa", "deployed", revision=15, source="/someone")),
            signed(status_changed("fraud", name, "1.0.0", "staging", "deploying", revision=16)),  # the sentinel
        ]
        await publish_raw(settings.kafka_bootstrap_servers, settings.topic_events, records)
        table = mongo[db_name][DEPLOYED_ENVIRONMENTS]

        async def sentinel_applied() -> bool:
            doc = await table.find_one({"_id": version_id("fraud", name, "1.0.0")})
            return doc is not None and "staging" in doc["environments"]

        await until(sentinel_applied, what="the tracker's events applied")
        deployed = await http.delete(f"/v1/models/fraud/{name}/versions/1.0.0")
        retired = await http.delete(f"/v1/models/fraud/{name}/versions/2.0.0")
        forged = await http.delete(f"/v1/models/fraud/{name}/versions/3.0.0")
    assert deployed.status_code == 409, deployed.text
    assert "prod" in deployed.json()["detail"] and "staging" in deployed.json()["detail"]
    assert (retired.status_code, forged.status_code) == (204, 204)
    assert await table.find_one({"_id": version_id("fraud", name, "3.0.0")}) is None


@contextlib.asynccontextmanager
async def serving_app(app: FastAPI, port: int) -> AsyncIterator[None]:
    """``app`` with its lifespan on a real loopback port, as another process would reach it."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        assert not task.done(), "the tracker stopped before it started"
        return bool(server.started)

    await until(started, timeout=30, what="the tracker serving")
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def test_a_first_start_learns_deployments_from_the_tracker_log_once_the_tracker_answers(
    infra: Infra, db_name: str, mongo: AsyncMongoClient[dict[str, Any]], unique: str
) -> None:
    port = free_port()
    settings = await registration_settings(infra, db_name, deploy_tracker_url=f"http://127.0.0.1:{port}")
    tracker_settings = service_settings("deploy-tracker", infra, f"{db_name}_tracker")
    assert isinstance(tracker_settings, DeployTrackerSettings)
    await ensure_topics(tracker_settings, partitions=1)
    name = f"card-{unique}"
    # What the tracker published before registration kept a table: 1.0.0 went to prod.
    event = status_changed("fraud", name, "1.0.0", "prod", "deployed", time=datetime.now(UTC))
    row = outbox_row(event, key=f"fraud/{name}", team="fraud", model_id=model_id("fraud", name))
    row |= {"position": 1_000, "seq": 1, "writer": "an-earlier-tracker"}
    await mongo[tracker_settings.mongodb_database][DEPLOY_OUTBOX].insert_one(row)
    table = mongo[db_name][DEPLOYED_ENVIRONMENTS]
    try:
        async with running(settings) as http:
            # The tracker is away: registration serves all the same, and keeps trying.
            await register(http, name, "1.0.0", "2.0.0")
            assert await table.find_one({"_id": "~bootstrap"}) is None
            async with serving_app(build_tracker(tracker_settings), port):

                async def bootstrapped() -> bool:
                    mark = await table.find_one({"_id": "~bootstrap"})
                    return mark is not None and mark["done"]

                await until(bootstrapped, timeout=60, what="the bootstrap from the tracker's log")
            deployed = await http.delete(f"/v1/models/fraud/{name}/versions/1.0.0")
            other = await http.delete(f"/v1/models/fraud/{name}/versions/2.0.0")
    finally:
        await mongo.drop_database(tracker_settings.mongodb_database)
    assert deployed.status_code == 409 and "prod" in deployed.json()["detail"], deployed.text
    assert other.status_code == 204
    stored = await table.find_one({"_id": version_id("fraud", name, "1.0.0")})
    assert stored is not None and stored["environments"]["prod"] == {"status": "deployed", "revision": 1_000}
