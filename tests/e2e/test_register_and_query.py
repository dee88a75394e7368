"""The whole system as separate processes: raw CloudEvents in over Kafka, results out over HTTP."""

import json
from typing import Any

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from registry_contract import messages
from tests.factories import ADMIN_KEY, binary_record, command_event, register_data, register_event, structured_record
from tests.http_tools import team_name
from tests.kafka_tools import Collector, caused_by, header, publish_raw
from tests.waiting import until

pytestmark = pytest.mark.e2e
COMMANDS, EVENTS = "registry.commands", "registry.events"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY.token}"}


@pytest.fixture
async def query(stack: EmbeddedStack) -> Any:
    async with httpx.AsyncClient(base_url=stack.url("query"), timeout=10, headers=AUTH) as client:
        yield client


async def readable(query: httpx.AsyncClient, path: str, *, timeout: float = 15) -> httpx.Response:
    """The 200 response of ``path`` once there is one; fail loudly after ``timeout`` s."""

    async def answered() -> httpx.Response | None:
        response = await query.get(path)
        return response if response.status_code == 200 else None

    return await until(answered, timeout=timeout, what=f"GET {path} answering 200")


def raw(event: Any, *, structured: bool = False) -> tuple[bytes, list[tuple[str, bytes]], bytes]:
    value, headers = structured_record(event) if structured else binary_record(event)
    return value, headers, f"{event.data['team']}/{event.data['name']}".encode()


class TestRegisterOverKafka:
    @pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
    async def test_a_published_command_becomes_readable(
        self, stack: EmbeddedStack, query: httpx.AsyncClient, structured: bool
    ) -> None:
        owner = team_name("t")
        event = register_event(
            owner, "card-fraud", "1.4.0", tags={"owner": "alice"}, metrics={"auc": 0.93}, token=ADMIN_KEY.token
        )
        await publish_raw(stack.settings.kafka_bootstrap, COMMANDS, [raw(event, structured=structured)])
        body = (await readable(query, f"/v1/models/{owner}/card-fraud/versions/1.4.0")).json()
        assert (body["version"], body["tags"], body["metrics"]) == ("1.4.0", {"owner": "alice"}, {"auc": 0.93})
        model = (await query.get(f"/v1/models/{owner}/card-fraud")).json()
        assert (await query.get(f"/v1/models/id/{model['model_id']}")).json()["name"] == "card-fraud"

    async def test_duplicates_and_redeliveries_leave_one_version_and_one_event_each(
        self, stack: EmbeddedStack, query: httpx.AsyncClient
    ) -> None:
        owner = team_name("t")
        first = register_event(owner, "m", "1.0.0+build.1", token=ADMIN_KEY.token)
        duplicate = register_event(owner, "m", "1.0.0+build.2", token=ADMIN_KEY.token)
        sentinel = register_event(owner, "m", "2.0.0", token=ADMIN_KEY.token)
        bootstrap = stack.settings.kafka_bootstrap
        async with Collector(bootstrap, EVENTS) as events:
            records = [raw(first), raw(first), raw(duplicate), raw(first), raw(sentinel)]
            await publish_raw(bootstrap, COMMANDS, records)
            # The sentinel is last on the same key (partition): once its outcome is out, any
            # (wrong) second outcome of the ones before it would be out too.
            await events.wait_for(caused_by(sentinel.id))
            assert len(events.matching(caused_by(first.id))) == 1
            [rejected] = events.matching(caused_by(duplicate.id))
        assert header(rejected, "ce_type") == messages.COMMAND_REJECTED
        assert json.loads(rejected.value)["reason"] == "duplicate_version"
        # The outcome on the topic does not mean the query has projected it yet: wait for the last one.
        await readable(query, f"/v1/models/{owner}/m/versions/2.0.0")
        versions = (await query.get(f"/v1/models/{owner}/m/versions")).json()["items"]
        assert [v["version"] for v in versions] == ["2.0.0", "1.0.0+build.1"]

    async def test_garbage_is_dead_lettered_and_the_next_command_still_lands(
        self, stack: EmbeddedStack, query: httpx.AsyncClient
    ) -> None:
        owner = team_name("t")
        good = register_event(owner, "after-garbage", token=ADMIN_KEY.token)
        key = f"{owner}/after-garbage".encode()
        bootstrap = stack.settings.kafka_bootstrap
        async with Collector(bootstrap, f"{COMMANDS}.dlq") as dead:
            await publish_raw(bootstrap, COMMANDS, [(b"\xde\xad\xbe\xef", [], key), raw(good)])
            await readable(query, f"/v1/models/{owner}/after-garbage/versions/1.0.0")
            [record] = await dead.wait_for(lambda r: r.key == key)
        assert record.value == b"\xde\xad\xbe\xef" and header(record, "dlq_reason") == "not_json"


class TestReads:
    async def test_versions_sort_by_precedence_with_ranges_latest_and_history(
        self, stack: EmbeddedStack, query: httpx.AsyncClient
    ) -> None:
        owner = team_name("t")
        versions = ["1.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1", "2.0.0-alpha", "0.9.0"]
        bootstrap = stack.settings.kafka_bootstrap
        await publish_raw(
            bootstrap, COMMANDS, [raw(register_event(owner, "m", v, token=ADMIN_KEY.token)) for v in versions]
        )
        update = command_event(
            messages.UPDATE_MODEL_VERSION,
            {"team": owner, "name": "m", "version": "1.2.0", "description": "tuned"},
            token=ADMIN_KEY.token,
        )
        await publish_raw(bootstrap, COMMANDS, [raw(update)])
        await readable(query, f"/v1/models/{owner}/m/versions/0.9.0")
        listed = (await query.get(f"/v1/models/{owner}/m/versions", params={"include_prerelease": "true"})).json()
        assert [v["version"] for v in listed["items"]] == [
            "2.0.0-rc.1",
            "2.0.0-alpha",
            "1.10.0",
            "1.2.0",
            "1.0.0",
            "0.9.0",
        ]
        stable = (await query.get(f"/v1/models/{owner}/m/versions")).json()
        assert [v["version"] for v in stable["items"]] == ["1.10.0", "1.2.0", "1.0.0", "0.9.0"]
        ranged = (await query.get(f"/v1/models/{owner}/m/versions", params={"range": ">=1.0.0,<1.10.0"})).json()
        assert [v["version"] for v in ranged["items"]] == ["1.2.0", "1.0.0"]
        assert (await query.get(f"/v1/models/{owner}/m/versions/latest")).json()["version"] == "1.10.0"

        async def whole_history() -> list[Any] | None:
            items: list[Any] = (await query.get(f"/v1/models/{owner}/m/history")).json()["items"]
            return items if len(items) >= 7 else None

        history = await until(whole_history, timeout=10, what="the 6 registrations and the update in the history")
        assert len(history) == 7
        assert [h["type"] for h in history][-1] == messages.MODEL_VERSION_UPDATED
        assert [h["data"]["version"] for h in history[:6]] == versions

    async def test_pagination_is_complete_and_stable_under_concurrent_inserts(
        self, stack: EmbeddedStack, query: httpx.AsyncClient
    ) -> None:
        owner = team_name("t")
        bootstrap = stack.settings.kafka_bootstrap
        await publish_raw(
            bootstrap, COMMANDS, [raw(register_event(owner, f"m{i:03d}", token=ADMIN_KEY.token)) for i in range(230)]
        )

        async def all_listed() -> bool:
            # Commands spread over the topic's partitions, so m229 may land before m150: wait for
            # every one, or a late one would sort before the cursor and look skipped.
            names: list[str] = []
            params: dict[str, str | int] = {"team": owner, "limit": 200}
            while True:
                page = (await query.get("/v1/models", params=params)).json()
                names += [m["name"] for m in page["items"]]
                if not page["next_cursor"]:
                    return len(names) == 230
                params["cursor"] = page["next_cursor"]

        await until(all_listed, timeout=30, what="the 230 models registered")
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, str | int] = {"team": owner, "limit": 50, **({"cursor": cursor} if cursor else {})}
            page = (await query.get("/v1/models", params=params)).json()
            seen += [m["name"] for m in page["items"]]
            pages += 1
            if pages == 2:  # newer models arrive mid-listing; they sort before the cursor
                await publish_raw(
                    bootstrap,
                    COMMANDS,
                    [raw(register_event(owner, f"late{i}", token=ADMIN_KEY.token)) for i in range(5)],
                )
                for i in range(5):  # each on its own partition's pace: the last readable says nothing of the rest
                    await readable(query, f"/v1/models/{owner}/late{i}")
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert pages == 5
        assert sorted(seen) == [f"m{i:03d}" for i in range(230)]
        by_name = []
        cursor = None
        while True:
            params = {"team": owner, "limit": 100, "sort": "name", **({"cursor": cursor} if cursor else {})}
            page = (await query.get("/v1/models", params=params)).json()
            by_name += [m["name"] for m in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert by_name == sorted(by_name) and len(by_name) == 235

    async def test_filters_select_by_framework_target_tag_and_prefix(
        self, stack: EmbeddedStack, query: httpx.AsyncClient
    ) -> None:
        owner = team_name("t")
        await publish_raw(
            stack.settings.kafka_bootstrap,
            COMMANDS,
            [
                raw(
                    register_event(
                        owner,
                        "churn-a",
                        framework="onnx",
                        deployment_targets=["kserve"],
                        tags={"stage": "prod", "owner": "bo"},
                        token=ADMIN_KEY.token,
                    )
                ),
                raw(register_event(owner, "churn-b", tags={"stage": "prod"}, token=ADMIN_KEY.token)),
                raw(register_event(owner, "fraud-c", tags={"stage": "dev"}, token=ADMIN_KEY.token)),
            ],
        )
        await readable(query, f"/v1/models/{owner}/fraud-c")
        await readable(query, f"/v1/models/{owner}/churn-a")

        async def names(**params: Any) -> list[str]:
            response = await query.get("/v1/models", params={"team": owner, **params})
            assert response.status_code == 200, response.text
            return sorted(m["name"] for m in response.json()["items"])

        assert await names(framework="onnx") == ["churn-a"]
        assert await names(deployment_target="kserve") == ["churn-a"]
        assert await names(tag="stage:prod") == ["churn-a", "churn-b"]
        assert await names(tag=["stage:prod", "owner:bo"]) == ["churn-a"]
        assert await names(name_prefix="churn") == ["churn-a", "churn-b"]
        assert await names(status="registered") == ["churn-a", "churn-b", "fraud-c"]
        assert await names(created_after="2000-01-01T00:00:00Z", created_before="2000-01-02T00:00:00Z") == []

    async def test_errors_are_precise_problem_json(self, query: httpx.AsyncClient) -> None:
        cases = {
            "/v1/models/nobody/nothing": 404,
            "/v1/models/nobody/nothing/versions/1.0.0": 404,
            "/v1/models?limit=0": 422,
            "/v1/models?limit=201": 422,
            "/v1/models?sort=size": 422,
            "/v1/models?cursor=garbage": 422,
            "/v1/models?tag=novalue": 422,
            "/v1/models?status=sleeping": 422,
            "/v1/models?created_after=yesterday": 422,
            # A version in the path is bounded before any handler parses it (this one is valid SemVer).
            "/v1/models/nobody/nothing/versions/1.0.0-" + "a" * 300: 422,
            "/v1/models/nobody/nothing/versions/1.0.0-" + "a" * 300 + "/deployments": 422,
        }
        for path, status in cases.items():
            response = await query.get(path, headers={"X-Correlation-ID": "probe-1"})
            assert response.status_code == status, path
            assert response.headers["content-type"] == "application/problem+json", path
            body = response.json()
            assert body["status"] == status and body["correlation_id"] == "probe-1", path
            assert response.headers["x-correlation-id"] == "probe-1"


class TestHttpContract:
    async def test_http_registration_is_readable_and_emits_the_same_event(
        self, stack: EmbeddedStack, query: httpx.AsyncClient
    ) -> None:
        owner = team_name("t")
        body = {k: v for k, v in register_data(owner, "via-http", "3.1.4").items() if k not in ("team", "name")}
        async with (
            httpx.AsyncClient(base_url=stack.url("registration"), headers=AUTH) as registration,
            Collector(stack.settings.kafka_bootstrap, EVENTS) as events,
        ):
            created = await registration.post(
                f"/v1/models/{owner}/via-http/versions", json=body, headers={"X-Correlation-ID": f"http-{owner}"}
            )
            assert created.status_code == 201, created.text
            [event] = await events.wait_for(lambda r: header(r, "ce_correlationid") == f"http-{owner}")
        assert header(event, "ce_type") == messages.MODEL_VERSION_REGISTERED
        assert (await query.get(f"/v1/models/{owner}/via-http/versions/3.1.4")).status_code == 200

    async def test_every_service_serves_health_readiness_metrics_and_openapi(self, stack: EmbeddedStack) -> None:
        for service in ("registration", "query", "deploy-tracker", "audit"):
            async with httpx.AsyncClient(base_url=stack.url(service)) as client:
                assert (await client.get("/healthz")).json() == {"status": "ok"}
                assert (await client.get("/readyz")).status_code == 200
                assert "registry_dependency_up" in (await client.get("/metrics")).text
                assert (await client.get("/openapi.json")).json()["info"]["title"].endswith(service)

    async def test_meta_lists_the_enumerations(self, query: httpx.AsyncClient) -> None:
        meta = (await query.get("/v1/meta")).json()
        assert "xgboost" in meta["frameworks"] and "sagemaker" in meta["deployment_targets"]
        assert meta["limits"]["max_page_size"] == 200
