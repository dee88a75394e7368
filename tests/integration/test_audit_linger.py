"""The audit consumer lingers for more records, so a trickle of records is chained in few transactions.

Every batch the audit service handles is one transaction that reads and moves its chains' heads:
a record at a time, the audit service and its database did several times the work per entry
(``AUDIT_BATCH_LINGER_MS``; ``bench/vs_mlflow.py`` prints the CPU per registration).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from audit.app import build_app
from audit.config import AuditSettings
from shared.chassis.kafka import ensure_topics
from tests.factories import ADMIN_KEY, store_admin_key
from tests.infra import Infra
from tests.integration.audit_settings import audit_settings
from tests.integration.key_owner import asking_registration_for_keys
from tests.kafka_tools import consumer_batches, trickle_undecodable
from tests.waiting import until

pytestmark = pytest.mark.integration
RECORDS, SPACING_S = 6, 0.04  # a trickle: 240 ms from the first record to the last


@contextlib.asynccontextmanager
async def running(settings: AuditSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with asking_registration_for_keys(settings) as asking:
        app = build_app(asking)
        async with app.router.lifespan_context(app):
            headers = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://audit", headers=headers) as client:
                yield client


@pytest.mark.parametrize("linger_ms", [2000, 0])
async def test_a_trickle_of_records_is_chained_in_as_few_batches_as_the_linger_allows(
    infra: Infra, db_name: str, mongo: AsyncMongoClient[dict[str, object]], linger_ms: int
) -> None:
    settings = audit_settings(infra, db_name).model_copy(update={"batch_linger_ms": linger_ms})
    await ensure_topics(settings, partitions=1)
    await store_admin_key(mongo[db_name])
    try:
        async with running(settings) as http:
            await asyncio.sleep(1.0)  # the consumer has joined its group and fetches
            before = consumer_batches(settings.consumer_group)
            await trickle_undecodable(
                settings.kafka_bootstrap_servers, settings.topic_commands, records=RECORDS, spacing_s=SPACING_S
            )

            async def audited() -> list[Any]:
                items = (await http.get("/v1/audit", params={"type": "undecodable", "limit": 50})).json()["items"]
                return list(items) if len(items) == RECORDS else []

            await until(audited, what="every record's audit entry")

            async def counted() -> float:  # the batch is counted once its handler has returned
                return consumer_batches(settings.consumer_group) - before

            await until(counted, what="the batches counted")
            await asyncio.sleep(0.2)
            handled = consumer_batches(settings.consumer_group) - before
    finally:
        await mongo.drop_database(db_name)
    if linger_ms:
        assert 1 <= handled <= 2, handled  # held for the rest of the trickle (two if a fetch was already out)
    else:
        assert handled >= 3, handled  # the control: without a linger the trickle arrives in several batches
