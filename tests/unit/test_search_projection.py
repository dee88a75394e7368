"""The search projection over the read model: built once it is loaded, then each changed model again."""

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest

from query.api.reads import Reads
from query.projection.model import ReadModel
from query.search import projection as search_projection
from query.search.projection import SearchProjection
from tests.waiting import until

pytestmark = pytest.mark.unit


class Index:
    def __init__(self) -> None:
        self.docs: dict[str, list[str]] = {}
        self.readers: dict[str, list[str]] = {}  # model id -> the teams whose index holds it
        self.commits = 0

    def upsert(self, docs: Sequence[Any]) -> None:
        for model_id, versions, readers in docs:
            self.docs[model_id], self.readers[model_id] = versions, readers

    def delete(self, model_ids: Sequence[str]) -> None:
        for model_id in model_ids:
            self.docs.pop(model_id, None)
            self.readers.pop(model_id, None)

    def commit(self) -> None:
        self.commits += 1

    def holders(self, model_id: str) -> tuple[str, ...]:
        return tuple(self.readers.get(model_id, ()))


def put(read_model: ReadModel, model_id: str, *numbers: str, readers: tuple[str, ...] = ("t",)) -> None:
    read_model.models[model_id] = {"_id": model_id, "team": "t", "name": model_id, "readers": list(readers)}
    for number in numbers:
        version = {"_id": f"{model_id}:{number}", "model_id": model_id, "version": number, "version_key": number}
        read_model.versions.setdefault(model_id, {})[version["_id"]] = version
        read_model.version_owner[version["_id"]] = model_id


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def checked() -> bool:
        return check()

    return checked


def projection_of(read_model: ReadModel, index: Index, loaded: asyncio.Event) -> SearchProjection:
    return SearchProjection(
        Reads(read_model),
        index,
        lambda model, own: (model["_id"], [v["version"] for v in own], model["readers"]),
        loaded=loaded.wait,
    )


async def test_the_index_is_built_once_the_read_model_is_loaded_then_follows_its_changes() -> None:
    read_model, index, loaded = ReadModel(), Index(), asyncio.Event()
    projection = projection_of(read_model, index, loaded)
    task = asyncio.create_task(projection.run())
    try:
        put(read_model, "m1", "a", "c")
        put(read_model, "m2")
        read_model.notify({"m1", "m2"})  # changes before the load: the build covers them
        await asyncio.sleep(0)
        assert index.docs == {} and "being built" in (projection.unavailable({}) or "")
        loaded.set()
        await until(_async(projection.built.is_set), what="the build")
        assert index.docs == {"m1": ["c", "a"], "m2": []}
        await projection.ready()
        put(read_model, "m2", "b")
        put(read_model, "m3", "z")
        del read_model.models["m1"]
        read_model.notify({"m1", "m2", "m3"})
        await until(_async(lambda: index.docs == {"m2": ["b"], "m3": ["z"]}), what="the changes indexed")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_search_is_unavailable_until_built_and_while_the_projection_is_down() -> None:
    read_model, loaded = ReadModel(), asyncio.Event()
    put(read_model, "m1")
    projection = projection_of(read_model, Index(), loaded)
    assert "being built" in (projection.unavailable({}) or "")
    await projection.build()
    assert projection.unavailable({}) is None
    assert projection.unavailable({"feed-cache": "died"}) is None
    assert "restarted" in (projection.unavailable({"search-projection": "lost the database"}) or "")


async def test_a_search_with_a_token_waits_until_its_models_changes_are_indexed() -> None:
    read_model, index, loaded = ReadModel(), Index(), asyncio.Event()
    put(read_model, "m1", "a")
    projection = projection_of(read_model, index, loaded)
    assert not await projection.caught_up({"m1"}, 0.01)  # not built yet
    loaded.set()
    task = asyncio.create_task(projection.run())
    try:
        assert await projection.caught_up({"m1"}, 30)
        put(read_model, "m1", "b")
        read_model.notify({"m1"})
        waiting = asyncio.create_task(projection.caught_up({"m1"}, 30))
        assert await projection.caught_up({"m2"}, 0)  # another model's change does not hold it up
        assert await waiting and index.docs["m1"] == ["b", "a"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def settle() -> None:
    for _ in range(20):  # a few turns of the loop: enough for a round that needs no waiting
        await asyncio.sleep(0)


class SlowIndex(Index):
    """Holds each upsert in its worker thread until released, as a large round would take its time."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()
        self.release.set()

    def upsert(self, docs: Sequence[Any]) -> None:
        self.entered.set()
        self.release.wait(30)
        super().upsert(docs)

    def hold(self) -> None:
        """Hold the next upsert (and every one after it) until :attr:`release` is set."""
        self.entered.clear()
        self.release.clear()


@contextlib.asynccontextmanager
async def following(read_model: ReadModel, index: Index, *, built: bool = True) -> AsyncIterator[SearchProjection]:
    """The projection of a loaded ``read_model`` into ``index``, running (built first, unless not ``built``)."""
    loaded = asyncio.Event()
    loaded.set()
    projection = projection_of(read_model, index, loaded)
    task = asyncio.create_task(projection.run())
    try:
        if built:
            await until(_async(projection.built.is_set), what="the build")
        yield projection
    finally:
        if isinstance(index, SlowIndex):
            index.release.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def refresh_every(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(search_projection, "REFRESH_SECONDS", seconds)


async def test_changes_wait_for_the_refresh_interval_except_one_that_takes_a_model_from_a_team(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refresh_every(monkeypatch, 3600.0)  # only urgency starts a round now
    read_model, index = ReadModel(), Index()
    put(read_model, "m1", "a", readers=("t", "risk"))
    put(read_model, "m2", "a")
    async with following(read_model, index):
        await settle()  # the round the build's own notification may start
        built = index.commits
        put(read_model, "m2", "a", "b")
        read_model.notify({"m2"})
        put(read_model, "m3", "z")
        read_model.notify({"m3"})
        await settle()
        assert ("m3" not in index.docs, index.commits) == (True, built)  # waiting for the interval
        put(read_model, "m1", "a", readers=("t",))  # unshared from risk: its index must drop it now
        read_model.notify({"m1"})
        await until(_async(lambda: index.readers["m1"] == ["t"]), what="the unshare indexed")
        assert (index.docs["m2"], index.docs["m3"], index.commits) == (["b", "a"], ["z"], built + 1)  # one round


async def test_a_search_waiting_for_a_change_does_not_wait_for_the_refresh_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refresh_every(monkeypatch, 3600.0)
    read_model, index = ReadModel(), Index()
    put(read_model, "m1", "a")
    async with following(read_model, index) as projection:
        await settle()
        put(read_model, "m1", "a", "b")
        read_model.notify({"m1"})
        assert await projection.caught_up({"m1"}, 30) and index.docs["m1"] == ["b", "a"]


async def test_a_model_that_leaves_the_read_model_leaves_the_index_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    refresh_every(monkeypatch, 3600.0)
    read_model, index = ReadModel(), Index()
    put(read_model, "m1", "a")
    async with following(read_model, index):
        del read_model.models["m1"]
        read_model.notify({"m1"})
        await until(_async(lambda: "m1" not in index.docs), what="the model gone from the index")


async def test_an_unshare_noted_while_its_model_is_being_indexed_is_not_left_for_the_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refresh_every(monkeypatch, 0.0)  # the share's round starts at once …
    read_model, index = ReadModel(), SlowIndex()
    put(read_model, "m1", "a")
    async with following(read_model, index):
        index.hold()
        put(read_model, "m1", "a", readers=("t", "risk"))  # shared with risk
        read_model.notify({"m1"})
        await until(_async(index.entered.is_set), what="the round indexing the share")
        refresh_every(monkeypatch, 3600.0)  # … the next only when urgent
        put(read_model, "m1", "a", readers=("t",))  # unshared while that round is still being written
        read_model.notify({"m1"})
        shared_round = index.commits + 1
        index.release.set()
        await until(_async(lambda: index.commits >= shared_round), what="the share's round committed")
        await until(_async(lambda: index.readers.get("m1") == ["t"]), what="the unshare indexed")


async def test_an_unshare_noted_during_the_build_is_indexed_once_it_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    refresh_every(monkeypatch, 3600.0)
    read_model, index = ReadModel(), SlowIndex()
    put(read_model, "m1", "a", readers=("t", "risk"))
    index.hold()
    async with following(read_model, index, built=False):
        await until(_async(index.entered.is_set), what="the build writing")
        put(read_model, "m1", "a", readers=("t",))  # unshared while the build writes the shared state
        read_model.notify({"m1"})
        index.release.set()
        await until(_async(lambda: index.readers.get("m1") == ["t"]), what="the unshare indexed")


async def test_a_search_waiting_through_a_round_still_gets_the_change_noted_during_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refresh_every(monkeypatch, 0.0)
    read_model, index = ReadModel(), SlowIndex()
    put(read_model, "m1", "a")
    async with following(read_model, index) as projection:
        index.hold()
        put(read_model, "m1", "a", "b")
        read_model.notify({"m1"})
        await until(_async(index.entered.is_set), what="the round indexing b")
        refresh_every(monkeypatch, 3600.0)
        searching = asyncio.create_task(projection.caught_up({"m1"}, 30))  # m1 is being indexed as it asks
        await settle()
        put(read_model, "m1", "a", "b", "c")  # and changes again meanwhile
        read_model.notify({"m1"})
        index.release.set()
        assert await searching and index.docs["m1"] == ["c", "b", "a"]
