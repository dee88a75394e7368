"""The registration service in-process against the embedded broker and database."""

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from pymongo import AsyncMongoClient

from registration.app import build_app
from registration.config import RegistrationSettings
from registration.handlers import Command, handle_commands
from registration.repository import MongoRepository
from registration.storage import create_indexes
from registry_contract import messages
from shared.chassis.kafka import ensure_topics
from tests.factories import (
    ADMIN_KEY,
    PRODUCER,
    binary_record,
    register_data,
    register_event,
    store_admin_key,
    structured_record,
)
from tests.infra import Infra
from tests.kafka_tools import Collector, caused_by, header, publish_raw

pytestmark = pytest.mark.integration


@pytest.fixture
async def settings(infra: Infra, db_name: str) -> RegistrationSettings:
    suffix = uuid.uuid4().hex[:8]
    env = infra.env()
    result = RegistrationSettings(
        kafka_bootstrap_servers=infra.kafka_bootstrap,
        mongodb_uri=infra.mongodb_uri,
        mongodb_database=db_name,
        kafka_enable_idempotence=infra.idempotence,
        kafka_session_timeout_ms=int(env["KAFKA_SESSION_TIMEOUT_MS"]),
        kafka_heartbeat_interval_ms=int(env["KAFKA_HEARTBEAT_INTERVAL_MS"]),
        kafka_fetch_max_wait_ms=int(env["KAFKA_FETCH_MAX_WAIT_MS"]),
        topic_commands=f"commands-{suffix}",
        topic_events=f"events-{suffix}",
        topic_deploy=f"deploy-{suffix}",
        topic_access=f"access-{suffix}",
        consumer_group=f"registration-{suffix}",
        relay_interval_seconds=0.05,
        event_signing_key=infra.signing_key,
    )
    await ensure_topics(result, partitions=3)
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongodb_uri)
    await store_admin_key(client[db_name], signing_key=infra.signing_key)
    await client.close()
    return result


@contextlib.asynccontextmanager
async def running(settings: RegistrationSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://registration", headers=headers) as client:
            yield client


def key_of(data: dict[str, str]) -> bytes:
    return f"{data['team']}/{data['name']}".encode()


class TestKafkaCommands:
    async def test_a_binary_mode_command_is_stored_and_answered_once(
        self, settings: RegistrationSettings, mongo: AsyncMongoClient[dict[str, object]], unique: str
    ) -> None:
        command = register_event("fraud", f"m-{unique}", token=ADMIN_KEY.token)
        # The sentinel: a later version of the same model, so the same key and partition on both topics.
        marker = register_event("fraud", f"m-{unique}", "2.0.0", token=ADMIN_KEY.token)
        value, headers = binary_record(command)
        key = key_of(command.data)
        async with running(settings), Collector(settings.kafka_bootstrap_servers, settings.topic_events) as events:
            redelivered_twice = [(value, headers, key)] * 2  # same ce_id
            await publish_raw(
                settings.kafka_bootstrap_servers,
                settings.topic_commands,
                [*redelivered_twice, (*binary_record(marker), key)],
            )
            await events.wait_for(caused_by(marker.id))
            # An outcome of the redelivery would have been published before the marker's.
            [event, *redelivered] = events.matching(caused_by(command.id))
            assert not redelivered
        assert header(event, "ce_type") == messages.MODEL_VERSION_REGISTERED
        assert header(event, "ce_correlationid") == command.correlation_id
        assert event.key == key_of(command.data)
        db = mongo[settings.mongodb_database]
        assert await db.model_versions.count_documents({"name": f"m-{unique}", "version": "1.0.0"}) == 1

    async def test_structured_mode_is_accepted(self, settings: RegistrationSettings, unique: str) -> None:
        command = register_event("fraud", f"s-{unique}", token=ADMIN_KEY.token)
        value, headers = structured_record(command)
        async with running(settings), Collector(settings.kafka_bootstrap_servers, settings.topic_events) as events:
            await publish_raw(
                settings.kafka_bootstrap_servers, settings.topic_commands, [(value, headers, key_of(command.data))]
            )
            [event] = await events.wait_for(caused_by(command.id))
        assert header(event, "ce_type") == messages.MODEL_VERSION_REGISTERED

    async def test_garbage_goes_to_the_dead_letter_topic_and_the_partition_keeps_moving(
        self, settings: RegistrationSettings, unique: str
    ) -> None:
        command = register_event("fraud", f"g-{unique}", token=ADMIN_KEY.token)
        value, headers = binary_record(command)
        key = key_of(command.data)  # same key, same partition: the valid record comes after the poison
        dlq = f"{settings.topic_commands}.dlq"
        async with (
            running(settings),
            Collector(settings.kafka_bootstrap_servers, settings.topic_events, dlq) as seen,
        ):
            await publish_raw(
                settings.kafka_bootstrap_servers,
                settings.topic_commands,
                [
                    (b"\x00\xffnot json", [], key),
                    (json.dumps({"data": 1}).encode(), [("content-type", b"application/cloudevents+json")], key),
                    (value, headers, key),
                ],
            )
            await seen.wait_for(caused_by(command.id))
            dead = await seen.wait_for(lambda r: r.topic == dlq, count=2)
        assert dead[0].value == b"\x00\xffnot json"
        assert [header(r, "dlq_reason") for r in dead] == ["not_json", "malformed"]
        assert header(dead[0], "dlq_source_topic") == settings.topic_commands

    async def test_an_invalid_command_gets_a_command_rejected_event(self, settings: RegistrationSettings) -> None:
        command = register_event("Fraud", "x", "1.0", token=ADMIN_KEY.token)
        value, headers = binary_record(command)
        async with running(settings), Collector(settings.kafka_bootstrap_servers, settings.topic_events) as events:
            await publish_raw(settings.kafka_bootstrap_servers, settings.topic_commands, [(value, headers, b"Fraud/x")])
            [event] = await events.wait_for(caused_by(command.id))
        data = json.loads(event.value)
        assert header(event, "ce_type") == messages.COMMAND_REJECTED
        assert data["reason"] == "invalid" and data["command_id"] == command.id


class TestOutboxRelay:
    async def test_an_event_committed_before_a_crash_is_published_after_restart(
        self, settings: RegistrationSettings, mongo: AsyncMongoClient[dict[str, object]], unique: str
    ) -> None:
        db = mongo[settings.mongodb_database]
        await create_indexes(db)
        command = register_event("fraud", f"c-{unique}", token=ADMIN_KEY.token)
        # The write commits but the process "dies" before its relay runs: no service is running.
        dead = MongoRepository(mongo, db, writer=f"dead-{unique}")
        await dead.register_writer()
        await db.relay_checkpoints.update_one(
            {"_id": dead.writer}, {"$set": {"seen_at": datetime(2000, 1, 1, tzinfo=UTC)}}
        )
        await handle_commands([Command(command, PRODUCER)], repo=dead, artifact_schemes=["s3"])
        assert len(await dead.pending(dead.writer, 10)) == 1
        async with running(settings), Collector(settings.kafka_bootstrap_servers, settings.topic_events) as events:
            await events.wait_for(caused_by(command.id))
        assert await db.relay_checkpoints.count_documents({"_id": dead.writer}) == 0


class TestHttpWrites:
    async def test_register_update_and_lifecycle_over_http(self, settings: RegistrationSettings, unique: str) -> None:
        base = f"/v1/models/fraud/h-{unique}/versions"
        body = {k: v for k, v in register_data("fraud", f"h-{unique}").items() if k not in ("team", "name")}
        async with (
            running(settings) as http,
            Collector(settings.kafka_bootstrap_servers, settings.topic_events) as events,
        ):
            created = await http.post(base, json=body, headers={"X-Correlation-ID": "corr-1"})
            duplicate = await http.post(base, json={**body, "version": "1.0.0+other"})
            invalid = await http.post(base, json={**body, "framework": "caffe"})
            not_object = await http.post(base, json=[1, 2])
            not_json = await http.post(base, content=b"{not json", headers={"content-type": "application/json"})
            contradicting = await http.post(base, json={**body, "team": "other"})
            updated = await http.patch(f"{base}/1.0.0", json={"description": "better"})
            deprecated = await http.post(f"{base}/1.0.0/lifecycle", json={"state": "deprecated"})
            missing = await http.patch(f"{base}/9.0.0", json={"description": "x"})
            await events.wait_for(lambda r: header(r, "ce_correlationid") == "corr-1")
            # Created, duplicate (rejected), updated, deprecated, missing (rejected): a body that
            # does not match the schema is refused by HTTP validation and is no command at all.
            await events.wait_for(lambda r: True, count=5)
        assert created.status_code == 201, created.text
        assert created.headers["x-correlation-id"] == "corr-1"
        assert created.json()["version"] == "1.0.0" and created.json()["status"] == "registered"
        assert duplicate.status_code == 409
        assert duplicate.headers["content-type"] == "application/problem+json"
        assert invalid.status_code == 422 and invalid.json()["errors"][0]["loc"] == ["body", "framework"]
        assert not_object.status_code == 422 and contradicting.status_code == 422
        assert not_json.status_code == 422 and not_json.headers["content-type"] == "application/problem+json"
        assert updated.json()["description"] == "better"
        assert deprecated.json()["lifecycle"] == "deprecated"
        assert missing.status_code == 404 and missing.json()["correlation_id"]

    async def test_an_idempotency_key_replays_the_first_outcome(
        self, settings: RegistrationSettings, unique: str
    ) -> None:
        base = f"/v1/models/fraud/i-{unique}/versions"
        body = {"version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
        async with running(settings) as http:
            first = await http.post(base, json=body, headers={"Idempotency-Key": f"k-{unique}"})
            again = await http.post(base, json=body, headers={"Idempotency-Key": f"k-{unique}"})
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()


class TestHttpBounds:
    async def test_a_body_over_the_cap_is_refused_before_parsing(
        self, settings: RegistrationSettings, unique: str
    ) -> None:
        # The cap is Kafka's: a body over it, accepted over HTTP, would make an event that can never
        # be published.
        base = f"/v1/models/fraud/big-{unique}/versions"
        body = {"version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
        huge = {**body, "signature": {"inputs": ["x" * 1000] * 5_600}}

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while it streams
            yield json.dumps(huge).encode()

        async with running(settings) as http:
            refused = await http.post(base, json=huge)
            streamed = await http.post(base, content=chunked(), headers={"content-type": "application/json"})
            accepted = await http.post(base, json=body)
        for response in (refused, streamed):
            assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"] == "urn:registry:problem:too_large"
        assert accepted.status_code == 201

    async def test_a_body_without_a_key_is_refused_before_any_of_it_is_read(
        self, settings: RegistrationSettings, unique: str
    ) -> None:
        sent: list[int] = []

        async def stream() -> AsyncIterator[bytes]:
            for _ in range(64):
                sent.append(1)
                yield b" " * 65_536

        async with running(settings) as http:
            response = await http.post(
                f"/v1/models/fraud/anon-{unique}/versions",
                content=stream(),
                headers={"Authorization": "", "content-type": "application/json"},
            )
        assert response.status_code == 401
        assert len(sent) <= 1  # the service answered without draining the body

    async def test_a_team_cannot_hold_more_keys_than_its_quota(
        self, settings: RegistrationSettings, unique: str
    ) -> None:
        base = f"/v1/teams/q-{unique}/api-keys"
        async with running(settings.model_copy(update={"max_keys_per_team": 2})) as http:
            made = [await http.post(base, json={"name": f"k{n}", "scopes": ["models:read"]}) for n in range(3)]
            assert [r.status_code for r in made] == [201, 201, 409]
            assert made[2].json()["type"] == "urn:registry:problem:conflict"
            assert "REGISTRATION_MAX_KEYS_PER_TEAM" in made[2].json()["detail"]  # what would allow one more
            assert (await http.delete(f"{base}/{made[0].json()['key_id']}")).status_code == 204
            again = await http.post(base, json={"name": "k3", "scopes": ["models:read"]})
        assert again.status_code == 201
