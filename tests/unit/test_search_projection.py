"""The search projection's build from MongoDB, over in-memory collections (no broker, no database)."""

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from query.search.projection import SearchProjection
from shared.chassis.settings import CommonSettings

pytestmark = pytest.mark.unit


class Cursor:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    def sort(self, field: str, direction: int) -> "Cursor":
        return Cursor(sorted(self.docs, key=lambda d: d[field], reverse=direction < 0))

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        for doc in self.docs:
            yield doc


class Collection:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    def find(self, query: dict[str, Any], projection: dict[str, int] | None = None) -> Cursor:
        assert query == {}, "the build reads each collection whole, once"
        return Cursor(list(self.docs))


class Index:
    def __init__(self) -> None:
        self.docs: list[tuple[str, list[str]]] = []
        self.commits = 0

    def upsert(self, docs: Sequence[Any]) -> None:
        self.docs.extend(docs)

    def delete(self, model_ids: Sequence[str]) -> None:
        raise AssertionError("a build deletes nothing")

    def commit(self) -> None:
        self.commits += 1


def version(model_id: str, key: str) -> dict[str, Any]:
    return {"model_id": model_id, "version": key, "version_key": key}


async def test_each_model_is_indexed_with_its_own_versions_newest_first() -> None:
    models = [{"_id": m} for m in ("m3", "m1", "m2")]
    versions = [version("m1", "a"), version("m3", "z"), version("m0", "x"), version("m1", "c"), version("m4", "y")]
    db = {"models": Collection(models), "model_versions": Collection(versions)}
    index = Index()
    projection = SearchProjection(
        db,  # type: ignore[arg-type]
        index,
        lambda model, own: (model["_id"], [v["version"] for v in own]),
        settings=CommonSettings(event_signing_key="k" * 64),
    )
    assert await projection.build() == 3
    # Versions of models that do not exist (m0, m4) are skipped; m2 has none.
    assert index.docs == [("m1", ["c", "a"]), ("m2", []), ("m3", ["z"])]
    assert index.commits == 1 and projection.built.is_set()
    await projection.ready()


async def test_search_is_unavailable_until_built_and_while_the_projection_is_down() -> None:
    db = {"models": Collection([{"_id": "m1"}]), "model_versions": Collection([])}
    projection = SearchProjection(
        db,  # type: ignore[arg-type]
        Index(),
        lambda model, own: model["_id"],
        settings=CommonSettings(event_signing_key="k" * 64),
    )
    assert "being built" in (projection.unavailable({}) or "")
    await projection.build()
    assert projection.unavailable({}) is None
    assert projection.unavailable({"feed-cache": "died"}) is None
    assert "restarted" in (projection.unavailable({"search-projection": "lost the database"}) or "")
