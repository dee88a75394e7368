"""Each outcome names its model and the model's revision after it: the position of its outbox row."""

import pytest

from registration.handlers import Command, handle_commands
from registration.repository import InMemoryRepository
from registry_contract import messages
from registry_contract.ids import model_id
from tests.factories import PRODUCER, command_event, register_event

pytestmark = pytest.mark.unit


async def test_outcomes_carry_their_rows_position_and_a_replay_the_same() -> None:
    repo = InMemoryRepository()
    first, again = register_event("fraud", "card"), register_event("fraud", "card", "2.0.0")
    duplicate = register_event("fraud", "card")  # same version: refused
    outcomes = await handle_commands(
        [Command(e, PRODUCER) for e in (first, again, duplicate, first)], repo=repo, artifact_schemes=["s3"]
    )
    rows = {row["command_key"]: row for row in repo.outbox.values()}
    registered, second, refused, replayed_in_batch = outcomes
    for outcome, command in ((registered, first), (second, again)):
        row = rows[Command(command, PRODUCER).key]
        assert (outcome.model_id, outcome.revision) == (model_id("fraud", "card"), row["position"])
        assert outcome.consistency_token == f"r.{model_id('fraud', 'card')}.{row['position']}"
    assert registered.revision is not None and second.revision is not None and registered.revision < second.revision
    assert refused.rejected and refused.consistency_token is None  # a refusal wrote nothing to read
    assert replayed_in_batch.consistency_token == registered.consistency_token

    [replayed] = await handle_commands([Command(first, PRODUCER)], repo=repo, artifact_schemes=["s3"])
    assert replayed.replayed and replayed.consistency_token == registered.consistency_token
    assert replayed.event.revision == registered.revision  # the stored event, as the relay publishes it

    [changed] = await handle_commands(
        [
            Command(
                command_event(
                    messages.UPDATE_MODEL_VERSION,
                    {"team": "fraud", "name": "card", "version": "1.0.0", "tags": {"a": "b"}},
                ),
                PRODUCER,
            )
        ],
        repo=repo,
        artifact_schemes=["s3"],
    )
    assert changed.revision is not None and changed.revision > second.revision
