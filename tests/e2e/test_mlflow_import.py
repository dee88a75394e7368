"""`registry import mlflow` against a real MLflow tracking server and the embedded stack."""

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from registry_cli.stack import EmbeddedStack
from registry_client import NotFound, RegistryClient
from registry_contract.views import ModelPublic
from tests.http_tools import team_key
from tests.mlflow_server import FRAUD, SeededMlflow
from tests.waiting import until

pytestmark = pytest.mark.e2e
REGISTRY = str(Path(sys.executable).with_name("registry"))
SCOPES = ["models:read", "models:write"]
REPOSITORY = {"repository": "https://git.example.com/fraud/card-fraud-xgb"}


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


async def test_a_dry_run_shows_the_plan_per_model_and_sends_nothing(
    stack: EmbeddedStack, mlflow_server: SeededMlflow
) -> None:
    team = f"mlf-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, SCOPES)
    code, plan, err = await import_mlflow(
        stack, token, "--tracking-uri", mlflow_server.tracking_uri, "--team", team, "--dry-run"
    )
    assert code == 0 and plan["dry_run"] and plan["models"] == len(mlflow_server.models), err
    assert {o["mlflow_name"] for o in plan["outcomes"]} == set(mlflow_server.models)
    for outcome in plan["outcomes"]:
        assert not outcome["exists"] and outcome["sent"] == 0 and outcome["to_send"] == len(outcome["actions"])
        assert {a["action"] for a in outcome["actions"]} == {"create"}
        assert "register_version" in {a["command"] for a in outcome["actions"]}
    with RegistryClient(token, registration_url=stack.url("registration"), query_url=stack.url("query")) as client:
        assert list(client.models(team=team)) == []


async def test_an_import_into_an_existing_model_adds_its_versions_and_changes_nothing_else_unless_asked(
    stack: EmbeddedStack, mlflow_server: SeededMlflow
) -> None:
    team = f"mlf-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, SCOPES)
    with RegistryClient(token, registration_url=stack.url("registration"), query_url=stack.url("query")) as client:
        before = await the_tutorials_model(client, team)
        args = ["--tracking-uri", mlflow_server.tracking_uri, "--team", team, "--models", "card-*"]
        code, first, err = await import_mlflow(stack, token, *args)
        assert code == 0, (first, err)
        assert first["matched"] == {"card-*": [FRAUD]}
        [outcome] = first["outcomes"]
        assert outcome["exists"] and outcome["kept"] > 0 and not outcome["failed"], outcome
        kept = {a["item"]: a.get("detail") for a in outcome["actions"] if a["action"] == "kept"}
        assert kept["alias champion → 3.0.0 (MLflow alias 'Champion')"] == "stays on 1.4.0", kept
        after = await until(
            lambda: model_if(client, team, lambda m: m.latest_version == "3.0.0"), what="the imported versions"
        )
        assert after.aliases == before.aliases == {"champion": "1.4.0"}
        assert after.tags == before.tags == {"owner": "carol"}  # pinned: 3.0.0's tags do not take over
        assert (after.links, after.description) == (REPOSITORY, "Scores card payments")
        imported = {v.version for v in client.versions(team, "card-fraud-xgb", include_prerelease=True)}
        assert imported == {"1.4.0", "1.0.0", "2.0.0", "3.0.0"}

        code, second, err = await import_mlflow(stack, token, *args, "--update-existing")
        assert code == 0 and not second["outcomes"][0]["failed"], (second, err)
        updated = await until(
            lambda: model_if(client, team, lambda m: m.aliases.get("champion") == "3.0.0"), what="champion moved"
        )
        stages = {"production": "3.0.0", "staging": "2.0.0"}  # old_best names version 1, which is archived
        expected = {"champion": "3.0.0"} | (stages if mlflow_server.stages else {"old_best": "1.0.0"})
        assert updated.aliases == expected
        assert updated.tags["owner"] == "alice" and updated.tags["mlflow_name"] == FRAUD
        assert updated.links["repository"] == REPOSITORY["repository"] and "mlflow" in updated.links


async def test_models_patterns_that_match_nothing_stop_the_import_with_the_names_there_are(
    stack: EmbeddedStack, mlflow_server: SeededMlflow
) -> None:
    token = await team_key(stack, f"mlf-{uuid.uuid4().hex[:6]}", SCOPES)
    args = ["--tracking-uri", mlflow_server.tracking_uri, "--team", "t", "--models", "nothing-*"]
    code, answer, err = await import_mlflow(stack, token, *args)
    assert code == 3 and answer == {}, err
    assert "--models 'nothing-*' matched no model of the MLflow server" in err and repr(FRAUD) in err


async def the_tutorials_model(client: RegistryClient, team: str) -> ModelPublic:
    """``card-fraud-xgb`` as the tutorial leaves it: 1.4.0 by hand with an owner, @champion, a description, a link."""
    artifact = "s3://ml-models/fraud/card-fraud-xgb/1.4.0/model.tar.gz"
    tags = {"owner": "carol"}
    client.register_version(team, "card-fraud-xgb", "1.4.0", framework="xgboost", artifact_uri=artifact, tags=tags)
    client.set_alias(team, "card-fraud-xgb", "champion", "1.4.0")
    client.update_model(team, "card-fraud-xgb", description="Scores card payments", links=REPOSITORY)
    return await until(
        lambda: model_if(client, team, lambda m: m.aliases and m.links and m.description),
        what="the tutorial's model with its alias and link",
    )


async def model_if(client: RegistryClient, team: str, ready: Callable[[ModelPublic], object]) -> ModelPublic | None:
    """The model once ``ready`` says so (the query service follows registration's events)."""
    try:
        model = client.get_model(team, "card-fraud-xgb")
    except NotFound:
        return None
    return model if ready(model) else None


async def test_an_unreachable_tracking_server_is_one_clear_line(stack: EmbeddedStack) -> None:
    token = await team_key(stack, f"mlf-{uuid.uuid4().hex[:6]}", SCOPES)
    code, _, err = await import_mlflow(stack, token, "--tracking-uri", "http://127.0.0.1:9", "--team", "t")
    assert code == 1 and "cannot read MLflow" in err
