"""Every command, event and access of a scenario is audited exactly once, across an audit restart."""

import uuid
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY, binary_record, register_event
from tests.kafka_tools import Collector, header, publish_raw
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
TOPICS = ("registry.commands", "registry.events", "deploy.events", "registry.access")


async def scenario_step(stack: EmbeddedStack, team: str, step: int, correlation: str) -> None:
    headers = {**ADMIN, "X-Correlation-ID": correlation}
    body = {"version": f"1.{step}.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
    async with httpx.AsyncClient(headers=headers) as http:
        written = await http.post(f"{stack.url('registration')}/v1/models/{team}/m/versions", json=body)
        # With the write's token, the read waits for the read model, so it is a read of the model
        # (audited as registry.access.read), never a 404 from a model not yet projected.
        token = {"X-Registry-Consistency": written.headers["X-Registry-Consistency"]}
        await http.get(f"{stack.url('query')}/v1/models/{team}/m", headers=token)
        await http.get(f"{stack.url('query')}/v1/models/{team}/m", headers={"Authorization": "Bearer mr_bad"})
    command = register_event(team, "k", f"1.{step}.0", token=ADMIN_KEY.token, correlation_id=correlation)
    value, record_headers = binary_record(command)
    await publish_raw(
        stack.settings.kafka_bootstrap, "registry.commands", [(value, record_headers, f"{team}/k".encode())]
    )


async def audited(stack: EmbeddedStack, correlation: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN) as http:
        response = await http.get("/v1/audit", params={"correlation_id": correlation, "limit": 200})
        assert response.status_code == 200, response.text
        return list(response.json()["items"])


async def test_a_scenario_is_audited_exactly_once_across_a_restart(stack: EmbeddedStack) -> None:
    team = f"aud-{uuid.uuid4().hex[:6]}"
    correlations = [f"aud-{uuid.uuid4().hex[:10]}" for _ in range(6)]
    async with Collector(stack.settings.kafka_bootstrap, *TOPICS) as seen:
        for step, correlation in enumerate(correlations[:3]):
            await scenario_step(stack, team, step, correlation)
        audit = stack.services["audit"]
        await audit.stop()  # mid-stream: more messages arrive while the audit service is down
        for step, correlation in enumerate(correlations[3:], start=3):
            await scenario_step(stack, team, step, correlation)
        await audit.start()
        await stack.wait_ready("audit", 60)

        def sent(correlation: str) -> set[str]:
            return {
                f"{r.topic}:{r.partition}:{r.offset}"
                for r in seen.records
                if header(r, "ce_correlationid") == correlation
            }

        kinds_expected = {
            "registry.command.register_model_version",
            "registry.event.model_version_registered",
            "registry.access.read",
            "registry.access.auth_failed",
        }
        for correlation in correlations:

            async def complete(correlation: str = correlation) -> list[dict[str, Any]] | None:
                # Every kind too: access records are published apart from the rest, up to a linger later.
                entries = await audited(stack, correlation)
                expected = sent(correlation)
                found = {f"{e['topic']}:{e['partition']}:{e['offset']}" for e in entries}
                kinds = {e["type"] for e in entries}
                return entries if found >= expected and len(expected) >= 5 and kinds >= kinds_expected else None

            entries = await until(complete, timeout=60, what=f"every record of {correlation} audited")
            expected = sent(correlation)
            positions = [f"{e['topic']}:{e['partition']}:{e['offset']}" for e in entries]
            assert len(positions) == len(set(positions)), "an entry was audited twice"
            assert set(positions) == expected
            assert kinds_expected <= {e["type"] for e in entries}
    async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN) as http:
        verdict = (await http.get("/v1/audit/verify")).json()
    assert verdict["ok"] is True and verdict["entries"] > 0


async def test_teams_see_only_their_own_entries(stack: EmbeddedStack) -> None:
    ours, theirs = f"aud-{uuid.uuid4().hex[:6]}", f"aud-{uuid.uuid4().hex[:6]}"
    tokens = {}
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        for team in (ours, theirs):
            scopes = ["audit:read", "models:write"]
            response = await http.post(f"/v1/teams/{team}/api-keys", json={"name": "a", "scopes": scopes})
            assert response.status_code == 201, response.text
            tokens[team] = response.json()["token"]
            body = {"version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
            headers = {"Authorization": f"Bearer {tokens[team]}"}
            created = await http.post(f"/v1/models/{team}/m/versions", json=body, headers=headers)
            assert created.status_code == 201, created.text

    async def listed(team: str, *, as_team: str | None = None) -> list[dict[str, Any]]:
        """``team``'s entries as the platform admin sees them, or everything ``as_team``'s key is shown."""
        token = tokens[as_team] if as_team else ADMIN_KEY.token
        params: dict[str, str | int] = {"limit": 200, **({} if as_team else {"team": team})}
        async with httpx.AsyncClient(base_url=stack.url("audit"), headers={"Authorization": f"Bearer {token}"}) as h:
            response = await h.get("/v1/audit", params=params)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    def registered(team: str, entries: list[dict[str, Any]]) -> bool:
        return any(e["type"] == "registry.event.model_version_registered" and e["team"] == team for e in entries)

    async def theirs_audited() -> list[dict[str, Any]] | None:
        entries = await listed(theirs)
        return entries if registered(theirs, entries) else None

    async def ours_shown() -> list[dict[str, Any]] | None:
        entries = await listed(ours, as_team=ours)
        return entries if registered(ours, entries) else None

    their_entries = await until(theirs_audited, what="the other team's registration audited")
    shown = await until(ours_shown, what="the team's own registration shown to its key")
    assert {entry["team"] for entry in shown} == {ours}
    assert not {entry["id"] for entry in shown} & {entry["id"] for entry in their_entries}


async def test_a_key_created_and_revoked_over_http_is_audited_as_two_writes(stack: EmbeddedStack) -> None:
    team = f"aud-{uuid.uuid4().hex[:6]}"
    created_by, revoked_by = f"aud-{uuid.uuid4().hex[:10]}", f"aud-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        body = {"name": "ci", "scopes": ["models:read"]}
        response = await http.post(f"/v1/teams/{team}/api-keys", json=body, headers={"X-Correlation-ID": created_by})
        assert response.status_code == 201, response.text
        key_id = response.json()["key_id"]
        revoked = await http.delete(f"/v1/teams/{team}/api-keys/{key_id}", headers={"X-Correlation-ID": revoked_by})
        assert revoked.status_code == 204, revoked.text

    async def write_of(correlation: str) -> dict[str, Any] | None:
        return next((e for e in await audited(stack, correlation) if e["type"] == "registry.access.write"), None)

    creation = await until(lambda: write_of(created_by), timeout=60, what="the key's creation audited")
    revocation = await until(lambda: write_of(revoked_by), timeout=60, what="the key's revocation audited")
    for entry, correlation in ((creation, created_by), (revocation, revoked_by)):
        assert (entry["actor"], entry["verified"], entry["outcome"]) == (ADMIN_KEY.key_id, "service", "write")
        assert entry["correlation_id"] == correlation and entry["topic"] == "registry.access"
        assert entry["expires_at"] is not None  # an access entry: kept for AUDIT_ACCESS_RETENTION_DAYS
    assert creation["detail"] == f"POST /v1/teams/{team}/api-keys 201"
    assert revocation["detail"] == f"DELETE /v1/teams/{team}/api-keys/{key_id} 204"
    async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN) as http:
        listed = await http.get("/v1/audit", params={"type": "registry.access.write", "principal": ADMIN_KEY.key_id})
    assert {creation["id"], revocation["id"]} <= {entry["id"] for entry in listed.json()["items"]}


async def test_the_audit_log_is_written_to_its_own_database_server(stack: EmbeddedStack) -> None:
    """The embedded stack's audit log lives on the second stand-in; the shared one holds none of it."""
    correlation = uuid.uuid4().hex
    await scenario_step(stack, f"own-{uuid.uuid4().hex[:6]}", 1, correlation)

    async def entries() -> list[dict[str, Any]] | None:
        found = await audited(stack, correlation)
        return found or None

    await until(entries, timeout=30, what="the scenario audited")
    shared: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.mongodb_uri)
    own: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.audit_mongodb_uri)
    audit = service_database("audit")  # its database, on either server
    try:
        in_shared = await shared[audit]["audit_log"].count_documents({"correlation_id": correlation})
        in_own = await own[audit]["audit_log"].count_documents({"correlation_id": correlation})
        shared_collections = await shared[audit].list_collection_names()
    finally:
        await shared.close()
        await own.close()
    assert in_shared == 0 and in_own > 0
    assert "audit_heads" not in shared_collections
