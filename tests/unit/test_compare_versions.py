"""Comparing versions: metric deltas, missing metrics, tag/parameter/dataset/code/parent differences, the request."""

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from query.api.compare_routes import asked_versions, get_comparison
from query.api.comparing import compare, compared, metric_delta
from query.api.lookup import Lookup
from query.api.past import PastStates
from query.api.reads import Reads
from registry_contract.compare_views import MetricDelta
from registry_contract.documents import Document
from shared.chassis.problems import Problem
from tests.read_models import MemoryWorld

pytestmark = pytest.mark.unit
MODEL: Document = {"_id": "mdl_1", "team": "fraud", "name": "scorer"}
SHA_A, SHA_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def version(number: str, **fields: Any) -> Document:
    return {"_id": f"v-{number}", "version": number, "created_at": "2026-03-01T09:00:00Z", **fields}


def source(commit: str, *datasets: tuple[str, str | None]) -> dict[str, Any]:
    return {
        "code_repository": "https://git.example/fraud",
        "code_commit": commit,
        "run_id": "run-1",
        "datasets": [{"uri": uri, "digest": digest} for uri, digest in datasets],
    }


class TestMetricDeltas:
    def test_a_delta_is_absolute_and_relative_to_the_base(self) -> None:
        delta = metric_delta("auc", 0.80, 0.88)
        assert (delta.delta, delta.relative) == (0.08, 0.1)

    def test_a_negative_base_is_compared_by_its_magnitude(self) -> None:
        delta = metric_delta("drift", -2.0, -1.0)
        assert (delta.delta, delta.relative) == (1.0, 0.5)

    def test_a_zero_base_has_no_relative_change(self) -> None:
        delta = metric_delta("errors", 0.0, 3.0)
        assert (delta.delta, delta.relative) == (3.0, None)

    def test_a_metric_missing_on_either_side_has_no_delta_and_is_listed(self) -> None:
        base = version("1.0.0", metrics={"auc": 0.9, "loss": 0.3})
        head = version("1.1.0", metrics={"auc": 0.92, "f1": 0.7})
        diff = compare(MODEL, [base, head]).differences[0]
        by_name = {m.name: m for m in diff.metrics}
        assert [m.name for m in diff.metrics] == ["auc", "f1", "loss"]
        assert by_name["f1"].base is None and by_name["f1"].value == 0.7 and by_name["f1"].delta is None
        assert by_name["loss"].value is None and by_name["loss"].delta is None
        assert diff.metrics_only_in_base == ["loss"] and diff.metrics_only_in_version == ["f1"]
        assert "metrics" in diff.changed

    @pytest.mark.parametrize(
        ("base", "value", "delta", "relative"),
        [(-1.7e308, 1.7e308, None, None), (5e-324, 1.0, 1.0, None), (-1e308, 1e308, None, None)],
    )
    def test_a_change_too_large_for_a_float_is_null_not_infinite(
        self, base: float, value: float, delta: float | None, relative: float | None
    ) -> None:
        found = metric_delta("auc", base, value)
        assert (found.delta, found.relative) == (delta, relative)
        assert json.loads(found.model_dump_json())["delta"] == delta  # JSON has no infinity: it would be a 500
        diff = compare(MODEL, [version("1.0.0", metrics={"auc": base}), version("1.1.0", metrics={"auc": value})])
        assert "metrics" in diff.differences[0].changed

    def test_an_infinite_delta_is_refused_by_the_contract(self) -> None:
        with pytest.raises(ValidationError):
            MetricDelta(name="auc", base=1.0, value=2.0, delta=math.inf)

    def test_equal_metrics_are_not_a_change(self) -> None:
        same = {"metrics": {"auc": 0.9}}
        diff = compare(MODEL, [version("1.0.0", **same), version("1.0.1", **same)]).differences[0]
        assert diff.metrics[0].delta == 0.0 and diff.changed == []


class TestLabelsAndLineage:
    def test_tags_and_parameters_added_removed_and_changed(self) -> None:
        base = version("1.0.0", tags={"owner": "alice", "stage": "beta"}, parameters={"depth": "6"})
        head = version("1.1.0", tags={"owner": "bob", "region": "eu"}, parameters={"depth": "6", "eta": "0.1"})
        diff = compare(MODEL, [base, head]).differences[0]
        assert diff.tags.added == {"region": "eu"} and diff.tags.removed == {"stage": "beta"}
        assert diff.tags.changed["owner"].model_dump() == {"base": "alice", "value": "bob"}
        assert diff.parameters.added == {"eta": "0.1"} and not diff.parameters.removed and not diff.parameters.changed
        assert diff.changed == ["tags", "parameters"]

    def test_datasets_differ_by_uri_and_digest_and_the_commit_change_is_shown(self) -> None:
        base = version("1.0.0", source=source("abc1234", ("s3://d/train", SHA_A), ("s3://d/holdout", None)))
        head = version("1.1.0", source=source("def5678", ("s3://d/train", SHA_B), ("s3://d/holdout", None)))
        diff = compare(MODEL, [base, head]).differences[0]
        assert [(d.uri, d.digest) for d in diff.datasets_added] == [("s3://d/train", SHA_B)]
        assert [(d.uri, d.digest) for d in diff.datasets_removed] == [("s3://d/train", SHA_A)]
        assert diff.code_commit is not None and (diff.code_commit.base, diff.code_commit.value) == (
            "abc1234",
            "def5678",
        )
        assert diff.code_repository is None
        assert diff.changed == ["datasets", "code_commit"]

    def test_a_new_parent_and_approval_are_differences(self) -> None:
        parent = {"team": "fraud", "name": "base-model", "version": "2.0.0"}
        base = version("1.0.0", approval={"status": "approved", "by": "key_1"})
        head = version("1.1.0", parent=parent, lifecycle="deprecated")
        diff = compare(MODEL, [base, head]).differences[0]
        assert diff.parent is not None and diff.parent.value == "fraud/base-model@2.0.0" and diff.parent.base is None
        assert diff.approval is not None and (diff.approval.base, diff.approval.value) == ("approved", "pending")
        assert diff.lifecycle is not None and diff.lifecycle.value == "deprecated"

    def test_each_version_is_compared_with_the_base_not_its_neighbour(self) -> None:
        docs = [version(v, metrics={"auc": auc}) for v, auc in (("1.0.0", 0.5), ("1.1.0", 0.6), ("1.2.0", 0.75))]
        comparison = compare(MODEL, docs)
        assert comparison.base == "1.0.0"
        assert [d.version for d in comparison.differences] == ["1.1.0", "1.2.0"]
        assert [d.metrics[0].delta for d in comparison.differences] == [0.1, 0.25]


class TestTheComparedVersion:
    def test_state_deployments_and_provenance_are_shown(self) -> None:
        env = {
            "status": "deployed",
            "occurred_at": "2026-03-02T10:00:00Z",
            "report_id": "r1",
            "updated_at": "2026-03-02T10:00:01Z",
        }
        recorded = {
            "verified": True,
            "signer": {"key_id": "sk_1", "name": "ci-signer", "fingerprint": "sha256:00"},
            "algorithm": "ecdsa-sha256-nistp256",
            "manifest_digest": SHA_A,
        }
        doc = version("1.0.0", environments={"prod": env}, status="deployed", provenance=recorded, aliases=["champion"])
        shown = compared(doc)
        assert shown.environments["prod"].status == "deployed" and shown.aliases == ["champion"]
        assert shown.provenance is not None and shown.provenance.verified and shown.provenance.signer == "ci-signer"

    def test_a_version_without_provenance_or_with_a_malformed_one_has_none_or_unverified(self) -> None:
        assert compared(version("1.0.0")).provenance is None
        odd = compared(version("1.0.0", provenance={"verified": "yes", "signer": "not a mapping"})).provenance
        assert odd is not None and odd.verified is False and odd.signer is None

    def test_environments_are_the_union_of_the_versions(self) -> None:
        env = {
            "status": "deployed",
            "occurred_at": "2026-03-02T10:00:00Z",
            "report_id": "r",
            "updated_at": "2026-03-02T10:00:00Z",
        }
        docs = [version("1.0.0", environments={"prod": env}), version("1.1.0", environments={"staging": env})]
        assert compare(MODEL, docs).environments == ["prod", "staging"]


class TestTheRequest:
    def test_versions_or_base_and_head(self) -> None:
        assert asked_versions("1.3.0, 1.4.0,@champion", None, None) == ["1.3.0", "1.4.0", "@champion"]
        assert asked_versions(None, "1.3.0", "latest") == ["1.3.0", "latest"]

    @pytest.mark.parametrize(
        ("versions", "base", "head"),
        [
            (None, None, None),
            (None, "1.0.0", None),
            ("1.0.0,1.1.0", "1.0.0", None),
            ("1.0.0", None, None),
            ("1.0.0,,1.1.0", None, None),
            (",".join(f"1.0.{n}" for n in range(11)), None, None),
            ("1.0.0," + "1" * 300, None, None),
        ],
    )
    def test_anything_else_is_invalid(self, versions: str | None, base: str | None, head: str | None) -> None:
        with pytest.raises(Problem) as refused:
            asked_versions(versions, base, head)
        assert refused.value.reason == "invalid"


class TestOverTheReadModel:
    @pytest.fixture
    async def world(self) -> MemoryWorld:
        world = MemoryWorld()
        await world.register("fraud", "scorer", "1.0.0", "1.1.0", metrics={"auc": 0.9})
        world.model("fraud", "scorer")["aliases"] = {"champion": "1.1.0"}
        world.sync()
        return world

    def lookup(self, world: MemoryWorld, team: str | None) -> Lookup:
        return Lookup(Reads(world.read_model), {"readers": team} if team else {}, PastStates(world.read_model))

    async def test_aliases_and_latest_resolve(self, world: MemoryWorld) -> None:
        found = await get_comparison(self.lookup(world, "fraud"), "fraud", "scorer", versions="1.0.0,@champion")
        assert [v.version for v in found.versions] == ["1.0.0", "1.1.0"]
        assert found.versions[1].aliases == ["champion"]

    async def test_the_same_version_twice_is_invalid(self, world: MemoryWorld) -> None:
        with pytest.raises(Problem) as refused:
            await get_comparison(self.lookup(world, "fraud"), "fraud", "scorer", base="1.1.0", head="@champion")
        assert refused.value.reason == "invalid"

    async def test_an_unknown_version_is_not_found(self, world: MemoryWorld) -> None:
        with pytest.raises(Problem) as refused:
            await get_comparison(self.lookup(world, "fraud"), "fraud", "scorer", versions="1.0.0,9.9.9")
        assert refused.value.reason == "not_found"

    async def test_another_teams_model_is_not_found_like_a_missing_one(self, world: MemoryWorld) -> None:
        answers = []
        for name in ("scorer", "no-such-model"):
            with pytest.raises(Problem) as refused:
                await get_comparison(self.lookup(world, "other"), "fraud", name, versions="1.0.0,1.1.0")
            answers.append((refused.value.reason, refused.value.status))
        assert answers == [("not_found", 404), ("not_found", 404)]
