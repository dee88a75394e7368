"""Key, trust-rule, signing-key and webhook changes are events: kept in the audit log, with their actor, no secret."""

import json
import uuid
from typing import Any

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from registry_contract.identity_events import (
    API_KEY_CREATED,
    API_KEY_REVOKED,
    IDENTITY_EVENT_MODELS,
    SIGNING_KEY_CREATED,
    SIGNING_KEY_DELETED,
    TRUST_RULE_CREATED,
    TRUST_RULE_DELETED,
    WEBHOOK_CREATED,
    WEBHOOK_DELETED,
    WEBHOOK_SECRET_ROTATED,
)
from tests.factories import ADMIN_KEY, signing_key_pem
from tests.kafka_tools import Collector, header
from tests.oidc_provider import OidcProvider
from tests.waiting import until

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}


async def audit_entries(stack: EmbeddedStack, token: str, team: str, **params: str) -> list[dict[str, Any]]:
    # The platform's entries are most of a long session's log, which the embedded stand-in sorts
    # whole for a filtered list: allow it the time the waits below allow, not httpx's 5 s.
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=stack.url("audit"), headers=headers, timeout=30) as http:
        response = await http.get("/v1/audit", params={"team": team, "limit": 200, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_each_key_rule_and_webhook_change_is_in_the_teams_audit_log_with_its_actor_and_no_secret(
    stack: EmbeddedStack, oidc_provider: OidcProvider
) -> None:
    # Each change is an event too: registry.access.write entries alone expire.
    team = f"idn-{uuid.uuid4().hex[:6]}"
    correlation = {change: f"idn-{uuid.uuid4().hex[:12]}" for change in IDENTITY_EVENT_MODELS}
    secrets: list[str] = []
    async with Collector(stack.settings.kafka_bootstrap, "registry.events") as seen:
        async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as platform:
            created = await platform.post(
                f"/v1/teams/{team}/api-keys", json={"name": "admin", "scopes": ["team:admin", "audit:read"]}
            )
        assert created.status_code == 201, created.text
        admin = created.json()
        secrets.append(admin["token"])
        as_team_admin = {"Authorization": f"Bearer {admin['token']}"}
        async with (
            httpx.AsyncClient(base_url=stack.url("registration"), headers=as_team_admin) as registration,
            httpx.AsyncClient(base_url=stack.url("deploy-tracker"), headers=as_team_admin) as tracker,
        ):

            def tagged(change: str) -> dict[str, str]:
                return {"X-Correlation-ID": correlation[change]}

            body = {"name": "ci", "scopes": ["models:write"], "expires_at": "2099-01-01T00:00:00Z"}
            key = await registration.post(f"/v1/teams/{team}/api-keys", json=body, headers=tagged(API_KEY_CREATED))
            assert key.status_code == 201, key.text
            secrets.append(key.json()["token"])
            revoked = await registration.delete(
                f"/v1/teams/{team}/api-keys/{key.json()['key_id']}", headers=tagged(API_KEY_REVOKED)
            )
            assert revoked.status_code == 204, revoked.text
            subscription = {"url": "http://127.0.0.1:9/hooks/T0/B0/pathtoken?token=querytoken", "event_types": ["*"]}
            hook = await tracker.post(f"/v1/teams/{team}/webhooks", json=subscription, headers=tagged(WEBHOOK_CREATED))
            assert hook.status_code == 201, hook.text
            secrets.append(hook.json()["secret"])
            route = f"/v1/teams/{team}/webhooks/{hook.json()['id']}"
            rotated = await tracker.post(f"{route}/secret", headers=tagged(WEBHOOK_SECRET_ROTATED))
            assert rotated.status_code == 200, rotated.text
            secrets.append(rotated.json()["secret"])
            deleted = await tracker.delete(route, headers=tagged(WEBHOOK_DELETED))
            assert deleted.status_code == 204, deleted.text
            rule = {"issuer": oidc_provider.issuer, "claims": {"repository": "acme/x"}, "scopes": ["audit:read"]}
            made = await registration.post(
                f"/v1/teams/{team}/trust-rules", json=rule, headers=tagged(TRUST_RULE_CREATED)
            )
            assert made.status_code == 201, made.text
            unmade = await registration.delete(
                f"/v1/teams/{team}/trust-rules/{made.json()['rule_id']}", headers=tagged(TRUST_RULE_DELETED)
            )
            assert unmade.status_code == 204, unmade.text
            signing_key = {"name": "release", "public_key": signing_key_pem()}
            trusted = await registration.post(
                f"/v1/teams/{team}/signing-keys", json=signing_key, headers=tagged(SIGNING_KEY_CREATED)
            )
            assert trusted.status_code == 201, trusted.text
            untrusted = await registration.delete(
                f"/v1/teams/{team}/signing-keys/{trusted.json()['key_id']}", headers=tagged(SIGNING_KEY_DELETED)
            )
            assert untrusted.status_code == 204, untrusted.text

        async def all_audited() -> dict[str, dict[str, Any]] | None:
            entries = await audit_entries(stack, admin["token"], team)  # the team's own audit:read key
            by_admin = [e for e in entries if e["type"] in IDENTITY_EVENT_MODELS and e["actor"] == admin["key_id"]]
            found = {e["type"]: e for e in by_admin}
            return found if len(found) == len(IDENTITY_EVENT_MODELS) else None

        found = await until(all_audited, timeout=30, what="every key, rule and webhook change in the team's audit log")
        records = seen.matching(lambda r: header(r, "ce_type") in IDENTITY_EVENT_MODELS and team.encode() in r.value)
    for change, entry in found.items():
        assert entry["topic"] == "registry.events" and entry["verified"] == "service", change
        assert (entry["team"], entry["actor"], entry["actor_team"]) == (team, admin["key_id"], team), change
        assert entry["correlation_id"] == correlation[change], change
        assert entry["expires_at"] is None, f"{change} must be kept for ever"
    assert found[WEBHOOK_CREATED]["detail"] == f"webhook {hook.json()['id']} -> http://127.0.0.1:9"
    rule_id = made.json()["rule_id"]
    assert (
        found[TRUST_RULE_DELETED]["detail"]
        == f"trust rule {rule_id} iss={oidc_provider.issuer} [repository=acme/x] scopes audit:read"
    )
    signing = trusted.json()
    assert found[SIGNING_KEY_DELETED]["detail"] == (
        f"signing key {signing['key_id']} (release) ecdsa-sha256-nistp256 {signing['fingerprint']}"
    )
    # Its access entry expires (AUDIT_ACCESS_RETENTION_DAYS); the event does not. (Access and event
    # entries come from two topics: the one may be chained a linger after the other.)

    async def access_entries() -> list[dict[str, Any]]:
        entries = await audit_entries(stack, ADMIN_KEY.token, team, correlation_id=correlation[API_KEY_REVOKED])
        return [e for e in entries if e["type"] == "registry.access.write"]

    [write] = await until(access_entries, timeout=30, what="the revocation's access entry")
    assert write["expires_at"] is not None

    # The platform admin's own creation of the team's admin key is there too, under the platform's key.
    async def platforms() -> list[dict[str, Any]]:
        return await audit_entries(stack, ADMIN_KEY.token, team, type=API_KEY_CREATED, principal=ADMIN_KEY.key_id)

    mine = await until(platforms, timeout=30, what="the platform's creation of the team's admin key")
    assert [e["actor_team"] for e in mine] == ["platform"]
    # Nothing secret on the bus or in the log: no token, no webhook secret, no URL path or query.
    assert len(records) >= len(IDENTITY_EVENT_MODELS)
    everything = json.dumps(list(found.values()) + mine) + "".join(r.value.decode() + repr(r.headers) for r in records)
    for secret in [*secrets, "pathtoken", "querytoken"]:
        assert secret.rsplit("_", 1)[-1] not in everything


async def test_the_bootstrap_key_written_before_any_service_ran_is_announced_by_registration(
    stack: EmbeddedStack,
) -> None:
    # `registry up` stores the bootstrap key in the keys collection before the services start.
    async def announced() -> list[dict[str, Any]] | None:
        entries = await audit_entries(stack, ADMIN_KEY.token, "platform", type=API_KEY_CREATED)
        return [e for e in entries if f"key {ADMIN_KEY.key_id} " in (e["detail"] or "")] or None

    [entry] = await until(announced, timeout=30, what="the bootstrap key's creation in the audit log")
    assert (entry["actor"], entry["actor_team"], entry["expires_at"]) == ("registry up", None, None)
    assert ADMIN_KEY.token.rsplit("_", 1)[1] not in json.dumps(entry)
