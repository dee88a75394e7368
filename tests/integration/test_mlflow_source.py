"""The MLflow reader against a real tracking server seeded through MLflow's own client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from registration.handlers import Command, handle_commands
from registration.repository import InMemoryRepository
from registry_cli.config import free_port
from registry_client.cli.mlflow_import.mapping import MappingOptions, build_plan
from registry_client.cli.mlflow_import.records import MlflowRegisteredModel, MlflowSnapshot
from registry_client.cli.mlflow_import.source import (
    MlflowRequestFailed,
    MlflowSource,
    MlflowUnreachable,
    SourceLimits,
)
from tests.factories import PRODUCER, command_event
from tests.mlflow_server import (
    CHURN,
    CHURN_ARTIFACTS,
    FRAUD,
    GIT_COMMIT,
    GIT_REPOSITORY,
    RANKER,
    SeededMlflow,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def read(seeded: SeededMlflow, **options: Any) -> MlflowSnapshot:
    filter_string = options.pop("filter_string", None)
    with MlflowSource(seeded.tracking_uri, **options) as source:
        return source.read(filter_string=filter_string)


async def read_async(seeded: SeededMlflow, **options: Any) -> MlflowSnapshot:
    return await asyncio.to_thread(read, seeded, **options)


def by_name(snapshot: MlflowSnapshot) -> dict[str, MlflowRegisteredModel]:
    return {model.name: model for model in snapshot.models}


class TestReadingEverything:
    async def test_every_registered_model_is_read_with_its_description_tags_and_aliases(
        self, mlflow_server: SeededMlflow
    ) -> None:
        snapshot = await read_async(mlflow_server)
        models = by_name(snapshot)
        assert [m.name for m in snapshot.models] == sorted(mlflow_server.models)
        for name, seeded in mlflow_server.models.items():
            assert models[name].description == seeded.description
            assert models[name].tags == seeded.tags
            assert {a.alias: a.version for a in models[name].aliases} == seeded.aliases
        assert snapshot.notes == ()

    async def test_every_version_is_read_in_order_with_its_stage_source_description_tags_and_run(
        self, mlflow_server: SeededMlflow
    ) -> None:
        models = by_name(await read_async(mlflow_server))
        for name, seeded in mlflow_server.models.items():
            versions = models[name].versions
            assert [v.version for v in versions] == list(range(1, len(seeded.versions) + 1))
            for version, expected in zip(versions, seeded.versions, strict=True):
                assert (version.name, version.status, version.source) == (name, "READY", expected.source)
                assert version.current_stage == (expected.stage if mlflow_server.stages else "None")
                assert (version.description, version.tags) == (expected.description, expected.tags)
                assert version.run_id == (mlflow_server.runs[expected.run] if expected.run else None)
                assert version.flavors is None  # read only when asked

    async def test_a_models_source_is_resolved_to_where_its_files_are(self, mlflow_server: SeededMlflow) -> None:
        churn = by_name(await read_async(mlflow_server))[CHURN]
        assert churn.versions[1].source.startswith("models:/m-")
        assert churn.versions[1].storage_location == mlflow_server.logged_model_location
        assert mlflow_server.logged_model_location.startswith(CHURN_ARTIFACTS + "/")
        assert [v.storage_location for v in (churn.versions[0], churn.versions[2])] == [None, None]

    async def test_each_versions_run_is_read_once_with_its_experiment_tags_metrics_and_params(
        self, mlflow_server: SeededMlflow
    ) -> None:
        runs = (await read_async(mlflow_server)).runs
        assert set(runs) == set(mlflow_server.runs.values())
        fraud = runs[mlflow_server.runs["fraud"]]
        assert (fraud.run_name, fraud.experiment_name) == ("train-card-fraud", "fraud-training")
        assert fraud.experiment_id == mlflow_server.experiments["fraud-training"]
        assert fraud.tags["mlflow.source.git.commit"] == GIT_COMMIT
        assert fraud.tags["mlflow.source.git.repoURL"] == GIT_REPOSITORY
        assert fraud.tags["mlflow.source.name"] == "train.py"
        assert fraud.metrics == {"auc": 0.931, "logloss": 0.12}
        assert fraud.params == {"max_depth": "6", "eta": "0.1"}
        churn = runs[mlflow_server.runs["churn"]]
        assert (churn.experiment_name, churn.status) == ("churn", "FINISHED")
        assert churn.artifact_uri == f"{CHURN_ARTIFACTS}/{churn.run_id}/artifacts"


class TestBounds:
    async def test_pages_of_one_read_the_same_as_one_page(self, mlflow_server: SeededMlflow) -> None:
        whole = await read_async(mlflow_server)
        paged = await read_async(mlflow_server, limits=SourceLimits(page_size=1))
        assert paged == whole

    async def test_models_and_versions_past_their_caps_are_left_out_and_said_so(
        self, mlflow_server: SeededMlflow
    ) -> None:
        snapshot = await read_async(mlflow_server, limits=SourceLimits(page_size=1, max_models=2, max_versions=2))
        assert [m.name for m in snapshot.models] == sorted(mlflow_server.models)[:2]
        assert all(len(m.versions) <= 2 for m in snapshot.models)
        assert any("more than 2 registered models" in note for note in snapshot.notes)
        assert any(f"{FRAUD!r} has more than 2 versions" in note for note in snapshot.notes)

    async def test_a_filter_selects_models_and_a_quote_in_a_name_still_finds_its_versions(
        self, mlflow_server: SeededMlflow
    ) -> None:
        snapshot = await read_async(mlflow_server, filter_string="name LIKE 'Ranker%'")
        assert [(m.name, len(m.versions)) for m in snapshot.models] == [(RANKER, 2)]


class TestFlavors:
    async def test_the_mlmodel_flavors_are_read_through_the_server_when_asked(
        self, mlflow_server: SeededMlflow
    ) -> None:
        snapshot = await read_async(mlflow_server, read_flavors=True, filter_string=f"name = '{CHURN}'")
        [churn] = snapshot.models
        local = churn.versions[2]
        assert local.flavors is not None and local.flavors["sklearn"]["sklearn_version"] == "1.5.2"
        # The other versions' files are on S3, which this server cannot read: said, not fatal.
        assert [v.flavors for v in churn.versions[:2]] == [None, None]
        assert sum("MLmodel file" in note for note in snapshot.notes) == 2


class TestFailures:
    def test_a_server_nobody_runs_is_unreachable(self) -> None:
        with (
            MlflowSource(f"http://127.0.0.1:{free_port()}", limits=SourceLimits(timeout=2)) as source,
            pytest.raises(MlflowUnreachable, match="did not answer"),
        ):
            source.registered_models()

    async def test_a_refused_request_says_mlflows_error_code_and_message(self, mlflow_server: SeededMlflow) -> None:
        with pytest.raises(MlflowRequestFailed, match="400 INVALID_PARAMETER_VALUE") as refused:
            await read_async(mlflow_server, filter_string="name = unquoted")
        assert refused.value.status == 400 and refused.value.error_code == "INVALID_PARAMETER_VALUE"

    async def test_a_run_the_server_does_not_have_is_none(self, mlflow_server: SeededMlflow) -> None:
        def missing() -> object:
            with MlflowSource(mlflow_server.tracking_uri) as source:
                return source.run("0" * 32)

        assert await asyncio.to_thread(missing) is None


class TestThePlanOfARealServer:
    async def test_it_applies_through_the_registration_handler_without_a_refusal(
        self, mlflow_server: SeededMlflow
    ) -> None:
        snapshot = await read_async(mlflow_server)
        plan = build_plan(snapshot, MappingOptions(team="fraud"))
        assert {m.name: m.mlflow_name for m in plan.models} == {
            "card-fraud-xgb": FRAUD,
            "churn-predictor": CHURN,
            "rankers-model-als": RANKER,
        }
        fraud = next(m for m in plan.models if m.mlflow_name == FRAUD)
        assert fraud.versions[0].register["framework"] == "xgboost"  # from the run's log-model history
        assert fraud.versions[0].register["source"]["code_commit"] == GIT_COMMIT
        churn = next(m for m in plan.models if m.mlflow_name == CHURN)
        assert [v.register["artifact_uri"] for v in churn.versions] == [
            f"{CHURN_ARTIFACTS}/{mlflow_server.runs['churn']}/artifacts/model",
            mlflow_server.logged_model_location,
        ]
        assert {(f.mlflow_name, f.item) for f in plan.skipped} == {
            (FRAUD, "alias 'old_best'"),  # points at an archived version
            (CHURN, "version 3"),  # a local path
            (CHURN, "alias 'candidate'"),  # points at version 3
            (RANKER, "stage 'Staging' of version 1"),  # staging goes to the newest version in Staging
        }
        repo, refused = InMemoryRepository(), []
        for _, step in plan.steps():  # one at a time, as the import sends them
            event = command_event(step.command_type, step.data)
            [outcome] = await handle_commands([Command(event, PRODUCER)], repo=repo, artifact_schemes=["s3"])
            refused += [outcome.event.data] if outcome.rejected else []
        assert refused == []
        assert len(repo.versions) == sum(len(m.versions) for m in plan.models)
