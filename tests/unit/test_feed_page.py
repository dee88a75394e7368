"""Paging the document feed: change order, the two branches of a team's feed, the settle horizon, streaming.

The feed reads the query's in-memory read model; here one is filled by hand with the documents
registration would write, so the paging logic runs without a broker or a database. The e2e test
runs the same paths against the stack.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from query.api.reads import Reads
from query.feed.documents import Feed, FeedPage
from query.projection.model import ReadModel
from query.rendered import RenderedCache
from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.sortkeys import time_key

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
FRAUD = Principal(key_id="k1", team="fraud", scopes=frozenset({"models:read"}))
RISK = Principal(key_id="k2", team="risk", scopes=frozenset({"models:read"}))
ADMIN = Principal(key_id="k0", team="platform", scopes=frozenset({"platform:admin"}))


class World:
    def __init__(self, cache: RenderedCache[Document] | None = None) -> None:
        self.read_model, self.now = ReadModel(), T0 + timedelta(hours=1)
        self.rendered: list[str] = []  # the model of every card rendered, in order
        self.cache = cache if cache is not None else RenderedCache[Document]()
        self.read_model.subscribe(self.cache.forget)
        self.feed = Feed(Reads(self.read_model), clock=lambda: self.now, render=self.render, cache=self.cache)

    def render(self, model: dict[str, Any], versions: list[dict[str, Any]]) -> str:
        self.rendered.append(model["_id"])
        return f"{model['description']} ({len(versions)} versions)"

    def model(
        self,
        name: str,
        minute: int,
        *,
        readers: tuple[str, ...] = (),
        former: tuple[str, ...] = (),
        description: str | None = None,
        unshared_at: dict[str, str] | None = None,
    ) -> None:
        """Model ``name`` of fraud (with versions 1.0.0 and 1.1.0), last changed ``minute`` after T0."""
        mid = f"m-{name}"
        self.read_model.models[mid] = {
            "_id": mid,
            "team": "fraud",
            "name": name,
            "readers": ["fraud", *readers],
            "former_readers": list(former),
            "latest_version": "1.1.0",
            "version_count": 2,
            "description": description or f"the {name} model",
            "updated_at": T0,
            "feed_key": time_key(T0 + timedelta(minutes=minute), mid),
            **({"unshared_at": unshared_at} if unshared_at else {}),
        }
        self.read_model.by_name[("fraud", name)] = mid
        for number in ("1.0.0", "1.1.0"):
            vid = f"{mid}:{number}"
            version: dict[str, Any] = {
                "_id": vid,
                "model_id": mid,
                "version": number,
                "version_key": number,
                "prerelease": False,
                "created_at": T0,
            }
            self.read_model.versions.setdefault(mid, {})[vid] = version
            self.read_model.version_owner[vid] = mid
        self.read_model.notify({mid})


def ids(page: FeedPage) -> list[tuple[str, bool]]:
    return [(item["id"], item["deleted"]) for item in page.items]


class TestPaging:
    async def test_models_come_in_change_order_and_a_cursor_resumes_after_the_last(self) -> None:
        world = World()
        for minute, name in enumerate(["c", "a", "b"]):
            world.model(name, minute)
        first = await world.feed.page(FRAUD, after="", limit=2)
        assert (ids(first), first.has_more) == ([("m-c", False), ("m-a", False)], True)
        rest = await world.feed.page(FRAUD, after=first.last_key, limit=2)
        assert (ids(rest), rest.has_more) == ([("m-b", False)], False)
        caught_up = await world.feed.page(FRAUD, after=rest.last_key, limit=2)
        assert (caught_up.items, caught_up.last_key, caught_up.has_more) == ([], rest.last_key, False)

    async def test_a_team_sees_what_is_shared_with_it_and_tombstones_of_what_was_unshared(self) -> None:
        world = World()
        world.model("hidden", 0)
        world.model("shared", 1, readers=("risk",))
        world.model("unshared", 2, former=("risk",))
        world.model("also-shared", 3, readers=("risk",))
        page = await world.feed.page(RISK, after="", limit=10)
        assert ids(page) == [("m-shared", False), ("m-unshared", True), ("m-also-shared", False)]
        assert page.items[1] == {"id": "m-unshared", "text": "", "metadata": {}, "updated_at": None, "deleted": True}

    async def test_the_unshared_branch_renders_nothing(self) -> None:
        world = World()
        world.model("unshared", 0, former=("risk",))
        await world.feed.page(RISK, after="", limit=10)
        assert world.rendered == []

    async def test_a_page_across_both_branches_is_cut_at_the_limit_in_change_order(self) -> None:
        world = World()
        for minute in range(6):
            shared = minute % 2 == 1
            world.model(f"m{minute}", minute, readers=("risk",) if shared else (), former=() if shared else ("risk",))
        first = await world.feed.page(RISK, after="", limit=3)
        rest = await world.feed.page(RISK, after=first.last_key, limit=3)
        assert [i for i, _ in ids(first) + ids(rest)] == [f"m-m{m}" for m in range(6)]
        assert [d for _, d in ids(first)] == [True, False, True] and first.has_more and not rest.has_more

    async def test_a_former_reader_gets_its_tombstone_once_and_nothing_of_later_changes(self) -> None:
        world = World()
        world.model("unshared", 2, former=("risk",))
        unshared_key = world.read_model.models["m-unshared"]["feed_key"]
        world.model("also-shared", 3, readers=("risk",))
        # The owner changes it after unsharing, and again.
        world.model("unshared", 5, former=("risk",), unshared_at={"risk": unshared_key})
        world.model("unshared", 7, former=("risk",), unshared_at={"risk": unshared_key})
        first = await world.feed.page(RISK, after="", limit=1)
        rest = await world.feed.page(RISK, after=first.last_key, limit=10)
        assert ids(first) == [("m-unshared", True)] and first.last_key == unshared_key
        assert ids(rest) == [("m-also-shared", False)]  # not the tombstone again at minute 5 or 7
        assert ids(await world.feed.page(RISK, after=rest.last_key, limit=10)) == []
        streamed = [
            item for page in [p async for p in world.feed.stream(RISK, after="", page_size=1)] for item in ids(page)
        ]
        assert streamed == [("m-unshared", True), ("m-also-shared", False)]
        assert ids(await world.feed.page(FRAUD, after=first.last_key, limit=10))[-1] == ("m-unshared", False)

    async def test_an_admin_sees_every_model_and_no_tombstone(self) -> None:
        world = World()
        world.model("a", 0, former=("risk",))
        world.model("b", 1)
        assert ids(await world.feed.page(ADMIN, after="", limit=10)) == [("m-a", False), ("m-b", False)]

    async def test_a_change_younger_than_the_settle_delay_waits(self) -> None:
        world = World()
        world.model("a", 0)
        world.now = T0 + timedelta(seconds=1)  # the change at T0 is one second old
        assert (await world.feed.page(FRAUD, after="", limit=10)).items == []
        world.now = T0 + timedelta(seconds=5)
        assert ids(await world.feed.page(FRAUD, after="", limit=10)) == [("m-a", False)]

    async def test_a_change_moves_the_model_to_the_end_once(self) -> None:
        world = World()
        world.model("a", 0)
        world.model("b", 1)
        world.model("a", 2)
        assert ids(await world.feed.page(FRAUD, after="", limit=10)) == [("m-b", False), ("m-a", False)]


class TestStreaming:
    async def test_the_stream_is_the_pages_joined_and_stops_at_its_start_horizon(self) -> None:
        world = World()
        for minute in range(5):
            world.model(f"m{minute}", minute)
        pages = [page async for page in world.feed.stream(FRAUD, after="", page_size=2)]
        assert [len(p.items) for p in pages] == [2, 2, 1]
        world.now += timedelta(hours=1)
        streamed = []
        async for page in world.feed.stream(FRAUD, after=pages[0].last_key, page_size=2):
            streamed += ids(page)
            world.model(f"late{len(streamed)}", 130)  # changed after the stream began: not in it
        assert [i for i, _ in streamed] == ["m-m2", "m-m3", "m-m4"]


class TestRenderedCache:
    async def test_a_document_is_rendered_once_per_change_of_its_model(self) -> None:
        world = World()
        world.model("a", 0)
        await world.feed.page(FRAUD, after="", limit=10)
        await world.feed.page(FRAUD, after="", limit=10)
        assert world.rendered == ["m-a"]
        world.model("a", 1, description="retrained on March data")
        page = await world.feed.page(FRAUD, after="", limit=10)
        assert world.rendered == ["m-a", "m-a"] and page.items[0]["text"].startswith("retrained on March data")

    async def test_every_caller_is_served_the_same_rendering(self) -> None:
        world = World()
        world.model("a", 0, readers=("risk",))
        fraud, risk = await world.feed.page(FRAUD, after="", limit=10), await world.feed.page(RISK, after="", limit=10)
        assert fraud.items == risk.items and world.rendered == ["m-a"]

    async def test_warming_renders_every_model_so_a_sync_renders_nothing(self) -> None:
        world = World()
        for minute in range(3):
            world.model(f"m{minute}", minute)
        assert await world.feed.warm() == 3
        streamed = [page async for page in world.feed.stream(ADMIN, after="", page_size=2)]
        assert sum(len(p.items) for p in streamed) == 3
        assert sorted(world.rendered) == ["m-m0", "m-m1", "m-m2"]

    async def test_with_no_capacity_every_read_renders(self) -> None:
        world = World(RenderedCache[Document](capacity=0))
        world.model("a", 0)
        await world.feed.page(FRAUD, after="", limit=10)
        await world.feed.page(FRAUD, after="", limit=10)
        assert world.rendered == ["m-a", "m-a"]

    def test_past_capacity_the_longest_unrefreshed_document_goes(self) -> None:
        cache = RenderedCache[Document](capacity=2)
        a, b, c = ({"_id": name, "feed_key": f"k-{name}"} for name in "abc")
        cache.put(a, {"id": "a"})
        cache.put(b, {"id": "b"})
        cache.put(a, {"id": "a2"})  # refreshed: now the newest
        cache.put(c, {"id": "c"})
        assert (cache.get(a), cache.get(b), cache.get(c), len(cache)) == ({"id": "a2"}, None, {"id": "c"}, 2)

    def test_a_document_of_an_earlier_change_is_not_served(self) -> None:
        cache = RenderedCache[Document]()
        cache.put({"_id": "a", "feed_key": "k1"}, {"id": "a"})
        assert cache.get({"_id": "a", "feed_key": "k2"}) is None

    async def test_a_refresh_renders_changed_models_ahead_of_the_next_sync(self) -> None:
        world = World()
        world.model("a", 0)
        world.model("b", 1)
        assert await world.feed.refresh(["m-b", "m-gone"]) == 1 and world.rendered == ["m-b"]
        page = await world.feed.page(FRAUD, after="", limit=10)
        assert [item["id"] for item in page.items] == ["m-a", "m-b"] and world.rendered == ["m-b", "m-a"]

    async def test_a_change_drops_the_document_even_when_the_feed_key_stands(self) -> None:
        world = World()
        world.model("a", 0)
        await world.feed.page(FRAUD, after="", limit=10)
        world.read_model.models["m-a"]["description"] = "edited in place"
        world.read_model.notify({"m-a"})
        page = await world.feed.page(FRAUD, after="", limit=10)
        assert world.rendered == ["m-a", "m-a"] and page.items[0]["text"].startswith("edited in place")
