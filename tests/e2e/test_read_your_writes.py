"""Read-your-writes through consistency tokens, against the running stack.

A write answers with ``X-Registry-Consistency``; the client sends it back on its reads of that
model, and the query service answers once its read model has the write (or 503 after
``QUERY_CONSISTENCY_WAIT_SECONDS``). That the header really travels is shown by a token far
ahead: the same read then waits and answers 503.
"""

import asyncio
import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from typer.testing import CliRunner

from registry_cli.stack import EmbeddedStack
from registry_client import NO_RETRY, AsyncRegistryClient, RegistryError, consistent
from registry_client.cli.main import app
from registry_client.config import ClientOptions
from registry_client.consistency import CONSISTENCY_HEADER, parse_token
from registry_client.kafka import RegistryProducer
from registry_contract import messages
from registry_contract.deployment_views import ReportOutcome
from registry_contract.ids import model_id
from tests.client_fakes import Artifact
from tests.e2e.console_tools import console_client, hidden, new_team, sign_in
from tests.http_tools import acting_as, register, team_key

pytestmark = pytest.mark.e2e
SCOPES = ["models:read", "models:write", "deployments:write"]
AHEAD = 10**15  # nanoseconds: a revision some twelve days past any write of this test


def urls(stack: EmbeddedStack) -> ClientOptions:
    return {
        "registration_url": stack.url("registration"),
        "query_url": stack.url("query"),
        "deploy_tracker_url": stack.url("deploy-tracker"),
        "retry": NO_RETRY,  # a 503 is the answer under test, not something to try again
    }


def artifact(name: str, version: str) -> Artifact:
    return {"framework": "xgboost", "artifact_uri": f"s3://ml-models/ryw/{name}/{version}/model.tar.gz"}


def revision_of(token: str | None) -> int:
    parsed = parse_token(token or "")
    assert parsed is not None, token
    return parsed[1]


@pytest.fixture
async def writer(stack: EmbeddedStack) -> tuple[str, str]:
    team = f"ryw-{uuid.uuid4().hex[:8]}"
    return team, await team_key(stack, team, SCOPES)


class TestOverHttp:
    async def test_each_write_is_read_back_at_once(self, stack: EmbeddedStack, writer: tuple[str, str]) -> None:
        team, key = writer
        async with AsyncRegistryClient(key, **urls(stack)) as client:
            registered = await client.register_version(team, "m", "1.0.0", **artifact("m", "1.0.0"))
            token = client.last_consistency_token
            assert token is not None and token.startswith(f"r.{model_id(team, 'm')}.")
            assert (await client.get_version(team, "m", "1.0.0")).created_at == registered.created_at
            for number in range(1, 6):  # every write read back at once, none polled for
                version = f"1.{number}.0"
                await client.register_version(team, "m", version, **artifact("m", version))
                await client.set_alias(team, "m", "champion", version)
                assert (await client.get_version(team, "m", "@champion")).version == version
                assert (await client.get_model(team, "m")).latest_version == version
            assert revision_of(client.last_consistency_token) > revision_of(token)

    async def test_wait_returns_the_version_as_the_query_service_reads_it(
        self, stack: EmbeddedStack, writer: tuple[str, str]
    ) -> None:
        team, key = writer
        async with AsyncRegistryClient(key, **urls(stack)) as client:
            read = await client.register_version(team, "w", "1.0.0", **artifact("w", "1.0.0"), wait=True)
        assert read.version == "1.0.0" and read.team == team

    async def test_the_client_sends_the_token_a_token_far_ahead_makes_the_read_wait_then_503(
        self, stack: EmbeddedStack, writer: tuple[str, str]
    ) -> None:
        team, key = writer
        async with AsyncRegistryClient(key, **urls(stack)) as client:
            await client.register_version(team, "ahead", "1.0.0", **artifact("ahead", "1.0.0"))
            far = f"r.{model_id(team, 'ahead')}.{revision_of(client.last_consistency_token) + AHEAD}"
            client.consistency.remember(far)  # as if this client had written that far
            with pytest.raises(RegistryError) as behind:
                await client.get_model(team, "ahead")
        assert behind.value.status == 503 and behind.value.reason == "unavailable"
        assert "not yet reached" in behind.value.detail

    async def test_tokens_handed_over_are_sent_too(self, stack: EmbeddedStack, writer: tuple[str, str]) -> None:
        team, key = writer
        async with AsyncRegistryClient(key, **urls(stack)) as client:
            await client.register_version(team, "handed", "1.0.0", **artifact("handed", "1.0.0"))
            handed = client.consistency_token(team, "handed")
        async with AsyncRegistryClient(key, **urls(stack)) as reader:  # another process, say
            with consistent(handed or ""):
                assert (await reader.get_version(team, "handed", "1.0.0")).version == "1.0.0"
            far = f"r.{model_id(team, 'handed')}.{revision_of(handed) + AHEAD}"
            with consistent(far), pytest.raises(RegistryError) as behind:
                await reader.models_page(team=team)
        assert behind.value.status == 503

    async def test_the_query_service_answers_503_with_retry_after_and_refuses_a_malformed_token(
        self, stack: EmbeddedStack, writer: tuple[str, str]
    ) -> None:
        team, key = writer
        far = f"r.{model_id(team, 'raw')}.{AHEAD * 1000}"
        async with acting_as(stack, "query", key) as http:
            behind = await http.get(f"/v1/models/{team}/raw", headers={CONSISTENCY_HEADER: far})
            malformed = await http.get(f"/v1/models/{team}/raw", headers={CONSISTENCY_HEADER: "r.mdl_x.1"})
        assert behind.status_code == 503 and behind.headers["Retry-After"] == "1"
        assert behind.json()["type"] == "urn:registry:problem:unavailable"
        assert malformed.status_code in (400, 422)

    async def test_a_waited_deployment_report_is_read_back_at_once(
        self, stack: EmbeddedStack, writer: tuple[str, str]
    ) -> None:
        team, key = writer
        async with AsyncRegistryClient(key, **urls(stack)) as client:
            await client.register_version(team, "d", "1.0.0", **artifact("d", "1.0.0"))
            outcome = await client.report_deployment(team, "d", "1.0.0", "staging", "deployed", wait=30)
            assert isinstance(outcome, ReportOutcome)
            assert (client.last_consistency_token or "").startswith(f"d.{model_id(team, 'd')}.")
            deployments = await client.get_deployments(team, "d", "1.0.0")
        assert deployments.environments["staging"].status == "deployed"


class TestOverKafka:
    async def test_a_waited_command_gives_its_outcome_and_the_next_read_sees_it(
        self, stack: EmbeddedStack, writer: tuple[str, str]
    ) -> None:
        team, key = writer
        async with AsyncRegistryClient(key, **urls(stack)) as client:
            producer = RegistryProducer(
                stack.settings.kafka_bootstrap, api_key=key, source="/tests/ryw", consistency=client.consistency
            )
            async with producer:
                data = {"team": team, "name": "k", "version": "1.0.0", **artifact("k", "1.0.0")}
                outcome = await producer.publish("register", data, wait=True, wait_timeout=30)
                assert outcome.type == messages.MODEL_VERSION_REGISTERED, outcome
                assert (outcome.consistency_token or "").startswith(f"r.{model_id(team, 'k')}.")
                assert (await client.get_version(team, "k", "1.0.0")).version == "1.0.0"  # no polling
                again = await producer.publish("register", data | {"version": "1.0.0+b"}, wait=True, wait_timeout=30)
                report = {
                    "team": team,
                    "name": "k",
                    "version": "1.0.0",
                    "environment": "staging",
                    "status": "deployed",
                    "occurred_at": datetime.now(UTC).isoformat(),
                }
                deployed = await producer.publish("deploy", report, wait=True, wait_timeout=30)
                deployments = await client.get_deployments(team, "k", "1.0.0")
        assert again.rejected and again.reason == "duplicate_version" and again.consistency_token is None
        assert deployed.type == messages.DEPLOYMENT_STATUS_CHANGED, deployed
        assert (deployed.consistency_token or "").startswith(f"d.{model_id(team, 'k')}.")
        assert deployments.environments["staging"].status == "deployed"

    async def test_registry_produce_wait_prints_the_outcome_and_its_token(
        self, stack: EmbeddedStack, writer: tuple[str, str]
    ) -> None:
        team, key = writer
        data = json.dumps({"team": team, "name": "cli", "version": "1.0.0", **artifact("cli", "1.0.0")})
        arguments = ["produce", "register", "--data", data, "--wait", "30"]
        arguments += ["--bootstrap-servers", stack.settings.kafka_bootstrap, "--api-key", key]
        result = await asyncio.to_thread(CliRunner().invoke, app, arguments)  # it runs an event loop of its own
        assert result.exit_code == 0, result.output
        printed = json.loads(result.stdout)
        assert printed["type"] == messages.MODEL_VERSION_REGISTERED
        token = printed["consistency_token"]
        async with acting_as(stack, "query", key) as http:
            read = await http.get(f"/v1/models/{team}/cli/versions/1.0.0", headers={CONSISTENCY_HEADER: token})
        assert read.status_code == 200, read.text


async def test_the_header_is_sent_on_the_wire(stack: EmbeddedStack, writer: tuple[str, str]) -> None:
    """What the query service received: the client's own write token, on a read of that model."""
    team, key = writer
    seen: list[str | None] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path.startswith(f"/v1/models/{team}/"):
            seen.append(request.headers.get(CONSISTENCY_HEADER))

    async with AsyncRegistryClient(key, **urls(stack)) as client:
        client._http.event_hooks["request"].append(record)
        await client.register_version(team, "wire", "1.0.0", **artifact("wire", "1.0.0"))
        await client.get_version(team, "wire", "1.0.0")
    assert seen[-1] == client.last_consistency_token


async def test_a_console_action_returns_to_a_page_that_shows_it(stack: EmbeddedStack) -> None:
    team, key = await new_team(stack, "ryw")
    await register(stack, key, team, "scorer", "1.0.0")
    action = f"/console/models/{team}/scorer/versions/1.0.0/approval"
    async with console_client(stack) as http:
        await sign_in(http, key)
        page = (await http.get(f"/console/models/{team}/scorer?version=1.0.0")).text
        for number, decision in enumerate(["approved", "rejected", "approved"]):
            comment = f"review {number} of {team}"
            form = {"csrf_token": hidden(page, "csrf_token"), "decision": decision, "comment": comment}
            done = await http.post(action, data=form)
            page = (await http.get(done.headers["location"])).text
            assert f"“{comment}”" in page, page  # read from the read model, right after the write
            assert "not on this page yet" not in page
