"""The read model survives a round trip through its store, whole or a flush of changes at a time."""

from typing import Any

import pytest

from query.projection.apply import apply_event
from query.projection.model import ReadModel
from query.projection.storage import PROJECTION_VERSIONS, Checkpoint, Flushed, MemoryProjectionStore, Rows
from registry_contract import messages
from tests.unit.test_projection_apply import TRACKER, Log

pytestmark = pytest.mark.unit


def contents(model: ReadModel) -> tuple[Any, ...]:
    return model.models, model.by_name, model.versions, model.children, model.history, model.reports, model.revisions


async def test_changes_flushed_a_batch_at_a_time_load_back_as_the_same_model() -> None:
    log, model, store, flushed = Log(), ReadModel(), MemoryProjectionStore(), Flushed()
    log.register("1.0.0")
    log.register("1.1.0", parent={"team": log.team, "name": log.name, "version": "1.0.0"})
    for event in log.events:
        apply_event(model, event)
    await store.write(flushed.take(model), Checkpoint({0: 2}, dict(model.positions)))
    log.emit(messages.ALIAS_SET, {"alias": "prod", "version": "1.0.0", "previous_version": None})
    log.emit(
        messages.DEPLOYMENT_STATUS_CHANGED,
        {"version": "1.0.0", "environment": "dev", "status": "deploying"},
        source=TRACKER,
    )
    log.emit("registry.event.deployment_report_recorded", {"id": "r1", "version": "1.0.0"}, source=TRACKER)
    log.emit(messages.MODEL_VERSION_DELETED, {"version": "1.1.0"})
    for event in log.events[2:]:
        apply_event(model, event)
    rows = flushed.take(model)
    assert len(rows.upserts["projection_history"]) == 2, "only the rows appended since the last flush"
    await store.write(rows, Checkpoint({0: 6}, dict(model.positions)))
    loaded, checkpoint = await store.load()
    assert contents(loaded) == contents(model)
    assert loaded.version_count() == 1 and checkpoint.offsets == {0: 6}
    assert checkpoint.positions == {
        "r": model.revisions[("r", log.model_id)],
        "d": model.revisions[("d", log.model_id)],
    }


async def test_nothing_changed_writes_nothing_and_everything_rewrites_all() -> None:
    log, model, flushed = Log(), ReadModel(), Flushed()
    log.register("1.0.0")
    apply_event(model, log.events[0])
    assert len(flushed.take(model)) == 3  # the model, its version, its history row
    assert len(flushed.take(model)) == 0
    assert len(flushed.take(model, everything=True)) == 3


async def test_a_history_rewritten_by_a_late_event_is_persisted_in_its_new_order() -> None:
    log, model, store, flushed = Log(), ReadModel(), MemoryProjectionStore(), Flushed()
    lost = log.register("1.0.0")
    apply_event(model, log.register("2.0.0"))
    await store.write(flushed.take(model), Checkpoint())
    apply_event(model, lost)
    await store.write(flushed.take(model), Checkpoint())
    loaded, _ = await store.load()
    assert contents(loaded) == contents(model)
    assert [row["_id"] for row in loaded.history[log.model_id]] == [lost.id, log.events[1].id]


def test_rows_waiting_for_a_failed_write_take_a_later_take_in_order() -> None:
    # A flush that failed keeps its rows and is written with the next take's: the later take's
    # word on an id wins, a write after a delete as much as a delete after a write.
    v1 = {"_id": "v1", "model_id": "m1", "version": "1.0.0"}
    deleted_then_written = Rows(deletes={PROJECTION_VERSIONS: ["v1"]}).then(Rows({PROJECTION_VERSIONS: [v1]}))
    assert (deleted_then_written.upserts, deleted_then_written.deletes) == (
        {PROJECTION_VERSIONS: [v1]},
        {PROJECTION_VERSIONS: []},
    )
    written_then_deleted = Rows({PROJECTION_VERSIONS: [v1]}).then(Rows(deletes={PROJECTION_VERSIONS: ["v1"]}))
    assert (written_then_deleted.upserts, written_then_deleted.deletes) == (
        {PROJECTION_VERSIONS: []},
        {PROJECTION_VERSIONS: ["v1"]},
    )
