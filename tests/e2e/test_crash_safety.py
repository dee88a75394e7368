"""Crash safety: each consuming service is killed (SIGKILL) under load and restarted by the supervisor."""

import pytest

from registry_cli.database_users import service_database
from registry_cli.secrets import load_or_create
from registry_cli.stack import EmbeddedStack
from tests.chaos import CONSUMERS, run_chaos
from tests.factories import ADMIN_KEY, store_admin_key
from tests.throwaway import throwaway_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.own_stack]


async def seed_key(stack: EmbeddedStack) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(stack.settings.mongodb_uri)
    await store_admin_key(
        client[service_database("registration")], signing_key=load_or_create(stack.settings.data_dir).event_signing_key
    )
    await client.close()


async def test_every_acknowledged_command_survives_a_kill_of_each_consumer() -> None:
    # `registry up` restarts a killed service instead of stopping the whole stack: stopping the
    # broker too would lose every command it had acknowledged.
    async with throwaway_stack("crash-", before_services=seed_key) as stack:
        report = await run_chaos(stack, ADMIN_KEY.token, seconds=15, rate=20, kill_every=(4, 4.5), victims=CONSUMERS)
    assert set(report.kills) == set(CONSUMERS), report  # each consumer was killed at least once
    assert report.restarts == report.kills
    assert report.commands_sent > 200 and report.reports_sent > 40
    assert (report.lost, report.doubled, report.not_readable) == (0, 0, 0), report
    assert (report.audit_lost, report.audit_doubled) == (0, 0), report
