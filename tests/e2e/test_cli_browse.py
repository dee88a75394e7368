"""The ``registry`` read and write commands over the Python client, run as the real CLI against the stack."""

import asyncio
import json
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from registry_cli.stack import EmbeddedStack
from registry_client import RegistryClient
from tests.http_tools import team_key
from tests.waiting import until

pytestmark = pytest.mark.e2e
REGISTRY = str(Path(sys.executable).with_name("registry"))
WRITER_SCOPES = ["models:read", "models:write", "audit:read"]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


@dataclass(frozen=True)
class Model:
    team: str
    name: str
    writer: str
    approver: str


async def cli(stack: EmbeddedStack, key: str, *args: str) -> Result:
    env = {
        **os.environ,
        "REGISTRY_API_KEY": key,
        "REGISTRY_REGISTRATION_URL": stack.url("registration"),
        "REGISTRY_QUERY_URL": stack.url("query"),
        "REGISTRY_DEPLOY_TRACKER_URL": stack.url("deploy-tracker"),
        "REGISTRY_AUDIT_URL": stack.url("audit"),
    }
    env.pop("REGISTRY_GATEWAY_URL", None)
    process = await asyncio.create_subprocess_exec(
        REGISTRY, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


@pytest.fixture
async def model(stack: EmbeddedStack) -> Model:
    team, name = f"cb-{uuid.uuid4().hex[:8]}", f"churn-{uuid.uuid4().hex[:6]}"
    writer = await team_key(stack, team, WRITER_SCOPES)
    approver = await team_key(stack, team, ["models:read", "models:approve"])

    def register() -> None:
        with RegistryClient(writer, query_url=stack.url("query"), registration_url=stack.url("registration")) as client:
            for version in ("1.0.0", "1.1.0"):
                client.register_version(
                    team,
                    name,
                    version,
                    framework="xgboost",
                    artifact_uri=f"s3://ml-models/{name}/{version}.tar.gz",
                    description="predicts customer churn from billing history",
                    tags={"owner": "alice"},
                    wait=True,
                )

    await asyncio.to_thread(register)
    return Model(team, name, writer, approver)


async def test_models_list_and_show_find_the_registered_model(stack: EmbeddedStack, model: Model) -> None:
    listed = (await cli(stack, model.writer, "models", "list", "--team", model.team, "--json")).json()
    assert [(m["name"], m["latest_version"]) for m in listed] == [(model.name, "1.1.0")]
    by_tag = await cli(stack, model.writer, "models", "list", "--tag", "owner:alice", "--limit", "1", "--json")
    assert len(by_tag.json()) == 1

    table = await cli(stack, model.writer, "models", "list", "--team", model.team)
    assert table.code == 0 and model.name in table.out, table
    shown = await cli(stack, model.writer, "models", "show", model.team, model.name)
    assert shown.code == 0 and "1.1.0" in shown.out and model.name in shown.out, shown
    assert (await cli(stack, model.writer, "models", "show", model.team, model.name, "--json")).json()[
        "version_count"
    ] == 2


async def test_an_alias_set_by_the_cli_resolves_and_goes(stack: EmbeddedStack, model: Model) -> None:
    moved = await cli(stack, model.writer, "aliases", "set", model.team, model.name, "champion", "1.0.0")
    assert moved.code == 0 and "1.0.0" in moved.out, moved
    through = (await cli(stack, model.writer, "versions", "show", model.team, model.name, "@champion", "--json")).json()
    assert through["version"] == "1.0.0" and through["aliases"] == ["champion"]
    latest = (await cli(stack, model.writer, "versions", "show", model.team, model.name, "latest", "--json")).json()
    assert latest["version"] == "1.1.0"
    versions = (await cli(stack, model.writer, "versions", "list", model.team, model.name, "--json")).json()
    assert [v["version"] for v in versions] == ["1.1.0", "1.0.0"]

    assert (await cli(stack, model.writer, "aliases", "rm", model.team, model.name, "champion")).code == 0
    gone = await cli(stack, model.writer, "versions", "show", model.team, model.name, "@champion")
    assert gone.code == 3, gone


async def test_approval_needs_the_approve_scope(stack: EmbeddedStack, model: Model) -> None:
    refused = await cli(stack, model.writer, "approve", model.team, model.name, "1.1.0")
    assert refused.code == 4 and refused.err.startswith("error: ") and "correlation id" in refused.err, refused
    assert len(refused.err.strip().splitlines()) == 1

    approved = await cli(stack, model.approver, "approve", model.team, model.name, "1.1.0", "--comment", "ok", "--json")
    assert approved.json()["approval"]["status"] == "approved"
    assert approved.json()["approval"]["comment"] == "ok"
    rejected = await cli(stack, model.approver, "reject", model.team, model.name, "1.0.0", "--json")
    assert rejected.json()["approval"]["status"] == "rejected"


async def test_an_unknown_model_exits_3_with_one_line(stack: EmbeddedStack, model: Model) -> None:
    missing = await cli(stack, model.writer, "models", "show", model.team, "no-such-model")
    assert missing.code == 3 and missing.out == "", missing
    assert missing.err.startswith("error: ") and "not_found" in missing.err
    assert (await cli(stack, model.writer, "card", model.team, "no-such-model")).code == 3


async def test_search_card_deployments_and_audit(stack: EmbeddedStack, model: Model) -> None:
    async def found() -> list[Any] | None:
        hits = (await cli(stack, model.writer, "search", "churn billing", "--team", model.team, "--json")).json()
        return hits if any(h["model"]["name"] == model.name for h in hits) else None

    hits = await until(found, what="the model found by search")
    assert hits[0]["model"]["team"] == model.team

    card = await cli(stack, model.writer, "card", model.team, model.name, "--markdown")
    assert card.code == 0 and card.out.startswith("#") and model.name in card.out, card
    structured = (await cli(stack, model.writer, "card", model.team, model.name, "--version", "1.0.0", "--json")).json()
    assert model.name in structured["markdown"]

    deployments = (await cli(stack, model.writer, "deployments", model.team, model.name, "1.1.0", "--json")).json()
    assert deployments["status"] == "registered" and deployments["items"] == []

    async def audited() -> list[Any] | None:
        entries = (await cli(stack, model.writer, "audit", "list", "--limit", "200", "--json")).json()
        return entries if any(e["model"] == f"{model.team}/{model.name}" for e in entries) else None

    entries = await until(audited, what="the registration in the audit log")
    assert all(e["team"] == model.team for e in entries)
    bounded = (await cli(stack, model.writer, "audit", "list", "--limit", "1", "--json")).json()
    assert len(bounded) == 1
