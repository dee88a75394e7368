"""A real MLflow tracking server for the MLflow import's tests, seeded through MLflow's own client.

One server per session (its start-up takes tens of seconds): ``mlflow server`` over SQLite with a
local artifact root, on a free loopback port, in its own process group, stopped with everything
it started at the end. MLflow 3's job runner (GenAI jobs, a second process tree) is turned off
(``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``); its host check already allows 127.0.0.1.

What is seeded is described by the constants below, so tests can compare what they read with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry_cli.config import free_port
from registry_cli.processes import Child, group_members
from tests.waiting import until

MLFLOW = str(Path(sys.executable).with_name("mlflow"))
START_TIMEOUT = 240.0  # seconds; about 30 s on two busy cores, 70 s with the job runner on

FRAUD, CHURN, RANKER = "Card Fraud XGB", "churn_predictor", "Ranker's Model (ALS)"
GIT_COMMIT = "4f2a9c1d0b7e8a6f5c3d2e1f0a9b8c7d6e5f4a3b"
GIT_REPOSITORY = "https://git.example.com/fraud/card-fraud.git"
FRAUD_ARTIFACTS = "s3://ml-models/fraud/card-fraud-xgb"
CHURN_ARTIFACTS = "s3://ml-artifacts/experiments/churn"
MLMODEL = """\
flavors:
  python_function:
    loader_module: mlflow.sklearn
    python_version: 3.11.9
  sklearn:
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.5.2
model_uuid: 2f1b6c1f0c2b4d3c9a8e7f6d5c4b3a21
"""
XGBOOST_FLAVORS = {"python_function": {"loader_module": "mlflow.xgboost"}, "xgboost": {"xgb_version": "2.1.1"}}


@dataclass(frozen=True)
class SeededVersion:
    """One seeded version as MLflow should report it."""

    source: str
    run: str | None  # role of its run in SeededMlflow.runs
    stage: str = "None"
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SeededModel:
    description: str
    tags: dict[str, str]
    versions: list[SeededVersion]
    aliases: dict[str, int]


@dataclass(frozen=True)
class SeededMlflow:
    """The running server and what was put in it."""

    tracking_uri: str
    models: dict[str, SeededModel]
    runs: dict[str, str]  # role ("fraud", "churn", "local") → run id
    experiments: dict[str, str]  # experiment name → id
    logged_model_location: str  # where the churn model's ``models:/`` version resolves to
    stages: bool  # whether this MLflow still has legacy stages (transition_model_version_stage)


@pytest.fixture(scope="session")
async def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SeededMlflow]:
    """A seeded MLflow tracking server for the session."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    store, artifacts = f"sqlite:///{root}/mlflow.db", str(root / "artifacts")
    argv = [MLFLOW, "server", "--backend-store-uri", store, "--default-artifact-root", artifacts]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = Child("mlflow", argv, env=env, quiet=True, log_path=root / "server.log")
    await server.start()
    try:
        await until(lambda: _healthy(uri, server, root), timeout=START_TIMEOUT, what="MLflow answering /health")
        yield await asyncio.to_thread(_seed, uri, root)
    finally:
        await _stop(server)


async def _healthy(uri: str, server: Child, root: Path) -> bool:
    if server.returncode is not None:
        log = (root / "server.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"mlflow server exited with {server.returncode} during start-up:\n{log}")
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"{uri}/health")).status_code == 200
    except httpx.TransportError:
        return False


async def _stop(server: Child) -> None:
    """SIGTERM the server's whole process group (``mlflow`` runs uvicorn as a child), SIGKILL what stays."""
    assert server.process is not None
    group = server.process.pid  # Child starts a new session: the group is the server's pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    await server.stop(grace=15)

    async def gone() -> bool:
        return not group_members(group)

    try:
        await until(gone, timeout=15, what="the MLflow server's processes exiting")
    except AssertionError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        await until(gone, timeout=10, what="the MLflow server's processes killed")


def _seed(uri: str, root: Path) -> SeededMlflow:
    """Experiments, runs, registered models, versions, stages and aliases, through MLflow's client."""
    from mlflow import MlflowClient  # imported here: it takes seconds, and only these tests need it

    client = MlflowClient(tracking_uri=uri)
    experiments = {
        "fraud-training": client.create_experiment("fraud-training"),
        "churn": client.create_experiment("churn", artifact_location=CHURN_ARTIFACTS),
    }
    fraud_run = client.create_run(
        experiments["fraud-training"],
        run_name="train-card-fraud",
        tags={
            "mlflow.source.git.commit": GIT_COMMIT,
            "mlflow.source.name": "train.py",
            "mlflow.source.git.repoURL": GIT_REPOSITORY,
            # What MLflow 2 recorded when a model was logged (MLflow 3 no longer does).
            "mlflow.log-model.history": json.dumps([{"artifact_path": "model", "flavors": XGBOOST_FLAVORS}]),
        },
    )
    for key, value in {"auc": 0.931, "logloss": 0.12}.items():
        client.log_metric(fraud_run.info.run_id, key, value)
    for key, text in {"max_depth": "6", "eta": "0.1"}.items():
        client.log_param(fraud_run.info.run_id, key, text)
    churn_run = client.create_run(experiments["churn"], run_name="train-churn")
    local_run = client.create_run(experiments["fraud-training"], run_name="export-local")
    model_dir = root / "mlmodel"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text(MLMODEL)
    client.log_artifacts(local_run.info.run_id, str(model_dir), "model")
    logged = client.create_logged_model(experiments["churn"], name="churn", source_run_id=churn_run.info.run_id)
    runs = {"fraud": fraud_run.info.run_id, "churn": churn_run.info.run_id, "local": local_run.info.run_id}
    for run_id in runs.values():
        client.set_terminated(run_id)

    models = {
        FRAUD: SeededModel(
            description="Scores card payments for fraud",
            tags={"owner": "alice", "domain.area": "payments"},
            versions=[
                SeededVersion(f"{FRAUD_ARTIFACTS}/1/model", "fraud", "Archived"),
                SeededVersion(f"{FRAUD_ARTIFACTS}/2/model", "fraud", "Staging", "October data", {"dataset": "oct"}),
                SeededVersion(f"{FRAUD_ARTIFACTS}/3/model", "fraud", "Production", "tuned", {"validated": "true"}),
            ],
            aliases={"Champion": 3, "old_best": 1},
        ),
        CHURN: SeededModel(
            description="Predicts which customers leave",
            tags={"owner": "bob"},
            versions=[
                SeededVersion(f"runs:/{runs['churn']}/model", "churn", "Production"),
                SeededVersion(f"models:/{logged.model_id}", "churn"),
                SeededVersion(f"{local_run.info.artifact_uri}/model", "local", description="exported locally"),
            ],
            aliases={"challenger": 2, "candidate": 3},
        ),
        RANKER: SeededModel(
            description="",
            tags={},
            versions=[
                SeededVersion("s3://ml-models/ranking/als/1/model.tar.gz", None, "Staging"),
                SeededVersion("s3://ml-models/ranking/als/2/model.tar.gz", None, "Staging"),
            ],
            aliases={},
        ),
    }
    stages = hasattr(client, "transition_model_version_stage")
    for name, model in models.items():
        client.create_registered_model(name, tags=model.tags, description=model.description or None)
        for number, version in enumerate(model.versions, start=1):
            extra: dict[str, Any] = {"model_id": logged.model_id} if version.source.startswith("models:/") else {}
            client.create_model_version(
                name,
                source=version.source,
                run_id=runs[version.run] if version.run else None,
                tags=version.tags,
                description=version.description or None,
                **extra,
            )
            if stages and version.stage != "None":
                with warnings.catch_warnings():  # deprecated since MLflow 2.9, still there in 3.x
                    warnings.simplefilter("ignore")
                    client.transition_model_version_stage(name, str(number), version.stage)
        for alias, number in model.aliases.items():
            client.set_registered_model_alias(name, alias, str(number))
    return SeededMlflow(uri, models, runs, experiments, logged.artifact_location, stages)
