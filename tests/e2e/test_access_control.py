"""Team isolation over every HTTP route of every service, and over Kafka commands."""

import asyncio
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack
from registry_contract import messages
from registry_contract.auth import SCOPES
from tests.factories import ADMIN_KEY, binary_record, command_event, register_event, signing_key_pem
from tests.http_tools import make_key, team_key
from tests.kafka_tools import Collector, caused_by, header, publish_raw
from tests.waiting import until

pytestmark = pytest.mark.e2e
TEAM_SCOPES = ["models:read", "models:write", "deployments:write", "audit:read", "team:admin"]
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
KEY_CACHE_SECONDS = 1  # set for the test stack in conftest


@dataclass
class World:
    owner: str
    shared_with: str
    other: str
    model: str
    model_id: str
    keys: dict[str, str | None]  # caller kind -> token
    throwaway_key_ids: list[str]


async def refused_everywhere(stack: EmbeddedStack, team: str, token: str) -> bool:
    """Whether every service answers ``token`` with 401 (a revoked key, once the caches have expired)."""
    probes = {
        "registration": f"/v1/teams/{team}/api-keys",
        "query": "/v1/models",
        "deploy-tracker": f"/v1/teams/{team}/webhooks",
        "audit": "/v1/audit",
    }
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        for service, path in probes.items():
            if (await http.get(f"{stack.url(service)}{path}")).status_code != 401:
                return False
    return True


@pytest.fixture(scope="module")
async def world(stack: EmbeddedStack) -> World:
    u = uuid.uuid4().hex[:6]
    owner, shared_with, other = f"own-{u}", f"shr-{u}", f"oth-{u}"
    keys: dict[str, str | None] = {
        "none": None,
        "malformed": "mr_nope",
        "own": await team_key(stack, owner, TEAM_SCOPES),
        "lacking_scope": await team_key(stack, owner, ["deployments:write"]),
        "other_team": await team_key(stack, other, TEAM_SCOPES),
        "shared_with": await team_key(stack, shared_with, TEAM_SCOPES),
    }
    revoked = await make_key(stack, owner, TEAM_SCOPES)
    keys["revoked"] = revoked["token"]
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        assert (await http.delete(f"/v1/teams/{owner}/api-keys/{revoked['key_id']}")).status_code == 204
        for version in ("1.0.0", "1.0.1"):
            body = {"version": version, "framework": "onnx", "artifact_uri": "s3://bucket/key"}
            assert (await http.post(f"/v1/models/{owner}/m/versions", json=body)).status_code == 201
        assert (await http.put(f"/v1/models/{owner}/m/shares/{shared_with}")).status_code == 200
    async with httpx.AsyncClient(base_url=stack.url("query"), headers=ADMIN) as http:
        model_id = (await http.get(f"/v1/models/{owner}/m")).json()["model_id"]
    throwaway = [(await make_key(stack, owner, ["models:read"]))["key_id"] for _ in range(2)]
    await until(
        lambda: refused_everywhere(stack, owner, revoked["token"]),
        timeout=KEY_CACHE_SECONDS + 5,
        interval=0.2,
        what="every service refusing the revoked key",
    )
    return World(owner, shared_with, other, "m", model_id, keys, throwaway)


CALLERS = ["none", "malformed", "revoked", "other_team", "lacking_scope", "own", "shared_with"]
UNAUTH = {"none": 401, "malformed": 401, "revoked": 401}


def expect(own: int, *, other: int, shared: int, lacking: int = 403) -> dict[str, int]:
    return {**UNAUTH, "other_team": other, "lacking_scope": lacking, "own": own, "shared_with": shared}


def trusted_issuer() -> str:
    """The issuer the session's stack trusts (its test provider: tests/oidc_provider.py)."""
    issuers: list[str] = json.loads(os.environ["OIDC_ISSUERS"])
    return issuers[0]


def routes(w: World) -> list[tuple[str, str, str, Any, dict[str, int]]]:
    m = f"/v1/models/{w.owner}/{w.model}"
    hidden = expect(200, other=404, shared=200)
    return [
        ("query", "GET", "/v1/models", None, expect(200, other=200, shared=200)),
        ("query", "GET", f"/v1/teams/{w.owner}/models", None, expect(200, other=200, shared=200)),
        ("query", "GET", m, None, hidden),
        ("query", "GET", f"/v1/models/id/{w.model_id}", None, hidden),
        ("query", "GET", f"{m}/versions", None, hidden),
        ("query", "GET", f"{m}/versions/1.0.0", None, hidden),
        ("query", "GET", f"{m}/versions/latest", None, hidden),
        ("query", "GET", f"{m}/history", None, hidden),
        ("query", "GET", f"{m}/versions/1.0.0/deployments", None, hidden),
        ("query", "GET", f"{m}/compare?versions=1.0.0,1.0.1", None, hidden),
        ("query", "GET", f"{m}?as_of=2999-01-01T00:00:00Z", None, hidden),
        ("query", "GET", f"{m}/versions/1.0.0?as_of=2000-01-01T00:00:00Z", None, expect(404, other=404, shared=404)),
        ("query", "GET", f"{m}/aliases/champion/history", None, hidden),
        ("query", "GET", f"{m}/environments/prod/timeline", None, hidden),
        ("query", "GET", f"{m}/timeline", None, hidden),
        ("query", "GET", "/v1/meta", None, expect(200, other=200, shared=200)),
        ("registration", "POST", f"{m}/versions", "NEW_VERSION", expect(201, other=403, shared=403)),
        ("registration", "PATCH", f"{m}/versions/1.0.0", {"description": "d"}, expect(200, other=403, shared=403)),
        (
            "registration",
            "POST",
            f"{m}/versions/1.0.1/lifecycle",
            {"state": "deprecated"},
            expect(200, other=403, shared=403),
        ),
        ("registration", "PUT", f"{m}/shares/ext-{w.owner}", None, expect(200, other=403, shared=403)),
        ("registration", "DELETE", f"{m}/shares/ext-{w.owner}", None, expect(204, other=403, shared=403)),
        (
            "registration",
            "POST",
            f"/v1/teams/{w.owner}/api-keys",
            {"name": "k", "scopes": ["models:read"]},
            expect(201, other=403, shared=403),
        ),
        ("registration", "GET", f"/v1/teams/{w.owner}/api-keys", None, expect(200, other=403, shared=403)),
        (
            "registration",
            "POST",
            f"/v1/teams/{w.owner}/trust-rules",
            {"issuer": trusted_issuer(), "claims": {"repository": f"acme/{w.owner}"}, "scopes": ["models:read"]},
            expect(201, other=403, shared=403),
        ),
        ("registration", "GET", f"/v1/teams/{w.owner}/trust-rules", None, expect(200, other=403, shared=403)),
        (
            "registration",
            "POST",
            f"/v1/teams/{w.owner}/signing-keys",
            {"name": "ci", "public_key": signing_key_pem()},
            expect(201, other=403, shared=403),
        ),
        ("registration", "GET", f"/v1/teams/{w.owner}/signing-keys", None, expect(200, other=403, shared=403)),
        (
            "registration",
            "DELETE",
            f"/v1/teams/{w.owner}/signing-keys/sk_0000000000000000",
            None,
            expect(404, other=403, shared=403),
        ),
        # Any valid key may ask who it is.
        ("registration", "GET", "/v1/whoami", None, expect(200, other=200, shared=200, lacking=200)),
        (
            "registration",
            "DELETE",
            f"/v1/teams/{w.owner}/api-keys/{w.throwaway_key_ids[0]}",
            None,
            expect(204, other=403, shared=403),
        ),
        (
            "deploy-tracker",
            "POST",
            "/v1/deployments/events",
            {
                "team": w.owner,
                "name": w.model,
                "version": "1.0.0",
                "environment": "dev",
                "status": "deploying",
                "occurred_at": "2026-11-26T10:00:00Z",
            },
            expect(202, other=403, shared=403, lacking=202),
        ),
        (
            "deploy-tracker",
            "POST",
            f"/v1/teams/{w.owner}/webhooks",
            {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]},
            expect(201, other=403, shared=403),
        ),
        ("deploy-tracker", "GET", f"/v1/teams/{w.owner}/webhooks", None, expect(200, other=403, shared=403)),
        ("audit", "GET", "/v1/audit", None, expect(200, other=200, shared=200)),
        ("audit", "GET", f"/v1/audit?team={w.owner}", None, expect(200, other=403, shared=403)),
        ("audit", "GET", "/v1/audit/verify", None, expect(200, other=200, shared=200)),
        ("audit", "GET", f"/v1/audit/evidence/{w.owner}/{w.model}/1.0.0", None, expect(200, other=404, shared=404)),
    ]


async def test_every_route_answers_each_kind_of_caller_as_documented(stack: EmbeddedStack, world: World) -> None:
    denials: dict[str, tuple[str, int]] = {}
    hidden_reads: set[str] = set()  # must leave no trace the caller could tell from a miss
    failures = []
    async with Collector(stack.settings.kafka_bootstrap, "registry.access") as access:
        for service, method, path, body, expected in routes(world):
            for caller in CALLERS:
                token = world.keys[caller]
                correlation = f"m-{uuid.uuid4().hex[:12]}"
                headers = {"X-Correlation-ID": correlation}
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                payload = body
                if body == "NEW_VERSION":
                    payload = {
                        "version": f"2.0.{len(denials)}-{caller.replace('_', '-')}",
                        "framework": "onnx",
                        "artifact_uri": "s3://bucket/key",
                    }
                async with httpx.AsyncClient(base_url=stack.url(service), headers=headers) as http:
                    response = await http.request(method, path, json=payload)
                if response.status_code != expected[caller]:
                    failures.append(f"{caller:>13} {method} {path}: {response.status_code} != {expected[caller]}")
                if response.status_code in (401, 403):
                    assert response.headers["content-type"] == "application/problem+json"
                    denials[correlation] = (f"{caller} {method} {path}", response.status_code)
                elif response.status_code == 404 and caller == "other_team":
                    assert response.headers["content-type"] == "application/problem+json"
                    hidden_reads.add(correlation)
        assert not failures, "\n".join(failures)

        async def all_recorded() -> bool:
            seen = {header(r, "ce_correlationid") for r in access.records}
            return set(denials) <= seen

        # The denials came after the hidden reads: once every denial is on the topic, an event
        # for a hidden read would be there too.
        await until(all_recorded, timeout=15, what="every denial on registry.access")
        assert not hidden_reads & {header(r, "ce_correlationid") for r in access.records}
    types = {header(r, "ce_correlationid"): header(r, "ce_type") for r in access.records}
    for correlation, (what, status) in denials.items():
        wanted = messages.ACCESS_AUTH_FAILED if status == 401 else messages.ACCESS_DENIED
        assert types[correlation] == wanted, what


async def test_lists_and_counts_never_show_other_teams_models(stack: EmbeddedStack, world: World) -> None:
    async def names(kind: str, path: str) -> set[str]:
        headers = {"Authorization": f"Bearer {world.keys[kind]}"}
        async with httpx.AsyncClient(base_url=stack.url("query"), headers=headers) as http:
            return {f"{m['team']}/{m['name']}" for m in (await http.get(path, params={"limit": 200})).json()["items"]}

    mine = f"{world.owner}/{world.model}"
    assert mine in await names("own", "/v1/models")
    assert mine in await names("shared_with", "/v1/models")
    assert mine not in await names("other_team", "/v1/models")
    assert await names("other_team", f"/v1/teams/{world.owner}/models") == set()


async def test_unsharing_takes_effect_on_every_read_that_carries_its_token(stack: EmbeddedStack, world: World) -> None:
    owner_headers = {"Authorization": f"Bearer {world.keys['own']}"}
    reader = {"Authorization": f"Bearer {world.keys['shared_with']}"}
    path = f"/v1/models/{world.owner}/{world.model}/shares/{world.shared_with}"
    async with (
        httpx.AsyncClient(base_url=stack.url("registration"), headers=owner_headers) as registration,
        httpx.AsyncClient(base_url=stack.url("query"), headers=reader) as query,
    ):
        # The reader's read carries the write's consistency token (as a client handed it over
        # would): that read cannot be answered from a read model that has not applied the unshare.
        unshared = await registration.delete(path)
        assert unshared.status_code == 204
        token = {"X-Registry-Consistency": unshared.headers["X-Registry-Consistency"]}
        assert (await query.get(f"/v1/models/{world.owner}/{world.model}", headers=token)).status_code == 404
        shared = await registration.put(path)
        assert shared.status_code == 200
        token = {"X-Registry-Consistency": shared.headers["X-Registry-Consistency"]}
        assert (await query.get(f"/v1/models/{world.owner}/{world.model}", headers=token)).status_code == 200


async def test_a_revoked_key_stops_working_everywhere_within_the_cache_bound(stack: EmbeddedStack) -> None:
    team = f"rev-{uuid.uuid4().hex[:6]}"
    key = await make_key(stack, team, TEAM_SCOPES)
    headers = {"Authorization": f"Bearer {key['token']}"}
    async with httpx.AsyncClient(headers=headers) as http:
        assert (await http.get(f"{stack.url('query')}/v1/models")).status_code == 200
        async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as admin:
            assert (await admin.delete(f"/v1/teams/{team}/api-keys/{key['key_id']}")).status_code == 204
        assert (await http.get(f"{stack.url('registration')}/v1/teams/{team}/api-keys")).status_code == 401
    # The bound under test: keys are cached for KEY_CACHE_SECONDS; allow half a second for the requests.
    await until(
        lambda: refused_everywhere(stack, team, key["token"]),
        timeout=KEY_CACHE_SECONDS + 0.5,
        interval=0.1,
        what=f"every service refusing the revoked key within the {KEY_CACHE_SECONDS} s cache bound",
    )


async def test_bodies_cannot_set_server_owned_fields(stack: EmbeddedStack, world: World) -> None:
    headers = {"Authorization": f"Bearer {world.keys['own']}"}
    base = f"/v1/models/{world.owner}/{world.model}/versions"
    body = {"version": "3.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=headers) as http:
        for field, value in [
            ("team", world.owner),
            ("status", "deployed"),
            ("model_id", "x"),
            ("created_at", "2020-01-01T00:00:00Z"),
            ("owner", "me"),
            ("lifecycle", "archived"),
        ]:
            response = await http.post(base, json={**body, field: value})
            assert response.status_code == 422, field


async def test_a_burst_gets_429_with_retry_after_and_recovers(stack: EmbeddedStack) -> None:
    key = await make_key(
        stack, f"burst-{uuid.uuid4().hex[:6]}", ["models:read"], rate_limit={"per_second": 5, "burst": 10}
    )
    headers = {"Authorization": f"Bearer {key['token']}"}
    async with httpx.AsyncClient(base_url=stack.url("query"), headers=headers) as http:
        statuses = []
        for _ in range(400):  # burst 300 at 200/s (conftest): the bucket runs dry
            response = await http.get("/v1/meta")
            statuses.append(response.status_code)
            if response.status_code == 429:
                break
        assert statuses[-1] == 429, "no 429 within 400 requests"
        assert int(response.headers["Retry-After"]) >= 1
        assert response.headers["content-type"] == "application/problem+json"
        # The thing under test: after waiting Retry-After seconds, the key is served again.
        await asyncio.sleep(int(response.headers["Retry-After"]))
        assert (await http.get("/v1/meta")).status_code == 200


class TestKafkaCommandAuth:
    @pytest.mark.parametrize(
        ("kind", "reason"),
        [
            ("none", "unauthenticated"),
            ("revoked", "unauthenticated"),
            ("other_team", "forbidden"),
            ("malformed", "unauthenticated"),
            ("lacking_scope", "forbidden"),
        ],
    )
    async def test_commands_without_a_usable_key_are_rejected_and_write_nothing(
        self, stack: EmbeddedStack, world: World, kind: str, reason: str
    ) -> None:
        name = f"k-{uuid.uuid4().hex[:8]}"
        malformed = kind == "malformed"  # not a key, so nothing to sign with: a signature that is none
        command = register_event(world.owner, name, token=None if malformed else world.keys[kind])
        value, headers = binary_record(command)
        if malformed:
            headers += [("ce_keyid", b"nope"), ("ce_signature", b"mr_nope")]
        async with Collector(stack.settings.kafka_bootstrap, "registry.events") as events:
            await publish_raw(
                stack.settings.kafka_bootstrap,
                "registry.commands",
                [(value, headers, f"{world.owner}/{name}".encode())],
            )
            [event] = await events.wait_for(caused_by(command.id))
        assert header(event, "ce_type") == messages.COMMAND_REJECTED
        assert json.loads(event.value)["reason"] == reason
        async with httpx.AsyncClient(base_url=stack.url("query"), headers=ADMIN) as http:
            assert (await http.get(f"/v1/models/{world.owner}/{name}")).status_code == 404

    async def test_sharing_over_kafka_needs_team_admin(self, stack: EmbeddedStack, world: World) -> None:
        data = {"team": world.owner, "name": world.model, "with_team": world.other}
        command = command_event(messages.SHARE_MODEL, data, token=world.keys["shared_with"])
        value, headers = binary_record(command)
        async with Collector(stack.settings.kafka_bootstrap, "registry.events") as events:
            await publish_raw(
                stack.settings.kafka_bootstrap,
                "registry.commands",
                [(value, headers, f"{world.owner}/{world.model}".encode())],
            )
            [event] = await events.wait_for(caused_by(command.id))
        assert json.loads(event.value)["reason"] == "forbidden"


async def test_the_database_holds_no_usable_key(stack: EmbeddedStack, world: World) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.mongodb_uri)
    stored = await client[service_database("registration")]["api_keys"].find({}).to_list()
    await client.close()
    assert stored
    async with httpx.AsyncClient(base_url=stack.url("query")) as http:
        for record in stored:
            for value in [v for v in record.values() if isinstance(v, str)]:
                for candidate in (value, f"mr_{record['_id']}_{value}"):
                    response = await http.get("/v1/meta", headers={"Authorization": f"Bearer {candidate}"})
                    assert response.status_code == 401, (record["_id"], value[:6])
    assert all(set(record) >= {"secret_hash"} and "token" not in record for record in stored)
    assert set(SCOPES) >= {s for record in stored for s in record.get("scopes", [])}
