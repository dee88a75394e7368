"""Every read of the query service from its in-memory read model: filters, orders, cursors, visibility, versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from query.api import reads as reads_module
from query.api.lookup import Lookup
from query.api.pagination import SortSpec
from query.api.past import PastStates
from query.api.reads import MODEL_SORTS, ModelFilters, Page, Reads
from registry_contract.sortkeys import time_key
from registry_contract.versioning import parse_range
from shared.chassis.problems import Problem
from tests.read_models import MemoryWorld

pytestmark = pytest.mark.unit
EVERYONE: dict[str, Any] = {}
T0 = datetime(2026, 11, 1, tzinfo=UTC)


async def walk_models(
    reads: Reads, filters: ModelFilters, *, sort: str, limit: int, visible: dict[str, Any]
) -> list[str]:
    """Every page of a model list, as team/name, checking no page is longer than asked."""
    names: list[str] = []
    cursor = None
    while True:
        page = await reads.list_models(
            filters, visible=visible, sort=SortSpec.parse(sort, MODEL_SORTS), limit=limit, cursor=cursor
        )
        assert len(page.items) <= limit
        names += [f"{m['team']}/{m['name']}" for m in page.items]
        if (cursor := page.next_cursor) is None:
            return names


async def walk_versions(reads: Reads, model: dict[str, Any], limit: int, **filters: Any) -> list[str]:
    found: list[str] = []
    cursor = None
    options = {"version_range": None, "include_prerelease": False} | filters
    while True:
        page = await reads.list_versions(model, limit=limit, cursor=cursor, **options)
        found += [v["version"] for v in page.items]
        if (cursor := page.next_cursor) is None:
            return found


@pytest.fixture
async def world() -> MemoryWorld:
    world = MemoryWorld()
    await world.register(
        "fraud", "card", "1.0.0", tags={"owner": "alice", "region": "eu"}, deployment_targets=["sagemaker"]
    )
    await world.register("fraud", "cart", "1.0.0", framework="pytorch", tags={"owner": "alice"})
    await world.register("fraud", "wire", "1.0.0", tags={"owner": "bob", "region": "eu"})
    await world.register("risk", "card", "1.0.0", framework="pytorch", tags={"owner": "alice", "region": "eu"})
    await world.register("risk", "limits", "1.0.0")
    world.share("risk", "limits", "fraud")
    return world


class TestModelLists:
    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            (ModelFilters(team="fraud"), ["fraud/card", "fraud/cart", "fraud/wire"]),
            (ModelFilters(framework="pytorch"), ["fraud/cart", "risk/card"]),
            (ModelFilters(deployment_target="sagemaker"), ["fraud/card"]),
            (ModelFilters(tags=("owner:alice",)), ["fraud/card", "fraud/cart", "risk/card"]),
            (ModelFilters(tags=("owner:alice", "region:eu")), ["fraud/card", "risk/card"]),
            (ModelFilters(tags=("owner:alice", "region:us")), []),
            (ModelFilters(name_prefix="car"), ["fraud/card", "fraud/cart", "risk/card"]),
            (ModelFilters(name_prefix="card"), ["fraud/card", "risk/card"]),
            (ModelFilters(team="fraud", name_prefix="w"), ["fraud/wire"]),
        ],
    )
    async def test_each_filter_of_get_models(
        self, world: MemoryWorld, filters: ModelFilters, expected: list[str]
    ) -> None:
        reads = Reads(world.read_model)
        for sort in ("name", "-name", "created_at", "-updated_at"):
            for limit in (1, 2, 50):
                found = await walk_models(reads, filters, sort=sort, limit=limit, visible=EVERYONE)
                assert sorted(found) == expected and len(found) == len(set(found))

    async def test_created_after_and_before_bound_the_creation_time(self, world: MemoryWorld) -> None:
        for minute, (team, name) in enumerate([("fraud", "card"), ("fraud", "cart"), ("fraud", "wire")]):
            model = world.model(team, name)
            model["created_at"] = T0 + timedelta(minutes=minute)
            model["created_key"] = time_key(model["created_at"], model["_id"])
        world.sync()
        reads = Reads(world.read_model)
        window = ModelFilters(team="fraud", created_after=T0, created_before=T0 + timedelta(minutes=2))
        for sort in ("-created_at", "name"):
            assert await walk_models(reads, window, sort=sort, limit=1, visible=EVERYONE) == ["fraud/cart"]
        everything = ModelFilters(team="fraud", created_after=T0 - timedelta(minutes=1))
        assert await walk_models(reads, everything, sort="created_at", limit=2, visible=EVERYONE) == [
            "fraud/card",
            "fraud/cart",
            "fraud/wire",
        ]

    async def test_sorts_follow_the_unique_keys_in_both_directions(self, world: MemoryWorld) -> None:
        reads = Reads(world.read_model)
        by_name = await walk_models(reads, ModelFilters(), sort="name", limit=2, visible=EVERYONE)
        assert by_name == sorted(by_name, key=lambda n: (n.split("/")[1], world.model(*n.split("/"))["_id"]))
        assert await walk_models(reads, ModelFilters(), sort="-name", limit=3, visible=EVERYONE) == by_name[::-1]
        created = [m for m in world.read_model.models.values()]
        newest_first = [
            f"{m['team']}/{m['name']}" for m in sorted(created, key=lambda m: m["created_key"], reverse=True)
        ]
        assert await walk_models(reads, ModelFilters(), sort="-created_at", limit=2, visible=EVERYONE) == newest_first

    async def test_a_change_moves_a_model_in_the_orders_it_sorts_by(self, world: MemoryWorld) -> None:
        reads = Reads(world.read_model)
        oldest = (await walk_models(reads, ModelFilters(), sort="updated_at", limit=10, visible=EVERYONE))[0]
        await world.register(*oldest.split("/"), "2.0.0")  # now the most recently updated
        assert (await walk_models(reads, ModelFilters(), sort="updated_at", limit=10, visible=EVERYONE))[-1] == oldest
        assert len(await walk_models(reads, ModelFilters(), sort="name", limit=10, visible=EVERYONE)) == 5

    async def test_a_team_lists_its_own_models_and_those_shared_with_it(self, world: MemoryWorld) -> None:
        reads = Reads(world.read_model)
        fraud = await walk_models(reads, ModelFilters(), sort="name", limit=2, visible={"readers": "fraud"})
        assert sorted(fraud) == ["fraud/card", "fraud/cart", "fraud/wire", "risk/limits"]
        risk = await walk_models(
            reads, ModelFilters(tags=("owner:alice",)), sort="name", limit=1, visible={"readers": "risk"}
        )
        assert risk == ["risk/card"]
        assert (
            await walk_models(reads, ModelFilters(team="fraud"), sort="name", limit=5, visible={"readers": "risk"})
            == []
        )
        assert await reads.readable_model_ids("risk", {"readers": "fraud"}) == [world.model("risk", "limits")["_id"]]
        assert await reads.readable_model_ids("risk", {"readers": "risk"}) is None
        assert await reads.readable_model_ids("risk", EVERYONE) is None

    async def test_a_cursor_of_another_query_is_refused(self, world: MemoryWorld) -> None:
        reads = Reads(world.read_model)
        sort = SortSpec.parse("name", MODEL_SORTS)
        first = await reads.list_models(ModelFilters(team="fraud"), visible=EVERYONE, sort=sort, limit=1, cursor=None)
        assert first.next_cursor is not None
        refusals = [
            (ModelFilters(team="risk"), EVERYONE, sort),
            (ModelFilters(team="fraud"), {"readers": "fraud"}, sort),
            (ModelFilters(team="fraud"), EVERYONE, SortSpec.parse("-name", MODEL_SORTS)),
        ]
        for filters, visible, other_sort in refusals:
            with pytest.raises(Problem) as refused:
                await reads.list_models(filters, visible=visible, sort=other_sort, limit=1, cursor=first.next_cursor)
            assert refused.value.reason == "invalid"
        with pytest.raises(Problem):
            await reads.list_models(ModelFilters(), visible=EVERYONE, sort=sort, limit=1, cursor="not-a-cursor")


class TestDeploymentFilters:
    async def test_pages_cover_every_match_once_within_bounded_work(self, monkeypatch: pytest.MonkeyPatch) -> None:
        world = MemoryWorld()
        for team in ("a", "b"):
            for i in range(30):
                await world.register(team, f"m{i}")
                if i % 3 == 0:
                    version = world.version(team, f"m{i}", "1.0.0")
                    version["status"] = "deployed"
                    version["environments"] = {"prod": {"status": "deployed"}}
        world.sync()
        reads = Reads(world.read_model)
        monkeypatch.setattr(reads_module, "MAX_SCANNED_MODELS", 7)  # pages come back short, cursors continue
        sort, pages, names, cursor = SortSpec.parse("name", MODEL_SORTS), 0, [], None
        while True:
            page = await reads.list_models(
                ModelFilters(environment="prod", status="deployed"),
                visible={"readers": "a"},
                sort=sort,
                limit=4,
                cursor=cursor,
            )
            names += [doc["name"] for doc in page.items]
            pages += 1
            if (cursor := page.next_cursor) is None:
                break
        assert sorted(names) == sorted(f"m{i}" for i in range(30) if i % 3 == 0) and pages >= 3
        assert len(names) == len(set(names))
        filters = [ModelFilters(team="a", status="registered"), ModelFilters(team="a", environment="prod")]
        registered, in_prod = [await walk_models(reads, f, sort="name", limit=50, visible=EVERYONE) for f in filters]
        assert len(registered) == 20 and len(in_prod) == 10


VERSIONS = [f"{major}.{minor}.0" for major in range(3) for minor in range(7)] + ["1.2.0-rc.1", "2.0.0-beta"]


@pytest.fixture
async def versions() -> MemoryWorld:
    world = MemoryWorld()
    await world.register("a", "m", *VERSIONS)
    for number in ("0.3.0", "2.5.0"):
        world.version("a", "m", number)["lifecycle"] = "deprecated"
    world.sync()
    return world


def precedence(numbers: list[str]) -> list[str]:
    from registry_contract.versioning import precedence_key

    return sorted(numbers, key=precedence_key, reverse=True)


class TestVersionLists:
    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({}, [v for v in VERSIONS if "-" not in v]),
            ({"include_prerelease": True}, VERSIONS),
            (
                {"version_range": parse_range(">=1.0.0,<2.0.0"), "include_prerelease": True},
                [v for v in VERSIONS if v.startswith("1.")] + ["2.0.0-beta"],  # a prerelease of 2 is below 2
            ),
            (
                {"version_range": parse_range(">1.3.0"), "lifecycle": "active"},
                [v for v in VERSIONS if "-" not in v and v > "1.3.0" and v != "2.5.0"],
            ),
            ({"lifecycle": "deprecated"}, ["0.3.0", "2.5.0"]),
            ({"version_range": parse_range("=1.2.0-rc.1"), "include_prerelease": True}, ["1.2.0-rc.1"]),
            ({"version_range": parse_range("<=0.2.0")}, ["0.0.0", "0.1.0", "0.2.0"]),
        ],
    )
    async def test_pages_by_precedence_with_ranges_prereleases_and_lifecycle(
        self, versions: MemoryWorld, filters: dict[str, Any], expected: list[str]
    ) -> None:
        reads = Reads(versions.read_model)
        model = versions.model("a", "m")
        for limit in (1, 4, 50):
            assert await walk_versions(reads, model, limit, **filters) == precedence(expected)

    async def test_a_new_version_is_listed_at_once(self, versions: MemoryWorld) -> None:
        reads = Reads(versions.read_model)
        model = versions.model("a", "m")
        assert (await walk_versions(reads, model, 1))[0] == "2.6.0"
        await versions.register("a", "m", "9.0.0")
        assert (await walk_versions(reads, model, 1))[0] == "9.0.0"

    async def test_a_deleted_version_leaves_lists_and_latest_at_once(self, versions: MemoryWorld) -> None:
        reads = Reads(versions.read_model)
        model = versions.model("a", "m")
        assert (await walk_versions(reads, model, 50))[:2] == ["2.6.0", "2.5.0"]
        versions.forget_version("a", "m", "2.6.0")
        await versions.register("a", "m", "2.7.0-rc.1")  # one gone, one come, in the same change
        assert (await walk_versions(reads, model, 50, include_prerelease=True))[:2] == ["2.7.0-rc.1", "2.5.0"]
        assert (await reads.latest_version(model) or {}).get("version") == "2.4.0"

    async def test_latest_skips_prereleases_and_deprecated_unless_asked(self, versions: MemoryWorld) -> None:
        versions.version("a", "m", "2.6.0")["lifecycle"] = "deprecated"
        await versions.register("a", "m", "3.0.0-rc.1")
        reads = Reads(versions.read_model)
        model = versions.model("a", "m")
        found = {
            (pre, dep): (await reads.latest_version(model, include_prerelease=pre, include_deprecated=dep) or {}).get(
                "version"
            )
            for pre in (False, True)
            for dep in (False, True)
        }
        assert found == {
            (False, False): "2.4.0",
            (False, True): "2.6.0",
            (True, False): "3.0.0-rc.1",
            (True, True): "3.0.0-rc.1",
        }

    async def test_a_deployment_filter_on_versions(self, versions: MemoryWorld) -> None:
        versions.version("a", "m", "1.1.0")["environments"] = {"prod": {"status": "deployed"}}
        versions.version("a", "m", "1.1.0")["status"] = "deployed"
        versions.version("a", "m", "2.1.0")["environments"] = {"staging": {"status": "failed"}}
        versions.sync()
        reads = Reads(versions.read_model)
        model = versions.model("a", "m")
        assert await walk_versions(reads, model, 1, status="deployed") == ["1.1.0"]
        assert await walk_versions(reads, model, 1, environment="staging") == ["2.1.0"]
        assert await walk_versions(reads, model, 1, environment="staging", status="deployed") == []

    async def test_a_version_list_examines_a_bounded_number_and_its_cursor_goes_on(
        self, versions: MemoryWorld, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for number in ("0.1.0", "1.5.0", "2.2.0"):
            versions.version("a", "m", number)["environments"] = {"prod": {"status": "deployed"}}
        versions.sync()
        monkeypatch.setattr(reads_module, "MAX_SCANNED_VERSIONS", 3)
        reads = Reads(versions.read_model)
        model = versions.model("a", "m")
        first = await reads.list_versions(
            model, version_range=None, include_prerelease=True, limit=10, cursor=None, environment="prod"
        )
        assert len(first.items) < 3 and first.next_cursor is not None  # short, and it goes on
        assert await walk_versions(reads, model, 10, include_prerelease=True, environment="prod") == [
            "2.2.0",
            "1.5.0",
            "0.1.0",
        ]

    async def test_a_version_cursor_of_another_range_is_refused(self, versions: MemoryWorld) -> None:
        reads = Reads(versions.read_model)
        model = versions.model("a", "m")
        page = await reads.list_versions(model, version_range=None, include_prerelease=False, limit=1, cursor=None)
        with pytest.raises(Problem):
            await reads.list_versions(
                model, version_range=parse_range(">1.0.0"), include_prerelease=False, limit=1, cursor=page.next_cursor
            )


class TestLookups:
    async def test_versions_by_number_alias_and_latest_within_visibility(self, versions: MemoryWorld) -> None:
        versions.model("a", "m")["aliases"] = {"champion": "1.4.0"}
        versions.sync()
        reads = Reads(versions.read_model)
        mine = Lookup(reads, {"readers": "a"}, PastStates(reads.read_model))
        assert (await mine.version("a", "m", "@champion"))["aliases"] == ["champion"]
        assert (await mine.version("a", "m", "1.4.0"))["version"] == "1.4.0"
        assert (await mine.version("a", "m", "latest"))["version"] == "2.6.0"
        for missing in ("@nobody", "7.0.0"):
            with pytest.raises(Problem) as refused:
                await mine.version("a", "m", missing)
            assert refused.value.reason == "not_found"
        with pytest.raises(Problem) as hidden:
            await Lookup(reads, {"readers": "b"}, PastStates(reads.read_model)).version("a", "m", "1.4.0")
        assert hidden.value.reason == "not_found"

    async def test_children_are_only_those_of_readable_models(self) -> None:
        world = MemoryWorld()
        await world.register("a", "base")
        parent = {"team": "a", "name": "base", "version": "1.0.0"}
        await world.register("a", "tuned", parent=parent)
        await world.register("b", "secret", parent=parent)
        await world.register("c", "shared", parent=parent)
        world.share("c", "shared", "a")
        reads = Reads(world.read_model)
        base = world.version("a", "base", "1.0.0")
        mine = {v["name"] for v in await reads.children(base, {"readers": "a"}, 10)}
        assert mine == {"tuned", "shared"}
        assert len(await reads.children(base, EVERYONE, 10)) == 3
        assert len(await reads.children(base, EVERYONE, 2)) == 2


class TestLogs:
    async def test_history_pages_by_position(self, world: MemoryWorld) -> None:
        model = world.model("fraud", "card")
        world.read_model.history[model["_id"]] = [{"_id": f"e{i}", "position": 10 * i, "type": "t"} for i in range(7)]
        reads = Reads(world.read_model)
        seen, cursor = [], None
        while True:
            page: Page = await reads.history(model, limit=3, cursor=cursor)
            seen += [row["_id"] for row in page.items]
            if (cursor := page.next_cursor) is None:
                break
        assert seen == [f"e{i}" for i in range(7)]
        other = world.model("fraud", "cart")
        first = await reads.history(model, limit=3, cursor=None)
        with pytest.raises(Problem):
            await reads.history(other, limit=3, cursor=first.next_cursor)

    async def test_deployment_reads(self, world: MemoryWorld) -> None:
        await world.register("fraud", "card", "1.1.0")
        for minute, (number, env, outcome) in enumerate(
            [
                ("1.0.0", "prod", "applied"),
                ("1.1.0", "staging", "applied"),
                ("1.0.0", "prod", "rejected"),
                ("1.1.0", "prod", "applied"),
            ]
        ):
            world.add_report(
                "fraud", "card", number, environment=env, outcome=outcome, received_at=T0 + timedelta(minutes=minute)
            )
        reads = Reads(world.read_model)
        model, v1 = world.model("fraud", "card"), world.version("fraud", "card", "1.0.0")
        history = await reads.deployment_history(v1, limit=1, cursor=None)
        rest = await reads.deployment_history(v1, limit=1, cursor=history.next_cursor)
        assert [r["outcome"] for r in history.items + rest.items] == [
            "applied",
            "rejected",
        ] and rest.next_cursor is None
        assert [r["outcome"] for r in await reads.recent_deployments(v1, 5)] == ["rejected", "applied"]
        applied = await reads.model_deployments(model, environment="prod", outcome="applied", limit=5)
        assert [r["version"] for r in applied] == ["1.1.0", "1.0.0"]
        newest = await reads.team_recent("deployments", "fraud", None, 2)
        assert [(r["version"], r["environment"]) for r in newest] == [("1.1.0", "prod"), ("1.0.0", "prod")]
        recent = await reads.team_recent("versions", "fraud", None, 10)
        assert {(v["name"], v["version"]) for v in recent} >= {("card", "1.1.0"), ("wire", "1.0.0")} and len(
            recent
        ) == 4
        shared_only = await reads.team_recent("versions", "risk", [world.model("risk", "limits")["_id"]], 10)
        assert [v["name"] for v in shared_only] == ["limits"]


class TestOrdersKeptInStep:
    async def test_a_share_an_unshare_and_a_tag_change_refile_the_model_in_lists_already_made(
        self, world: MemoryWorld
    ) -> None:
        reads = Reads(world.read_model)
        risk, by_tag = {"readers": "risk"}, ModelFilters(tags=("owner:bob",))
        assert await walk_models(reads, ModelFilters(), sort="name", limit=10, visible=risk) == [
            "risk/card",
            "risk/limits",
        ]
        assert await walk_models(reads, by_tag, sort="-updated_at", limit=10, visible=EVERYONE) == ["fraud/wire"]
        world.share("fraud", "cart", "risk")
        wire = world.model("fraud", "wire")
        wire["tags"], wire["tag_pairs"] = {"owner": "carol"}, ["owner:carol"]
        world.sync()
        assert "fraud/cart" in await walk_models(reads, ModelFilters(), sort="name", limit=10, visible=risk)
        assert await walk_models(reads, by_tag, sort="-updated_at", limit=10, visible=EVERYONE) == []
        cart = world.model("fraud", "cart")
        cart["readers"] = ["fraud"]
        world.sync()
        assert "fraud/cart" not in await walk_models(reads, ModelFilters(), sort="name", limit=10, visible=risk)

    async def test_orders_kept_in_step_equal_orders_made_afresh(self, world: MemoryWorld) -> None:
        reads = Reads(world.read_model)
        groups = [
            None,
            ("team", "fraud"),
            ("readers", "fraud"),
            ("tag_pairs", "owner:alice"),
            ("tag_pairs", "x:1"),
            ("deployment", "status=registered"),
            ("deployment", "env=prod:deployed"),
        ]
        for group in groups:
            for order in ("created_key", "updated_key", "name_key", "feed_key"):
                reads.orders.keys(group, order)  # made now, kept in step from here on
        await world.register("fraud", "card", "2.0.0", tags={"x": "1"})
        await world.register("risk", "new", tags={"x": "1"})
        world.share("risk", "new", "fraud")
        world.version("fraud", "wire", "1.0.0")["environments"] = {"prod": {"status": "deployed"}}
        world.version("fraud", "wire", "1.0.0")["status"] = "deployed"
        world.sync()
        assert reads.orders.size(("deployment", "env=prod:deployed")) == 1
        afresh = Reads(world.read_model)
        for group in groups:
            for order in ("created_key", "updated_key", "name_key", "feed_key"):
                assert reads.orders.keys(group, order) == afresh.orders.keys(group, order), (group, order)
