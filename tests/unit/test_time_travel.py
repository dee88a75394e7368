"""Reads as of a past instant, alias history, environment timelines: a scripted history with known answers."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import Response

from query.api import past
from query.api.card_routes import get_model_card
from query.api.deployments_routes import get_deployments, get_model_deployments
from query.api.lookup import Lookup
from query.api.reads import Reads
from query.api.team_routes import recent_deployments
from query.deps import as_of_time
from query.projection.apply import REPORT_RECORDED, apply_event
from query.projection.model import ReadModel
from query.projection.past import SHARE_EVENTS
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from registry_contract.history_views import AliasMovePublic, EnvironmentChangePublic
from registry_contract.ids import model_id, version_id
from registry_contract.views import ModelCardPublic, version_public
from shared.chassis.problems import Problem

pytestmark = pytest.mark.unit

REGISTRATION, TRACKER = "/registry/registration", "/registry/deploy-tracker"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
TEAM, READER, STRANGER = "fraud", "risk", "ops"
_revisions = itertools.count(1_000)


class History:
    """One model's events, a minute apart: ``at(n)`` is the time of step ``n``, ``between(n)`` just after it."""

    def __init__(self) -> None:
        self.name = f"m-{uuid.uuid4().hex[:8]}"
        self.model_id = model_id(TEAM, self.name)
        self.read_model = ReadModel()
        self.step = 0
        self.reports: dict[tuple[str, str], int] = {}

    def at(self, step: int) -> datetime:
        return T0 + timedelta(minutes=step)

    def between(self, step: int) -> datetime:
        return self.at(step) + timedelta(seconds=30)

    def emit(self, kind: str, data: dict[str, Any], *, source: str = REGISTRATION) -> None:
        self.step += 1
        ref = {"model_id": self.model_id, "team": TEAM, "name": self.name}
        event = CloudEvent(
            source=source,
            type=kind,
            time=self.at(self.step),
            subject=f"{TEAM}/{self.name}",
            data=ref | data,
            revision=next(_revisions),
        )
        apply_event(self.read_model, event)

    def register(self, version: str) -> None:
        doc = {
            "model_id": self.model_id,
            "team": TEAM,
            "name": self.name,
            "version": version,
            "framework": "sklearn",
            "artifact_uri": "s3://bucket/model.pkl",
            "created_at": self.at(self.step + 1),
            "updated_at": self.at(self.step + 1),
            "created_by": "key_1",
        }
        self.emit(messages.MODEL_VERSION_REGISTERED, version_public(doc))

    def alias(self, alias: str, version: str | None, previous: str | None) -> None:
        kind = messages.ALIAS_SET if version else messages.ALIAS_REMOVED
        self.emit(kind, {"alias": alias, "version": version, "previous_version": previous})

    def approve(self, version: str, before: str, after: str) -> None:
        self.emit(messages.VERSION_APPROVAL_CHANGED, {"version": version, "from": before, "to": after, "by": "key_9"})

    def deploy(self, version: str, environment: str, previous: str | None, status: str) -> None:
        """The tracker's report row and status change of one applied report, recorded at the next step."""
        vid = version_id(TEAM, self.name, version)
        position = self.reports[(vid, environment)] = self.reports.get((vid, environment), 0) + 1
        received = self.at(self.step + 1).isoformat()
        report = {
            "id": f"report-{self.step + 1}",
            "outcome": "applied",
            "version": version,
            "environment": environment,
            "status": status,
            "previous_status": previous,
            "occurred_at": received,
            "received_at": received,
            "version_id": vid,
            "position": position,
        }
        self.emit(REPORT_RECORDED, report, source=TRACKER)
        self.step -= 1  # the status change is the same moment
        state = {"status": status, "occurred_at": received, "report_id": report["id"], "updated_at": received}
        change: dict[str, Any] = {"version": version, "environment": environment, "previous_status": previous}
        change["status"] = status
        change |= {"overall_status": status, "report_id": report["id"], "environment_state": state}
        self.emit(messages.DEPLOYMENT_STATUS_CHANGED, change, source=TRACKER)


@pytest.fixture
def history() -> History:
    """The script; the step numbers are the minutes after T0 the tests ask about."""
    h = History()
    h.register("1.0.0")  # 1
    h.register("1.1.0")  # 2
    h.alias("champion", "1.0.0", None)  # 3
    h.approve("1.0.0", "pending", "approved")  # 4
    h.deploy("1.0.0", "prod", None, "deployed")  # 5
    h.emit(messages.MODEL_SHARED, {"with_team": READER})  # 6
    h.alias("champion", "1.1.0", "1.0.0")  # 7
    h.approve("1.1.0", "pending", "approved")  # 8
    h.deploy("1.1.0", "prod", None, "deployed")  # 9
    h.emit(messages.MODEL_UNSHARED, {"with_team": READER})  # 10
    h.deploy("1.1.0", "prod", "deployed", "rolled_back")  # 11
    h.register("1.2.0")  # 12
    h.alias("champion", "1.2.0", "1.1.0")  # 13
    h.approve("1.2.0", "pending", "rejected")  # 14
    h.emit(messages.MODEL_VERSION_DELETED, {"version": "1.1.0"})  # 15
    h.emit(messages.MODEL_SHARED, {"with_team": READER})  # 16
    h.alias("champion", None, "1.2.0")  # 17
    h.emit(messages.MODEL_SHARED, {"with_team": STRANGER})  # 18
    h.emit(messages.MODEL_UNSHARED, {"with_team": STRANGER})  # 19
    return h


def lookup_of(h: History, visible: dict[str, Any]) -> Lookup:
    return Lookup(Reads(h.read_model), visible, past.PastStates(h.read_model))


def owner(h: History) -> Lookup:
    return lookup_of(h, {"readers": TEAM})


def reader(h: History, team: str = READER) -> Lookup:
    return lookup_of(h, {"readers": team})


async def champion(lookup: Lookup, h: History, at: datetime) -> str | None:
    """Which version ``@champion`` named at ``at`` (None: no such alias then)."""
    then = await lookup.as_of(TEAM, h.name, at)
    try:
        return str((await then.version(TEAM, h.name, "@champion"))["version"])
    except Problem as problem:
        assert problem.reason == "not_found"
        return None


async def versions_then(lookup: Lookup, h: History, at: datetime) -> list[str]:
    then = await lookup.as_of(TEAM, h.name, at)
    model = await then.model(TEAM, h.name)
    page = await then.reads.list_versions(model, version_range=None, include_prerelease=False, limit=50, cursor=None)
    return [v["version"] for v in page.items]


async def prod_then(lookup: Lookup, h: History, version: str, at: datetime) -> str | None:
    then = await lookup.as_of(TEAM, h.name, at)
    found = await then.version(TEAM, h.name, version)
    return ((found.get("environments") or {}).get("prod") or {}).get("status")


class TestTheStateAsOfAnInstant:
    @pytest.mark.parametrize(
        ("step", "expected"),
        [(2, None), (3, "1.0.0"), (6, "1.0.0"), (7, "1.1.0"), (12, "1.1.0"), (13, "1.2.0"), (16, "1.2.0"), (17, None)],
    )
    async def test_the_alias_resolves_to_the_version_it_named_then(
        self, history: History, step: int, expected: str | None
    ) -> None:
        assert await champion(owner(history), history, history.between(step)) == expected

    async def test_an_instant_exactly_at_an_event_sees_that_event(self, history: History) -> None:
        assert await champion(owner(history), history, history.at(7)) == "1.1.0"
        assert await champion(owner(history), history, history.at(7) - timedelta(microseconds=1)) == "1.0.0"

    @pytest.mark.parametrize(
        ("step", "expected"),
        [(1, ["1.0.0"]), (2, ["1.1.0", "1.0.0"]), (12, ["1.2.0", "1.1.0", "1.0.0"]), (15, ["1.2.0", "1.0.0"])],
    )
    async def test_versions_are_those_registered_and_not_yet_deleted(
        self, history: History, step: int, expected: list[str]
    ) -> None:
        assert await versions_then(owner(history), history, history.between(step)) == expected

    async def test_a_deleted_version_reads_as_it_was_before_its_deletion_and_missing_after(
        self, history: History
    ) -> None:
        lookup = owner(history)
        then = await lookup.as_of(TEAM, history.name, history.between(14))
        assert (await then.version(TEAM, history.name, "1.1.0"))["approval"]["status"] == "approved"
        later = await lookup.as_of(TEAM, history.name, history.between(15))
        with pytest.raises(Problem) as missing:
            await later.version(TEAM, history.name, "1.1.0")
        assert missing.value.reason == "not_found"

    @pytest.mark.parametrize(("step", "expected"), [(3, "pending"), (4, "approved"), (20, "approved")])
    async def test_the_approval_is_the_one_decided_by_then(self, history: History, step: int, expected: str) -> None:
        then = await owner(history).as_of(TEAM, history.name, history.between(step))
        assert (await then.version(TEAM, history.name, "1.0.0"))["approval"]["status"] == expected

    @pytest.mark.parametrize(
        ("version", "step", "expected"),
        [
            ("1.0.0", 4, None),
            ("1.0.0", 5, "deployed"),
            ("1.1.0", 8, None),
            ("1.1.0", 9, "deployed"),
            ("1.1.0", 10, "deployed"),
            ("1.1.0", 11, "rolled_back"),
        ],
    )
    async def test_each_environment_stands_where_the_reports_applied_by_then_put_it(
        self, history: History, version: str, step: int, expected: str | None
    ) -> None:
        assert await prod_then(owner(history), history, version, history.between(step)) == expected

    async def test_the_overall_status_and_the_reports_are_those_of_then(self, history: History) -> None:
        then = await owner(history).as_of(TEAM, history.name, history.between(9))
        found = await then.version(TEAM, history.name, "1.1.0")
        assert found["status"] == "deployed"
        model = await then.model(TEAM, history.name)
        reports = await then.reads.model_deployments(model, environment="prod", outcome=None, limit=10)
        assert [r["report_id"] for r in reports] == ["report-9", "report-5"]

    async def test_latest_and_the_headline_are_those_of_then(self, history: History) -> None:
        then = await owner(history).as_of(TEAM, history.name, history.between(5))
        assert (await then.version(TEAM, history.name, "latest"))["version"] == "1.1.0"
        model = await then.model(TEAM, history.name)
        assert model["latest_version"] == "1.1.0" and model["version_count"] == 2
        assert model["aliases"] == {"champion": "1.0.0"}

    async def test_before_the_model_existed_it_is_missing(self, history: History) -> None:
        then = await owner(history).as_of(TEAM, history.name, T0)
        with pytest.raises(Problem) as missing:
            await then.model(TEAM, history.name)
        assert missing.value.reason == "not_found"

    async def test_a_future_instant_answers_the_current_state(self, history: History) -> None:
        lookup = owner(history)
        assert await lookup.as_of(TEAM, history.name, datetime.now(UTC) + timedelta(days=1)) is lookup

    async def test_the_live_read_model_is_left_as_it_is(self, history: History) -> None:
        live = history.read_model.version(version_id(TEAM, history.name, "1.0.0"))
        assert live is not None
        before = dict(live)
        await prod_then(owner(history), history, "1.0.0", history.between(4))
        assert live == before and live["environments"]["prod"]["status"] == "deployed"
        assert history.read_model.model_by_name(TEAM, history.name)["aliases"] == {}  # type: ignore[index]

    async def test_the_same_instant_is_served_from_the_kept_state(self, history: History) -> None:
        states = past.PastStates(history.read_model)
        first = states.reads_at(history.model_id, history.between(5))
        assert states.reads_at(history.model_id, history.between(5)) is first
        history.emit(messages.MODEL_SHARED, {"with_team": "newcomer"})
        assert states.reads_at(history.model_id, history.between(5)) is not first


class TestIsolationInThePast:
    async def test_a_reader_sees_the_past_only_from_its_current_share_on(self, history: History) -> None:
        lookup = reader(history)
        assert await champion(lookup, history, history.between(16)) == "1.2.0"
        for step in (5, 6, 9, 15):  # its first share (6 to 10) is over: only the one from 16 counts
            with pytest.raises(Problem) as missing:
                await lookup.as_of(TEAM, history.name, history.between(step))
            assert missing.value.reason == "not_found"

    async def test_the_instant_of_the_share_itself_is_visible(self, history: History) -> None:
        then = await reader(history).as_of(TEAM, history.name, history.at(16))
        assert (await then.model(TEAM, history.name))["aliases"] == {"champion": "1.2.0"}

    async def test_a_former_reader_sees_nothing_past_included(self, history: History) -> None:
        for at in (history.between(18), history.between(30)):
            with pytest.raises(Problem) as missing:
                await reader(history, STRANGER).as_of(TEAM, history.name, at)
            assert missing.value.reason == "not_found"

    async def test_the_owner_and_a_platform_admin_see_all_of_it(self, history: History) -> None:
        admin = lookup_of(history, {})
        assert await champion(admin, history, history.between(3)) == "1.0.0"
        assert await champion(owner(history), history, history.between(3)) == "1.0.0"

    async def test_a_readers_history_starts_at_its_share(self, history: History) -> None:
        lookup = reader(history)
        model = await lookup.model(TEAM, history.name)
        page = await lookup.reads.history(model, limit=50, cursor=None, since=lookup.since(model))
        assert [row["type"] for row in page.items][:2] == [messages.MODEL_SHARED, messages.ALIAS_REMOVED]
        everything = await owner(history).reads.history(model, limit=50, cursor=None)
        assert len(everything.items) == 16


class TestAliasHistory:
    async def test_every_move_of_the_alias_oldest_first(self, history: History) -> None:
        model = history.read_model.models[history.model_id]
        page = past.alias_history(history.read_model, model, "champion", None, limit=50, cursor=None)
        moves = [AliasMovePublic.of(row) for row in page.items]
        assert [(m.action, m.previous_version, m.version) for m in moves] == [
            ("set", None, "1.0.0"),
            ("moved", "1.0.0", "1.1.0"),
            ("moved", "1.1.0", "1.2.0"),
            ("removed", "1.2.0", None),
        ]
        assert [m.at for m in moves] == [history.at(3), history.at(7), history.at(13), history.at(17)]

    async def test_it_pages_with_a_cursor(self, history: History) -> None:
        model = history.read_model.models[history.model_id]
        first = past.alias_history(history.read_model, model, "champion", None, limit=3, cursor=None)
        rest = past.alias_history(history.read_model, model, "champion", None, limit=3, cursor=first.next_cursor)
        assert len(first.items) == 3 and len(rest.items) == 1 and rest.next_cursor is None

    async def test_a_reader_sees_the_moves_since_its_share(self, history: History) -> None:
        lookup = reader(history)
        model = await lookup.model(TEAM, history.name)
        page = past.alias_history(history.read_model, model, "champion", lookup.since(model), limit=50, cursor=None)
        assert [AliasMovePublic.of(row).action for row in page.items] == ["removed"]


class TestEnvironmentTimeline:
    async def test_every_status_change_across_versions_oldest_first(self, history: History) -> None:
        model = history.read_model.models[history.model_id]
        page = past.environment_timeline(history.read_model, model, "prod", None, limit=50, cursor=None)
        changes = [EnvironmentChangePublic.of(row) for row in page.items]
        assert [(c.version, c.previous_status, c.status, c.report_id) for c in changes] == [
            ("1.0.0", None, "deployed", "report-5"),
            ("1.1.0", None, "deployed", "report-9"),
            ("1.1.0", "deployed", "rolled_back", "report-11"),
        ]

    async def test_it_pages_with_a_cursor_without_repeating(self, history: History) -> None:
        model = history.read_model.models[history.model_id]
        seen, cursor = [], None
        while True:
            page = past.environment_timeline(history.read_model, model, "prod", None, limit=1, cursor=cursor)
            seen += [row["report_id"] for row in page.items]
            if (cursor := page.next_cursor) is None:
                break
        assert seen == ["report-5", "report-9", "report-11"]

    async def test_a_reader_sees_none_of_the_changes_before_its_current_share(self, history: History) -> None:
        lookup = reader(history)
        model = await lookup.model(TEAM, history.name)
        page = past.environment_timeline(history.read_model, model, "prod", lookup.since(model), limit=50, cursor=None)
        assert page.items == []

    async def test_the_model_timeline_is_newest_first_and_mixes_every_kind(self, history: History) -> None:
        model = history.read_model.models[history.model_id]
        page = past.model_timeline(history.read_model, model, None, limit=50, cursor=None)
        kinds = [(entry["kind"], entry["version"]) for entry in page.items]
        assert kinds[0] == ("alias", None) and kinds[-1] == ("alias", "1.0.0")
        assert ("deployment", "1.1.0") in kinds and ("approval", "1.2.0") in kinds and ("deleted", "1.1.0") in kinds
        halves = past.model_timeline(history.read_model, model, None, limit=5, cursor=None)
        more = past.model_timeline(history.read_model, model, None, limit=50, cursor=halves.next_cursor)
        assert halves.items + more.items == page.items


class TestTheAsOfParameter:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2026-03-01T02:14:00Z", datetime(2026, 3, 1, 2, 14, tzinfo=UTC)),
            ("2026-03-01T03:14:00+01:00", datetime(2026, 3, 1, 2, 14, tzinfo=UTC)),
            ("2026-03-01T03:14:00 01:00", datetime(2026, 3, 1, 2, 14, tzinfo=UTC)),  # a "+" left unencoded
            ("2026-03-01t02:14:00.123456789z", datetime(2026, 3, 1, 2, 14, 0, 123456, tzinfo=UTC)),
        ],
    )
    async def test_an_rfc_3339_time_with_an_offset_is_taken(self, text: str, expected: datetime) -> None:
        assert await as_of_time(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "2026-03-01T02:14:00",
            "2026-03-01",
            "yesterday",
            "1740795240",
            "2026-13-01T00:00:00Z",
            "2026-03-01T02:14:00+25:00",
        ],
    )
    async def test_anything_else_is_invalid(self, text: str) -> None:
        with pytest.raises(Problem) as refused:
            await as_of_time(text)
        assert refused.value.reason == "invalid"

    async def test_no_time_is_now(self) -> None:
        assert await as_of_time(None) is None


class TestReportsOfAReader:
    """A team reading the model through a share sees the deployment reports recorded since its access began."""

    @pytest.fixture
    def deployed(self, history: History) -> History:
        history.deploy("1.2.0", "prod", None, "deployed")  # 20, after the reader's share (16)
        return history

    async def test_the_model_and_version_lists_start_at_its_share(self, deployed: History) -> None:
        ids = await model_report_ids(reader(deployed), deployed)
        assert ids == ["report-20"]
        assert await model_report_ids(owner(deployed), deployed) == ["report-20", "report-11", "report-9", "report-5"]
        old = await get_deployments(reader(deployed), TEAM, deployed.name, "1.0.0", limit=50, cursor=None, as_of=None)
        assert old.items == [] and old.environments["prod"].status == "deployed"  # the status is of every report

    async def test_as_of_keeps_every_report_for_the_status_but_lists_those_since_its_share(
        self, deployed: History
    ) -> None:
        at = deployed.between(17)
        then = await get_deployments(reader(deployed), TEAM, deployed.name, "1.0.0", limit=50, cursor=None, as_of=at)
        assert then.items == [] and then.environments["prod"].status == "deployed"
        assert await model_report_ids(reader(deployed), deployed, at) == []
        mine = await get_deployments(owner(deployed), TEAM, deployed.name, "1.0.0", limit=50, cursor=None, as_of=at)
        assert [r.id for r in mine.items] == ["report-5"]

    async def test_the_teams_recent_deployments_cut_each_model_at_its_share(self, deployed: History) -> None:
        page = await recent_deployments(reader(deployed), TEAM, limit=20)
        assert [r.id for r in page.items] == ["report-20"]
        assert len((await recent_deployments(owner(deployed), TEAM, limit=20)).items) == 4

    async def test_the_card_reads_only_the_reports_since_its_share(self, deployed: History) -> None:
        card = await get_model_card(reader(deployed), TEAM, deployed.name, Response(), version="1.0.0")
        assert isinstance(card, ModelCardPublic) and card.card.deployments.reports_read == 0
        mine = await get_model_card(owner(deployed), TEAM, deployed.name, Response(), version="1.0.0")
        assert isinstance(mine, ModelCardPublic) and mine.card.deployments.reports_read == 1

    async def test_an_as_of_lookup_keeps_the_callers_visibility_and_share(self, deployed: History) -> None:
        lookup = reader(deployed)
        then = await lookup.as_of(TEAM, deployed.name, deployed.between(17))
        model = await lookup.model(TEAM, deployed.name)
        assert then.visible == {"readers": READER} and then.since(model) == lookup.since(model) is not None


async def model_report_ids(lookup: Lookup, h: History, at: datetime | None = None) -> list[str]:
    page = await get_model_deployments(lookup, TEAM, h.name, limit=50, as_of=at)
    return [r.id for r in page.items]


class TestTheOtherReaders:
    async def test_a_reader_sees_no_share_or_unsharing_of_another_team(self, history: History) -> None:
        lookup = reader(history)
        model = await lookup.model(TEAM, history.name)
        page = await lookup.reads.history(model, limit=50, cursor=None, since=lookup.since(model))
        shares = [row["data"]["with_team"] for row in page.items if row["type"] in SHARE_EVENTS]
        assert shares == [READER]
        everything = await owner(history).reads.history(model, limit=50, cursor=None)
        assert [row["data"].get("with_team") for row in everything.items].count(STRANGER) == 2


class TestKeptStates:
    async def test_every_instant_between_two_events_shares_one_state(self, history: History) -> None:
        states = past.PastStates(history.read_model)
        first = states.reads_at(history.model_id, history.between(5))
        assert states.reads_at(history.model_id, history.at(5) + timedelta(seconds=59)) is first
        assert states.reads_at(history.model_id, history.at(5)) is first  # the report of step 5 is at step 5
        assert states.reads_at(history.model_id, history.at(6)) is not first

    def test_instants_within_one_cut_need_no_second_state(self, history: History) -> None:
        states = past.PastStates(history.read_model, kept=2)
        first = states.reads_at(history.model_id, history.between(3))
        for second in range(1, 20):
            assert states.reads_at(history.model_id, history.at(3) + timedelta(seconds=second)) is first


class TestClockSkew:
    @pytest.fixture
    def skewed(self) -> History:
        h = History()
        for version in ("1.0.0", "1.1.0", "1.2.0"):  # steps 1, 2, 3
            h.register(version)
        return h

    def row(self, h: History, step: int) -> dict[str, Any]:
        return sorted(h.read_model.history[h.model_id], key=lambda r: r["position"])[step - 1]

    async def test_the_replay_stops_at_the_first_event_dated_after_the_instant(self, skewed: History) -> None:
        self.row(skewed, 2)["time"] = skewed.at(10)
        assert await versions_then(owner(skewed), skewed, skewed.between(3)) == ["1.0.0"]
        assert await versions_then(owner(skewed), skewed, skewed.between(10)) == ["1.2.0", "1.1.0", "1.0.0"]

    async def test_an_event_without_a_time_counts_as_after_any_instant(self, skewed: History) -> None:
        del self.row(skewed, 2)["time"]
        assert await versions_then(owner(skewed), skewed, skewed.between(5)) == ["1.0.0"]

    async def test_a_report_without_a_receipt_time_is_never_recorded_then_nor_on_a_timeline(
        self, history: History
    ) -> None:
        undated = {"_id": "x:1", "outcome": "applied", "environment": "prod", "version": "1.0.0", "status": "failed"}
        history.read_model.reports[history.model_id].append(undated)
        assert await prod_then(owner(history), history, "1.0.0", history.between(30)) == "deployed"
        model = history.read_model.models[history.model_id]
        page = past.environment_timeline(history.read_model, model, "prod", None, limit=50, cursor=None)
        assert [EnvironmentChangePublic.of(row).report_id for row in page.items] == [
            "report-5",
            "report-9",
            "report-11",
        ]
        timeline = past.model_timeline(history.read_model, model, None, limit=50, cursor=None)
        assert "x:1" not in [entry["ref"] for entry in timeline.items]


class TestAliasActions:
    def test_setting_an_alias_again_to_its_version_is_a_set(self) -> None:
        row = {"type": messages.ALIAS_SET, "time": T0, "_id": "e1"}
        again = AliasMovePublic.of(row | {"data": {"alias": "c", "version": "1.0.0", "previous_version": "1.0.0"}})
        moved = AliasMovePublic.of(row | {"data": {"alias": "c", "version": "1.1.0", "previous_version": "1.0.0"}})
        assert (again.action, moved.action) == ("set", "moved")
