"""The audit store's keyed chains against MongoDB: exactly once, tamper-evident, offsets not identities."""

import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from audit.app import build_app
from audit.chain import ChainKey, verify
from audit.config import AuditSettings
from audit.entries import Source, entry_for
from audit.store import AuditStore
from audit.team_verify import verify_team
from shared.chassis.kafka import ensure_topics
from shared.chassis.mongo import ensure_indexes
from shared.contract import messages
from shared.contract.auth import Principal
from tests.factories import ADMIN_KEY, command_event, register_data, register_event, store_admin_key
from tests.infra import Infra
from tests.integration.audit_settings import audit_settings
from tests.kafka_tools import publish_raw
from tests.waiting import until

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
KEY = ChainKey(secrets.token_bytes(32))
FRAUD = Principal(key_id="fraudkey", team="fraud", scopes=frozenset({"models:write"}))


def entries(topic: str, partition: int, offsets: range, *, epoch: str = "a", team: str = "fraud") -> list[Any]:
    """Entries of records at ``offsets``; ``epoch`` changes their content (a broker that restarted)."""
    made = []
    for offset in offsets:
        # The same bytes for the same (offset, epoch): a redelivery, not a new record.
        event = command_event(
            messages.REGISTER_MODEL_VERSION,
            register_data(team, f"m{offset}-{epoch}"),
            event_id=f"{epoch}-{partition}-{offset}",
            time=NOW,
            correlation_id=f"c-{epoch}-{offset}",
        )
        value, headers = event.to_kafka()
        source = Source.of(topic, partition, offset, f"{team}/m".encode(), value, headers)
        principal = FRAUD if team == "fraud" else None
        made.append(entry_for(source, event=event, error=None, received_at=NOW, principal=principal))
    return made


@pytest.fixture
async def db(infra: Infra, db_name: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    await ensure_indexes(client[db_name])
    store = AuditStore(client, client[db_name], key=KEY)
    await store.append(entries("registry.commands", 0, range(0, 6)) + entries("registry.events", 1, range(0, 4)))
    yield client[db_name]
    await client.drop_database(db_name)
    await client.close()


@contextlib.asynccontextmanager
async def running(settings: AuditSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The audit app in-process (consumer started by its lifespan), called as the platform admin."""
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://audit", headers=headers) as client:
            yield client


async def entry_at(db: Any, chain: str, seq: int) -> dict[str, Any]:
    return dict(await db.audit_log.find_one({"chain": chain, "seq": seq}))


class TestExactlyOnce:
    async def test_a_redelivered_batch_is_appended_once(self, db: Any) -> None:
        store = AuditStore(db.client, db, key=KEY)
        appended = await store.append(entries("registry.commands", 0, range(4, 9)))  # 4 and 5 are redeliveries
        assert [entry["offset"] for entry in appended] == [6, 7, 8]
        verdict = await verify(db, KEY)
        assert verdict.ok and verdict.entries == 13 and verdict.chains == 2

    async def test_records_at_reused_offsets_after_a_broker_restart_are_appended(self, db: Any) -> None:
        # Found: after a restart with kept data, offsets start at 0 again and every new record
        # at an offset below the stored head was skipped as "already audited".
        store = AuditStore(db.client, db, key=KEY)
        appended = await store.append(entries("registry.commands", 0, range(0, 3), epoch="b"))
        assert [entry["offset"] for entry in appended] == [0, 1, 2]
        again = await store.append(entries("registry.commands", 0, range(0, 3), epoch="b"))  # redelivered
        assert again == []
        verdict = await verify(db, KEY)
        assert verdict.ok and verdict.entries == 13

    async def test_undecodable_records_are_audited_too(
        self, infra: Infra, db_name: str, mongo: AsyncMongoClient[dict[str, object]]
    ) -> None:
        # Through the audit service itself: its consumer, the store and the API.
        settings = audit_settings(infra, db_name)
        await ensure_topics(settings)
        await store_admin_key(mongo[db_name])
        try:
            async with running(settings) as http:
                await publish_raw(settings.kafka_bootstrap_servers, settings.topic_commands, [(b"\xff", [], b"k")])

                async def listed() -> list[Any]:
                    return list((await http.get("/v1/audit", params={"type": "undecodable"})).json()["items"])

                [entry] = await until(listed, what="the undecodable record's audit entry")
                verdict = (await http.get("/v1/audit/verify", params={"full": "true"})).json()
        finally:
            await mongo.drop_database(db_name)
        assert (entry["topic"], entry["offset"], entry["outcome"]) == (settings.topic_commands, 0, "dead_lettered")
        assert entry["detail"].startswith("not_json:") and entry["team"] is None
        assert verdict["ok"] is True and verdict["entries"] >= 1  # chained like any other entry


class TestAttribution:
    def test_a_record_that_proves_nothing_names_no_actor_and_no_team(self) -> None:
        # Found: actor was parsed from any bearer string and team taken from the payload, so any
        # producer could write entries into another team's log in another key's name.
        event = register_event("fraud", "m", token="mr_fraudkey_" + "x" * 43)
        source = Source.of("registry.commands", 0, 0, None, b"{}", [])
        entry = entry_for(source, event=event, error=None, received_at=NOW)
        assert (entry["actor"], entry["team"], entry["model"], entry["verified"]) == (None, None, None, None)
        assert entry["claims"] == {"actor": "fraudkey", "team": "fraud", "model": "fraud/m"}

    def test_a_key_acting_outside_its_team_is_filed_under_its_own_team(self) -> None:
        event = register_event("risk", "m")
        source = Source.of("registry.commands", 0, 0, None, b"{}", [])
        entry = entry_for(source, event=event, error=None, received_at=NOW, principal=FRAUD)
        assert (entry["actor"], entry["team"], entry["model"]) == ("fraudkey", "fraud", None)
        assert entry["claims"] == {"team": "risk", "model": "risk/m"}


class TestTampering:
    async def test_an_untouched_log_verifies(self, db: Any) -> None:
        verdict = await verify(db, KEY)
        assert verdict.ok and verdict.entries == 10

    async def test_editing_an_entry_is_found_at_that_entry(self, db: Any) -> None:
        target = await entry_at(db, "registry.commands:0", 4)
        await db.audit_log.update_one({"_id": target["_id"]}, {"$set": {"actor": "mallory"}})
        verdict = await verify(db, KEY)
        assert not verdict.ok and verdict.broken and verdict.broken["entry_id"] == target["_id"]
        assert "edited" in verdict.broken["problem"]

    async def test_editing_the_time_the_api_shows_and_filters_on_is_found(self, db: Any) -> None:
        # Found: received_at/ts_key were outside the hash.
        target = await entry_at(db, "registry.commands:0", 2)
        moved = target["received_at"] - timedelta(days=30)
        await db.audit_log.update_one({"_id": target["_id"]}, {"$set": {"received_at": moved}})
        verdict = await verify(db, KEY)
        assert not verdict.ok and verdict.broken and verdict.broken["entry_id"] == target["_id"]

    async def test_a_rehashed_edit_without_the_key_is_found(self, db: Any) -> None:
        # Someone with database access recomputes the chain after an edit, but not with the key.
        other = ChainKey(secrets.token_bytes(32))
        target = await entry_at(db, "registry.events:1", 2)
        forged = {**target, "team": "mallory"}
        forged["hash"] = other.link(target["prev_hash"], forged)
        await db.audit_log.replace_one({"_id": target["_id"]}, forged)
        verdict = await verify(db, KEY)
        assert not verdict.ok and verdict.broken and verdict.broken["entry_id"] == target["_id"]

    async def test_deleting_an_entry_is_found_where_it_was(self, db: Any) -> None:
        await db.audit_log.delete_one({"chain": "registry.commands:0", "seq": 3})
        verdict = await verify(db, KEY)
        assert not verdict.ok and verdict.broken
        assert (verdict.broken["chain"], verdict.broken["seq"]) == ("registry.commands:0", 3)

    async def test_deleting_the_last_entry_is_found_by_the_head(self, db: Any) -> None:
        await db.audit_log.delete_one({"chain": "registry.events:1", "seq": 4})
        verdict = await verify(db, KEY)
        assert not verdict.ok and verdict.broken and verdict.broken["chain"] == "registry.events:1"

    async def test_swapping_two_entries_is_found_at_the_first(self, db: Any) -> None:
        first, second = await entry_at(db, "registry.commands:0", 2), await entry_at(db, "registry.commands:0", 3)
        keep = ("_id", "seq", "prev_hash", "hash", "chain")
        await db.audit_log.update_one(
            {"_id": first["_id"]}, {"$set": {k: v for k, v in second.items() if k not in keep}}
        )
        await db.audit_log.update_one(
            {"_id": second["_id"]}, {"$set": {k: v for k, v in first.items() if k not in keep}}
        )
        verdict = await verify(db, KEY)
        assert not verdict.ok and verdict.broken and verdict.broken["entry_id"] == first["_id"]

    async def test_entries_past_the_head_are_found(self, db: Any) -> None:
        # Found: verify walked each chain only up to its stored head.
        head = await db.audit_heads.find_one({"_id": "registry.events:1"})
        third = await entry_at(db, "registry.events:1", 3)
        await db.audit_heads.update_one({"_id": head["_id"]}, {"$set": {"seq": 3, "hash": third["hash"]}})
        verdict = await verify(db, KEY)
        assert not verdict.ok and verdict.broken and "beyond the head" in verdict.broken["problem"]

    async def test_a_chain_deleted_with_its_head_but_one_entry_left_is_found(self, db: Any) -> None:
        await db.audit_heads.delete_one({"_id": "registry.events:1"})
        await db.audit_log.delete_many({"chain": "registry.events:1", "seq": {"$gt": 1}})
        verdict = await verify(db, KEY)
        assert not verdict.ok and verdict.broken and verdict.broken["chain"] == "registry.events:1"


class TestIncremental:
    async def test_a_second_verify_starts_from_the_checkpoint_and_still_sees_later_edits(self, db: Any) -> None:
        assert (await verify(db, KEY, full=False)).entries == 10
        store = AuditStore(db.client, db, key=KEY)
        await store.append(entries("registry.commands", 0, range(6, 8)))
        second = await verify(db, KEY, full=False)
        assert second.ok and second.entries == 2  # only what was appended since
        newest = await entry_at(db, "registry.commands:0", 8)
        await db.audit_log.update_one({"_id": newest["_id"]}, {"$set": {"detail": "nothing to see"}})
        third = await verify(db, KEY, full=False)
        assert not third.ok and third.broken and third.broken["entry_id"] == newest["_id"]

    async def test_removing_the_checkpointed_entry_is_found(self, db: Any) -> None:
        await verify(db, KEY, full=False)
        await db.audit_log.delete_one({"chain": "registry.events:1", "seq": 4})
        await db.audit_heads.update_one(
            {"_id": "registry.events:1"},
            {"$set": {"seq": 3, "hash": (await entry_at(db, "registry.events:1", 3))["hash"]}},
        )
        verdict = await verify(db, KEY, full=False)
        assert not verdict.ok and verdict.broken and verdict.broken["chain"] == "registry.events:1"


class TestTeamScope:
    async def test_a_team_verifies_its_own_entries_only(self, db: Any) -> None:
        store = AuditStore(db.client, db, key=KEY)
        await store.append(entries("registry.commands", 0, range(6, 9), team="risk"))
        verdict = await verify_team(db, KEY, team="fraud", limit=1000)
        assert verdict.ok and verdict.entries == 10 and verdict.scope == "team:fraud"

    async def test_an_edit_of_a_teams_entry_is_found_by_that_team(self, db: Any) -> None:
        target = await entry_at(db, "registry.commands:0", 5)
        await db.audit_log.update_one({"_id": target["_id"]}, {"$set": {"outcome": "ok-ish"}})
        verdict = await verify_team(db, KEY, team="fraud", limit=1000)
        assert not verdict.ok and verdict.broken and verdict.broken["entry_id"] == target["_id"]

    async def test_removing_an_entry_next_to_a_teams_entry_is_found_by_that_team(self, db: Any) -> None:
        await db.audit_log.delete_one({"chain": "registry.commands:0", "seq": 3})
        verdict = await verify_team(db, KEY, team="fraud", limit=1000)
        assert not verdict.ok and verdict.broken and verdict.broken["seq"] in (2, 4)
