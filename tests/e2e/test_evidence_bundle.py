"""A version's evidence bundle: exported over HTTP, the client and the CLI, and checked offline (issue 27, item 4)."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack
from registry_client import AsyncRegistryClient, NotFound
from registry_client.audit_keys import signature_check
from registry_contract.evidence_check import SUMMARY_CHANGED, verify_bundle
from tests.e2e.test_cli_audit_check import cli
from tests.factories import ADMIN_KEY
from tests.http_tools import WRITER_SCOPES, Team, acting_as, register, team_key, team_name
from tests.waiting import until

pytestmark = pytest.mark.e2e
VERSION = "1.0.0"


async def bundle_of(stack: EmbeddedStack, token: str, team: str) -> httpx.Response:
    async with acting_as(stack, "audit", token) as http:
        return await http.get(f"/v1/audit/evidence/{team}/m/{VERSION}")


async def interleave(stack: EmbeddedStack, team: str, other: str, other_token: str) -> tuple[str, int]:
    """Another team's event audited on the chain of ``team``'s registration, after it: its (chain, seq)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.audit_mongodb_uri, tz_aware=True)
    log = client[service_database("audit")].audit_log
    try:
        ours = await until(
            lambda: log.find_one({"team": team, "topic": "registry.events", "detail": f"version {VERSION}"}),
            timeout=30,
            what="the registration audited",
        )
        for attempt in range(40):  # models land on partitions by their id: one soon shares our chain
            model = f"{other}/n{attempt}"
            await register(stack, other_token, other, f"n{attempt}")
            query = {"team": other, "model": model, "topic": "registry.events"}
            theirs = await until(
                lambda query=query: log.find_one(query),  # type: ignore[misc]
                timeout=30,
                what="the other team's registration audited",
            )
            if theirs["chain"] == ours["chain"]:
                assert theirs["seq"] > ours["seq"]
                return theirs["chain"], theirs["seq"]
        raise AssertionError("no other team's registration landed on our chain")
    finally:
        await client.close()


async def test_a_versions_evidence_is_exported_verified_offline_and_shows_no_other_team(
    stack: EmbeddedStack, team: Team, tmp_path: Path
) -> None:
    await register(stack, team.writer, team.name, "m", VERSION, source={"code_commit": "abc1234"})
    other = team_name("ev")
    other_token = await team_key(stack, other, WRITER_SCOPES)
    interleaved = await interleave(stack, team.name, other, other_token)
    async with acting_as(stack, "registration", team.approver) as http:
        path = f"/v1/models/{team.name}/m/versions/{VERSION}/approval"
        assert (await http.put(path, json={"status": "approved", "comment": "validated"})).status_code == 200
    report = {
        "team": team.name,
        "name": "m",
        "version": VERSION,
        "environment": "prod",
        "status": "deployed",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    async with acting_as(stack, "deploy-tracker", team.writer) as http:
        assert (await http.post("/v1/deployments/events", json=report)).status_code == 202

    async def complete() -> dict[str, Any] | None:
        response = await bundle_of(stack, team.writer, team.name)
        body: dict[str, Any] = response.json() if response.status_code == 200 else {}
        summary = body.get("summary", {})
        deployed = summary.get("deployments", {}).get("prod", {}).get("status") == "deployed"
        return body if deployed and summary.get("approval") == "approved" else None

    bundle = await until(complete, timeout=60, what="the approval and the deployment in the bundle")
    async with acting_as(stack, "audit", team.writer) as http:
        keys = [key["public_key"] for key in (await http.get("/v1/audit/public-keys")).json()["keys"]]

    # Over HTTP: it verifies offline, and holds the version's history, nothing of the other team's.
    verdict = verify_bundle(bundle, signature_check(keys))
    assert verdict.ok, verdict.first_broken
    assert verdict.signatures_checked >= 2 and bundle["attestation"] is not None
    summary = bundle["summary"]
    assert summary["registration"]["data"]["artifact_uri"] == f"s3://models/{team.name}/m/{VERSION}"
    assert summary["lineage"]["source"]["code_commit"] == "abc1234"
    assert summary["approvals"][0]["data"]["to"] == "approved"
    assert summary["deployment_reports"] and summary["deployment_changes"]
    assert {entry["team"] for entry in bundle["entries"]} == {team.name}
    assert list(interleaved) in [[link["chain"], link["seq"]] for link in bundle["links"]]
    assert other not in json.dumps(bundle)

    # The client, and the CLI, export the same evidence; the CLI verifies it and finds one changed byte.
    async with AsyncRegistryClient(team.writer, audit_url=stack.url("audit")) as client:
        exported = await client.export_evidence(team.name, "m", VERSION)
    assert verify_bundle(exported, signature_check(keys)).ok
    assert exported.summary.registration is not None
    file = tmp_path / "evidence.json"
    code, out = await cli(stack, team.writer, "audit", "evidence", team.name, "m", VERSION, "-o", str(file))
    assert code == 0, out
    key_options = [arg for key in keys for arg in ("--public-key", key)]
    code, out = await cli(stack, team.writer, "audit", "verify", "--bundle", str(file), *key_options)
    assert code == 0, out
    assert json.loads(out)["ok"] is True
    # Signatures nobody checks do not pass, unless asked for (a stack directory without keys: none to default to).
    no_keys = ["--data-dir", str(tmp_path / "no-stack")]
    code, out = await cli(stack, team.writer, "audit", "verify", "--bundle", str(file), *no_keys)
    assert code == 2 and "--no-signature-check" in out, out
    code, out = await cli(
        stack, team.writer, "audit", "verify", "--bundle", str(file), *no_keys, "--no-signature-check"
    )
    assert code == 0 and json.loads(out)["signatures_unchecked"] >= 1, out

    text = file.read_text()
    uri = f"s3://models/{team.name}/m/{VERSION}"
    at = text.index(uri) + len(uri) - 1  # the summary's artifact_uri, the first place it appears
    file.write_text(text[:at] + ("1" if text[at] != "1" else "2") + text[at + 1 :])
    code, out = await cli(stack, team.writer, "audit", "verify", "--bundle", str(file), *key_options)
    assert code == 1, out
    assert json.loads(out)["first_broken"]["problem"] == SUMMARY_CHANGED
    entry_hash = text.index('"hash": "') + len('"hash": "')
    file.write_text(text[:entry_hash] + ("a" if text[entry_hash] != "a" else "b") + text[entry_hash + 1 :])
    code, out = await cli(stack, team.writer, "audit", "verify", "--bundle", str(file), *key_options)
    assert code == 1, out
    assert json.loads(out)["first_broken"]["section"] == "entries"


async def test_another_teams_key_gets_404_like_a_missing_version_and_an_admin_gets_the_bundle(
    stack: EmbeddedStack, team: Team
) -> None:
    await register(stack, team.writer, team.name, "m", VERSION)
    await until(
        lambda: _status(stack, team.writer, team.name, 200), timeout=30, what="the team's bundle of its version"
    )
    stranger = await team_key(stack, team_name("st"), WRITER_SCOPES)
    refused = await bundle_of(stack, stranger, team.name)
    assert refused.status_code == 404 and refused.json()["type"].endswith("not_found")
    async with acting_as(stack, "audit", team.writer) as http:
        missing = await http.get(f"/v1/audit/evidence/{team.name}/m/9.9.9")
    assert missing.status_code == 404 and missing.json()["title"] == refused.json()["title"]
    async with AsyncRegistryClient(stranger, audit_url=stack.url("audit")) as client:
        with pytest.raises(NotFound):
            await client.export_evidence(team.name, "m", VERSION)
    assert (await bundle_of(stack, ADMIN_KEY.token, team.name)).status_code == 200


async def _status(stack: EmbeddedStack, token: str, team: str, status: int) -> bool:
    return (await bundle_of(stack, token, team)).status_code == status
