"""`registry import mlflow` against a real MLflow tracking server and the embedded stack."""

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from registry_cli.stack import EmbeddedStack
from registry_client import RegistryClient
from tests.http_tools import team_key
from tests.mlflow_server import SeededMlflow

pytestmark = pytest.mark.e2e
REGISTRY = str(Path(sys.executable).with_name("registry"))
SCOPES = ["models:read", "models:write"]


async def import_mlflow(stack: EmbeddedStack, token: str, *args: str) -> tuple[int, dict[str, Any], str]:
    env = {
        **os.environ,
        "REGISTRY_API_KEY": token,
        "REGISTRY_REGISTRATION_URL": stack.url("registration"),
        "REGISTRY_QUERY_URL": stack.url("query"),
    }
    process = await asyncio.create_subprocess_exec(
        REGISTRY,
        "import",
        "mlflow",
        "--json",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode is not None
    return process.returncode, json.loads(out) if out.strip() else {}, err.decode()


async def test_every_model_lands_with_its_versions_and_aliases_and_a_rerun_sends_nothing(
    stack: EmbeddedStack, mlflow_server: SeededMlflow
) -> None:
    team = f"mlf-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, SCOPES)
    code, first, err = await import_mlflow(stack, token, "--tracking-uri", mlflow_server.tracking_uri, "--team", team)
    assert code == 0, (first, err)
    assert first["models"] == len(mlflow_server.models) and all(not o["failed"] for o in first["outcomes"])
    assert sum(o["sent"] for o in first["outcomes"]) > 0
    with RegistryClient(token, registration_url=stack.url("registration"), query_url=stack.url("query")) as client:
        for outcome in first["outcomes"]:
            model = client.get_model(team, outcome["name"])
            seeded = mlflow_server.models[outcome["mlflow_name"]]
            assert model.tags.get("mlflow_name") == outcome["mlflow_name"]
            imported = {v.version for v in client.versions(team, outcome["name"], include_prerelease=True)}
            skipped = {f["item"] for f in first["skipped"] if f["mlflow_name"] == outcome["mlflow_name"]}
            expected = {f"{n}.0.0" for n in range(1, len(seeded.versions) + 1) if f"version {n}" not in skipped}
            assert imported == expected, (outcome["mlflow_name"], imported, skipped)
            for alias, version in seeded.aliases.items():
                if f"{version}.0.0" in imported and f"alias '{alias}'" not in skipped:
                    assert model.aliases.get(alias.lower()) == f"{version}.0.0", (alias, model.aliases, skipped)
    code, again, err = await import_mlflow(stack, token, "--tracking-uri", mlflow_server.tracking_uri, "--team", team)
    assert code == 0, (again, err)
    assert all(o["sent"] == 0 and o["present"] > 0 and not o["failed"] for o in again["outcomes"]), again["outcomes"]


async def test_a_dry_run_sends_nothing(stack: EmbeddedStack, mlflow_server: SeededMlflow) -> None:
    team = f"mlf-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, SCOPES)
    code, plan, err = await import_mlflow(
        stack, token, "--tracking-uri", mlflow_server.tracking_uri, "--team", team, "--dry-run"
    )
    assert code == 0 and plan["models"] == len(mlflow_server.models) and plan["outcomes"] == [], err
    with RegistryClient(token, registration_url=stack.url("registration"), query_url=stack.url("query")) as client:
        assert list(client.models(team=team)) == []


async def test_an_unreachable_tracking_server_is_one_clear_line(stack: EmbeddedStack) -> None:
    token = await team_key(stack, f"mlf-{uuid.uuid4().hex[:6]}", SCOPES)
    code, _, err = await import_mlflow(stack, token, "--tracking-uri", "http://127.0.0.1:9", "--team", "t")
    assert code == 1 and "cannot read MLflow" in err
