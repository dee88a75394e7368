"""``registry import mlflow`` as a user runs it: --models says what it matched, a dry run shows the plan."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import httpx
import pytest
from typer.testing import CliRunner, Result

from registry_client.cli import importing
from registry_client.cli.main import app
from registry_client.cli.mlflow_import.naming import slugify
from registry_client.cli.mlflow_import.selection import Selection
from registry_client.cli.mlflow_import.source import MlflowSource
from tests.unit.test_mlflow_import_existing_models import StubRegistry, stored
from tests.unit.test_terminal_output import CLIPBOARD, assert_inert

pytestmark = pytest.mark.unit
URI = "http://mlflow.test"
LONG = "Card Fraud XGB trained on every card payment of the last eighteen months across all regions"
NAMES = ["Card Fraud XGB", "churn_predictor", LONG]


class FakeMlflow:
    """An MLflow tracking server's REST API over a few models, each with one version; it notes what was read."""

    def __init__(self, names: list[str], *, tags: dict[str, str] | None = None) -> None:
        self.names, self.tags = names, tags or {}
        self.versions_read: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/registered-models/search"):
            tags = [{"key": k, "value": v} for k, v in self.tags.items()]
            return httpx.Response(200, json={"registered_models": [{"name": n, "tags": tags} for n in self.names]})
        if request.url.path.endswith("/model-versions/search"):
            name = request.url.params["filter"].split("=", 1)[1].strip("'\"")
            self.versions_read.append(name)
            source = f"s3://ml-models/{len(self.versions_read)}/model"
            version = {"name": name, "version": "1", "source": source, "status": "READY"}
            return httpx.Response(200, json={"model_versions": [version]})
        return httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no"})


def run(
    monkeypatch: pytest.MonkeyPatch, mlflow: FakeMlflow, registry: StubRegistry, *args: str, width: int = 80
) -> Result:
    """The command over ``mlflow`` and ``registry``, in a terminal ``width`` columns wide."""

    @contextmanager
    def client(api_key: str | None) -> Iterator[StubRegistry]:
        yield registry

    monkeypatch.setattr(importing, "MlflowSource", partial(MlflowSource, transport=httpx.MockTransport(mlflow)))
    monkeypatch.setattr(importing, "registry", client)
    argv = ["import", "mlflow", "--tracking-uri", URI, "--team", "fraud", "--api-key", "k", *args]
    return CliRunner().invoke(app, argv, terminal_width=width, env={"COLUMNS": str(width)})


class TestChoosingModels:
    def test_a_pattern_past_the_listed_models_says_the_listing_was_cut(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The third model is past --max-models 2: the refusal says so, instead of "no such model".
        result = run(
            monkeypatch, FakeMlflow(NAMES), StubRegistry(), "--models", "card fraud xgb trained*", "--max-models", "2"
        )
        assert result.exit_code == 3, result.output
        assert "only the first 2 were listed: raise --max-models" in result.output
        assert run(monkeypatch, FakeMlflow(NAMES), StubRegistry(), "--models", "card fraud xgb trained*").exit_code == 0

    def test_a_pattern_matches_regardless_of_case_and_against_the_name_the_model_becomes(self) -> None:
        choose = Selection(("card-*", "CHURN*"))
        assert [n for n in NAMES if choose.chooses(n)] == NAMES
        assert choose.matched(NAMES) == {"card-*": ["Card Fraud XGB", LONG], "CHURN*": ["churn_predictor"]}
        assert Selection().chooses("anything") and not Selection(("card",)).chooses("Card Fraud XGB")

    def test_only_the_chosen_models_are_read_and_each_pattern_says_what_it_matched(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        mlflow = FakeMlflow(NAMES)
        result = run(monkeypatch, mlflow, StubRegistry(), "--models", "churn-*", "--dry-run")
        assert result.exit_code == 0, result.output
        assert mlflow.versions_read == ["churn_predictor"]
        assert "--models 'churn-*' matched 1: churn_predictor" in result.stdout

    def test_a_pattern_that_matches_nothing_is_a_warning_and_the_others_still_import(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        result = run(monkeypatch, FakeMlflow(NAMES), StubRegistry(), "--models", "churn*", "--models", "ranker*")
        assert result.exit_code == 0, result.output
        assert "warning: --models 'ranker*' matched no MLflow model" in result.stderr

    def test_when_no_pattern_matches_anything_the_import_stops_and_names_the_models_there_are(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        registry = StubRegistry()
        result = run(monkeypatch, FakeMlflow(NAMES), registry, "--models", "ranker*", "--json")
        assert result.exit_code == 3 and result.stdout == ""
        assert "--models 'ranker*' matched no model of the MLflow server" in result.stderr
        assert "'Card Fraud XGB'" in result.stderr and registry.sent == []

    def test_the_json_says_what_each_pattern_matched(self, monkeypatch: pytest.MonkeyPatch) -> None:
        result = run(monkeypatch, FakeMlflow(NAMES), StubRegistry(), "--models", "Card*", "--dry-run", "--json")
        assert json.loads(result.stdout)["matched"] == {"Card*": ["Card Fraud XGB", LONG]}


class TestTheDryRun:
    def test_the_json_has_every_planned_action_per_model(self, monkeypatch: pytest.MonkeyPatch) -> None:
        registry = StubRegistry()
        result = run(monkeypatch, FakeMlflow(["churn_predictor"]), registry, "--dry-run", "--json")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        [outcome] = summary["outcomes"]
        assert summary["dry_run"] is True and registry.sent == []
        assert (outcome["name"], outcome["exists"], outcome["to_send"], outcome["sent"]) == (
            "churn-predictor",
            False,
            2,
            0,
        )
        assert [(a["action"], a["command"]) for a in outcome["actions"]] == [
            ("create", "register_version"),
            ("create", "update_model"),
        ]
        assert outcome["actions"][0]["version"] == "1.0.0"

    def test_the_text_lists_what_would_be_created_added_and_kept_without_cutting_lines(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        mlflow = FakeMlflow(["Card Fraud XGB", LONG], tags={"owner": "alice"})
        registry = stored("card-fraud-xgb")
        result = run(monkeypatch, mlflow, registry, "--dry-run", width=80)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[0] == f"MLflow import from {URI} into team fraud: the plan (dry run, nothing sent)"
        assert f"{LONG} → fraud/{slugify(LONG)} (new model): 2 to send" in lines
        assert "  create   version 1.0.0 (MLflow version 1)" in lines
        assert "Card Fraud XGB → fraud/card-fraud-xgb (exists: only new versions are added, the rest is kept)" in (
            result.stdout
        )
        assert "  add      version 1.0.0 (MLflow version 1)" in lines
        [kept] = [line for line in lines if line.startswith("  kept")]
        assert "owner stays 'carol' (MLflow: 'alice')" in kept and "mlflow_name not added" in kept
        assert lines[-1].endswith("--update-existing changes them") and registry.sent == []

    def test_values_from_either_side_print_inertly(self, monkeypatch: pytest.MonkeyPatch) -> None:
        mlflow = FakeMlflow(["Card Fraud XGB"], tags={"owner": f"alice{CLIPBOARD}"})
        result = run(monkeypatch, mlflow, stored("card-fraud-xgb"), "--dry-run")
        assert result.exit_code == 0, result.output
        assert "owner stays 'carol'" in result.stdout
        assert_inert(result.stdout + result.stderr)
