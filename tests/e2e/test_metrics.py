"""Metrics after a scripted scenario: the numbers move by exactly what the scenario did."""

import uuid

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from registry_contract import messages
from tests.factories import ADMIN_KEY, binary_record, command_event, register_data, register_event
from tests.kafka_tools import publish_raw
from tests.metrics_tools import Samples, eventually, present, scrape, total

pytestmark = pytest.mark.e2e
COMMANDS = "registry.commands"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
REGISTER = messages.REGISTER_MODEL_VERSION


async def test_a_scripted_scenario_is_counted_on_every_service(stack: EmbeddedStack) -> None:
    team = f"m{uuid.uuid4().hex[:10]}"
    registration, query, audit = stack.url("registration"), stack.url("query"), stack.url("audit")
    before, _ = await scrape(registration)
    audit_before, _ = await scrape(audit)
    query_before, _ = await scrape(query)

    good = [register_event(team, "churn", f"1.{minor}.0", token=ADMIN_KEY.token) for minor in range(3)]
    invalid = command_event(REGISTER, {**register_data(team, "churn", "not-semver")}, token=ADMIN_KEY.token)
    records = [(*binary_record(event), f"{team}/churn".encode()) for event in [*good, invalid]]
    garbage = (b"{not json", [("ce_type", REGISTER.encode())], f"{team}/churn".encode())
    await publish_raw(stack.settings.kafka_bootstrap, COMMANDS, [*records, garbage])

    def registered(samples: Samples) -> bool:
        return (
            total(samples, "registry_registrations_total", team=team, framework="xgboost") == 3
            and total(samples, "registry_rejections_total", team="platform", reason="invalid")
            >= total(before, "registry_rejections_total", team="platform", reason="invalid") + 1
            and total(samples, "registry_dlq_messages_total", topic=COMMANDS)
            >= total(before, "registry_dlq_messages_total", topic=COMMANDS) + 1
        )

    after = await eventually(registration, registered)
    consumed = total(after, "registry_messages_consumed_total", group="registration", topic=COMMANDS, type=REGISTER)
    assert consumed >= total(before, "registry_messages_consumed_total", type=REGISTER) + 5  # 4 commands + garbage
    assert total(after, "registry_commands_total", type=REGISTER, outcome="accepted") >= 3
    assert total(after, "registry_consumer_batch_seconds_count", group="registration") > 0
    assert total(after, "registry_outbox_published_total", outbox="outbox") >= 4  # 3 registered + 1 rejected
    assert present(after, "registry_outbox_backlog", outbox="outbox")
    assert present(after, "registry_outbox_oldest_unsent_seconds", outbox="outbox")
    assert present(after, "registry_build_info", service="registration")

    # Lag is sampled from the broker: every partition of the group shows up, and drains to zero.
    drained = await eventually(
        registration,
        lambda s: (
            present(s, "registry_consumer_lag", group="registration", topic=COMMANDS)
            and total(s, "registry_consumer_lag", group="registration", topic=COMMANDS) == 0
        ),
    )
    partitions = {dict(labels)["partition"] for name, labels in drained if name == "registry_consumer_lag"}
    assert partitions == {str(p) for p in range(stack.settings.partitions)}

    async with httpx.AsyncClient(base_url=query, headers=AUTH, timeout=10) as http:
        assert (await http.get(f"/v1/models/{team}/churn/versions/1.0.0")).status_code == 200
        assert (await http.get(f"/v1/models/{team}/churn", headers={"Authorization": "Bearer nope"})).status_code == 401
        assert (await http.get("/readyz")).status_code == 200
    route = "/v1/models/{team}/{name}/versions/{version}"
    served, _ = await scrape(query)
    assert total(served, "registry_http_requests_total", route=route, status="200") == (
        total(query_before, "registry_http_requests_total", route=route, status="200") + 1
    )
    assert total(served, "registry_http_requests_total", route="/v1/models/{team}/{name}", status="401") >= 1
    assert total(served, "registry_http_request_duration_seconds_count", route=route) >= 1
    assert total(served, "registry_auth_failures_total") >= 1
    assert total(served, "registry_dependency_up", dependency="mongodb") == 1
    assert total(served, "registry_dependency_up", dependency="kafka") == 1
    # No model name is ever a label value.
    assert not any(team in value for _, labels in served for _, value in labels)

    def chained(samples: Samples) -> bool:
        grown = total(samples, "registry_audit_chain_length", topic=COMMANDS) - total(
            audit_before, "registry_audit_chain_length", topic=COMMANDS
        )
        return grown >= 5

    audited = await eventually(audit, chained)
    assert total(audited, "registry_audit_entries_total", topic=COMMANDS) >= 5
    assert present(audited, "registry_consumer_lag", group="audit", topic="registry.access")


async def test_deploy_tracker_exports_its_groups_and_outbox(stack: EmbeddedStack) -> None:
    url = stack.url("deploy-tracker")
    samples = await eventually(
        url,
        lambda s: (
            present(s, "registry_consumer_lag", group="deploy-tracker", topic="deploy.events")
            and present(s, "registry_consumer_lag", topic="registry.events")
            and present(s, "registry_outbox_backlog", outbox="deploy_outbox")
        ),
    )
    assert present(samples, "registry_build_info", service="deploy-tracker")
