"""An MLflow import into a model the registry already holds: new versions are added, nothing else changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from registry_client.cli.mlflow_import.apply import apply_plan
from registry_client.cli.mlflow_import.changes import ABSENT, Change, Present, decide
from registry_client.cli.mlflow_import.mapping import MappingOptions, build_plan
from registry_client.cli.mlflow_import.plan import ModelPlan
from registry_client.cli.mlflow_import.records import MlflowModelVersion, MlflowRegisteredModel, MlflowSnapshot
from registry_client.errors import NotFound
from registry_contract.views import ModelPublic, ModelVersionPublic

pytestmark = pytest.mark.unit
TRACKING = "https://mlflow.example.com"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def mlflow_model(
    *stages: str, aliases: dict[str, int] | None = None, tags: dict[str, str] | None = None
) -> MlflowRegisteredModel:
    """``Card Fraud XGB`` with one version per stage given (version 1 first)."""
    versions = tuple(
        MlflowModelVersion.model_validate(
            {"name": "Card Fraud XGB", "version": str(n), "current_stage": stage, "status": "READY"}
            | {"source": f"s3://ml-models/fraud/{n}/model"}
        )
        for n, stage in enumerate(stages, start=1)
    )
    read = MlflowRegisteredModel.model_validate(
        {
            "name": "Card Fraud XGB",
            "description": "Scores cards (MLflow)",
            "tags": [{"key": k, "value": v} for k, v in (tags or {"owner": "alice"}).items()],
            "aliases": [{"alias": a, "version": str(n)} for a, n in (aliases or {}).items()],
        }
    )
    return read.model_copy(update={"versions": versions})


def planned(*stages: str, **fields: Any) -> ModelPlan:
    snapshot = MlflowSnapshot(TRACKING, (mlflow_model(*stages, **fields),))
    [model] = build_plan(snapshot, MappingOptions(team="fraud")).models
    return model


def the_tutorials_model(**changes: Any) -> Present:
    """``card-fraud-xgb`` as the tutorial leaves it: 1.4.0 by hand, @champion on it, own description and link."""
    fields: dict[str, Any] = {
        "exists": True,
        "versions": {"1.4.0": "active"},
        "aliases": {"champion": "1.4.0"},
        "metadata": {
            "description": "Scores card payments for fraud",
            "tags": {"owner": "carol"},
            "links": {"repository": "https://git.example.com/fraud/card-fraud-xgb"},
        },
        "latest": "1.4.0",
        "headline": {"description": "", "tags": {"owner": "carol"}},
    }
    return Present(**(fields | changes))


def by_action(changes: list[Change]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for change in changes:
        found.setdefault(change.action, []).append(change.item)
    return found


class TestDeciding:
    def test_a_new_model_is_created_whole(self) -> None:
        model = planned("None", "Production", aliases={"Champion": 2})
        changes = decide(model, ABSENT)
        assert {c.action for c in changes} == {"create"}
        assert [c.step for c in changes] == list(model.steps())

    def test_an_existing_model_gains_its_missing_versions_and_keeps_its_aliases_tags_and_links(self) -> None:
        model = planned("None", "Production", aliases={"Champion": 2})
        changes = decide(model, the_tutorials_model())
        sent = [c for c in changes if c.sends]
        assert [(c.step.kind, c.step.data.get("version")) for c in sent] == [
            ("update_model", None),  # the tags it shows pinned, so the new latest version does not replace them
            ("register_version", "1.0.0"),
            ("register_version", "2.0.0"),
        ]
        assert sent[0].action == "pin" and sent[0].step.data == {
            "team": "fraud",
            "name": "card-fraud-xgb",
            "tags": {"owner": "carol"},
        }
        kept = {c.item: c.detail for c in changes if c.action == "kept"}
        assert kept["alias champion → 2.0.0 (MLflow alias 'Champion')"] == "stays on 1.4.0"
        assert kept["alias production → 2.0.0 (MLflow stage 'Production')"] == "not set on a model that existed"
        metadata = kept["model metadata"]
        assert "description: stays 'Scores card payments for fraud' (MLflow: 'Scores cards (MLflow)')" in metadata
        assert "owner stays 'carol' (MLflow: 'alice')" in metadata and "mlflow_name not added" in metadata
        assert "links: mlflow not added" in metadata

    def test_with_update_existing_aliases_move_and_tags_and_links_are_merged_not_replaced(self) -> None:
        model = planned("None", "Production", aliases={"Champion": 2})
        changes = decide(model, the_tutorials_model(), update_existing=True)
        assert "kept" not in by_action(changes)
        [metadata] = [c for c in changes if c.action == "change" and c.step.kind == "update_model"]
        assert metadata.step.data["tags"] == {"owner": "alice", "mlflow_name": "Card Fraud XGB"}
        assert metadata.step.data["links"] == {
            "repository": "https://git.example.com/fraud/card-fraud-xgb",
            "mlflow": f"{TRACKING}/#/models/Card%20Fraud%20XGB",
        }
        assert metadata.step.data["description"] == "Scores cards (MLflow)"
        champion = next(c for c in changes if c.item.startswith("alias champion"))
        assert (champion.action, champion.detail) == ("change", "moves from 1.4.0")

    def test_a_model_that_already_holds_the_import_is_all_present(self) -> None:
        model = planned("None", "Production", aliases={"Champion": 2})
        metadata = {k: v for k, v in model.metadata.items()}
        have = Present(
            exists=True,
            versions={"1.0.0": "active", "2.0.0": "active"},
            aliases={"champion": "2.0.0", "production": "2.0.0"},
            metadata=metadata,
            origins={"1.0.0": "1", "2.0.0": "2"},
            latest="2.0.0",
        )
        assert {c.action for c in decide(model, have)} == {"present"}
        assert {c.action for c in decide(model, have, update_existing=True)} == {"present"}

    def test_a_version_of_the_same_number_not_from_mlflow_is_left_alone_even_with_update_existing(self) -> None:
        model = planned("None", aliases={"Champion": 1})
        have = the_tutorials_model(versions={"1.0.0": "active"}, aliases={}, latest="1.0.0")
        changes = decide(model, have, update_existing=True)
        version = next(c for c in changes if c.step.kind == "register_version")
        assert (version.action, version.detail) == (
            "kept",
            "the registry already has a 1.0.0, not from MLflow: left as it is",
        )
        alias = next(c for c in changes if c.step.kind == "set_alias")
        assert alias.action == "kept" and "did not come from MLflow" in alias.detail

    def test_an_archived_mlflow_version_archives_an_added_version_but_not_one_the_model_had(self) -> None:
        model = planned("Archived", "Archived")
        have = the_tutorials_model(versions={"1.0.0": "active"}, origins={"1.0.0": "1"}, latest="1.0.0")
        moves = {
            c.step.data["version"]: (c.action, c.detail) for c in decide(model, have) if c.step.kind == "set_lifecycle"
        }
        assert moves == {"1.0.0": ("kept", "stays active"), "2.0.0": ("add", "")}
        changed = decide(model, have, update_existing=True)
        assert [c.action for c in changed if c.step.kind == "set_lifecycle"] == ["change", "add"]

    def test_nothing_is_pinned_when_no_added_version_becomes_the_latest_or_the_model_has_its_own(self) -> None:
        model = planned("None")
        assert "pin" not in by_action(decide(model, the_tutorials_model(latest="3.0.0", versions={"3.0.0": "active"})))
        own = the_tutorials_model(headline={"description": "", "tags": {"team": "x"}})
        assert "pin" not in by_action(decide(model, own))
        older = the_tutorials_model(latest="0.1.0", versions={"0.1.0": "active"})
        assert "pin" in by_action(decide(model, older))
        assert "pin" not in by_action(decide(planned("Archived"), older))  # archived: never the latest


class StubRegistry:
    """The client methods the import calls, over one stored model; writes are recorded, not applied."""

    def __init__(self, model: ModelPublic | None = None, versions: tuple[ModelVersionPublic, ...] = ()) -> None:
        self.model, self.stored_versions = model, versions
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def get_model(self, team: str, name: str) -> ModelPublic:
        if self.model is None or self.model.name != name:
            raise NotFound("no such model", status=404)
        return self.model

    def versions(self, team: str, name: str, **_: Any) -> tuple[ModelVersionPublic, ...]:
        return self.stored_versions

    def __getattr__(self, kind: str) -> Any:
        return lambda **data: self.sent.append((kind, data))


def stored(name: str) -> StubRegistry:
    """The tutorial's ``card-fraud-xgb`` (1.4.0 by hand, @champion, owner carol, a link) stored as ``name``."""
    public = ModelPublic(
        model_id="mdl_1",
        team="fraud",
        name=name,
        latest_version="1.4.0",
        description="Scores card payments for fraud",
        tags={"owner": "carol"},
        links={"repository": "https://git.example.com/fraud/card-fraud-xgb"},
        aliases={"champion": "1.4.0"},
    )
    version = ModelVersionPublic(
        model_id="mdl_1",
        team="fraud",
        name=name,
        version="1.4.0",
        framework="xgboost",
        artifact_uri="s3://ml-models/fraud/1.4.0",
        tags={"owner": "carol"},
        created_at=NOW,
        updated_at=NOW,
    )
    return StubRegistry(public, (version,))


class TestApplying:
    def test_an_import_into_an_existing_model_sends_only_its_new_versions_and_the_pin(self) -> None:
        snapshot = MlflowSnapshot(TRACKING, (mlflow_model("None", "Production", aliases={"Champion": 2}),))
        plan = build_plan(snapshot, MappingOptions(team="fraud"))
        registry = stored(plan.models[0].name)
        [outcome] = apply_plan(plan, registry, concurrency=1)  # type: ignore[arg-type]
        assert [(kind, data.get("version"), data.get("tags")) for kind, data in registry.sent] == [
            ("update_model", None, {"owner": "carol"}),
            ("register_version", "1.0.0", plan.models[0].versions[0].register["tags"]),
            ("register_version", "2.0.0", plan.models[0].versions[1].register["tags"]),
        ]
        assert (outcome.exists, outcome.sent, outcome.kept, outcome.present) == (True, 3, 3, 0)

    def test_a_dry_run_reads_and_decides_the_same_and_sends_nothing(self) -> None:
        snapshot = MlflowSnapshot(TRACKING, (mlflow_model("None", "Production", aliases={"Champion": 2}),))
        plan = build_plan(snapshot, MappingOptions(team="fraud"))
        registry = stored(plan.models[0].name)
        [outcome] = apply_plan(plan, registry, dry_run=True, concurrency=1)  # type: ignore[arg-type]
        assert registry.sent == []
        assert (outcome.sent, outcome.to_send, outcome.kept) == (0, 3, 3)
        assert [c.action for c in outcome.changes] == ["pin", "add", "add", "kept", "kept", "kept"]

    def test_a_new_model_gets_every_step(self) -> None:
        plan = build_plan(MlflowSnapshot(TRACKING, (mlflow_model("None"),)), MappingOptions(team="fraud"))
        registry = StubRegistry()
        [outcome] = apply_plan(plan, registry, concurrency=1)  # type: ignore[arg-type]
        assert [kind for kind, _ in registry.sent] == [step.kind for _, step in plan.steps()]
        assert (outcome.exists, outcome.sent, outcome.kept) == (False, plan.step_count(), 0)
