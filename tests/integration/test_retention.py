"""Retention on MongoDB: TTL indexes on webhook deliveries and on access entries only, and a verifiable log."""

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from audit.chain import Verifier, verify
from audit.config import AuditSettings
from audit.entries import Source, entry_for, received_now
from audit.links import link
from audit.signing import KeyRing, SigningKey
from audit.storage import AUDIT_LOG
from audit.storage import INDEXES as AUDIT_INDEXES
from audit.store import AuditStore
from audit.team_verify import verify_team
from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.storage import WEBHOOK_DELIVERIES, declared_indexes
from deploy_tracker.webhook_fanout import deliveries
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from shared.chassis.mongo import EXPIRY_INDEX, ensure_indexes
from tests.factories import command_event, register_data
from tests.infra import Infra
from tests.waiting import until

pytestmark = pytest.mark.integration
SIGNER = SigningKey.generate()
VERIFIER = Verifier(KeyRing.of(SIGNER))
ACCESS_CHAIN = "registry.access:0"


@pytest.fixture
async def db(infra: Infra, db_name: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    yield client[db_name]
    await client.drop_database(db_name)
    await client.close()


async def expired_gone(db: Any, collection: str, query: dict[str, Any]) -> None:
    """Wait until the server's TTL pass removed what ``query`` matches.

    The embedded stand-in runs one on request; MongoDB's own TTL monitor runs every 60 seconds.
    """
    with contextlib.suppress(OperationFailure):
        await db.client.admin.command("secantusAdmin.pruneTtl")

    async def gone() -> bool:
        left: int = await db[collection].count_documents(query)
        return left == 0

    await until(gone, timeout=150, interval=1, what=f"expired documents of {collection} removed")


def retention(days: float) -> dict[str, timedelta]:
    """What the audit service is configured with: ``AUDIT_ACCESS_RETENTION_DAYS``."""
    return AuditSettings(access_retention_days=days).retention()


class TestWebhookDeliveries:
    async def test_deliveries_expire_the_configured_period_after_they_were_created(self, db: Any) -> None:
        await ensure_indexes(
            db, declared_indexes(DeployTrackerSettings(webhook_delivery_retention_days=30)), [WEBHOOK_DELIVERIES]
        )
        index = (await db[WEBHOOK_DELIVERIES].index_information())[EXPIRY_INDEX]
        assert index["key"] == [("created_at", 1)] and index["expireAfterSeconds"] == 30 * 86_400
        subscription = {"_id": "wh_1", "team": "fraud", "event_types": ["*"], "active": True}
        now = received_now()
        for age in (40, 1):
            event = CloudEvent(source="/t", type=messages.MODEL_SHARED, data={"team": "fraud", "age": age})
            await db[WEBHOOK_DELIVERIES].insert_many(deliveries([event], [subscription], now - timedelta(days=age)))
        await expired_gone(db, WEBHOOK_DELIVERIES, {"created_at": {"$lt": now - timedelta(days=30)}})
        assert await db[WEBHOOK_DELIVERIES].count_documents({}) == 1

    async def test_a_changed_period_is_applied_at_the_next_start(self, db: Any) -> None:
        for days in (90, 7):
            settings = DeployTrackerSettings(webhook_delivery_retention_days=days)
            await ensure_indexes(db, declared_indexes(settings), [WEBHOOK_DELIVERIES])
            index = (await db[WEBHOOK_DELIVERIES].index_information())[EXPIRY_INDEX]
            assert index["expireAfterSeconds"] == days * 86_400

    async def test_a_period_of_zero_keeps_deliveries_for_ever(self, db: Any) -> None:
        await ensure_indexes(db, declared_indexes(DeployTrackerSettings()), [WEBHOOK_DELIVERIES])
        await ensure_indexes(
            db, declared_indexes(DeployTrackerSettings(webhook_delivery_retention_days=0)), [WEBHOOK_DELIVERIES]
        )
        assert EXPIRY_INDEX not in await db[WEBHOOK_DELIVERIES].index_information()


def access_entries(count: int, received_at: datetime, *, team: str = "fraud", first: int = 0) -> list[Any]:
    made = []
    for offset in range(first, first + count):
        path = f"/v1/models/{team}/m{offset}"
        data = {"principal": "key1", "team": team, "method": "GET", "path": path, "status": 200}
        event = command_event(messages.ACCESS_READ, data, event_id=uuid.uuid4().hex)
        value, headers = event.to_kafka()
        source = Source.of("registry.access", 0, offset, team.encode(), value, headers)
        made.append(entry_for(source, event=event, error=None, received_at=received_at, signed=True))
    return made


def command_entries(count: int, received_at: datetime) -> list[Any]:
    made = []
    for offset in range(count):
        event = command_event(messages.REGISTER_MODEL_VERSION, register_data("fraud", f"m{offset}"))
        value, headers = event.to_kafka()
        source = Source.of("registry.commands", 0, offset, b"fraud/m", value, headers)
        made.append(entry_for(source, event=event, error=None, received_at=received_at))
    return made


@pytest.fixture
async def audit_db(db: Any) -> Any:
    await ensure_indexes(db, AUDIT_INDEXES)
    return db


class TestAccessEntries:
    async def test_only_access_entries_carry_an_expiry_and_only_they_expire(self, audit_db: Any) -> None:
        index = (await audit_db[AUDIT_LOG].index_information())[EXPIRY_INDEX]
        assert index["key"] == [("expires_at", 1)] and index["expireAfterSeconds"] == 0
        assert index["partialFilterExpression"] == {"expires_at": {"$type": "date"}}
        store = AuditStore(audit_db.client, audit_db, signer=SIGNER, retention=retention(30))
        long_ago = received_now() - timedelta(days=40)
        await store.append(access_entries(2, long_ago) + command_entries(2, long_ago))
        stored = await audit_db[AUDIT_LOG].find({}).to_list()
        assert {e["chain"]: e.get("expires_at") for e in stored} == {
            ACCESS_CHAIN: long_ago + timedelta(days=30),
            "registry.commands:0": None,
        }
        await expired_gone(audit_db, AUDIT_LOG, {"chain": ACCESS_CHAIN})
        assert await audit_db[AUDIT_LOG].count_documents({"chain": "registry.commands:0"}) == 2
        verdict = await verify(audit_db, VERIFIER, signer=SIGNER)
        assert verdict.ok and verdict.entries == 2  # every access entry expired: the sealed head vouches

    async def test_verify_accepts_the_expired_prefix_and_reports_a_deletion_after_it(self, audit_db: Any) -> None:
        store = AuditStore(audit_db.client, audit_db, signer=SIGNER, retention=retention(90))
        await store.append(access_entries(3, received_now() - timedelta(days=100)))
        await store.append(access_entries(3, received_now(), first=3))
        await expired_gone(audit_db, AUDIT_LOG, {"seq": {"$lte": 3}})
        verdict = await verify(audit_db, VERIFIER, signer=SIGNER, page=2)  # the expired run is longer than a page
        assert verdict.ok and verdict.entries == 3
        assert (await verify_team(audit_db, VERIFIER, team="fraud", limit=100)).ok
        await audit_db[AUDIT_LOG].delete_one({"chain": ACCESS_CHAIN, "seq": 5})
        verdict = await verify(audit_db, VERIFIER, signer=SIGNER)
        assert (
            not verdict.ok
            and verdict.broken
            and (verdict.broken["seq"], verdict.broken["problem"])
            == (
                5,
                "entry missing",
            )
        )

    async def test_an_entry_forged_among_expired_ones_is_reported_by_both_verifications(self, audit_db: Any) -> None:
        # Expiry removes only the oldest entries: an entry's own expiry fields cannot excuse it among
        # expired ones, nor can the next genuine entry's excuse the gap after it.
        store = AuditStore(audit_db.client, audit_db, signer=SIGNER, retention=retention(90))
        await store.append(access_entries(3, received_now() - timedelta(days=100)))
        await store.append(access_entries(3, received_now(), first=3))
        first = await audit_db[AUDIT_LOG].find_one({"chain": ACCESS_CHAIN, "seq": 1})
        await expired_gone(audit_db, AUDIT_LOG, {"seq": {"$lte": 3}})
        [forged] = access_entries(1, received_now(), team="mallory", first=40)
        forged |= {"v": 4, "seq": 2, "prev_hash": first["hash"]}
        forged |= {"prev_expires_at": first["expires_at"], "prev_expiring_from": 1}
        forged["hash"] = link(forged["prev_hash"], forged)
        await audit_db[AUDIT_LOG].insert_one(forged)
        verdict = await verify(audit_db, VERIFIER)
        assert not verdict.ok and verdict.broken
        assert (verdict.broken["seq"], verdict.broken["problem"]) == (3, "entry missing")
        team = await verify_team(audit_db, VERIFIER, team="fraud", limit=100)
        assert not team.ok and team.broken and team.broken["seq"] == 4

    async def test_a_recent_prefix_cut_is_reported(self, audit_db: Any) -> None:
        store = AuditStore(audit_db.client, audit_db, signer=SIGNER, retention=retention(90))
        await store.append(access_entries(4, received_now()))
        await audit_db[AUDIT_LOG].delete_many({"chain": ACCESS_CHAIN, "seq": {"$lte": 2}})
        verdict = await verify(audit_db, VERIFIER, signer=SIGNER)
        assert not verdict.ok and verdict.broken and verdict.broken["seq"] == 1

    async def test_an_entry_verified_before_that_expired_since_is_no_break(self, audit_db: Any) -> None:
        store = AuditStore(audit_db.client, audit_db, signer=SIGNER, retention=retention(90))
        await store.append(access_entries(3, received_now() - timedelta(days=100)))
        assert (await verify(audit_db, VERIFIER, signer=SIGNER, full=False)).ok  # checkpoint: seq 3, expired, kept
        await expired_gone(audit_db, AUDIT_LOG, {"chain": ACCESS_CHAIN})
        assert (await verify(audit_db, VERIFIER, signer=SIGNER, full=False)).ok
        await store.append(access_entries(2, received_now(), first=3))
        verdict = await verify(audit_db, VERIFIER, signer=SIGNER, full=False)
        assert verdict.ok and verdict.entries == 2
