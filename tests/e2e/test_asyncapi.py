"""Every service documents its topics in /asyncapi.json, and what it really sends conforms to it."""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from registry_cli.secrets import load_or_create
from registry_cli.stack import EmbeddedStack
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from registry_contract.identity_events import IDENTITY_EVENT_MODELS
from shared.chassis.signing import EventSigner
from tests.factories import ADMIN_KEY, binary_record, register_event, signing_key_pem
from tests.kafka_tools import Collector, caused_by, header, publish_raw
from tests.oidc_provider import OidcProvider

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
# What each service consumes and publishes, by channel.
ROLES = {
    "registration": ({"commands", "events"}, {"events", "access"}),  # events: key revocations evict its cache
    "deploy-tracker": ({"deploy", "events"}, {"events", "access", "deploy"}),  # webhooks; the HTTP bridge
    "query": ({"events"}, {"access"}),  # its search projection
    "audit": ({"commands", "events", "deploy", "access"}, {"access"}),
}


async def documents(stack: EmbeddedStack) -> dict[str, dict[str, Any]]:
    found = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for service in ROLES:
            response = await http.get(stack.url(service) + "/asyncapi.json")
            assert response.status_code == 200, (service, response.text)
            found[service] = response.json()
    return found


def operations(document: dict[str, Any], action: str) -> set[str]:
    return {op["channel"]["$ref"].rsplit("/", 1)[1] for op in document["operations"].values() if op["action"] == action}


def message_schemas(docs: dict[str, dict[str, Any]]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """(headers schema, payload schema) of every message type any service documents."""
    found = {}
    for document in docs.values():
        components = document["components"]
        for channel in document["channels"].values():
            for message in channel["messages"].values():
                payload = {**message["payload"]["schema"], "components": components}
                found[message["name"]] = (message["headers"], payload)
    return found


def violations(record: Any, schemas: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    ce_type = header(record, "ce_type")
    if ce_type not in schemas:
        return [f"{ce_type!r} is not documented"]
    headers_schema, payload_schema = schemas[ce_type]
    headers = {key: bytes(value).decode() for key, value in record.headers}
    problems = [e.message for e in Draft202012Validator(headers_schema).iter_errors(headers)]
    problems += [e.message for e in Draft202012Validator(payload_schema).iter_errors(json.loads(record.value))]
    return [f"{ce_type}: {p}" for p in problems]


async def change_keys_rules_and_webhooks(stack: EmbeddedStack, team: str, issuer: str) -> None:
    """Create and revoke a key, create and delete a trust rule and a signing key, make, re-key, drop a webhook.

    One of each identity event.
    """
    async with httpx.AsyncClient(headers=AUTH, timeout=10) as http:
        keys = f"{stack.url('registration')}/v1/teams/{team}/api-keys"
        key = (await http.post(keys, json={"name": "k", "scopes": ["models:read"]})).json()
        assert (await http.delete(f"{keys}/{key['key_id']}")).status_code == 204
        rules = f"{stack.url('registration')}/v1/teams/{team}/trust-rules"
        body = {"issuer": issuer, "claims": {"repository": "acme/x"}, "scopes": ["models:read"]}
        rule = (await http.post(rules, json=body)).json()
        assert (await http.delete(f"{rules}/{rule['rule_id']}")).status_code == 204
        signing_keys = f"{stack.url('registration')}/v1/teams/{team}/signing-keys"
        signing_key = (await http.post(signing_keys, json={"name": "ci", "public_key": signing_key_pem()})).json()
        assert (await http.delete(f"{signing_keys}/{signing_key['key_id']}")).status_code == 204
        hooks = f"{stack.url('deploy-tracker')}/v1/teams/{team}/webhooks"
        hook = (await http.post(hooks, json={"url": "http://127.0.0.1:9/h", "event_types": ["*"]})).json()
        assert (await http.post(f"{hooks}/{hook['id']}/secret")).status_code == 200
        assert (await http.delete(f"{hooks}/{hook['id']}")).status_code == 204


async def test_each_service_documents_what_it_consumes_and_publishes(stack: EmbeddedStack) -> None:
    docs = await documents(stack)
    for service, (consumes, publishes) in ROLES.items():
        assert docs[service]["asyncapi"] == "3.0.0"
        assert operations(docs[service], "receive") == consumes, service
        assert operations(docs[service], "send") >= publishes, service
    every_type = set(message_schemas(docs))
    assert every_type == set(messages.COMMAND_MODELS) | set(messages.EVENT_MODELS)


async def test_what_the_services_send_conforms_to_their_documents(
    stack: EmbeddedStack, oidc_provider: OidcProvider
) -> None:
    # The AsyncAPI documents are how a producer learns the Kafka side without reading the code.
    schemas = message_schemas(await documents(stack))
    team = f"t{uuid.uuid4().hex[:10]}"
    accepted = register_event(team, "card", "1.0.0", token=ADMIN_KEY.token)
    refused = register_event(team, "card", "not-semver", token=ADMIN_KEY.token)
    report = CloudEvent(
        source="/ci",
        type=messages.DEPLOY_STATUS_REPORTED,
        sign_with=ADMIN_KEY.token,  # signed with the key, never carrying it
        data={
            "team": team,
            "name": "card",
            "version": "1.0.0",
            "environment": "staging",  # not gated: the report applies and its event is checked too
            "status": "deploying",
            "occurred_at": datetime.now(UTC).isoformat(),
        },
    )
    settings = stack.settings
    topics = ("registry.commands", "registry.events", "deploy.events", "registry.access")
    async with Collector(settings.kafka_bootstrap, *topics) as seen:
        await publish_raw(
            settings.kafka_bootstrap,
            "registry.commands",
            [(*binary_record(e), team.encode()) for e in (accepted, refused)],
        )
        await seen.wait_for(caused_by(accepted.id))
        await publish_raw(settings.kafka_bootstrap, "deploy.events", [(*binary_record(report), team.encode())])
        await seen.wait_for(caused_by(report.id))
        async with httpx.AsyncClient(base_url=stack.url("query"), headers=AUTH, timeout=10) as query:
            assert (await query.get(f"/v1/models/{team}/card")).status_code == 200
        await seen.wait_for(lambda r: header(r, "ce_type") == messages.ACCESS_READ and team in r.value.decode())
        await seen.wait_for(caused_by(refused.id))
        await change_keys_rules_and_webhooks(stack, team, oidc_provider.issuer)
        for change in IDENTITY_EVENT_MODELS:

            def announced(record: Any, change: str = change) -> bool:
                return header(record, "ce_type") == change and team in record.value.decode()

            await seen.wait_for(announced)
    signer = EventSigner(load_or_create(settings.data_dir).event_signing_key.encode())
    # Everything the services signed on the session's topics (other tests' traffic included), and
    # the commands and reports this test sent: records other tests forged or broke on purpose are not
    # the services' output.
    ours = {accepted.id, refused.id, report.id}
    checked = [r for r in seen.records if signer.verify(r.value, r.headers) or header(r, "ce_id") in ours]
    kinds = {header(r, "ce_type") for r in checked}
    assert {
        messages.MODEL_VERSION_REGISTERED,
        messages.COMMAND_REJECTED,
        messages.DEPLOYMENT_STATUS_CHANGED,
        messages.ACCESS_READ,
        messages.REGISTER_MODEL_VERSION,
        messages.DEPLOY_STATUS_REPORTED,
        *IDENTITY_EVENT_MODELS,
    } <= kinds
    assert [v for r in checked for v in violations(r, schemas)] == []
