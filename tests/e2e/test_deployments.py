"""Deployment tracking through the running stack: Kafka reports, the HTTP bridge, the read side."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from shared.chassis.problems import PROBLEM_JSON
from tests.factories import ADMIN_KEY
from tests.http_tools import team_key
from tests.kafka_tools import Collector, caused_by, header, publish_raw
from tests.waiting import until

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
# What a not_approved refusal says would allow the report: an approval, or the gated environments' setting.
APPROVE_FIRST = (
    "a key with models:approve approves it first; DEPLOY_TRACKER_APPROVAL_ENVIRONMENTS lists the environments "
    "that need approval"
)


def caused(event_type: str, report_id: str) -> Any:
    """Records of ``event_type`` that the report ``report_id`` caused."""
    by_report = caused_by(report_id)
    return lambda record: by_report(record) and header(record, "ce_type") == event_type


def report(team: str, version: str, environment: str, status: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "team": team,
        "name": "m",
        "version": version,
        "environment": environment,
        "status": status,
        "target": "kubernetes",
        "pipeline": "github-actions",
        "run_id": "1",
        "occurred_at": at.isoformat(),
        **extra,
    }


async def send_kafka(stack: EmbeddedStack, token: str | None, data: dict[str, Any]) -> str:
    event = CloudEvent(
        source="/ci",
        type=messages.DEPLOY_STATUS_REPORTED,
        data=data,
        sign_with=token,
    )
    value, headers = event.to_kafka()
    await publish_raw(
        stack.settings.kafka_bootstrap, "deploy.events", [(value, headers, f"{data['team']}/{data['name']}".encode())]
    )
    return event.id


async def send_http(stack: EmbeddedStack, token: str, data: dict[str, Any]) -> str:
    async with httpx.AsyncClient(
        base_url=stack.url("deploy-tracker"), headers={"Authorization": f"Bearer {token}"}
    ) as http:
        response = await http.post("/v1/deployments/events", json=data)
    assert response.status_code == 202, response.text
    return str(response.json()["event_id"])


async def send_waiting(stack: EmbeddedStack, token: str, data: dict[str, Any]) -> httpx.Response:
    """Report over the bridge as the README's pipeline steps do: ``Prefer: wait=30``, the outcome comes back."""
    headers = {"Authorization": f"Bearer {token}", "Prefer": "wait=30"}
    async with httpx.AsyncClient(base_url=stack.url("deploy-tracker"), headers=headers, timeout=45) as http:
        return await http.post("/v1/deployments/events", json=data)


async def approve(stack: EmbeddedStack, team: str, version: str = "1.0.0") -> None:
    """Approve a version through registration (``models:approve``; the admin key holds every scope)."""
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        path = f"/v1/models/{team}/m/versions/{version}/approval"
        response = await http.put(path, json={"status": "approved", "comment": "validated offline"})
    assert response.status_code == 200, response.text
    assert response.json()["approval"]["status"] == "approved"


async def deployments(stack: EmbeddedStack, team: str, version: str = "1.0.0") -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.url("query"), headers=ADMIN) as http:
        response = await http.get(f"/v1/models/{team}/m/versions/{version}/deployments", params={"limit": 200})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def registered(stack: EmbeddedStack, team: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers={"Authorization": f"Bearer {token}"}) as h:
        body = {"version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
        assert (await h.post(f"/v1/models/{team}/m/versions", json=body)).status_code == 201


async def until_history(
    stack: EmbeddedStack, team: str, count: int, environment: str | None = None, status: str | None = None
) -> dict[str, Any]:
    # The version and its history are two reads; wait until both show the report.
    async def reached() -> dict[str, Any] | None:
        body = await deployments(stack, team)
        current = body["environments"].get(environment, {}).get("status") if environment else status
        return body if len(body["items"]) >= count and current == status else None

    return await until(reached, timeout=30, what=f"{count} reports in the history with {environment} {status}")


LIFECYCLE = [
    ("staging", "deploying", "deploying"),
    ("staging", "deployed", "deployed"),
    ("prod", "deploying", "deployed"),
    ("prod", "failed", "deployed"),
    ("prod", "deploying", "deployed"),
    ("prod", "deployed", "deployed"),
    ("prod", "rolled_back", "deployed"),
]


@pytest.mark.parametrize("transport", ["kafka", "http"])
async def test_full_lifecycle_moves_status_per_environment(stack: EmbeddedStack, transport: str) -> None:
    team = f"dep-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, ["models:read", "models:write", "deployments:write"])
    await registered(stack, team, token)
    await approve(stack, team)  # prod requires approval (DEPLOY_TRACKER_APPROVAL_ENVIRONMENTS' default)
    send = send_kafka if transport == "kafka" else send_http
    for step, (environment, status, overall_status) in enumerate(LIFECYCLE, start=1):
        await send(stack, token, report(team, "1.0.0", environment, status, T0 + timedelta(minutes=step)))
        body = await until_history(stack, team, step, environment, status)
        assert body["status"] == overall_status
        assert [h["status"] for h in body["items"]] == [s for _, s, _ in LIFECYCLE[:step]]
    async with httpx.AsyncClient(base_url=stack.url("query"), headers=ADMIN) as http:
        version = (await http.get(f"/v1/models/{team}/m/versions/1.0.0")).json()
        prod = (
            await http.get("/v1/models", params={"team": team, "environment": "prod", "status": "rolled_back"})
        ).json()["items"]
        in_staging = (
            await http.get(f"/v1/models/{team}/m/versions", params={"environment": "staging", "status": "deployed"})
        ).json()["items"]
        in_dev = (await http.get(f"/v1/models/{team}/m/versions", params={"environment": "dev"})).json()["items"]
    assert version["environments"]["prod"]["status"] == "rolled_back" and version["status"] == "deployed"
    assert [m["name"] for m in prod] == ["m"]
    assert [v["version"] for v in in_staging] == ["1.0.0"] and in_dev == []


async def test_out_of_order_duplicate_illegal_unknown_and_foreign_reports(stack: EmbeddedStack) -> None:
    team = f"dep-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, ["models:read", "models:write", "deployments:write"])
    stranger = await team_key(stack, f"str-{uuid.uuid4().hex[:6]}", ["deployments:write"])
    await registered(stack, team, token)
    await approve(stack, team)
    async with Collector(stack.settings.kafka_bootstrap, "registry.events") as events:
        first = report(team, "1.0.0", "prod", "deploying", T0 + timedelta(minutes=5))
        event = CloudEvent(source="/ci", type=messages.DEPLOY_STATUS_REPORTED, data=first, sign_with=token)
        value, headers = event.to_kafka()
        await publish_raw(stack.settings.kafka_bootstrap, "deploy.events", [(value, headers, f"{team}/m".encode())] * 2)
        older = await send_kafka(stack, token, report(team, "1.0.0", "prod", "deployed", T0))
        illegal = await send_kafka(stack, token, report(team, "1.0.0", "prod", "retired", T0 + timedelta(minutes=6)))
        unknown = await send_kafka(stack, token, report(team, "9.9.9", "prod", "deploying", T0))
        foreign = await send_kafka(stack, stranger, report(team, "1.0.0", "prod", "deployed", T0 + timedelta(hours=1)))
        nobody = await send_kafka(stack, None, report(team, "1.0.0", "prod", "deployed", T0 + timedelta(hours=1)))
        script = await send_kafka(
            stack, token, report(team, "1.0.0", "dev", "deploying", T0, url="javascript:alert(1)")
        )
        reasons, filed_under = {}, {}
        for name, report_id in (
            ("illegal", illegal),
            ("unknown", unknown),
            ("foreign", foreign),
            ("nobody", nobody),
            ("script", script),
        ):
            [rejected] = await events.wait_for(caused(messages.COMMAND_REJECTED, report_id))
            reasons[name] = json.loads(rejected.value)["reason"]
            filed_under[name] = json.loads(rejected.value)["team"]
        [changed] = await events.wait_for(caused(messages.DEPLOYMENT_STATUS_CHANGED, event.id))
        # Every report went to the same key (partition) and `script`, sent last, has been answered:
        # whatever the duplicate and `older` caused is on the bus by now.
        assert len(events.matching(caused_by(event.id))) == 2  # recorded, changed; the duplicate: nothing
        # Out of order: recorded for the read side, status untouched (no status change, no rejection).
        [late] = events.matching(caused_by(older))
        assert header(late, "ce_type") == messages.DEPLOYMENT_REPORT_RECORDED
        assert json.loads(late.value)["outcome"] == "out_of_order"
        # Filed under the model (the read side shows them): the illegal one; never the foreign one.
        assert [header(r, "ce_type") for r in events.matching(caused_by(illegal))] == [
            messages.COMMAND_REJECTED,
            messages.DEPLOYMENT_REPORT_RECORDED,
        ]
        assert not events.matching(caused(messages.DEPLOYMENT_REPORT_RECORDED, foreign))
        assert json.loads(changed.value)["environment_state"]["report_id"] == event.id
    assert reasons == {
        "illegal": "conflict",
        "unknown": "not_found",
        "foreign": "forbidden",
        "nobody": "unauthenticated",
        "script": "invalid",
    }
    # Foreign and anonymous refusals are filed under their sender, never merged into the target's
    # history or sent to its team's webhooks.
    assert filed_under["foreign"] != team and filed_under["nobody"] is None
    assert json.loads(changed.value)["status"] == "deploying"
    body = await until_history(stack, team, 3)
    outcomes = {h["id"]: h["outcome"] for h in body["items"]}
    assert outcomes[event.id] == "applied" and outcomes[older] == "out_of_order" and outcomes[illegal] == "rejected"
    assert foreign not in outcomes and nobody not in outcomes
    assert body["environments"]["prod"]["status"] == "deploying"


async def test_the_bridge_validates_like_the_consumer(stack: EmbeddedStack) -> None:
    team = f"dep-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, ["deployments:write"])
    reader = await team_key(stack, team, ["models:read"])
    async with httpx.AsyncClient(base_url=stack.url("deploy-tracker")) as http:
        bad = await http.post(
            "/v1/deployments/events", json={"team": team}, headers={"Authorization": f"Bearer {token}"}
        )
        other = await http.post(
            "/v1/deployments/events",
            json=report("someone-else", "1.0.0", "prod", "deploying", T0),
            headers={"Authorization": f"Bearer {token}"},
        )
        scope = await http.post(
            "/v1/deployments/events",
            json=report(team, "1.0.0", "prod", "deploying", T0),
            headers={"Authorization": f"Bearer {reader}"},
        )
        anonymous = await http.post("/v1/deployments/events", json=report(team, "1.0.0", "prod", "deploying", T0))
    assert (bad.status_code, other.status_code, scope.status_code, anonymous.status_code) == (422, 403, 403, 401)


async def test_garbage_on_deploy_events_is_dead_lettered(stack: EmbeddedStack) -> None:
    key = f"dlq-{uuid.uuid4().hex[:6]}/m".encode()
    async with Collector(stack.settings.kafka_bootstrap, "deploy.events.dlq") as dead:
        await publish_raw(stack.settings.kafka_bootstrap, "deploy.events", [(b"not json", [], key)])
        [record] = await dead.wait_for(lambda r: r.key == key)
    assert header(record, "dlq_reason") == "not_json"


async def test_the_bridge_puts_no_credential_on_the_bus(stack: EmbeddedStack) -> None:
    # The bridge signs for the caller: an API key in the deploy.events headers would go to anyone
    # who can read the topic.
    team = f"dep-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, ["models:read", "models:write", "deployments:write"])
    await registered(stack, team, token)
    async with Collector(stack.settings.kafka_bootstrap, "deploy.events") as seen:
        report_id = await send_http(stack, token, report(team, "1.0.0", "staging", "deploying", T0))
        [record] = await seen.wait_for(lambda r: header(r, "ce_id") == report_id)
    assert header(record, "authorization") is None and token.encode() not in b"".join(v for _, v in record.headers)
    assert header(record, "ce_principal") == token.split("_")[1]  # the key id, signed by the service
    assert header(record, "ce_registrysignature")
    await until_history(stack, team, 1, "staging", "deploying")  # and the tracker still applied it


async def test_a_pipeline_that_reports_only_deployed_gets_its_outcome(stack: EmbeddedStack) -> None:
    # The README's pipeline steps: one `deployed` report to prod of an approved version, with
    # `Prefer: wait=30` so that a refusal fails the step. A first report may be `deployed`, with no
    # `deploying` before it.
    team = f"dep-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, ["models:read", "models:write", "deployments:write"])
    await registered(stack, team, token)
    await approve(stack, team)
    response = await send_waiting(stack, token, report(team, "1.0.0", "prod", "deployed", T0))
    assert (response.status_code, response.headers["Preference-Applied"]) == (200, "wait=30"), response.text
    outcome = response.json()
    assert (outcome["outcome"], outcome["status"], outcome["previous_status"]) == ("applied", "deployed", None)
    assert outcome["skipped_deploying"] is True
    body = await until_history(stack, team, 1, "prod", "deployed")
    [row] = body["items"]
    assert (row["id"], row["outcome"], row["skipped_deploying"]) == (outcome["event_id"], "applied", True)
    assert body["status"] == "deployed"


async def test_a_version_rolled_back_is_deployed_again(stack: EmbeddedStack) -> None:
    team = f"dep-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, ["models:read", "models:write", "deployments:write"])
    await registered(stack, team, token)
    await approve(stack, team)
    steps = ["deployed", "rolled_back", "deploying", "deployed"]
    answers = []
    for minute, status in enumerate(steps):
        response = await send_waiting(
            stack, token, report(team, "1.0.0", "prod", status, T0 + timedelta(minutes=minute))
        )
        assert response.status_code == 200, response.text
        answers.append((response.json()["previous_status"], response.json()["status"]))
    assert answers == [
        (None, "deployed"),
        ("deployed", "rolled_back"),
        ("rolled_back", "deploying"),
        ("deploying", "deployed"),
    ]
    body = await until_history(stack, team, 4, "prod", "deployed")
    assert [(h["status"], h["skipped_deploying"]) for h in body["items"]] == [
        ("deployed", True),
        ("rolled_back", False),
        ("deploying", False),
        ("deployed", False),
    ]


async def test_a_pending_version_is_not_deployed_to_prod(stack: EmbeddedStack) -> None:
    team = f"dep-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, ["models:read", "models:write", "deployments:write"])
    await registered(stack, team, token)  # never approved: pending
    async with Collector(stack.settings.kafka_bootstrap, "registry.events") as events:
        over_kafka = await send_kafka(stack, token, report(team, "1.0.0", "prod", "deployed", T0))
        [rejected] = await events.wait_for(caused(messages.COMMAND_REJECTED, over_kafka))
    refusal = json.loads(rejected.value)
    assert (refusal["reason"], refusal["team"], refusal["name"]) == ("not_approved", team, "m")
    assert refusal["message"] == f"{team}/m 1.0.0 is not approved for prod (approval: pending): {APPROVE_FIRST}"

    response = await send_waiting(stack, token, report(team, "1.0.0", "prod", "deploying", T0))
    assert (response.status_code, response.headers["content-type"]) == (409, PROBLEM_JSON), response.text
    assert response.headers["Preference-Applied"] == "wait=30"
    problem = response.json()
    assert (problem["type"], problem["title"]) == ("urn:registry:problem:not_approved", "Version not approved")
    assert problem["detail"] == f"{team}/m 1.0.0 is not approved for prod (approval: pending): {APPROVE_FIRST}"

    # Reporting that something stopped is never gated, and an environment that is not gated takes it.
    failed = await send_waiting(stack, token, report(team, "1.0.0", "prod", "failed", T0 + timedelta(minutes=1)))
    staged = await send_waiting(stack, token, report(team, "1.0.0", "staging", "deployed", T0))
    assert (failed.status_code, staged.status_code) == (200, 200), (failed.text, staged.text)
    body = await until_history(stack, team, 4, "prod", "failed")
    assert [(h["outcome"], h.get("reason")) for h in body["items"]] == [
        ("rejected", "not_approved"),
        ("rejected", "not_approved"),
        ("applied", None),
        ("applied", None),
    ]


async def test_a_waiting_pipeline_gets_each_refusal_as_its_problem(stack: EmbeddedStack) -> None:
    team = f"dep-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, ["models:read", "models:write", "deployments:write"])
    await registered(stack, team, token)
    unknown = await send_waiting(stack, token, report(team, "9.9.9", "staging", "deployed", T0))
    illegal = await send_waiting(stack, token, report(team, "1.0.0", "staging", "retired", T0))
    assert [(r.status_code, r.json()["type"]) for r in (unknown, illegal)] == [
        (404, "urn:registry:problem:not_found"),
        (409, "urn:registry:problem:conflict"),
    ]
    assert illegal.json()["detail"] == "registered → retired is not allowed in staging"
