"""The projection's own rules, over the in-memory store: its memory bound, and flushes that fail."""

import pytest
from pymongo.errors import AutoReconnect

from query.projection.consumer import Projection, ProjectionTooLarge
from query.projection.model import ReadModel
from query.projection.storage import Checkpoint, MemoryProjectionStore, Rows
from registry_contract import messages
from shared.chassis.settings import CommonSettings
from shared.chassis.signing import EventSigner
from tests.unit.test_projection_apply import Log

pytestmark = pytest.mark.unit
KEY = "k" * 32


def projection(store: MemoryProjectionStore, *, max_versions: int = 1_000) -> Projection:
    settings = CommonSettings(event_signing_key=KEY)
    return Projection(
        ReadModel(), store, [], settings=settings, max_versions=max_versions, signer=EventSigner(KEY.encode())
    )


class FailingStore(MemoryProjectionStore):
    """Refuses writes while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def write(self, rows: Rows, checkpoint: Checkpoint) -> None:
        if self.down:
            raise AutoReconnect("database away (injected)")
        await super().write(rows, checkpoint)


def test_the_projection_stops_rather_than_hold_more_versions_than_its_bound() -> None:
    log, following = Log(), projection(MemoryProjectionStore(), max_versions=2)
    following.apply([log.register("1.0.0"), log.register("1.1.0")])
    with pytest.raises(ProjectionTooLarge, match="QUERY_PROJECTION_MAX_VERSIONS"):
        following.apply([log.register("1.2.0")])


async def test_a_persisted_model_beyond_the_bound_refuses_to_start() -> None:
    log, store = Log(), MemoryProjectionStore()
    first = projection(store)
    first.apply([log.register("1.0.0"), log.register("1.1.0")])
    await first.flush()
    with pytest.raises(ProjectionTooLarge):
        await projection(store, max_versions=1).run()


async def test_rows_a_failed_flush_could_not_write_are_written_by_the_next() -> None:
    log, store = Log(), FailingStore()
    following = projection(store)
    following.apply([log.register("1.0.0")])
    store.down = True
    for more in ("1.0.1", "1.0.2"):  # two rounds fail: neither's rows are lost
        with pytest.raises(AutoReconnect):
            await following.flush()
        following.apply([log.register(more)])
    following.apply([log.emit(messages.MODEL_VERSION_DELETED, {"version": "1.0.2"})])
    store.down = False
    following.apply([log.register("1.1.0")])
    await following.flush()
    loaded, _ = await store.load()
    assert [v["version"] for v in loaded.sorted_versions(log.model_id)] == ["1.1.0", "1.0.1", "1.0.0"]
    assert len(loaded.history[log.model_id]) == 5


def test_what_was_applied_before_the_bound_stopped_it_is_told_to_the_readers() -> None:
    # Replayed after the restart, those events change nothing: this is the readers' only notice.
    log, following = Log(), projection(MemoryProjectionStore(), max_versions=1)
    told: list[set[str]] = []
    following.model.subscribe(told.append)
    with pytest.raises(ProjectionTooLarge):
        following.apply([log.register("1.0.0"), log.register("1.1.0")])
    assert told == [{log.model_id}]
