"""Registration's consumer of registry.commands lingers for more commands, so a trickle is handled in few batches.

Each batch is one transaction, synced on commit, and one round of the outbox relay: a command at a
time, a producer's trickle cost the database a sync per command (``REGISTRATION_COMMANDS_LINGER_MS``).
"""

import asyncio

import pytest
from prometheus_client import REGISTRY

from registration.config import RegistrationSettings
from tests.infra import Infra
from tests.integration.registration_inprocess import registration_settings, running
from tests.kafka_tools import consumer_batches, trickle_undecodable
from tests.waiting import until

pytestmark = pytest.mark.integration
RECORDS, SPACING_S = 6, 0.04  # a trickle: 200 ms from the first command to the last


def handled(settings: RegistrationSettings) -> float:
    labels = {"group": settings.consumer_group, "topic": settings.topic_commands, "type": "other"}
    return REGISTRY.get_sample_value("registry_messages_consumed_total", labels | {"outcome": "processed"}) or 0.0


@pytest.mark.parametrize("linger_ms", [2000, 0])
async def test_a_trickle_of_commands_is_handled_in_as_few_batches_as_the_linger_allows(
    infra: Infra, db_name: str, linger_ms: int
) -> None:
    settings = await registration_settings(infra, db_name, commands_linger_ms=linger_ms)
    async with running(settings):
        await asyncio.sleep(1.0)  # the consumer has joined its group and fetches
        before = consumer_batches(settings.consumer_group)
        await trickle_undecodable(
            settings.kafka_bootstrap_servers, settings.topic_commands, records=RECORDS, spacing_s=SPACING_S
        )

        async def all_handled() -> bool:
            return handled(settings) >= RECORDS

        await until(all_handled, what="every command handled")
        await asyncio.sleep(0.2)  # a batch is counted once its handler has returned
        taken = consumer_batches(settings.consumer_group) - before
    if linger_ms:
        assert 1 <= taken <= 2, taken  # held for the rest of the trickle (two if a fetch was already out)
    else:
        assert taken >= 3, taken  # the control: without a linger the trickle arrives in several batches
