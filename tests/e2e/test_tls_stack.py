"""``registry up --tls``: register → read over TLS on every hop, and no hop answers in the clear."""

import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, PyMongoError

from registry_cli.backup import backup
from registry_cli.config import StackSettings
from registry_cli.database_users import service_database
from registry_cli.dlq import show_dead_letters
from registry_cli.stack import EmbeddedStack
from registry_cli.stack_tls import kafka_client_options
from registry_client.cli.produce import produce_message
from tests.factories import register_data, register_event
from tests.throwaway import throwaway_settings, unthrottled_admin_key
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.own_stack]


@pytest.fixture(scope="module")
async def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[EmbeddedStack, str]]:
    settings = throwaway_settings(Path(tmp_path_factory.mktemp("tls")) / "data", tls=True)
    stack = EmbeddedStack(settings, quiet=True)
    try:
        await stack.start_infrastructure()
        await stack.start_services()
        yield stack, await unthrottled_admin_key(stack, name="tls-test")
    finally:
        await stack.stop()


def trust(settings: StackSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(settings.tls_dir / "ca.pem"))


def with_client_certificate(settings: StackSettings) -> ssl.SSLContext:
    """Trusts the stack's CA and presents the stack's client certificate (the broker's front requires one)."""
    context = trust(settings)
    context.load_cert_chain(settings.tls_dir / "client.pem", settings.tls_dir / "client-key.pem")
    return context


async def test_register_then_read_over_https_and_a_command_over_kafka_tls(tls_stack: tuple[EmbeddedStack, str]) -> None:
    stack, token = tls_stack
    settings, team = stack.settings, f"tls{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {token}"}
    assert stack.url("registration").startswith("https://")
    async with (
        httpx.AsyncClient(base_url=stack.url("registration"), headers=headers, verify=trust(settings)) as registration,
        httpx.AsyncClient(base_url=stack.url("query"), headers=headers, verify=trust(settings)) as query,
    ):
        created = await registration.post(
            f"/v1/models/{team}/ranker/versions",
            json={"version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/model.onnx"},
        )
        assert created.status_code == 201, created.text
        read = await query.get(f"/v1/models/{team}/ranker/versions/1.0.0")
        assert read.status_code == 200 and read.json()["version"] == "1.0.0"

        # The Kafka path: a command published over TLS, consumed by registration over TLS.
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            security_protocol="SSL",
            ssl_context=with_client_certificate(settings),
        )
        await producer.start()
        try:
            value, record_headers = register_event(team, "ranker", "1.1.0", token=token).to_kafka()
            await producer.send_and_wait(
                "registry.commands", value, key=f"{team}/ranker".encode(), headers=record_headers
            )
        finally:
            await producer.stop()

        async def readable() -> bool:
            return (await query.get(f"/v1/models/{team}/ranker/versions/1.1.0")).status_code == 200

        await until(readable, timeout=30, what="the command's version readable over HTTPS")

    # The audit service checks the command's signature with the verifier it fetches from
    # registration over HTTPS (INTERNAL_CA_FILE), and names the key.
    async with httpx.AsyncClient(base_url=stack.url("audit"), headers=headers, verify=trust(settings)) as audit:

        async def attributed() -> dict[str, Any] | None:
            answer = await audit.get(
                "/v1/audit", params={"team": team, "type": "registry.command.register_model_version"}
            )
            return next((e for e in answer.json()["items"] if e["topic"] == "registry.commands"), None)

        entry = await until(attributed, timeout=30, what="the Kafka command audited")
    assert (entry["verified"], entry["actor"]) == ("key", token.split("_")[1])


async def test_no_hop_answers_in_the_clear_or_to_a_client_without_a_certificate(
    tls_stack: tuple[EmbeddedStack, str],
) -> None:
    stack, _ = tls_stack
    settings = stack.settings
    plain_http = stack.url("query").replace("https://", "http://")
    async with httpx.AsyncClient(timeout=5) as http:
        with pytest.raises(httpx.HTTPError):
            await http.get(f"{plain_http}/healthz")
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=3000)
    with pytest.raises(KafkaConnectionError):
        await consumer.start()
    await consumer.stop()
    # TLS, but no client certificate: the broker's front must refuse it, as it has no other check.
    anonymous_kafka = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        security_protocol="SSL",
        ssl_context=trust(settings),
        request_timeout_ms=3000,
    )
    with pytest.raises(KafkaConnectionError):
        await anonymous_kafka.start()
    await anonymous_kafka.stop()
    uri = f"mongodb://{settings.host}:{settings.mongo_port}/?directConnection=true&serverSelectionTimeoutMS=2000"
    plain: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    with pytest.raises(PyMongoError):
        await plain.admin.command("ping")
    await plain.close()
    ca_only = uri + f"&tls=true&tlsCAFile={settings.tls_dir / 'ca.pem'}"  # TLS, but no client certificate
    anonymous: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(ca_only)
    with pytest.raises(PyMongoError):
        await anonymous.admin.command("ping")
    await anonymous.close()
    certified: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    assert (await certified.admin.command("ping"))["ok"] == 1
    await certified.close()


async def test_the_stand_ins_private_ports_give_nothing_without_credentials(
    tls_stack: tuple[EmbeddedStack, str],
) -> None:
    # Behind their TLS fronts the databases listen on loopback ports any local user reaches: without
    # authentication there, one insert into api_keys would make a platform admin.
    stack, _ = tls_stack
    database = service_database("registration")  # where API keys are
    for name in ("mongodb", "audit-mongodb"):
        uri = f"mongodb://127.0.0.1:{stack.private_ports[name]}/?directConnection=true&serverSelectionTimeoutMS=3000"
        anonymous: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
        try:
            with pytest.raises(OperationFailure, match="requires authentication"):
                await anonymous[database]["api_keys"].find_one()
            with pytest.raises(OperationFailure, match="requires authentication"):
                await anonymous[database]["api_keys"].insert_one({"team": "platform", "scopes": ["platform:admin"]})
        finally:
            await anonymous.close()
    # A service is its own user, on the servers it uses only (query has no account on the audit
    # log's), with readWrite on its own database.
    query_uri = stack.settings.service_mongodb_uri("query")
    query: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(query_uri)
    audit_as_query: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        query_uri.replace(f":{stack.settings.mongo_port}/", f":{stack.settings.audit_mongo_port}/")
    )
    try:
        await query[service_database("query")]["probes"].insert_one({"by": "test"})
        with pytest.raises(OperationFailure, match="not authorized"):  # registration's is not query's
            await query[database]["api_keys"].find_one()
        with pytest.raises(OperationFailure, match=r"[Aa]uthentication failed"):
            await audit_as_query[service_database("audit")]["audit_log"].find_one()
        with pytest.raises(OperationFailure, match="not authorized"):  # archives are the administrator's
            await query.admin.command({"secantusAdmin.backupArchive": 1, "outputPath": "/tmp/taken.tar.gz"})
    finally:
        await query.close()
        await audit_as_query.close()


async def test_the_closed_stack_is_backed_up_by_its_administrator(
    tls_stack: tuple[EmbeddedStack, str], tmp_path: Path
) -> None:
    manifest = await backup(tls_stack[0].settings, tmp_path / "backup")
    assert set(manifest["archives"]) == {"mongo", "audit-mongo"} and manifest["mac"]


async def test_the_clis_kafka_commands_present_the_client_certificate(tls_stack: tuple[EmbeddedStack, str]) -> None:
    # `registry dlq` with REGISTRY_STACK_TLS=true, `registry produce` with its options: the front wants a certificate.
    stack, token = tls_stack
    settings, team = stack.settings, f"cli{uuid.uuid4().hex[:8]}"
    options = kafka_client_options(settings)
    data = register_data(team, "ranker")
    await produce_message(
        "register",
        data,
        bootstrap_servers=settings.kafka_bootstrap,
        api_key=token,
        correlation_id=None,
        **options,
    )
    async with httpx.AsyncClient(
        base_url=stack.url("query"), headers={"Authorization": f"Bearer {token}"}, verify=trust(settings)
    ) as query:

        async def readable() -> bool:
            return (await query.get(f"/v1/models/{team}/ranker/versions/1.0.0")).status_code == 200

        await until(readable, timeout=30, what="the produced version readable")
    assert isinstance(await show_dead_letters(settings.kafka_bootstrap, "registry.commands", **options), list)


async def test_the_gateway_reaches_the_https_services_and_verifies_them(tls_stack: tuple[EmbeddedStack, str]) -> None:
    stack, token = tls_stack
    await stack.start_gateway()
    try:
        async with httpx.AsyncClient(
            base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, verify=trust(stack.settings)
        ) as gateway:
            meta = await gateway.get("/v1/meta")  # query, over HTTPS behind the gateway
            keys = await gateway.get("/v1/teams/platform/api-keys")  # registration
        assert meta.status_code == 200, meta.text
        assert keys.status_code == 200, keys.text
    finally:
        await stack.stop_gateway()
