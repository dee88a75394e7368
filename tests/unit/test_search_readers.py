"""A team's search results are computed over the models it may read: other teams' private text changes nothing."""

from typing import Any

import pytest

from query.search import SearchDocument, SearchIndex, SearchRequest, SearchResult, shards
from tests.relevance.builders import deployed, searchable

pytestmark = pytest.mark.unit

READER = frozenset({"fraud"})
QUERIES = (
    "card fraud",  # two words: both weighed by how many documents hold them
    "card fraud chargeback disputes",  # most of four
    "chargeback",
    "transactons",  # a typo: the snippet marks the word it was taken for
    "fraud transac",  # the last word as a prefix
    '"card transactions"',  # a phrase
    "fraud framework:xgboost",
    "zebra quagga",  # nothing has both: relaxed to either
    "",  # filters only, newest first
)


def readable() -> list[SearchDocument]:
    """The fraud team's own models and one shared with it."""
    return [
        searchable(
            "fraud",
            "card-fraud-detector",
            description="Scores card transactions for fraud in real time. Zebra crossings ignored.",
            tags={"owner": "alice"},
            **deployed("prod"),
        ),
        searchable(
            "fraud",
            "chargeback-predictor",
            framework="catboost",
            description="Predicts which card disputes end in a chargeback; uses past card transactions.",
        ),
        searchable(
            "growth",
            "churn-predictor",
            framework="lightgbm",
            description="Predicts which subscribers will cancel their card after fraud.",
            readers=["growth", "fraud"],
        ),
    ]


def foreign(count: int) -> list[SearchDocument]:
    """Another team's private models full of the same words, the misspelled one included."""
    return [
        searchable(
            "secret",
            f"project-{i}",
            description=f"Card fraud transactons chargeback {'card ' * i} zebra quagga fraud disputes {i}",
            tags={"owner": "carol"},
            **deployed("prod"),
        )
        for i in range(count)
    ]


def indexed(docs: list[SearchDocument]) -> SearchIndex:
    index = SearchIndex()
    index.upsert(docs)
    index.commit()
    return index


def results(index: SearchIndex, q: str) -> SearchResult:
    found = index.search(SearchRequest(q, READER, limit=10))
    assert isinstance(found, SearchResult), found
    return found


@pytest.mark.parametrize("q", QUERIES)
def test_another_teams_private_models_change_nothing_in_a_readers_results(q: str) -> None:
    alone = results(indexed(readable()), q)
    crowded = results(indexed(readable() + foreign(40)), q)
    assert crowded == alone  # scores, order, snippets, total, facets and relaxation alike
    assert alone.total > 0


@pytest.mark.parametrize("q", QUERIES)
def test_scores_are_those_of_an_index_of_only_what_the_reader_may_read(q: str) -> None:
    """BM25 counts documents and their lengths among the readable models, as if nothing else existed."""
    mixed = indexed(readable() + foreign(40))
    only = indexed(readable())
    admin_view = only.search(SearchRequest(q, None, limit=10))
    assert isinstance(admin_view, SearchResult)
    assert results(mixed, q) == admin_view


def test_a_model_unshared_from_the_reader_stops_counting_and_one_shared_starts() -> None:
    docs = readable()
    index = indexed(docs + foreign(5))
    before = results(index, "card fraud")
    shared = [searchable("secret", "project-0", description="Card fraud", readers=["secret", "fraud"])]
    index.upsert(shared)
    index.commit()
    assert results(index, "card fraud") == results(indexed(docs + shared), "card fraud")
    index.upsert([searchable("secret", "project-0", description="Card fraud")])  # unshared again
    index.commit()
    assert [hit.model_id for hit in results(index, "card fraud").items] == [hit.model_id for hit in before.items]
    assert results(index, "card fraud").total == before.total


def test_a_deleted_model_leaves_the_readers_index() -> None:
    docs = readable()
    index = indexed(docs)
    index.delete([docs[2].model_id])
    index.commit()
    assert {hit.model_id for hit in results(index, "card").items} == {docs[0].model_id, docs[1].model_id}
    assert len(index) == 2


def test_a_team_that_reads_nothing_finds_nothing() -> None:
    index = indexed(readable())
    found = index.search(SearchRequest("card", frozenset({"nobody"})))
    assert isinstance(found, SearchResult) and found.total == 0 and found.items == []


def test_another_teams_private_change_leaves_a_readers_cached_answers_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache cleared by any commit would make the next search slower: a timing that tells of private changes."""
    index = indexed(readable() + foreign(3))
    runs: list[str] = []
    run = index._run

    def counted(*args: Any, **kwargs: Any) -> SearchResult:
        runs.append("run")
        return run(*args, **kwargs)

    monkeypatch.setattr(index, "_run", counted)
    first = results(index, "card fraud")
    index.upsert(foreign(6))
    index.commit()
    assert results(index, "card fraud") is first and runs == ["run"]
    index.upsert([searchable("fraud", "new-model", description="card fraud")])
    index.commit()
    assert results(index, "card fraud").total == first.total + 1 and runs == ["run", "run"]


def test_many_teams_written_in_batches_each_find_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shards, "TEAM_BATCH", 2)  # a team's index is written before the end of the upsert
    teams = [f"team-{i}" for i in range(7)]
    docs = [searchable(team, f"model-{j}", description=f"card fraud {team}") for j in range(5) for team in teams]
    index = indexed(docs)
    index.delete([docs[0].model_id])
    index.upsert([searchable("team-1", "model-0", description="card fraud", readers=["team-1", "team-2"])])
    index.commit()
    totals = {team: 4 if team == "team-0" else 6 if team == "team-2" else 5 for team in teams}
    for team in teams:
        found = index.search(SearchRequest("card fraud", frozenset({team})))
        assert isinstance(found, SearchResult) and found.total == totals[team], team
    assert len(index) == 34 and index.team_documents() == 35  # model-0 of team-1 is read by team-2 too


def test_a_team_index_that_fails_to_commit_keeps_the_change_queued(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dropped, an unshare would leave the model in the former reader's index for good."""
    docs = readable()
    index = indexed(docs)
    close = shards.Shard.close
    failures = iter([RuntimeError("the commit failed")])

    def failing_once(shard: shards.Shard) -> None:
        if (failure := next(failures, None)) is not None:
            raise failure
        close(shard)

    monkeypatch.setattr(shards.Shard, "close", failing_once)
    unshared = searchable("growth", "churn-predictor", framework="lightgbm", description="card after fraud")
    index.upsert([unshared])
    with pytest.raises(RuntimeError):
        index.commit()
    index.commit()  # the projection, restarted, commits again
    assert docs[2].model_id not in {hit.model_id for hit in results(index, "card fraud").items}
    growth = index.search(SearchRequest("card fraud", frozenset({"growth"})))
    assert isinstance(growth, SearchResult) and [hit.model_id for hit in growth.items] == [docs[2].model_id]


class FailsToCommitOnce:
    """Stands in for Tantivy's writer: its first commit fails; the rest is the real writer's."""

    def __init__(self, writer: Any) -> None:
        self.writer, self.failed, self.rolled_back = writer, False, False

    def commit(self) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("the platform index failed to commit")
        self.writer.commit()

    def rollback(self) -> None:
        self.rolled_back = True
        self.writer.rollback()
        self.writer = None  # the index's lock goes with the last reference to its writer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.writer, name)


def test_a_platform_writer_that_fails_to_commit_is_abandoned_and_the_next_commit_uses_a_fresh_one() -> None:
    docs = readable()
    index = SearchIndex()
    index.upsert(docs)
    everything = index._shards.everything
    failing = FailsToCommitOnce(everything._writer)
    everything._writer = failing  # type: ignore[assignment]
    with pytest.raises(RuntimeError):
        index.commit()
    assert failing.rolled_back and everything._writer is None  # not reused in an unknown state
    index.upsert(docs)  # the projection, restarted, rebuilds
    index.commit()
    assert len(index) == 3


def test_a_team_index_is_dropped_once_the_team_reads_nothing() -> None:
    docs = readable()
    index = indexed(docs)
    assert set(index._shards._teams) == {"fraud", "growth"}
    index.upsert([searchable("growth", "churn-predictor", description="card after fraud")])  # unshared from fraud
    index.delete([docs[0].model_id, docs[1].model_id])
    index.commit()
    assert set(index._shards._teams) == {"growth"}
    found = index.search(SearchRequest("card", READER))
    assert isinstance(found, SearchResult) and found.total == 0
