"""A model's public view is validated once per change of the model, and never served after one."""

import pytest

from query.api.reads import Reads
from query.projection.apply import apply_event
from query.projection.model import ReadModel
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from registry_contract.views import ModelPublic
from tests.unit.test_projection_apply import Log

pytestmark = pytest.mark.unit


def applied(model: ReadModel, *events: CloudEvent) -> None:
    """Apply ``events`` and tell the subscribers, as the projection does after each batch."""
    model.notify({changed for event in events if (changed := apply_event(model, event)) is not None})


def viewed() -> tuple[ReadModel, Log, Reads]:
    """A read model holding one model of one version, whose view a read has shown once."""
    model, log = ReadModel(), Log()
    applied(model, log.register("1.0.0"))
    reads = Reads(model)
    reads.model_view(model.models[log.model_id])
    return model, log, reads


def test_an_unchanged_model_is_validated_once() -> None:
    model, log, reads = viewed()
    first = reads.model_view(model.models[log.model_id])
    assert reads.model_view(model.models[log.model_id]) is first
    assert first == ModelPublic.of(model.models[log.model_id])


def test_every_change_of_the_model_is_shown_at_once() -> None:
    model, log, reads = viewed()
    applied(model, log.register("1.1.0", description="retrained"))
    applied(model, log.emit(messages.ALIAS_SET, {"alias": "prod", "version": "1.1.0", "previous_version": None}))
    view = reads.model_view(model.models[log.model_id])
    assert (view.latest_version, view.version_count, view.aliases) == ("1.1.0", 2, {"prod": "1.1.0"})
    assert view == ModelPublic.of(model.models[log.model_id])


def at_first_instant(log: Log, description: str) -> CloudEvent:
    """A change of the model's description carrying the time of its first event (its feed key stands)."""
    edit = log.emit(messages.MODEL_UPDATED, {"changes": {"description": description}})
    return edit.model_copy(update={"time": log.events[0].time})


def test_a_change_at_the_same_instant_is_shown_too() -> None:
    # Two events of one command carry one time, so the model's feed key stands: the notice drops the view.
    model, log, reads = viewed()
    applied(model, at_first_instant(log, "ours"))
    assert reads.model_view(model.models[log.model_id]).description == "ours"


def test_a_rebuilt_model_is_shown_as_rebuilt() -> None:
    # The rebuild holds the model at the same feed key, with other metadata: the adoption's notice drops the view.
    model, log, reads = viewed()
    fresh = ReadModel()
    applied(fresh, log.events[0], at_first_instant(log, "as rebuilt"))
    assert fresh.models[log.model_id]["feed_key"] == model.models[log.model_id]["feed_key"]
    model.adopt(fresh)
    assert reads.model_view(model.models[log.model_id]).description == "as rebuilt"
