"""The document feed's pure parts: cursors, the tombstone rule, and the document built from a model."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from query.feed.documents import MAX_VERSIONS, decode_cursor, document, encode_cursor, is_tombstone, metadata, tombstone
from registry_contract.auth import Principal
from registry_contract.sortkeys import time_key
from registry_contract.versioning import precedence_key
from shared.chassis.problems import Problem

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
FRAUD = Principal(key_id="k1", team="fraud", scopes=frozenset({"models:read"}))
RISK = Principal(key_id="k2", team="risk", scopes=frozenset({"models:read"}))
ADMIN = Principal(key_id="k0", team="platform", scopes=frozenset({"platform:admin"}))


def model(**fields: Any) -> dict[str, Any]:
    return {
        "_id": "m-card",
        "team": "fraud",
        "name": "card",
        "readers": ["fraud"],
        "former_readers": [],
        "latest_version": "1.1.0",
        "version_count": 2,
        "framework": "xgboost",
        "deployment_targets": ["sagemaker"],
        "description": "Scores card payments",
        "tags": {"owner": "alice"},
        "updated_at": T0,
        "feed_key": time_key(T0, "m-card"),
        **fields,
    }


def version(number: str, **fields: Any) -> dict[str, Any]:
    return {
        "_id": f"m-card:{number}",
        "model_id": "m-card",
        "team": "fraud",
        "name": "card",
        "version": number,
        "version_key": precedence_key(number),
        "prerelease": "-" in number,
        "framework": "xgboost",
        "artifact_uri": "s3://bucket/key",
        "metrics": {"auc": 0.9},
        "lifecycle": "active",
        "created_at": T0,
        "updated_at": T0,
        **fields,
    }


def deployed(environment: str, status: str, at: datetime) -> dict[str, Any]:
    return {environment: {"status": status, "occurred_at": at, "report_id": "r", "updated_at": at}}


class TestCursor:
    def test_a_cursor_round_trips_its_feed_key(self) -> None:
        key = time_key(T0, "m-card")
        assert decode_cursor(encode_cursor(key)) == key
        assert "=" not in encode_cursor(key) and "/" not in encode_cursor(key)

    @pytest.mark.parametrize("cursor", ["", "not base64!", encode_cursor("m-card"), encode_cursor("x" * 40), "%%%"])
    def test_anything_else_is_the_invalid_problem(self, cursor: str) -> None:
        with pytest.raises(Problem) as raised:
            decode_cursor(cursor)
        assert raised.value.reason == "invalid"


class TestTombstoneRule:
    def test_the_owner_and_a_team_it_is_shared_with_read_the_model(self) -> None:
        shared = model(readers=["fraud", "risk"])
        assert not is_tombstone(shared, FRAUD) and not is_tombstone(shared, RISK)

    def test_a_team_it_was_unshared_from_sees_a_tombstone(self) -> None:
        assert is_tombstone(model(former_readers=["risk"]), RISK)

    def test_a_platform_admin_never_sees_a_tombstone(self) -> None:
        assert not is_tombstone(model(readers=["fraud"], former_readers=["risk"]), ADMIN)

    def test_a_tombstone_tells_nothing_but_the_id(self) -> None:
        assert tombstone(model(former_readers=["risk"])) == {
            "id": "m-card",
            "text": "",
            "metadata": {},
            "updated_at": None,
            "deleted": True,
        }


class TestDocument:
    def test_the_id_is_the_model_id_and_the_text_its_card(self) -> None:
        doc = document(model(), [version("1.0.0"), version("1.1.0")])
        assert (doc["id"], doc["deleted"]) == ("m-card", False)
        assert doc["text"].startswith("# Model card: fraud/card 1.1.0")
        assert "Scores card payments" in doc["text"]

    def test_the_renderer_gets_the_versions_newest_first(self) -> None:
        seen: list[str] = []

        def render(_: dict[str, Any], versions: list[dict[str, Any]]) -> str:
            seen.extend(v["version"] for v in versions)
            return "text"

        assert document(model(), [version("1.0.0"), version("1.1.0"), version("1.1.0-rc.1")], render)["text"] == "text"
        assert seen == ["1.1.0", "1.1.0-rc.1", "1.0.0"]

    def test_metadata_is_flat_filterable_json(self) -> None:
        versions = [
            version("1.1.0", lifecycle="deprecated", environments=deployed("prod", "deployed", T0)),
            version("1.0.0", environments=deployed("staging", "failed", T0)),
        ]
        assert metadata(model(), versions) == {
            "team": "fraud",
            "name": "card",
            "framework": "xgboost",
            "latest_version": "1.1.0",
            "version_count": 2,
            "tags": {"owner": "alice"},
            "deployment_targets": ["sagemaker"],
            "statuses": ["deployed", "failed"],
            "environments": ["prod", "staging"],
            "lifecycle": "deprecated",
        }

    def test_a_model_never_reported_is_registered_with_no_environments(self) -> None:
        found = metadata(model(), [version("1.1.0")])
        assert (found["statuses"], found["environments"], found["lifecycle"]) == (["registered"], [], "active")

    def test_updated_at_is_the_later_of_the_model_change_and_a_deployment_change(self) -> None:
        later = T0 + timedelta(hours=1)
        assert document(model(), [version("1.1.0")])["updated_at"] == T0
        assert (
            document(model(), [version("1.1.0", environments=deployed("prod", "deployed", later))])["updated_at"]
            == later
        )

    def test_the_card_says_when_only_the_newest_versions_were_read(self) -> None:
        doc = document(model(version_count=MAX_VERSIONS + 5), [version(f"1.{i}.0") for i in range(MAX_VERSIONS)])
        assert f"newest of {MAX_VERSIONS + 5}" in doc["text"]
