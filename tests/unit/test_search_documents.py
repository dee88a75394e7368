"""What the search index holds for a model, from its stored model and version documents."""

from datetime import timedelta

import pytest

from query.search import search_document
from registry_contract.documents import Document
from tests.relevance.builders import T0, deployed, model_doc, version_doc

pytestmark = pytest.mark.unit


@pytest.fixture
def versions() -> list[Document]:
    old = version_doc(
        "fraud",
        "card-fraud",
        "1.0.0",
        description="First cut.",
        tags={"owner": "bob", "legacy": "yes"},
        metrics={"recall": 0.7},
        lifecycle="deprecated",
        deployment_targets=["batch"],
        **deployed("prod", status="retired"),
    )
    new = version_doc(
        "fraud",
        "card-fraud",
        "1.1.0",
        description="Scores card payments.",
        tags={"owner": "alice"},
        metrics={"auc": 0.9},
        updated_at=T0 + timedelta(days=3),
        **deployed("staging", "prod"),
    )
    return [old, new]


def test_text_covers_every_version(versions: list[Document]) -> None:
    doc = search_document(model_doc("fraud", "card-fraud", versions[1]), versions)
    assert doc.description == "Scores card payments.\n\nFirst cut."
    assert doc.tags == "owner: alice; legacy: yes"
    for word in ("xgboost", "sagemaker", "batch", "recall", "auc", "deprecated", "retired", "deployed", "prod"):
        assert word in doc.facts


def test_filters_use_the_models_headline_and_every_versions_state(versions: list[Document]) -> None:
    doc = search_document(model_doc("fraud", "card-fraud", versions[1]), versions)
    assert doc.framework == "xgboost"
    assert doc.deployment_targets == ("sagemaker",)
    assert doc.tag_pairs == ("owner=alice",) and doc.tag_keys == ("owner",)
    assert set(doc.statuses) == {"retired", "deployed"}
    assert set(doc.lifecycles) == {"deprecated", "active"}
    assert doc.environments == ("prod", "staging")
    assert doc.env_statuses == ("prod=deployed", "prod=retired", "staging=deployed")


def test_readers_default_to_the_owning_team_and_updated_is_the_latest_change(versions: list[Document]) -> None:
    model = model_doc("fraud", "card-fraud", versions[0])
    del model["readers"]
    doc = search_document(model, versions)
    assert doc.readers == ("fraud",)
    assert doc.updated == int((T0 + timedelta(days=3)).timestamp() * 1_000_000)


def test_documentation_is_optional_and_a_version_without_status_is_registered() -> None:
    version = version_doc("nlp", "tagger")
    del version["status"]
    model = model_doc("nlp", "tagger", version, documentation="## Intended use\n\nTags entities.")
    assert search_document(model, [version]).documentation.startswith("## Intended use")
    del model["documentation"]
    doc = search_document(model, [version])
    assert doc.documentation == "" and doc.statuses == ("registered",)


def test_alias_names_are_searchable_words() -> None:
    version = version_doc("fraud", "card")
    doc = search_document(model_doc("fraud", "card", version, aliases={"champion": "1.0.0"}), [version])
    assert "champion" in doc.facts.split()
