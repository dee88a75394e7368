"""The read model applies each registry event as its owner wrote it; replays change nothing."""

import asyncio
import copy
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from query.projection.apply import REPORT_RECORDED, apply_event
from query.projection.model import ReadModel, Token, parse_tokens
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from registry_contract.ids import model_id, version_id
from registry_contract.views import ModelPublic, ModelVersionPublic, version_public

pytestmark = pytest.mark.unit

REGISTRATION, TRACKER = "/registry/registration", "/registry/deploy-tracker"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
_revisions = itertools.count(1_000)


class Log:
    """A model's events in order, each with the next revision (as an owner's outbox numbers them)."""

    def __init__(self) -> None:
        self.team, self.name = "team-a", f"m-{uuid.uuid4().hex[:8]}"
        self.model_id = model_id(self.team, self.name)
        self.events: list[CloudEvent] = []
        self.clock = T0

    def emit(self, kind: str, data: dict[str, Any], *, source: str = REGISTRATION) -> CloudEvent:
        self.clock += timedelta(seconds=1)
        ref = {"model_id": self.model_id, "team": self.team, "name": self.name}
        event = CloudEvent(
            source=source,
            type=kind,
            time=self.clock,
            subject=f"{self.team}/{self.name}",
            causation_id=uuid.uuid4().hex,
            data=ref | data,
            revision=next(_revisions),
        )
        self.events.append(event)
        return event

    def register(self, version: str, **fields: Any) -> CloudEvent:
        doc = {
            "model_id": self.model_id,
            "team": self.team,
            "name": self.name,
            "version": version,
            "framework": fields.pop("framework", "sklearn"),
            "artifact_uri": "s3://bucket/model.pkl",
            "description": fields.pop("description", f"v{version}"),
            "tags": fields.pop("tags", {"stage": version}),
            "created_at": self.clock,
            "updated_at": self.clock,
            "created_by": "key_1",
            **fields,
        }
        return self.emit(messages.MODEL_VERSION_REGISTERED, version_public(doc))

    def vid(self, version: str) -> str:
        return version_id(self.team, self.name, version)


def replay(log: Log, model: ReadModel | None = None) -> ReadModel:
    model = model or ReadModel()
    for event in log.events:
        apply_event(model, event)
    return model


def test_a_registered_version_creates_its_model_with_the_version_as_headline() -> None:
    log = Log()
    log.register("1.0.0")
    model = replay(log)
    doc = model.model_by_name(log.team, log.name)
    assert doc is not None and doc["_id"] == log.model_id
    assert doc["latest_version"] == "1.0.0" and doc["version_count"] == 1 and doc["readers"] == [log.team]
    assert doc["tag_pairs"] == ["stage:1.0.0"] and doc["feed_key"].endswith(log.model_id)
    assert ModelPublic.of(doc).latest_version == "1.0.0"
    version = model.version(log.vid("1.0.0"))
    assert version is not None and version["created_at"] == log.events[0].time
    assert ModelVersionPublic.of(version).status == "registered"
    assert [row["_id"] for row in model.history[log.model_id]] == [log.events[0].id]
    assert model.history[log.model_id][0]["position"] == log.events[0].revision


def test_a_prerelease_never_displaces_a_stable_headline_and_versions_sort_by_precedence() -> None:
    log = Log()
    log.register("1.0.0")
    log.register("2.0.0-rc.1")
    log.register("1.10.0")
    model = replay(log)
    assert model.models[log.model_id]["latest_version"] == "1.10.0"
    assert [v["version"] for v in model.sorted_versions(log.model_id)] == ["2.0.0-rc.1", "1.10.0", "1.0.0"]


def test_a_child_version_is_listed_under_its_parent() -> None:
    log = Log()
    log.register("1.0.0")
    log.register("1.1.0", parent={"team": log.team, "name": log.name, "version": "1.0.0"})
    assert replay(log).children[log.vid("1.0.0")] == {log.vid("1.1.0")}


def test_an_update_of_the_latest_version_changes_the_headline_but_not_metrics() -> None:
    log = Log()
    log.register("1.0.0")
    log.emit(messages.MODEL_VERSION_UPDATED, {"version": "1.0.0", "changes": {"tags": {"k": "v"}, "metrics": {"a": 1}}})
    model = replay(log)
    version = model.version(log.vid("1.0.0"))
    assert version is not None and version["metrics"] == {"a": 1} and version["tag_pairs"] == ["k:v"]
    assert model.models[log.model_id]["tags"] == {"k": "v"} and "metrics" not in model.models[log.model_id]


def test_archiving_the_latest_version_moves_the_headline_to_the_best_active_one() -> None:
    log = Log()
    log.register("1.0.0")
    log.register("2.0.0")
    log.emit(messages.VERSION_LIFECYCLE_CHANGED, {"version": "2.0.0", "from": "active", "to": "archived"})
    model = replay(log)
    assert model.models[log.model_id]["latest_version"] == "1.0.0"
    assert model.version(log.vid("2.0.0"))["lifecycle"] == "archived"  # type: ignore[index]


def test_a_newer_registration_heads_the_model_after_a_deprecation_and_none_when_nothing_is_active() -> None:
    log = Log()
    log.register("1.0.0")
    log.register("2.0.0")
    log.emit(messages.VERSION_LIFECYCLE_CHANGED, {"version": "2.0.0", "from": "active", "to": "deprecated"})
    log.register("1.5.0")
    assert replay(log).models[log.model_id]["latest_version"] == "1.5.0"
    for version in ("1.0.0", "1.5.0"):
        log.emit(messages.VERSION_LIFECYCLE_CHANGED, {"version": version, "from": "active", "to": "deprecated"})
    assert replay(log).models[log.model_id]["latest_version"] is None


def test_a_deleted_version_is_gone_and_the_count_drops() -> None:
    log = Log()
    log.register("1.0.0")
    log.register("1.1.0", parent={"team": log.team, "name": log.name, "version": "1.0.0"})
    log.emit(messages.MODEL_VERSION_DELETED, {"version": "1.1.0"})
    model = replay(log)
    assert model.version(log.vid("1.1.0")) is None and log.vid("1.0.0") not in model.children
    doc = model.models[log.model_id]
    assert doc["version_count"] == 1 and doc["latest_version"] == "1.0.0"
    assert [v["version"] for v in model.sorted_versions(log.model_id)] == ["1.0.0"]


def test_sharing_and_unsharing_keep_readers_former_readers_and_the_tombstone_key() -> None:
    log = Log()
    log.register("1.0.0")
    log.emit(messages.MODEL_SHARED, {"with_team": "team-b"})
    assert replay(log).models[log.model_id]["readers"] == ["team-a", "team-b"]
    unshared = log.emit(messages.MODEL_UNSHARED, {"with_team": "team-b"})
    doc = replay(log).models[log.model_id]
    assert doc["readers"] == ["team-a"] and doc["former_readers"] == ["team-b"]
    assert doc["unshared_at"] == {"team-b": doc["feed_key"]} and doc["updated_at"] == unshared.time
    log.emit(messages.MODEL_SHARED, {"with_team": "team-b"})
    doc = replay(log).models[log.model_id]
    assert doc["former_readers"] == [] and doc["unshared_at"] == {}


def test_aliases_move_between_versions() -> None:
    log = Log()
    log.register("1.0.0")
    log.register("2.0.0")
    log.emit(messages.ALIAS_SET, {"alias": "prod", "version": "1.0.0", "previous_version": None})
    log.emit(messages.ALIAS_SET, {"alias": "prod", "version": "2.0.0", "previous_version": "1.0.0"})
    model = replay(log)
    assert model.models[log.model_id]["aliases"] == {"prod": "2.0.0"}
    assert model.version(log.vid("1.0.0"))["aliases"] == []  # type: ignore[index]
    assert model.version(log.vid("2.0.0"))["aliases"] == ["prod"]  # type: ignore[index]
    log.emit(messages.ALIAS_REMOVED, {"alias": "prod", "version": None, "previous_version": "2.0.0"})
    model = replay(log)
    assert model.models[log.model_id]["aliases"] == {} and model.version(log.vid("2.0.0"))["aliases"] == []  # type: ignore[index]


def test_an_approval_is_recorded_on_the_version() -> None:
    log = Log()
    log.register("1.0.0")
    event = log.emit(
        messages.VERSION_APPROVAL_CHANGED,
        {"version": "1.0.0", "from": "pending", "to": "approved", "by": "key_9", "comment": "ok"},
    )
    version = replay(log).version(log.vid("1.0.0"))
    assert version is not None
    assert version["approval"] == {"status": "approved", "by": "key_9", "at": event.time, "comment": "ok"}


def test_the_models_own_metadata_wins_over_later_versions() -> None:
    log = Log()
    log.register("1.0.0")
    log.emit(messages.MODEL_UPDATED, {"changes": {"description": "ours", "owners": [{"name": "x"}]}})
    log.register("2.0.0", description="theirs")
    doc = replay(log).models[log.model_id]
    assert doc["description"] == "ours" and doc["own_metadata"] == ["description"]
    assert doc["latest_version"] == "2.0.0" and doc["owners"] == [{"name": "x"}]


def test_a_deployment_status_change_sets_the_environment_and_the_overall_status() -> None:
    log = Log()
    log.register("1.0.0")
    state = {
        "status": "deployed",
        "occurred_at": "2026-01-01T00:00:05Z",
        "report_id": "r1",
        "target": "eu",
        "updated_at": "2026-01-01T00:00:06Z",
    }
    base = {"version": "1.0.0", "environment": "prod", "previous_status": None, "report_id": "r1"}
    log.emit(
        messages.DEPLOYMENT_STATUS_CHANGED,
        base | {"status": "deployed", "overall_status": "deployed", "environment_state": state},
        source=TRACKER,
    )
    model = replay(log)
    version = model.version(log.vid("1.0.0"))
    assert version is not None and version["status"] == "deployed"
    assert version["environments"]["prod"]["occurred_at"] == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert ModelVersionPublic.of(version).environments["prod"].target == "eu"
    assert model.models[log.model_id]["feed_key"].startswith("2026-01-01T00:00:06")
    assert [row["type"] for row in model.history[log.model_id]] == [messages.MODEL_VERSION_REGISTERED]


def test_a_status_change_without_the_environment_entry_falls_back_to_its_statuses() -> None:
    log = Log()
    log.register("1.0.0")
    data = {"version": "1.0.0", "environment": "dev", "status": "failed", "overall_status": "failed"}
    log.emit(messages.DEPLOYMENT_STATUS_CHANGED, data, source=TRACKER)
    version = replay(log).version(log.vid("1.0.0"))
    assert version is not None and version["status"] == "failed"
    assert version["environments"]["dev"]["status"] == "failed"


def test_a_recorded_report_lands_in_the_models_reports_not_its_history() -> None:
    log = Log()
    log.register("1.0.0")
    report = {
        "id": "ce-1",
        "outcome": "rejected",
        "reason": "approval_required",
        "version": "1.0.0",
        "environment": "prod",
        "status": "deployed",
        "occurred_at": "2026-01-01T00:00:05Z",
        "received_at": "2026-01-01T00:00:06Z",
        "version_id": log.vid("1.0.0"),
        "position": 3,
    }
    log.emit(REPORT_RECORDED, report, source=TRACKER)
    model = replay(log)
    (row,) = model.reports[log.model_id]
    assert row["report_id"] == "ce-1" and row["received_at"] == datetime(2026, 1, 1, 0, 0, 6, tzinfo=UTC)
    assert len(model.history[log.model_id]) == 1


def test_rejections_and_strangers_events_change_nothing() -> None:
    log = Log()
    log.register("1.0.0")
    log.emit(messages.COMMAND_REJECTED, {"reason": "invalid"})
    log.emit(messages.MODEL_SHARED, {"with_team": "team-z"}, source="/somebody/else")
    log.emit(messages.MODEL_SHARED, {"with_team": "team-z"}, source=TRACKER)  # not the tracker's to say
    model = replay(log)
    assert model.models[log.model_id]["readers"] == [log.team] and len(model.history[log.model_id]) == 1


def test_replaying_every_event_twice_changes_nothing() -> None:
    log = Log()
    log.register("1.0.0")
    log.register("1.1.0", parent={"team": log.team, "name": log.name, "version": "1.0.0"})
    log.emit(messages.MODEL_SHARED, {"with_team": "team-b"})
    log.emit(messages.ALIAS_SET, {"alias": "prod", "version": "1.0.0", "previous_version": None})
    log.emit(messages.MODEL_VERSION_UPDATED, {"version": "1.1.0", "changes": {"description": "d"}})
    log.emit(messages.VERSION_APPROVAL_CHANGED, {"version": "1.0.0", "from": "pending", "to": "approved"})
    log.emit(messages.MODEL_UPDATED, {"changes": {"links": {"docs": "https://x"}}})
    status = {"version": "1.0.0", "environment": "prod", "status": "deploying", "overall_status": "deploying"}
    log.emit(messages.DEPLOYMENT_STATUS_CHANGED, status, source=TRACKER)
    log.emit(REPORT_RECORDED, {"id": "r", "version": "1.0.0", "outcome": "applied"}, source=TRACKER)
    log.emit(messages.VERSION_LIFECYCLE_CHANGED, {"version": "1.1.0", "from": "active", "to": "deprecated"})
    log.emit(messages.MODEL_VERSION_DELETED, {"version": "1.1.0"})
    once = replay(log)
    snapshot = copy.deepcopy((once.models, once.versions, once.children, once.history, once.reports, once.revisions))
    twice = replay(log, once)
    assert (twice.models, twice.versions, twice.children, twice.history, twice.reports, twice.revisions) == snapshot
    assert len(twice.history[log.model_id]) == 9 and len(twice.reports[log.model_id]) == 1


def test_tokens_parse_bounded_and_refuse_anything_else() -> None:
    mid = model_id("t", "n")
    assert parse_tokens(f"r.{mid}.12, d.{mid}.3") == [Token("r", mid, 12), Token("d", mid, 3)]
    for bad in ["", "x.mdl_1.1", f"r.{mid}.-1", f"r.{mid}.1" + "0" * 20, ",".join([f"r.{mid}.1"] * 9), "r" * 600]:
        with pytest.raises(ValueError):
            parse_tokens(bad)


async def test_a_read_waits_for_its_token_and_gives_up_when_the_time_is_out() -> None:
    log = Log()
    event = log.register("1.0.0")
    assert event.revision is not None
    model, token = ReadModel(), Token("r", log.model_id, event.revision)
    assert not await model.reached([token], 0.01)
    waiting = asyncio.ensure_future(model.reached([token], 5))
    await asyncio.sleep(0)
    apply_event(model, event)
    model.notify({log.model_id})
    assert await waiting


def test_subscribers_hear_the_changed_models() -> None:
    heard: list[set[str]] = []
    model = ReadModel()
    model.subscribe(heard.append)
    model.notify({"mdl_x"})
    assert heard == [{"mdl_x"}]


def test_a_rebuild_tells_subscribers_of_the_models_it_dropped_too() -> None:
    kept, dropped = Log(), Log()
    kept.register("1.0.0")
    dropped.register("1.0.0")
    model = replay(dropped, replay(kept))
    heard: list[set[str]] = []
    model.subscribe(heard.append)
    model.adopt(replay(kept))  # the rebuild no longer holds ``dropped``: the search index must drop it too
    assert heard == [{kept.model_id, dropped.model_id}]


def test_a_registration_event_the_topic_lost_is_folded_in_when_the_owners_log_brings_it_late() -> None:
    log = Log()
    lost = log.register("1.0.0")
    log.register("2.0.0")
    state = {
        "status": "deployed",
        "occurred_at": "2026-01-01T00:00:05Z",
        "report_id": "r",
        "updated_at": "2026-01-01T00:00:06Z",
    }
    status = {"version": "2.0.0", "environment": "prod", "status": "deployed", "overall_status": "deployed"}
    log.emit(messages.DEPLOYMENT_STATUS_CHANGED, status | {"environment_state": state}, source=TRACKER)
    model = ReadModel()
    for event in log.events[1:]:  # the new log, followed while the owner was away
        apply_event(model, event)
    assert apply_event(model, lost) == log.model_id
    assert [v["version"] for v in model.sorted_versions(log.model_id)] == ["2.0.0", "1.0.0"]
    assert model.models[log.model_id]["version_count"] == 2
    assert model.version(log.vid("2.0.0"))["status"] == "deployed", "what the tracker said is kept"  # type: ignore[index]
    assert [row["_id"] for row in model.history[log.model_id]] == [log.events[0].id, log.events[1].id]
    assert log.model_id in model.rewritten
    assert apply_event(model, lost) is None, "and only once"


def test_a_late_tracker_status_applies_only_when_newer_than_the_environments_entry() -> None:
    log = Log()
    log.register("1.0.0")
    base = {"version": "1.0.0", "environment": "prod", "overall_status": "x"}

    def state(status: str, second: int) -> dict[str, Any]:
        at = f"2026-01-01T00:00:{second:02d}Z"
        return base | {
            "status": status,
            "environment_state": {"status": status, "occurred_at": at, "report_id": status, "updated_at": at},
        }

    older = log.emit(messages.DEPLOYMENT_STATUS_CHANGED, state("deploying", 5), source=TRACKER)
    log.emit(messages.DEPLOYMENT_STATUS_CHANGED, state("deployed", 9), source=TRACKER)
    model = replay(log)
    assert apply_event(model, older) is None
    assert model.version(log.vid("1.0.0"))["status"] == "deployed"  # type: ignore[index]
    dev = log.emit(messages.DEPLOYMENT_STATUS_CHANGED, state("failed", 7) | {"environment": "dev"}, source=TRACKER)
    model.revisions[("d", log.model_id)] = (dev.revision or 0) + 1  # as if later events had come first
    assert apply_event(model, dev) == log.model_id
    assert set(model.version(log.vid("1.0.0"))["environments"]) == {"prod", "dev"}  # type: ignore[index]
