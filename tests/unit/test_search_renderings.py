"""A search hit's latest version shows the aliases that name it, in the terminal and to an assistant."""

from datetime import UTC, datetime

import pytest

from registry_client.cli.browse import _latest
from registry_client.mcp.results import SearchHit, SearchResults, search_text
from registry_contract.assistant_views import SearchHitPublic
from registry_contract.views import ModelPublic, ModelVersionPublic

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 6, tzinfo=UTC)
MODEL = ModelPublic(model_id="m1", team="fraud", name="xgb", latest_version="1.4.0", framework="xgboost")
VERSION = ModelVersionPublic(
    model_id="m1",
    team="fraud",
    name="xgb",
    version="1.4.0",
    framework="xgboost",
    artifact_uri="s3://b/m",
    created_at=NOW,
    updated_at=NOW,
    aliases=["champion", "stable"],
)


def test_the_terminal_table_names_the_latest_versions_aliases() -> None:
    assert _latest(SearchHitPublic(score=1.0, model=MODEL, latest_version=VERSION)) == "1.4.0 @champion @stable"
    assert _latest(SearchHitPublic(score=1.0, model=MODEL)) == "1.4.0"


def test_the_assistants_text_names_the_latest_versions_aliases() -> None:
    text = search_text("fraud", SearchResults(items=[SearchHit(score=1.0, model=MODEL, latest_version=VERSION)]))
    assert "latest 1.4.0 @champion @stable registered" in text
