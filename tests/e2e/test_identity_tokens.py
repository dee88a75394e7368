"""OpenID Connect tokens as bearers, against a real provider on loopback and the whole stack.

A pipeline's token (an ID token of the test provider carrying the claims a CI provider would)
acts for a team only through a trust rule that team's admin wrote; every service accepts it;
the audit shows which rule let it; hostile tokens are refused with 401 and an access entry.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from registry_contract.identity_events import TRUST_RULE_CREATED, TRUST_RULE_DELETED
from tests.http_tools import ADMIN, Team, acting_as, register, team_key, team_name
from tests.oidc_provider import ADMINS_GROUP, CONSOLE_GROUP, PEOPLE_TEAM, OidcProvider, pipeline_subject
from tests.waiting import until

pytestmark = pytest.mark.e2e
SERVICES = ("registration", "query", "deploy-tracker", "audit")
# A read each service authenticates (the tracker's is a POST with an empty body: 401 before 422).
PROBES = {"registration": "/v1/whoami", "query": "/v1/models", "audit": "/v1/audit"}


def _pipeline_claims(repository: str, ref: str = "refs/heads/main") -> dict[str, Any]:
    return {"repository": repository, "ref": ref, "workflow": "release", "repository_owner": repository.split("/")[0]}


async def _pipeline_token(provider: OidcProvider, repository: str, ref: str = "refs/heads/main") -> str:
    subject = pipeline_subject(repository, ref)
    await provider.set_user(subject, _pipeline_claims(repository, ref))
    return await provider.id_token(subject)


async def _rule(
    stack: EmbeddedStack, admin: str, team: str, body: dict[str, Any], *, expect: int = 201
) -> dict[str, Any]:
    async with acting_as(stack, "registration", admin) as http:
        answer = await http.post(f"/v1/teams/{team}/trust-rules", json=body)
    assert answer.status_code == expect, answer.text
    return dict(answer.json())


def _rule_body(provider: OidcProvider, repository: str, scopes: list[str]) -> dict[str, Any]:
    return {"issuer": provider.issuer, "claims": {"repository": repository, "ref": "refs/heads/main"}, "scopes": scopes}


async def _audit(stack: EmbeddedStack, team: str, **params: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN) as http:
        answer = await http.get("/v1/audit", params={"team": team, "limit": 200, **params})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


async def test_a_pipeline_with_only_a_token_registers_and_reports_and_the_audit_names_its_rule(
    stack: EmbeddedStack, oidc_provider: OidcProvider, team: Team
) -> None:
    repository = f"acme/{team.name}"
    token = await _pipeline_token(oidc_provider, repository)
    # No rule yet: the token is nobody, on every service.
    for service in SERVICES:
        async with acting_as(stack, service, token, for_team=team.name) as http:
            if service == "deploy-tracker":
                refused = await http.post("/v1/deployments/events", json={})
            else:
                refused = await http.get(PROBES[service])
        assert refused.status_code == 401, (service, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")

    rule = await _rule(
        stack, team.writer, team.name, _rule_body(oidc_provider, repository, ["models:write", "deployments:write"])
    )
    assert rule["team"] == team.name and rule["scopes"] == ["deployments:write", "models:write"]

    async def admitted_by_the_tracker() -> bool:
        # Its refusal of a moment ago was cached; the rule's event drops it.
        async with acting_as(stack, "deploy-tracker", token, for_team=team.name) as http:
            return (await http.post("/v1/deployments/events", json={})).status_code == 422

    await until(admitted_by_the_tracker, timeout=10, what="the tracker to admit the token under the new rule")

    correlation = f"tok-{uuid.uuid4().hex[:10]}"
    # Without naming its team, the token is nobody: another team's rules are never tried for it.
    await register(stack, token, team.name, "from-ci", "1.0.0", expect=401)
    registered = await register(stack, token, team.name, "from-ci", "1.0.0", expect=201, for_team=team.name)
    assert registered.json()["created_by"] == rule["rule_id"]
    async with acting_as(stack, "deploy-tracker", token, for_team=team.name) as http:
        reported = await http.post(
            "/v1/deployments/events",
            headers={"Prefer": "wait=30", "X-Correlation-Id": correlation},
            json={
                "team": team.name,
                "name": "from-ci",
                "version": "1.0.0",
                "environment": "staging",
                "status": "deployed",
                "pipeline": "github-actions",
                "occurred_at": datetime.now(UTC).isoformat(),
            },
        )
    assert reported.status_code == 200, reported.text
    assert reported.json()["outcome"] == "applied"

    async def audited() -> list[dict[str, Any]] | None:
        entries = await _audit(stack, team.name, correlation_id=correlation)
        writes = [e for e in entries if e["type"] == "registry.access.write"]
        return writes or None

    (write,) = await until(audited, timeout=30, what="the report's access entry")
    assert write["actor"] == rule["rule_id"]
    assert f"iss={oidc_provider.issuer}" in write["detail"]
    assert f"sub={pipeline_subject(repository)}" in write["detail"]
    assert f"rule={rule['rule_id']}" in write["detail"]
    assert f"repository={repository}" in write["detail"]

    async def rule_event() -> list[dict[str, Any]] | None:
        entries = await _audit(stack, team.name, type=TRUST_RULE_CREATED)
        return entries or None

    (created,) = await until(rule_event, timeout=30, what="the rule's creation in the audit log")
    assert created["expires_at"] is None  # kept for ever, like key changes
    assert rule["rule_id"] in created["detail"]


async def test_a_rule_grants_at_most_its_writers_scopes_and_only_listed_issuers(
    stack: EmbeddedStack, oidc_provider: OidcProvider
) -> None:
    team = team_name("rules")
    admin_only = await team_key(stack, team, ["team:admin", "models:read"])
    body = _rule_body(oidc_provider, "acme/x", ["deployments:write"])
    refused = await _rule(stack, admin_only, team, body, expect=422)
    assert "deployments:write" in refused["detail"]
    await _rule(stack, admin_only, team, body | {"scopes": ["platform:admin"]}, expect=422)
    unlisted = body | {"scopes": ["models:read"], "issuer": "https://evil.example"}
    assert "not on the platform's list" in (await _rule(stack, admin_only, team, unlisted, expect=422))["detail"]
    await _rule(stack, admin_only, team, body | {"scopes": ["models:read"], "claims": {}}, expect=422)
    # A rule on claims any workload of the issuer has (a branch) would admit every one of them.
    anyone = body | {"scopes": ["models:read"], "claims": {"ref": "refs/heads/main"}}
    assert (
        "must match at least one of sub, repository"
        in (await _rule(stack, admin_only, team, anyone, expect=422))["detail"]
    )
    await _rule(stack, admin_only, team, body | {"scopes": ["models:read"], "claims": {"aud": "x"}}, expect=422)
    # Another team's admin cannot write rules for this team.
    stranger = await team_key(stack, team_name("other"), ["team:admin", "models:read"])
    await _rule(stack, stranger, team, body | {"scopes": ["models:read"]}, expect=403)


async def test_a_token_of_one_team_is_any_other_teams_stranger(
    stack: EmbeddedStack, oidc_provider: OidcProvider, team: Team
) -> None:
    await register(stack, team.writer, team.name, "private", "1.0.0")
    other = team_name("tok")
    other_admin = await team_key(stack, other, ["team:admin", "models:read", "models:write"])
    repository = f"acme/{other}"
    await _rule(stack, other_admin, other, _rule_body(oidc_provider, repository, ["models:read", "models:write"]))
    token = await _pipeline_token(oidc_provider, repository)
    async with acting_as(stack, "query", token, for_team=other) as http:
        assert (await http.get(f"/v1/models/{team.name}/private")).status_code == 404
    await register(stack, token, team.name, "private", "2.0.0", expect=403, for_team=other)
    # Naming the other team does not help: only that team's rules are tried, and none matches.
    async with acting_as(stack, "query", token, for_team=team.name) as http:
        assert (await http.get(f"/v1/models/{team.name}/private")).status_code == 401


async def test_another_teams_rule_on_the_same_claims_neither_captures_nor_blocks_a_pipeline(
    stack: EmbeddedStack, oidc_provider: OidcProvider, team: Team
) -> None:
    repository = f"acme/{team.name}-shared"
    await _rule(stack, team.writer, team.name, _rule_body(oidc_provider, repository, ["models:write"]))
    # Another team writes a rule matching the same pipeline's claims.
    squatter = team_name("squat")
    squatter_admin = await team_key(stack, squatter, ["team:admin", "models:read", "models:write"])
    await _rule(stack, squatter_admin, squatter, _rule_body(oidc_provider, repository, ["models:write"]))
    token = await _pipeline_token(oidc_provider, repository)
    # The pipeline names its team: the squatter's rule is never tried, and changes nothing.
    await register(stack, token, team.name, "named", "1.0.0", for_team=team.name)
    async with acting_as(stack, "registration", token, for_team=team.name) as http:
        who = (await http.get("/v1/whoami")).json()
    assert who["team"] == team.name


async def test_a_deleted_rule_admits_nothing_on_any_service(
    stack: EmbeddedStack, oidc_provider: OidcProvider, team: Team
) -> None:
    repository = f"acme/{team.name}-gone"
    rule = await _rule(stack, team.writer, team.name, _rule_body(oidc_provider, repository, ["models:read"]))
    token = await _pipeline_token(oidc_provider, repository)
    for service in ("query", "registration"):
        async with acting_as(stack, service, token, for_team=team.name) as http:
            assert (await http.get("/v1/models" if service == "query" else "/v1/whoami")).status_code == 200
    async with acting_as(stack, "registration", team.writer) as http:
        assert (await http.delete(f"/v1/teams/{team.name}/trust-rules/{rule['rule_id']}")).status_code == 204
        listed = await http.get(f"/v1/teams/{team.name}/trust-rules")
    assert listed.json()["items"] == []
    async with acting_as(stack, "registration", token, for_team=team.name) as http:
        assert (await http.get("/v1/whoami")).status_code == 401

    async def refused_by_query() -> bool:
        async with acting_as(stack, "query", token, for_team=team.name) as http:
            return (await http.get("/v1/models")).status_code == 401

    await until(refused_by_query, timeout=10, what="the query service to refuse the deleted rule's token")

    async def audited() -> list[dict[str, Any]] | None:  # the audit log follows the bus: it may lag
        return await _audit(stack, team.name, type=TRUST_RULE_DELETED) or None

    deleted = await until(audited, timeout=30, what="the rule's deletion in the team's audit log")
    assert [entry["detail"].split()[2] for entry in deleted] == [rule["rule_id"]]


async def test_people_sign_in_rules_map_groups_to_a_team_or_the_platform(
    stack: EmbeddedStack, oidc_provider: OidcProvider
) -> None:
    await oidc_provider.set_user("carol@example.com", {"email": "carol@example.com", "groups": [CONSOLE_GROUP]})
    await oidc_provider.set_user("root@example.com", {"email": "root@example.com", "groups": [ADMINS_GROUP]})
    await oidc_provider.set_user("mallory@example.com", {"email": "mallory@example.com", "groups": ["nobody"]})
    for subject, team, admin in (("carol@example.com", PEOPLE_TEAM, False), ("root@example.com", "platform", True)):
        token = await oidc_provider.id_token(subject)
        async with acting_as(stack, "registration", token) as http:
            who = await http.get("/v1/whoami")
        assert who.status_code == 200, who.text
        assert (who.json()["team"], who.json()["platform_admin"]) == (team, admin)
    token = await oidc_provider.id_token("mallory@example.com")
    async with acting_as(stack, "query", token) as http:
        assert (await http.get("/v1/models")).status_code == 401


async def test_a_key_rotation_at_the_provider_needs_no_restart(
    stack: EmbeddedStack, oidc_provider: OidcProvider
) -> None:
    await oidc_provider.set_user("dora@example.com", {"email": "dora@example.com", "groups": [CONSOLE_GROUP]})
    before = await oidc_provider.id_token("dora@example.com")
    async with acting_as(stack, "query", before) as http:
        assert (await http.get("/v1/models")).status_code == 200
    await oidc_provider.rotate_keys()
    after = await oidc_provider.id_token("dora@example.com")

    async def admitted() -> bool:
        async with acting_as(stack, "query", after) as http:
            return (await http.get("/v1/models")).status_code == 200

    await until(admitted, timeout=15, interval=0.5, what="a token signed with the provider's new key to be admitted")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"sig") -> str:
    return ".".join((_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)))


async def test_hostile_tokens_get_the_one_401_and_an_access_entry_each(
    stack: EmbeddedStack, oidc_provider: OidcProvider
) -> None:
    now = int(datetime.now(UTC).timestamp())
    claims = {"iss": oidc_provider.issuer, "aud": "model-registry", "sub": "x", "exp": now + 600, "iat": now}
    await oidc_provider.set_user("eve@example.com", {"email": "eve@example.com", "groups": [CONSOLE_GROUP]})
    wrong_audience = await oidc_provider.id_token("eve@example.com", audience="another-app")
    genuine = await oidc_provider.id_token("eve@example.com")
    head, payload, signature = genuine.split(".")
    hostile = {
        "alg none": _forged({"alg": "none", "typ": "JWT"}, claims, b""),
        "HS256": _forged({"alg": "HS256", "typ": "JWT"}, claims),
        "wrong issuer": _forged({"alg": "RS256"}, claims | {"iss": "https://evil.example"}),
        "wrong audience": wrong_audience,
        "expired": _forged({"alg": "RS256"}, claims | {"exp": now - 3600}),
        "tampered": ".".join((head, _b64(json.dumps(claims | {"groups": [ADMINS_GROUP]}).encode()), signature)),
        "oversized": _forged({"alg": "RS256"}, claims | {"pad": "x" * 20_000}),
        "control characters": _forged({"alg": "RS256"}, claims | {"sub": "x\u0000\u001b[31m"}),
        "garbage": "a.b.c",
    }
    marker = f"hostile-{secrets.token_hex(4)}"
    for what, token in hostile.items():
        for service in ("registration", "query"):
            async with acting_as(stack, service, token) as http:
                answer = await http.get("/v1/models" if service == "query" else "/v1/whoami", params={"m": marker})
            assert answer.status_code == 401, (what, service, answer.text)
            assert answer.json()["type"].endswith("unauthenticated"), what
    # A flood of made-up key ids costs the provider at most one JWKS fetch per refresh interval.
    flood = [_forged({"alg": "RS256", "kid": secrets.token_hex(8)}, claims) for _ in range(200)]
    async with acting_as(stack, "registration", "") as http:
        for token in flood:
            answer = await http.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401
    async with acting_as(stack, "query", payload) as http:
        assert (await http.get("/v1/models")).status_code == 401
    async with acting_as(stack, "registration", genuine) as http:
        assert (await http.get("/v1/whoami")).status_code == 200  # the flood locked no one out
