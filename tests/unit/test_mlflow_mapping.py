"""What MLflow registered models become in the registry: the import's plan, built without I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from registration.handlers import Command, Outcome, handle_commands
from registration.repository import InMemoryRepository
from registry_client.cli.mlflow_import.mapping import MappingOptions, build_plan
from registry_client.cli.mlflow_import.naming import FLAVOR_FRAMEWORKS, slugify, tag_key
from registry_client.cli.mlflow_import.plan import ImportPlan, ModelPlan, StepKind
from registry_client.cli.mlflow_import.records import (
    MlflowModelVersion,
    MlflowRegisteredModel,
    MlflowRun,
    MlflowSnapshot,
)
from registry_contract import catalog, messages
from tests.factories import PRODUCER, command_event
from tests.unit.test_architecture import ROOT, imported_roots

pytestmark = pytest.mark.unit
TRACKING = "https://mlflow.example.com"
CONTRACT: dict[StepKind, type[BaseModel]] = {
    "register_version": messages.RegisterModelVersion,
    "update_model": messages.UpdateModel,
    "set_alias": messages.SetAlias,
    "set_lifecycle": messages.SetVersionLifecycle,
}
XGBOOST = {"python_function": {}, "xgboost": {"xgb_version": "2.1.1"}}
COMMIT = "4f2a9c1d0b7e8a6f5c3d2e1f0a9b8c7d6e5f4a3b"


def version(number: int, *, stage: str = "None", source: str | None = None, **fields: Any) -> MlflowModelVersion:
    """A version as MLflow's REST API sends it (tags as a list of key/value pairs)."""
    tags = [{"key": k, "value": v} for k, v in fields.pop("tags", {}).items()]
    answer = {"name": "m", "version": str(number), "current_stage": stage, "status": "READY", "tags": tags}
    return MlflowModelVersion.model_validate(answer | {"source": source or f"s3://ml-models/m/{number}/model"} | fields)


def model(
    name: str = "Card Fraud", *versions: MlflowModelVersion, aliases: dict[str, int] | None = None, **fields: Any
) -> MlflowRegisteredModel:
    tags = [{"key": k, "value": v} for k, v in fields.pop("tags", {}).items()]
    pairs = [{"alias": a, "version": str(n)} for a, n in (aliases or {}).items()]
    read = MlflowRegisteredModel.model_validate({"name": name, "tags": tags, "aliases": pairs} | fields)
    return read.model_copy(update={"versions": versions or (version(1),)})


def run(run_id: str = "a" * 32, *, tags: dict[str, str] | None = None, **data: Any) -> MlflowRun:
    info = {
        "run_id": run_id,
        "experiment_id": "7",
        "run_name": "train",
        "artifact_uri": f"s3://runs/7/{run_id}/artifacts",
    }
    pairs = {k: [{"key": key, "value": value} for key, value in v.items()] for k, v in data.items()}
    answer = {"info": info, "data": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()], **pairs}}
    return MlflowRun.from_api(answer).model_copy(update={"experiment_name": "fraud-training"})


def plan_of(*models: MlflowRegisteredModel, runs: tuple[MlflowRun, ...] = (), **options: Any) -> ImportPlan:
    snapshot = MlflowSnapshot(TRACKING, models, {r.run_id: r for r in runs})
    plan = build_plan(snapshot, MappingOptions(team=options.pop("team", "fraud"), **options))
    for _, step in plan.steps():  # every command of every plan is one the registry's contract accepts
        CONTRACT[step.kind].model_validate(step.data)
    return plan


def only(plan: ImportPlan) -> ModelPlan:
    [found] = plan.models
    return found


def reasons(plan: ImportPlan) -> dict[str, str]:
    return {finding.item: finding.reason for finding in plan.skipped}


class TestNames:
    @pytest.mark.parametrize(
        ("name", "slug"),
        [
            ("Card Fraud XGB", "card-fraud-xgb"),
            ("churn_predictor", "churn-predictor"),
            ("Ranker's Model (ALS)", "rankers-model-als"),
            ("Émile  Zola--v2", "emile-zola-v2"),
            ("  --ok--  ", "ok"),
        ],
    )
    def test_a_name_becomes_a_slug(self, name: str, slug: str) -> None:
        assert slugify(name) == slug

    def test_long_names_are_cut_with_a_digest_that_keeps_them_apart(self) -> None:
        first, second = slugify("x" * 80 + "1"), slugify("x" * 80 + "2")
        assert first != second
        assert first is not None and len(first) == 63 and first.startswith("x" * 54 + "-")
        assert catalog.SLUG_PATTERN and all(s and len(s) <= 63 for s in (first, second))

    def test_the_model_keeps_its_mlflow_name_as_a_tag_and_links_back_to_mlflow(self) -> None:
        plan = only(plan_of(model("Card Fraud")))
        assert (plan.name, plan.metadata["tags"]["mlflow_name"]) == ("card-fraud", "Card Fraud")
        assert plan.metadata["links"] == {"mlflow": f"{TRACKING}/#/models/Card%20Fraud"}

    def test_a_name_with_nothing_to_slug_and_a_taken_slug_are_skipped(self) -> None:
        plan = plan_of(model("Card Fraud"), model("card_fraud"), model("???"))
        assert [m.mlflow_name for m in plan.models] == ["Card Fraud"]
        assert [(f.mlflow_name, f.reason) for f in plan.skipped] == [
            ("card_fraud", "its slug 'card-fraud' is already that of 'Card Fraud'"),
            ("???", "its name has no letter or digit to make a slug of"),
        ]

    def test_the_team_must_be_a_slug(self) -> None:
        with pytest.raises(ValueError, match="not a slug"):
            MappingOptions(team="Fraud Team")


class TestMetadataAndTags:
    def test_the_description_and_tags_become_the_models_metadata_with_dots_out_of_keys(self) -> None:
        plan = only(plan_of(model(description="Scores cards", tags={"owner": "alice", "domain.area": "payments"})))
        assert plan.metadata["description"] == "Scores cards"
        assert plan.metadata["tags"] == {"mlflow_name": "Card Fraud", "domain_area": "payments", "owner": "alice"}
        assert tag_key("mlflow.source.git.commit") == "mlflow_source_git_commit" and tag_key("$set") == "_set"

    def test_tags_the_registry_cannot_hold_are_skipped_and_the_rest_kept(self) -> None:
        tags = {"long": "v" * 257, "k" * 65: "v", "mlflow.name": "clash"} | {f"t{i:02}": "v" for i in range(70)}
        plan = plan_of(model(tags=tags))
        assert len(only(plan).metadata["tags"]) == catalog.MAX_TAGS
        found = reasons(plan)
        assert found["model tag 'long'"] == "its value is longer than 256 characters"
        assert found["model tag 'mlflow.name'"] == "its key 'mlflow_name' is already taken"
        assert found["model tag " + repr("k" * 65)] == "its key is longer than 64 characters"
        assert sum(item.startswith("model tag 't") for item in found) == 70 - (catalog.MAX_TAGS - 1)

    def test_a_description_longer_than_the_registry_takes_is_cut_and_said_so(self) -> None:
        plan = plan_of(model(description="d" * (catalog.MAX_DESCRIPTION + 10)))
        assert len(only(plan).metadata["description"]) == catalog.MAX_DESCRIPTION
        assert "model description" in {f.item for f in plan.adjusted}


class TestVersions:
    def test_version_n_becomes_n_0_0_in_order_keeping_the_original_as_a_tag(self) -> None:
        plan = only(
            plan_of(model("m", version(1), version(2, description="tuned", tags={"data.set": "oct"}), version(10)))
        )
        assert [(v.mlflow_version, v.version) for v in plan.versions] == [(1, "1.0.0"), (2, "2.0.0"), (10, "10.0.0")]
        second = plan.versions[1].register
        assert second["tags"] == {"mlflow_version": "2", "data_set": "oct"} and second["description"] == "tuned"
        assert (second["team"], second["name"], second["artifact_uri"]) == ("fraud", "m", "s3://ml-models/m/2/model")

    def test_a_version_not_ready_in_mlflow_is_skipped(self) -> None:
        plan = plan_of(model("m", version(1), version(2, status="FAILED_REGISTRATION", status_message="copy failed")))
        assert [v.version for v in only(plan).versions] == ["1.0.0"]
        assert reasons(plan) == {"version 2": "its status is FAILED_REGISTRATION copy failed"}

    def test_a_model_with_no_importable_version_is_skipped_whole(self) -> None:
        plan = plan_of(model("m", version(1, source="file:///tmp/model")))
        assert plan.models == ()
        assert reasons(plan)["model"] == "no version of it can be imported"


class TestArtifacts:
    @pytest.mark.parametrize(
        ("source", "reason"),
        [
            ("file:///mnt/models/1", "its files are at file:///mnt/models/1, not on an allowed scheme (s3://)"),
            ("/mnt/models/1", "its files are at a local path of the MLflow server (/mnt/models/1), not on s3://"),
            ("gs://bucket/models/1", "its files are at gs://bucket/models/1, not on an allowed scheme (s3://)"),
            ("s3://bucket", "its artifact location s3://bucket names no bucket or no key"),
            ("models:/m-0123", "its files are at models:/m-0123, not on an allowed scheme (s3://)"),
        ],
    )
    def test_a_version_whose_files_are_not_on_an_allowed_scheme_is_skipped_with_the_reason(
        self, source: str, reason: str
    ) -> None:
        plan = plan_of(model("m", version(1), version(2, source=source)))
        assert [v.version for v in only(plan).versions] == ["1.0.0"]
        assert reasons(plan) == {"version 2": reason}

    def test_schemes_the_registry_allows_can_be_allowed_here(self) -> None:
        plan = only(plan_of(model("m", version(1, source="gs://bucket/models/1")), artifact_schemes=("s3", "gs")))
        assert plan.versions[0].register["artifact_uri"] == "gs://bucket/models/1"

    def test_a_runs_source_lies_under_its_runs_artifact_root_and_a_models_source_where_mlflow_resolved_it(
        self,
    ) -> None:
        trained = run("b" * 32)
        resolved = "s3://ml-artifacts/churn/models/m-0123/artifacts"
        versions = (
            version(1, source=f"runs:/{trained.run_id}/model", run_id=trained.run_id),
            version(2, source="models:/m-0123", storage_location=resolved),
        )
        plan = only(plan_of(model("m", *versions), runs=(trained,)))
        registered = [v.register for v in plan.versions]
        assert registered[0]["artifact_uri"] == f"{trained.artifact_uri}/model"
        assert registered[1]["artifact_uri"] == resolved
        assert [r["tags"]["mlflow_source"] for r in registered] == [versions[0].source, "models:/m-0123"]

    def test_a_runs_source_whose_run_was_not_read_is_skipped(self) -> None:
        plan = plan_of(model("m", version(1), version(2, source="runs:/" + "c" * 32 + "/model")))
        assert reasons(plan) == {
            "version 2": f"its source runs:/{'c' * 32}/model needs run {'c' * 32}, which was not read"
        }


class TestFrameworks:
    def test_every_flavor_maps_to_a_framework_of_the_catalog(self) -> None:
        assert set(FLAVOR_FRAMEWORKS.values()) <= set(catalog.FRAMEWORKS)

    def test_the_mlmodel_flavors_name_the_framework_and_its_version(self) -> None:
        flavors = {"python_function": {"python_version": "3.11.9"}, "sklearn": {"sklearn_version": "1.5.2"}}
        [registered] = [v.register for v in only(plan_of(model("m", version(1, flavors=flavors)))).versions]
        assert (registered["framework"], registered["framework_version"]) == ("scikit-learn", "1.5.2")

    def test_mlflow_2s_log_model_history_on_the_run_names_the_framework(self) -> None:
        logged = [{"artifact_path": "other", "flavors": {"onnx": {}}}, {"artifact_path": "model", "flavors": XGBOOST}]
        history = json.dumps(logged)
        trained = run(tags={"mlflow.log-model.history": history})
        versions = version(1, source="s3://ml-models/m/1/model", run_id=trained.run_id)
        [registered] = [v.register for v in only(plan_of(model("m", versions), runs=(trained,))).versions]
        assert (registered["framework"], registered["framework_version"]) == ("xgboost", "2.1.1")

    def test_a_pyfunc_only_model_is_custom(self) -> None:
        flavors = {"python_function": {"loader_module": "my_model"}}
        assert only(plan_of(model("m", version(1, flavors=flavors)))).versions[0].register["framework"] == "custom"

    def test_without_flavors_or_with_unknown_ones_the_default_framework_is_used_and_said(self) -> None:
        plan = plan_of(
            model("m", version(1), version(2), version(3, flavors={"langchain": {}})), default_framework="onnx"
        )
        assert [v.register["framework"] for v in only(plan).versions] == ["onnx", "onnx", "onnx"]
        assert {f.item: f.reason for f in plan.adjusted} == {
            "version 3": "flavors langchain name no framework here: 'onnx'",
            "versions 1, 2": "MLflow recorded no flavors: framework 'onnx'",
        }

    def test_the_default_framework_must_be_one_of_the_catalog(self) -> None:
        with pytest.raises(ValueError, match="default framework"):
            MappingOptions(team="fraud", default_framework="mxnet")


class TestStagesAliasesAndArchiving:
    def test_legacy_stages_become_aliases_on_the_newest_version_in_each(self) -> None:
        versions = (version(1, stage="Staging"), version(2, stage="Production"), version(3, stage="Staging"))
        plan = plan_of(model("m", *versions))
        assert [(a.alias, a.version, a.origin) for a in only(plan).aliases] == [
            ("production", "2.0.0", "stage 'Production'"),
            ("staging", "3.0.0", "stage 'Staging'"),
        ]
        assert reasons(plan) == {
            "stage 'Staging' of version 1": "alias 'staging' goes to the newest version in Staging, 3"
        }

    def test_mlflow_aliases_become_slugs_and_win_over_a_stage_of_the_same_name(self) -> None:
        aliases = {"Champion_1": 1, "production": 1}
        plan = plan_of(model("m", version(1), version(2, stage="Production"), aliases=aliases))
        assert [(a.alias, a.version) for a in only(plan).aliases] == [("champion-1", "1.0.0"), ("production", "1.0.0")]
        assert reasons(plan) == {"stage 'Production'": "alias 'production' already comes from alias 'production'"}

    def test_an_archived_version_is_archived_and_no_alias_points_at_it(self) -> None:
        plan = plan_of(model("m", version(1, stage="Archived"), version(2), aliases={"old_best": 1, "best": 2}))
        found = only(plan)
        assert [(m.version, m.state) for m in found.lifecycle] == [("1.0.0", "archived")]
        assert [(a.alias, a.version) for a in found.aliases] == [("best", "2.0.0")]
        assert reasons(plan) == {"alias 'old_best'": "version 1 is archived: an alias cannot point at it"}
        assert found.versions[0].register["tags"]["mlflow_stage"] == "Archived"

    def test_an_alias_of_a_version_not_imported_is_skipped(self) -> None:
        plan = plan_of(model("m", version(1), version(2, source="/local/2"), aliases={"candidate": 2}))
        assert reasons(plan)["alias 'candidate'"] == "version 2 is not imported"

    def test_aliases_past_the_registrys_limit_are_skipped(self) -> None:
        plan = plan_of(model("m", version(1), aliases={f"a{i:02}": 1 for i in range(40)}))
        assert len(only(plan).aliases) == 32
        assert sum(r == "a model has at most 32 aliases" for r in reasons(plan).values()) == 8


class TestLineage:
    def test_the_run_becomes_the_versions_source_with_a_url_experiment_repository_and_commit(self) -> None:
        tags = {
            "mlflow.source.git.commit": COMMIT.upper(),
            "mlflow.source.git.repoURL": "https://git.example.com/fraud.git",
            "mlflow.source.name": "train.py",
        }
        trained = run(tags=tags, metrics={"auc": 0.93, "bad": "NaN"}, params={"max.depth": "6"})
        plan = only(plan_of(model("m", version(1, run_id=trained.run_id)), runs=(trained,)))
        registered = plan.versions[0].register
        assert registered["source"] == {
            "run_id": trained.run_id,
            "run_url": f"{TRACKING}/#/experiments/7/runs/{trained.run_id}",
            "experiment": "fraud-training",
            "code_repository": "https://git.example.com/fraud.git",
            "code_commit": COMMIT,
        }
        assert registered["tags"]["mlflow_run_name"] == "train"
        assert registered["tags"]["mlflow_source_name"] == "train.py"
        assert (registered["metrics"], registered["parameters"]) == ({"auc": 0.93}, {"max_depth": "6"})

    def test_mlflows_own_run_link_is_kept_and_a_commit_that_is_not_hex_is_left_out(self) -> None:
        trained = run(tags={"mlflow.source.git.commit": "main"})
        link = "https://dbc.example.com/#job/1/run/2"
        plan = plan_of(model("m", version(1, run_id=trained.run_id, run_link=link)), runs=(trained,))
        source = only(plan).versions[0].register["source"]
        assert source["run_url"] == link and "code_commit" not in source
        assert any("'main' is not a hex commit id" in f.reason for f in plan.adjusted if f.item == "version 1")

    def test_a_run_that_was_not_read_leaves_the_run_id_and_no_run_no_source(self) -> None:
        plan = only(plan_of(model("m", version(1, run_id="d" * 32), version(2))))
        assert plan.versions[0].register["source"] == {"run_id": "d" * 32}
        assert "source" not in plan.versions[1].register


class TestApplyingThePlan:
    def full_plan(self) -> ImportPlan:
        versions = (version(1, stage="Archived"), version(2, stage="Staging"), version(3, stage="Production"))
        return plan_of(model("Card Fraud", *versions, aliases={"Champion": 3}, description="Scores cards"))

    def test_steps_register_every_version_then_set_metadata_aliases_and_lifecycle(self) -> None:
        plan = self.full_plan()
        assert [step.kind for _, step in plan.steps()] == [
            *["register_version"] * 3,
            "update_model",
            *["set_alias"] * 3,
            "set_lifecycle",
        ]
        assert plan.step_count() == 8
        assert [s.command_type for _, s in plan.steps()][-1] == messages.SET_VERSION_LIFECYCLE

    def test_a_steps_idempotency_key_is_the_same_on_every_run_and_differs_between_steps(self) -> None:
        keys = [step.idempotency_key for _, step in self.full_plan().steps()]
        assert keys == [step.idempotency_key for _, step in self.full_plan().steps()]
        assert len(set(keys)) == len(keys) and all(len(k) <= 128 for k in keys)

    async def test_the_plan_applies_through_the_registration_handler_and_a_second_run_only_replays(self) -> None:
        repo = InMemoryRepository()
        first = await apply(self.full_plan(), repo)
        assert [o.event.data for o in first if o.rejected] == []
        [stored] = repo.models.values()
        assert stored["aliases"] == {"champion": "3.0.0", "production": "3.0.0", "staging": "2.0.0"}
        assert stored["description"] == "Scores cards"
        lifecycle = {v["version"]: v["lifecycle"] for v in repo.versions.values()}
        assert lifecycle == {"1.0.0": "archived", "2.0.0": "active", "3.0.0": "active"}
        again = await apply(self.full_plan(), repo)
        assert all(o.replayed and not o.rejected for o in again)

    async def test_a_run_after_mlflow_moved_on_moves_the_alias_before_archiving_its_old_version(self) -> None:
        repo = InMemoryRepository()
        await apply(plan_of(model("m", version(1), version(2, stage="Production"))), repo)
        moved_on = (version(1), version(2, stage="Archived"), version(3, stage="Production"))
        outcomes = await apply(plan_of(model("m", *moved_on)), repo)
        # Version 2's tags changed with its stage: a new key, and the registry already has it.
        assert [(o.event.data["command_type"], o.event.data["reason"]) for o in outcomes if o.rejected] == [
            (messages.REGISTER_MODEL_VERSION, "duplicate_version")
        ]
        [stored] = repo.models.values()
        assert stored["aliases"] == {"production": "3.0.0"}
        assert {v["version"]: v["lifecycle"] for v in repo.versions.values()}["2.0.0"] == "archived"


async def apply(plan: ImportPlan, repo: InMemoryRepository) -> list[Outcome]:
    """Send the plan's steps one at a time, as the import does, each under its idempotency key."""
    outcomes = []
    for _, step in plan.steps():
        event = command_event(step.command_type, step.data, event_id=step.idempotency_key)
        outcomes += await handle_commands([Command(event, PRODUCER)], repo=repo, artifact_schemes=["s3"])
    return outcomes


class TestBoundaries:
    def test_no_runtime_code_imports_the_mlflow_package(self) -> None:
        folders = [ROOT / "shared" / "src", ROOT / "deploy" / "local" / "src", ROOT / "client" / "src"]
        files = [path for folder in [*folders, *(ROOT / "services").glob("*/src")] for path in folder.rglob("*.py")]
        assert files
        assert [path for path in files if "mlflow" in imported_roots(path)] == []

    def test_the_mapping_does_no_io(self) -> None:
        package = ROOT / "client" / "src" / "registry_client" / "cli" / "mlflow_import"
        for module in ("mapping", "naming", "plan", "records"):
            assert not imported_roots(package / f"{module}.py") & {"httpx", "yaml", "socket", "os"}, module
