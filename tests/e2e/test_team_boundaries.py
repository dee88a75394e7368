"""No team reads, suppresses, forges or learns of another team's data: ids, existence, forged records."""

import json
import uuid
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry_cli.stack import EmbeddedStack
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from tests.factories import ADMIN_KEY, register_event
from tests.http_tools import make_key
from tests.kafka_tools import publish_raw
from tests.metrics_tools import scrape, total
from tests.waiting import serving, until

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
BODY = {"version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
TEAM_SCOPES = ["models:read", "models:write", "team:admin", "audit:read", "deployments:write"]


def as_key(stack: EmbeddedStack, service: str, key: dict[str, Any], **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.url(service), headers={"Authorization": f"Bearer {key['token']}", **headers}, timeout=10
    )


class TestIdempotencyKeys:
    async def test_another_team_using_the_same_key_gets_its_own_outcome(self, stack: EmbeddedStack) -> None:
        # Idempotency keys are per team and looked up after authorization: team B sending team A's key
        # must not get A's stored version resource back.
        a, b = f"ida-{uuid.uuid4().hex[:6]}", f"idb-{uuid.uuid4().hex[:6]}"
        key_a, key_b = await make_key(stack, a, TEAM_SCOPES), await make_key(stack, b, TEAM_SCOPES)
        shared_key = {"Idempotency-Key": f"build-{uuid.uuid4().hex[:8]}"}
        async with as_key(stack, "registration", key_a, **shared_key) as http_a:
            first = await http_a.post(f"/v1/models/{a}/m/versions", json=BODY)
            retried = await http_a.post(f"/v1/models/{a}/m/versions", json=BODY)
            reused = await http_a.post(f"/v1/models/{a}/m/versions", json={**BODY, "version": "2.0.0"})
        async with as_key(stack, "registration", key_b, **shared_key) as http_b:
            theirs = await http_b.post(f"/v1/models/{b}/m/versions", json=BODY)
        assert first.status_code == retried.status_code == 201 and first.json() == retried.json()
        assert reused.status_code == 422  # the same key for a different request
        assert theirs.status_code == 201 and theirs.json()["team"] == b


class TestExistenceOracle:
    async def test_a_hidden_model_and_an_absent_one_look_the_same_to_another_team(self, stack: EmbeddedStack) -> None:
        # Reading an existing, unshared model emits no access-denied event and moves no per-team
        # counter on /metrics, since an absent one does neither: either would tell that it exists.
        owner, other = f"own-{uuid.uuid4().hex[:6]}", f"oth-{uuid.uuid4().hex[:6]}"
        owner_key, other_key = await make_key(stack, owner, TEAM_SCOPES), await make_key(stack, other, TEAM_SCOPES)
        async with as_key(stack, "registration", owner_key) as http:
            assert (await http.post(f"/v1/models/{owner}/m/versions", json=BODY)).status_code == 201
        before, _ = await scrape(stack.url("query"))
        seen: dict[str, list[tuple[int, dict[str, Any]]]] = {"hidden": [], "absent": []}
        correlations: list[str] = []
        for kind, name in (("hidden", "m"), ("absent", "nothing-here")):
            for suffix in ("", "/versions", "/versions/1.0.0", "/versions/latest", "/history"):
                correlation = f"oracle-{uuid.uuid4().hex[:8]}"
                correlations.append(correlation)
                async with as_key(stack, "query", other_key, **{"X-Correlation-ID": correlation}) as http:
                    response = await http.get(f"/v1/models/{owner}/{name}{suffix}")
                body = response.json()
                body.pop("correlation_id")
                body["detail"] = body["detail"].replace(f"{owner}/{name}", "MODEL")
                seen[kind].append((response.status_code, body))
        assert seen["hidden"] == seen["absent"] and all(status == 404 for status, _ in seen["hidden"])
        after, _ = await scrape(stack.url("query"))
        for metric in ("registry_access_denied_total", "registry_auth_failures_total"):
            assert total(after, metric) == total(before, metric), metric
        # The reader's own audit log holds nothing for either (a later read proves the log caught up).
        sentinel = f"sentinel-{uuid.uuid4().hex[:8]}"
        async with as_key(stack, "query", other_key, **{"X-Correlation-ID": sentinel}) as http:
            await http.get("/v1/meta")
        async with as_key(stack, "audit", other_key) as audit:

            async def caught_up() -> list[Any]:
                return list((await audit.get("/v1/audit", params={"correlation_id": sentinel})).json()["items"])

            await until(caught_up)
            mine = (await audit.get("/v1/audit", params={"limit": 200})).json()["items"]
        assert not {entry["correlation_id"] for entry in mine} & set(correlations)


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def endpoint(self, request: Request) -> Response:
        self.bodies.append(await request.body())
        return Response(status_code=204)


class TestForgedRecords:
    async def test_a_record_forged_onto_the_bus_is_never_filed_or_sent_as_a_teams(self, stack: EmbeddedStack) -> None:
        # Anyone who can produce can put a record on the bus: the audit must not take its actor from a
        # bearer string or its team from the payload, nor the tracker send it on signed with the team's secret.
        victim = f"vic-{uuid.uuid4().hex[:6]}"
        key = await make_key(stack, victim, TEAM_SCOPES)
        bootstrap = stack.settings.kafka_bootstrap
        receiver = Receiver()
        async with serving([Route("/hook", receiver.endpoint, methods=["POST"])]) as port:
            async with as_key(stack, "deploy-tracker", key) as tracker:
                hook = {"url": f"http://127.0.0.1:{port}/hook", "event_types": ["*"]}
                created = await tracker.post(f"/v1/teams/{victim}/webhooks", json=hook)
                assert created.status_code == 201, created.text
            forged_event = CloudEvent(
                source="/registry/registration",
                type=messages.MODEL_VERSION_REGISTERED,
                data={"team": victim, "name": "m", "version": "6.6.6", "principal": key["key_id"]},
            )
            forged_command = register_event(victim, "m", "6.6.7", token=f"mr_{key['key_id']}_{'x' * 43}")
            # The sentinel: a real command sent after the forged records, with the same key. Its event
            # reaches registry.events' partition after the forged event, so once the tracker has made
            # the sentinel's delivery, one for the forged event would be listed too.
            sentinel = register_event(victim, "m", "1.0.0", token=key["token"])
            await publish_raw(bootstrap, "registry.events", [(*forged_event.to_kafka(), f"{victim}/m".encode())])
            await publish_raw(
                bootstrap,
                "registry.commands",
                [(*record.to_kafka(), f"{victim}/m".encode()) for record in (forged_command, sentinel)],
            )

            async def delivered() -> bool:
                return bool(receiver.bodies)

            await until(delivered, what="the sentinel's webhook delivery")
            async with as_key(stack, "deploy-tracker", key) as tracker:
                path = f"/v1/teams/{victim}/webhooks/{created.json()['id']}/deliveries"
                deliveries = (await tracker.get(path)).json()["items"]
        assert len(deliveries) == 1 and len(receiver.bodies) == 1
        sent = json.loads(receiver.bodies[0])
        assert (sent["type"], sent["data"]["version"]) == (messages.MODEL_VERSION_REGISTERED, "1.0.0")

        async def entries_of(ce_id: str) -> list[Any]:
            async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN) as http:
                items = (await http.get("/v1/audit", params={"limit": 200})).json()["items"]
            return [entry for entry in items if entry["ce_id"] == ce_id]

        [event_entry] = await until(lambda: entries_of(forged_event.id))
        [command_entry] = await until(lambda: entries_of(forged_command.id))
        assert (event_entry["team"], event_entry["actor"], event_entry["verified"]) == (None, None, None)
        assert event_entry["claims"]["team"] == victim
        assert (command_entry["team"], command_entry["actor"]) == (None, None)
        assert command_entry["claims"]["actor"] == key["key_id"]
        async with as_key(stack, "audit", key) as audit:
            theirs = (await audit.get("/v1/audit", params={"limit": 200})).json()["items"]
        assert not {forged_event.id, forged_command.id} & {entry["ce_id"] for entry in theirs}
