"""The search index on hand-made models: matching, filters, facets, visibility, snippets and updates."""

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from query.search import (
    InvalidQuery,
    SearchDocument,
    SearchFilters,
    SearchIndex,
    SearchRequest,
    SearchResult,
)
from tests.relevance.builders import deployed, searchable

pytestmark = pytest.mark.unit

ADMIN = None
FRAUD = frozenset({"fraud"})


def index_of(docs: Iterable[SearchDocument]) -> SearchIndex:
    index = SearchIndex()
    index.upsert(docs)
    index.commit()
    return index


def search(
    index: SearchIndex,
    q: str,
    readers: frozenset[str] | None = ADMIN,
    *,
    filters: SearchFilters | None = None,
    limit: int = 20,
    offset: int = 0,
) -> SearchResult:
    result = index.search(SearchRequest(q, readers, filters or SearchFilters(), limit, offset))
    assert isinstance(result, SearchResult), result
    return result


def ids(index_docs: Iterable[SearchDocument]) -> dict[str, str]:
    return {doc.model_id: doc.name for doc in index_docs}


@pytest.fixture(scope="module")
def catalogue() -> list[SearchDocument]:
    return [
        searchable(
            "fraud",
            "card-fraud-detector",
            description="Scores card transactions for fraud in real time.",
            tags={"owner": "alice", "pii": "true"},
            metrics={"auc": 0.93},
            **deployed("staging", "prod"),
        ),
        searchable(
            "fraud",
            "chargeback-predictor",
            framework="catboost",
            description="Predicts which card disputes end in a chargeback; uses past transactions.",
            tags={"owner": "bob"},
            deployment_targets=["batch"],
            **deployed("prod", status="failed"),
        ),
        searchable(
            "growth",
            "churn-predictor",
            framework="lightgbm",
            description="Predicts which subscribers will cancel.",
            readers=["growth", "fraud"],
            lifecycle="deprecated",
            **deployed("staging"),
        ),
        searchable(
            "secret",
            "fraud-ring-finder",
            framework="jax",
            deployment_targets=["vertex-ai"],
            description="Finds organised fraud rings among card transactions.",
            **deployed("classified"),
        ),
    ]


@pytest.fixture(scope="module")
def index(catalogue: list[SearchDocument]) -> SearchIndex:
    return index_of(catalogue)


def name_of(index_docs: list[SearchDocument], result: SearchResult) -> list[str]:
    by_id = ids(index_docs)
    return [by_id[hit.model_id] for hit in result.items]


class TestMatching:
    def test_free_words_rank_the_model_that_is_about_them_first(
        self, index: SearchIndex, catalogue: list[SearchDocument]
    ) -> None:
        assert name_of(catalogue, search(index, "card fraud"))[0] == "card-fraud-detector"

    def test_a_misspelled_longer_word_still_matches(self, index: SearchIndex, catalogue: list[SearchDocument]) -> None:
        assert "churn-predictor" in name_of(catalogue, search(index, "subscibers"))

    def test_short_words_are_not_fuzzy(self, index: SearchIndex) -> None:
        assert search(index, "cart").total == 0

    def test_an_exact_word_scores_above_a_fuzzy_one(self) -> None:
        docs = [searchable("t", "a", description="a ranker of results"), searchable("t", "b", description="a banker")]
        hits = search(index_of(docs), "banker").items
        assert [hit.model_id for hit in hits] == [docs[1].model_id, docs[0].model_id]
        assert hits[0].score > hits[1].score

    def test_a_phrase_needs_its_words_together(self, index: SearchIndex, catalogue: list[SearchDocument]) -> None:
        found = set(name_of(catalogue, search(index, '"card transactions"')))
        assert found == {"card-fraud-detector", "fraud-ring-finder"}  # not the chargeback one: "card disputes"

    def test_the_word_being_typed_matches_as_a_prefix(
        self, index: SearchIndex, catalogue: list[SearchDocument]
    ) -> None:
        assert name_of(catalogue, search(index, "charge")) == ["chargeback-predictor"]
        assert search(index, "charge ").total == 0

    def test_metric_names_frameworks_and_statuses_are_searchable_words(
        self, index: SearchIndex, catalogue: list[SearchDocument]
    ) -> None:
        assert name_of(catalogue, search(index, "auc")) == ["card-fraud-detector"]
        assert name_of(catalogue, search(index, "catboost")) == ["chargeback-predictor"]
        assert name_of(catalogue, search(index, "deprecated")) == ["churn-predictor"]

    def test_when_no_model_has_all_words_any_word_will_do(
        self, index: SearchIndex, catalogue: list[SearchDocument]
    ) -> None:
        result = search(index, "chargeback zeppelin")
        assert result.relaxed and name_of(catalogue, result) == ["chargeback-predictor"]


class TestFieldTermsAndFilters:
    @pytest.mark.parametrize(
        ("q", "expected"),
        [
            ("framework:catboost", {"chargeback-predictor"}),
            ("status:deployed", {"card-fraud-detector", "churn-predictor", "fraud-ring-finder"}),
            ("env:prod", {"card-fraud-detector", "chargeback-predictor"}),
            ("status:deployed env:prod", {"card-fraud-detector"}),
            ("tag:owner=alice", {"card-fraud-detector"}),
            ("tag:pii", {"card-fraud-detector"}),
            ("team:growth", {"churn-predictor"}),
            ("target:batch", {"chargeback-predictor"}),
            ("lifecycle:deprecated", {"churn-predictor"}),
            ("name:ch", {"chargeback-predictor", "churn-predictor"}),
            ("predicts status:failed", {"chargeback-predictor"}),
        ],
    )
    def test_a_field_term_filters(
        self, index: SearchIndex, catalogue: list[SearchDocument], q: str, expected: set[str]
    ) -> None:
        assert set(name_of(catalogue, search(index, q))) == expected

    def test_list_filters_apply_as_in_the_model_list(self, index: SearchIndex, catalogue: list[SearchDocument]) -> None:
        filters = SearchFilters(team="fraud", tags=("owner:bob",), name_prefix="charge", environment="prod")
        assert name_of(catalogue, search(index, "", filters=filters)) == ["chargeback-predictor"]
        both = SearchFilters(status="deployed", environment="prod")
        assert name_of(catalogue, search(index, "card", filters=both)) == ["card-fraud-detector"]

    def test_a_query_that_only_filters_lists_the_newest_first(self) -> None:
        docs = [searchable("t", f"m{age}", age_days=age) for age in (1, 3, 2)]
        result = search(index_of(docs), "team:t")
        assert [hit.model_id for hit in result.items] == [docs[1].model_id, docs[2].model_id, docs[0].model_id]
        assert {hit.score for hit in result.items} == {0.0}


class TestFacets:
    def test_facets_count_every_match_not_just_the_page(self, index: SearchIndex) -> None:
        result = search(index, "", readers=FRAUD, limit=1)
        assert len(result.items) == 1 and result.total == 3
        assert result.facets["team"] == {"fraud": 2, "growth": 1}
        assert result.facets["framework"] == {"xgboost": 1, "catboost": 1, "lightgbm": 1}
        assert result.facets["status"] == {"deployed": 2, "failed": 1}
        assert result.facets["environment"] == {"prod": 2, "staging": 2}
        assert result.facets["deployment_target"] == {"sagemaker": 2, "batch": 1}

    def test_facets_follow_the_query(self, index: SearchIndex) -> None:
        assert search(index, "framework:catboost").facets["team"] == {"fraud": 1}


class TestVisibility:
    def test_a_hidden_model_is_neither_found_nor_counted(
        self, index: SearchIndex, catalogue: list[SearchDocument]
    ) -> None:
        result = search(index, "fraud rings", readers=FRAUD)
        assert "fraud-ring-finder" not in name_of(catalogue, result)
        assert result.total == len(result.items)
        counted = {value for facet in result.facets.values() for value in facet}
        assert not counted & {"secret", "jax", "vertex-ai", "classified"}
        assert search(index, "team:secret", readers=FRAUD).total == 0

    def test_a_model_shared_with_the_team_is_visible(self, index: SearchIndex, catalogue: list[SearchDocument]) -> None:
        assert name_of(catalogue, search(index, "subscribers", readers=FRAUD)) == ["churn-predictor"]
        assert search(index, "subscribers", readers=frozenset({"secret"})).total == 0

    def test_a_platform_admin_sees_everything_and_no_readers_see_nothing(self, index: SearchIndex) -> None:
        assert search(index, "", readers=ADMIN).total == 4
        assert search(index, "", readers=frozenset()).total == 0


class TestSnippets:
    def test_snippets_mark_the_matched_words(self, index: SearchIndex, catalogue: list[SearchDocument]) -> None:
        hit = search(index, "fraud transactions", readers=FRAUD).items[0]
        snippet = hit.snippets["description"]
        marked = [snippet.fragment[start:end].lower() for start, end in snippet.highlights]
        assert marked == ["transactions", "fraud"]
        assert "<b>fraud</b>" in snippet.html
        assert [hit.snippets["name"].fragment[s:e] for s, e in hit.snippets["name"].highlights] == ["fraud"]

    def test_words_matched_despite_a_typo_or_as_a_prefix_are_marked(self, index: SearchIndex) -> None:
        fuzzy = search(index, "transactons").items[0].snippets["description"]
        assert "<b>transactions</b>" in fuzzy.html
        prefix = search(index, "chargeb").items[0].snippets["description"]
        assert "<b>chargeback</b>" in prefix.html

    def test_highlights_are_character_offsets_and_html_is_escaped(self) -> None:
        doc = searchable("t", "m", description="Déjà vu <script> détecteur de fraude")
        snippet = search(index_of([doc]), "fraude").items[0].snippets["description"]
        assert [snippet.fragment[s:e] for s, e in snippet.highlights] == ["fraude"]
        assert "<script>" not in snippet.html

    def test_fields_without_a_match_have_no_snippet(self, index: SearchIndex) -> None:
        assert set(search(index, "subscribers").items[0].snippets) == {"description"}


class TestSummaries:
    def test_a_hit_carries_its_model_and_latest_version_as_indexed(self) -> None:
        index = index_of([searchable("t", "m", description="forecasts demand", metrics={"mape": 0.12})])
        shown = json.loads(search(index, "demand").items[0].summary)
        assert shown["model"]["name"] == "m" and shown["model"]["latest_version"] == "1.0.0"
        assert shown["latest_version"]["metrics"] == {"mape": 0.12}

    def test_an_upsert_replaces_the_summary_too(self) -> None:
        index = index_of([searchable("t", "m", description="forecasts demand")])
        index.upsert([searchable("t", "m", description="forecasts demand weekly")])
        index.commit()
        shown = json.loads(search(index, "demand").items[0].summary)
        assert shown["latest_version"]["description"] == "forecasts demand weekly"


class TestUpdates:
    def test_an_upsert_replaces_the_model(self) -> None:
        index = index_of([searchable("t", "m", description="forecasts demand")])
        index.upsert([searchable("t", "m", description="classifies images")])
        index.commit()
        assert search(index, "demand").total == 0
        assert search(index, "images").total == 1 and len(index) == 1

    def test_a_delete_removes_the_model(self) -> None:
        doc = searchable("t", "m", description="forecasts demand")
        index = index_of([doc])
        index.delete([doc.model_id])
        index.commit()
        assert search(index, "demand").total == 0 and len(index) == 0

    def test_changes_are_invisible_until_committed(self) -> None:
        index = index_of([])
        index.upsert([searchable("t", "m", description="forecasts demand")])
        assert search(index, "demand").total == 0
        index.commit()
        assert search(index, "demand").total == 1


class TestResultCache:
    def test_a_repeated_search_is_answered_from_memory_until_the_next_commit(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        index = index_of([searchable("t", "m", description="forecasts demand")])
        runs: list[str] = []
        run = index._run

        def counted(*args: Any, **kwargs: Any) -> SearchResult:
            runs.append("run")
            return run(*args, **kwargs)

        monkeypatch.setattr(index, "_run", counted)
        first, again = search(index, "demand"), search(index, "demand")
        assert again is first and runs == ["run"]
        index.upsert([searchable("t", "m2", description="forecasts demand weekly")])
        index.commit()
        assert search(index, "demand").total == 2 and runs == ["run", "run"]

    def test_a_cached_answer_is_never_served_to_another_reader(self) -> None:
        index = index_of([searchable("fraud", "m", description="forecasts demand")])
        assert search(index, "demand", FRAUD).total == 1
        assert search(index, "demand", frozenset({"risk"})).total == 0

    def test_a_result_computed_across_a_commit_is_not_kept(self) -> None:
        index = index_of([searchable("t", "m", description="forecasts demand")])
        before = index.stamp(ADMIN)
        stale = search(index, "nothing-matches-this")
        index.upsert([searchable("t", "m2", description="nothing-matches-this after all")])
        index.commit()
        request = SearchRequest("nothing-matches-this", ADMIN, SearchFilters(), 20, 0)
        index._remember(request, stale, before)  # a search that began before the commit ends after it
        assert search(index, "nothing-matches-this").total == 1


class TestConcurrency:
    def test_searches_in_other_threads_run_while_the_writer_commits(self) -> None:
        index = index_of([searchable("t", "m0", description="forecasts demand")])

        def write() -> None:
            for i in range(1, 40):
                index.upsert([searchable("t", f"m{i}", description="forecasts demand")])
                index.commit()

        def read() -> list[int]:
            return [search(index, "demand forecasts", readers=frozenset({"t"})).total for _ in range(40)]

        with ThreadPoolExecutor(max_workers=4) as pool:
            writer, readers = pool.submit(write), [pool.submit(read) for _ in range(3)]
            writer.result()
            totals = [found.result() for found in readers]
        assert all(total >= 1 and run == sorted(run) for run in totals for total in run)
        assert search(index, "demand").total == 40


class TestPaging:
    def test_offset_continues_the_ranking(self, index: SearchIndex) -> None:
        everything = [hit.model_id for hit in search(index, "card").items]
        pages = [hit.model_id for offset in range(3) for hit in search(index, "card", limit=1, offset=offset).items]
        assert pages == everything

    @pytest.mark.parametrize(("limit", "offset"), [(0, 0), (201, 0), (10, -1), (10, 10_001)])
    def test_out_of_range_paging_is_refused(self, index: SearchIndex, limit: int, offset: int) -> None:
        assert isinstance(index.search(SearchRequest("card", None, limit=limit, offset=offset)), InvalidQuery)
