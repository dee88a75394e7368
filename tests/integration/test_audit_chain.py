"""The audit store's signed chains against MongoDB: exactly once, tamper-evident, migrated once."""

import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from audit.app import build_app
from audit.chain import BAD_ENTRY_SIGNATURE, BAD_HEAD_SIGNATURE, LEGACY_AFTER_ANCHOR, ChainKey, Tail, Verifier, verify
from audit.config import AuditSettings
from audit.entries import Source, entry_for
from audit.links import extend, link
from audit.migration import MIGRATED, MigrationRefused, migrate
from audit.signing import KeyRing, SigningKey
from audit.storage import INDEXES as AUDIT_INDEXES
from audit.store import AuditStore, ChainRefused
from audit.team_verify import verify_team
from registry_contract import messages
from registry_contract.auth import Principal
from registry_contract.envelope import decode
from shared.chassis.kafka import ensure_topics
from shared.chassis.mongo import ensure_indexes
from tests.factories import ADMIN_KEY, command_event, register_data, register_event, store_admin_key
from tests.infra import Infra
from tests.integration.audit_settings import audit_settings
from tests.integration.key_owner import asking_registration_for_keys
from tests.kafka_tools import Collector, header, publish_raw
from tests.waiting import until

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
SIGNER = SigningKey.generate()
VERIFIER = Verifier(KeyRing.of(SIGNER))
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
    await ensure_indexes(client[db_name], AUDIT_INDEXES)
    store = AuditStore(client, client[db_name], signer=SIGNER)
    await store.append(entries("registry.commands", 0, range(0, 6)) + entries("registry.events", 1, range(0, 4)))
    yield client[db_name]
    await client.drop_database(db_name)
    await client.close()


@contextlib.asynccontextmanager
async def running(settings: AuditSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The audit app in-process (consumer started by its lifespan), called as the platform admin.

    Keys are registration's: a registration over the same database answers the audit's key lookups.
    """
    async with asking_registration_for_keys(settings) as asking:
        app = build_app(asking)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
            async with httpx.AsyncClient(transport=transport, base_url="http://audit", headers=headers) as client:
                yield client


async def entry_at(db: Any, chain: str, seq: int) -> dict[str, Any]:
    return dict(await db.audit_log.find_one({"chain": chain, "seq": seq}))


class TestExactlyOnce:
    async def test_a_redelivered_batch_is_appended_once(self, db: Any) -> None:
        store = AuditStore(db.client, db, signer=SIGNER)
        appended = await store.append(entries("registry.commands", 0, range(4, 9)))  # 4 and 5 are redeliveries
        assert [entry["offset"] for entry in appended] == [6, 7, 8]
        assert store.newest_written == max(entry["ts_key"] for entry in appended)  # where a page starts looking
        verdict = await verify(db, VERIFIER, signer=SIGNER)
        assert verdict.ok and verdict.entries == 13 and verdict.chains == 2

    async def test_records_at_reused_offsets_after_a_broker_restart_are_appended(self, db: Any) -> None:
        # After a restart with kept data the broker's offsets start at 0 again: a record at an offset
        # below the stored head is appended, unless it is the same record redelivered.
        store = AuditStore(db.client, db, signer=SIGNER)
        appended = await store.append(entries("registry.commands", 0, range(0, 3), epoch="b"))
        assert [entry["offset"] for entry in appended] == [0, 1, 2]
        again = await store.append(entries("registry.commands", 0, range(0, 3), epoch="b"))  # redelivered
        assert again == []
        verdict = await verify(db, VERIFIER, signer=SIGNER)
        assert verdict.ok and verdict.entries == 13

    async def test_undecodable_records_are_audited_too(
        self, infra: Infra, db_name: str, mongo: AsyncMongoClient[dict[str, object]]
    ) -> None:
        # Through the audit service itself: its consumer, the store and the API.
        settings = audit_settings(infra, db_name)
        await ensure_topics(settings, partitions=1)
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
        # Actor and team come only from what was verified, never from a bearer string or the payload:
        # otherwise any producer could write entries into another team's log in another key's name.
        # As consumed: signed with a key id the record names, which nothing verified.
        event = decode(*register_event("fraud", "m", token="mr_fraudkey_" + "x" * 43).to_kafka())
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
        verdict = await verify(db, VERIFIER, signer=SIGNER)
        assert verdict.ok and verdict.entries == 10

    async def test_editing_an_entry_is_found_at_that_entry(self, db: Any) -> None:
        target = await entry_at(db, "registry.commands:0", 4)
        await db.audit_log.update_one({"_id": target["_id"]}, {"$set": {"actor": "mallory"}})
        verdict = await verify(db, VERIFIER, signer=SIGNER)
        assert not verdict.ok and verdict.broken and verdict.broken["entry_id"] == target["_id"]
        assert "edited" in verdict.broken["problem"]

    async def test_editing_the_time_the_api_shows_and_filters_on_is_found(self, db: Any) -> None:
        # received_at and ts_key are inside the hash: the API shows and filters on them.
        target = await entry_at(db, "registry.commands:0", 2)
        moved = target["received_at"] - timedelta(days=30)
        await db.audit_log.update_one({"_id": target["_id"]}, {"$set": {"received_at": moved}})
        verdict = await verify(db, VERIFIER, signer=SIGNER)
        assert not verdict.ok and verdict.broken and verdict.broken["entry_id"] == target["_id"]

    @pytest.mark.parametrize("strip", [False, True])
    async def test_a_rehashed_edit_is_found_at_the_next_signed_entry(self, db: Any, strip: bool) -> None:
        # Someone with database access edits an entry and recomputes the plain hashes after it,
        # head included: the next entry the service signed (every 64th) no longer verifies, and
        # one whose signature was removed is missing it.
        chain = "registry.events:1"
        await AuditStore(db.client, db, signer=SIGNER).append(entries("registry.events", 1, range(4, 70)))
        prev = (await entry_at(db, chain, 9))["hash"]
        for seq in range(10, 71):
            doc = await entry_at(db, chain, seq)
            doc |= {"team": "mallory"} if seq == 10 else {}
            doc["prev_hash"] = prev
            doc["hash"] = prev = link(prev, doc)
            if strip:
                doc.pop("sig", None)
            await db.audit_log.replace_one({"_id": doc["_id"]}, doc)
        await db.audit_heads.update_one({"_id": chain}, {"$set": {"hash": prev}})
        verdict = await verify(db, VERIFIER, signer=SIGNER)
        signed = await entry_at(db, chain, 64)
        assert not verdict.ok and verdict.broken
        assert (verdict.broken["seq"], verdict.broken["entry_id"]) == (64, signed["_id"])
        assert verdict.broken["problem"] == BAD_ENTRY_SIGNATURE

    async def test_a_rehashed_edit_with_a_chain_key_is_found(self, db: Any) -> None:
        other = ChainKey(secrets.token_bytes(32))
        target = await entry_at(db, "registry.events:1", 2)
        forged = {**target, "team": "mallory", "v": 3}
        forged["hash"] = other.link(target["prev_hash"], forged)
        await db.audit_log.replace_one({"_id": target["_id"]}, forged)
        verdict = await verify(db, VERIFIER, signer=SIGNER)
        assert not verdict.ok and verdict.broken and verdict.broken["entry_id"] == target["_id"]

    async def test_deleting_an_entry_is_found_where_it_was(self, db: Any) -> None:
        await db.audit_log.delete_one({"chain": "registry.commands:0", "seq": 3})
        verdict = await verify(db, VERIFIER, signer=SIGNER)
        assert not verdict.ok and verdict.broken
        assert (verdict.broken["chain"], verdict.broken["seq"]) == ("registry.commands:0", 3)

    async def test_deleting_the_last_entry_is_found_by_the_head(self, db: Any) -> None:
        await db.audit_log.delete_one({"chain": "registry.events:1", "seq": 4})
        verdict = await verify(db, VERIFIER, signer=SIGNER)
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
        verdict = await verify(db, VERIFIER, signer=SIGNER)
        assert not verdict.ok and verdict.broken and verdict.broken["entry_id"] == first["_id"]

    async def test_entries_past_the_head_are_found(self, db: Any) -> None:
        # Verify walks each chain to its end, not only to its stored head.
        head = await db.audit_heads.find_one({"_id": "registry.events:1"})
        third = await entry_at(db, "registry.events:1", 3)
        await db.audit_heads.update_one({"_id": head["_id"]}, {"$set": {"seq": 3, "hash": third["hash"]}})
        verdict = await verify(db, VERIFIER, signer=SIGNER)
        assert not verdict.ok and verdict.broken and "beyond the head" in verdict.broken["problem"]

    async def test_a_chain_deleted_with_its_head_but_one_entry_left_is_found(self, db: Any) -> None:
        await db.audit_heads.delete_one({"_id": "registry.events:1"})
        await db.audit_log.delete_many({"chain": "registry.events:1", "seq": {"$gt": 1}})
        verdict = await verify(db, VERIFIER, signer=SIGNER)
        assert not verdict.ok and verdict.broken and verdict.broken["chain"] == "registry.events:1"


class TestForgedHeads:
    """Finding 1 of issue 22's review: the writer must not sign past a head it cannot trust."""

    CHAIN = "registry.commands:0"

    async def forge(self, db: Any, *, extra: int, sig: Any) -> list[Any]:
        """Append ``extra`` forged v4 entries (plain hashes) and a head over them carrying ``sig``."""
        tail = Tail.of(await db.audit_heads.find_one({"_id": self.CHAIN}))
        forged = entries("registry.commands", 0, range(50, 50 + extra), epoch="forged", team="mallory")
        for doc in forged:
            tail = extend(tail, doc, retention=None)
        await db.audit_log.insert_many(forged)
        head = tail.head(SIGNER, self.CHAIN) | {"sig": sig}
        await db.audit_heads.replace_one({"_id": self.CHAIN}, head)
        return forged

    async def test_a_head_with_a_junk_signature_is_not_extended_and_verify_reports_it(self, db: Any) -> None:
        await self.forge(db, extra=2, sig={"kid": SIGNER.public.kid, "sig": "00" * 64})
        store = AuditStore(db.client, db, signer=SIGNER)  # a fresh process: nothing remembered
        with pytest.raises(ChainRefused, match="signature does not verify"):
            await store.append(entries("registry.commands", 0, range(6, 7)))
        assert self.CHAIN in store.refusals()
        with pytest.raises(ChainRefused, match=self.CHAIN):
            await store.ready()  # /readyz names the chain
        assert await db.audit_log.count_documents({"chain": self.CHAIN}) == 8  # the genuine record not chained
        verdict = await verify(db, VERIFIER)
        assert not verdict.ok and verdict.broken
        assert (verdict.broken["chain"], verdict.broken["problem"]) == (self.CHAIN, BAD_HEAD_SIGNATURE)

    async def test_an_unsigned_head_is_not_migrated_by_the_writer(self, db: Any) -> None:
        await self.forge(db, extra=1, sig=None)
        await db.audit_heads.update_one({"_id": self.CHAIN}, {"$unset": {"sig": ""}})
        with pytest.raises(ChainRefused, match="not signed"):
            await AuditStore(db.client, db, signer=SIGNER).append(entries("registry.commands", 0, range(6, 7)))

    async def test_an_older_signed_head_put_back_is_refused_by_the_process_that_wrote_past_it(self, db: Any) -> None:
        store = AuditStore(db.client, db, signer=SIGNER)
        older = await db.audit_heads.find_one({"_id": self.CHAIN})
        await store.append(entries("registry.commands", 0, range(6, 8)))
        await db.audit_log.delete_many({"chain": self.CHAIN, "seq": {"$gt": 6}})  # the tail cut,
        await db.audit_heads.replace_one({"_id": self.CHAIN}, older)  # and the older signed head put back
        with pytest.raises(ChainRefused, match="went back"):
            await store.append(entries("registry.commands", 0, range(8, 9)))
        assert await db.audit_log.count_documents({"chain": self.CHAIN}) == 6

    async def test_a_refused_chain_is_ready_again_once_its_head_is_restored(self, db: Any) -> None:
        store = AuditStore(db.client, db, signer=SIGNER)
        genuine = await db.audit_heads.find_one({"_id": self.CHAIN})
        await db.audit_heads.update_one({"_id": self.CHAIN}, {"$set": {"sig": {"kid": "x", "sig": "00"}}})
        with pytest.raises(ChainRefused):
            await store.append(entries("registry.commands", 0, range(6, 7)))
        await db.audit_heads.replace_one({"_id": self.CHAIN}, genuine)
        await store.ready()  # the restored head is trusted again: ready before any record arrives
        assert store.refusals() == {}
        assert [e["seq"] for e in await store.append(entries("registry.commands", 0, range(6, 7)))] == [7]
        assert (await verify(db, VERIFIER)).ok

    async def test_the_service_refuses_a_forged_head_dead_letters_the_record_and_is_not_ready(
        self, infra: Infra, db_name: str, mongo: AsyncMongoClient[dict[str, object]]
    ) -> None:
        # Through the audit service: its consumer, the store, /readyz and the API.
        settings = audit_settings(infra, db_name)
        await ensure_topics(settings, partitions=1)
        await store_admin_key(mongo[db_name])
        db, chain = mongo[db_name], f"{settings.topic_commands}:0"
        try:
            async with running(settings) as http, Collector(infra.kafka_bootstrap, f"{chain[:-2]}.dlq") as dlq:
                await publish_raw(settings.kafka_bootstrap_servers, settings.topic_commands, [(b"\xff", [], b"k")])

                async def chained() -> bool:
                    return await db.audit_log.count_documents({"chain": chain}) == 1

                await until(chained, what="the first record's audit entry")
                tail = Tail.of(await db.audit_heads.find_one({"_id": chain}))
                [forged] = entries(settings.topic_commands, 0, range(7, 8), epoch="forged", team="mallory")
                tail = extend(tail, forged, retention=None)
                await db.audit_log.insert_one(forged)
                junk = {"kid": SIGNER.public.kid, "sig": "00" * 64}
                await db.audit_heads.replace_one({"_id": chain}, tail.head(SIGNER, chain) | {"sig": junk})
                await publish_raw(settings.kafka_bootstrap_servers, settings.topic_commands, [(b"\xfe", [], b"k")])

                async def refused() -> list[Any]:
                    answer = await http.get("/readyz")
                    errors = answer.json().get("errors", []) if answer.status_code == 503 else []
                    return [e for e in errors if e.get("dependency") == "audit_chains"]

                [why] = await until(refused, what="/readyz naming the refused chain")
                [dead] = await dlq.wait_for(lambda record: record.value == b"\xfe")
                verdict = (await http.get("/v1/audit/verify", params={"full": "true"})).json()
                count = await db.audit_log.count_documents({"chain": chain})
        finally:
            await mongo.drop_database(db_name)
        assert chain in why["error"] and "signature does not verify" in why["error"]
        assert "not extended" in (header(dead, "dlq_error") or "")
        assert count == 2  # the genuine entry and the forged one: nothing chained past the forgery
        assert verdict["ok"] is False and verdict["first_broken"]["problem"] == BAD_HEAD_SIGNATURE


class TestIncremental:
    async def test_a_second_verify_starts_from_the_checkpoint_and_still_sees_later_edits(self, db: Any) -> None:
        assert (await verify(db, VERIFIER, signer=SIGNER, full=False)).entries == 10
        store = AuditStore(db.client, db, signer=SIGNER)
        await store.append(entries("registry.commands", 0, range(6, 8)))
        second = await verify(db, VERIFIER, signer=SIGNER, full=False)
        assert second.ok and second.entries == 2  # only what was appended since
        newest = await entry_at(db, "registry.commands:0", 8)
        await db.audit_log.update_one({"_id": newest["_id"]}, {"$set": {"detail": "nothing to see"}})
        third = await verify(db, VERIFIER, signer=SIGNER, full=False)
        assert not third.ok and third.broken and third.broken["entry_id"] == newest["_id"]

    async def test_removing_the_checkpointed_entry_is_found(self, db: Any) -> None:
        await verify(db, VERIFIER, signer=SIGNER, full=False)
        await db.audit_log.delete_one({"chain": "registry.events:1", "seq": 4})
        await db.audit_heads.update_one(
            {"_id": "registry.events:1"},
            {"$set": {"seq": 3, "hash": (await entry_at(db, "registry.events:1", 3))["hash"]}},
        )
        verdict = await verify(db, VERIFIER, signer=SIGNER, full=False)
        assert not verdict.ok and verdict.broken and verdict.broken["chain"] == "registry.events:1"


class TestTeamScope:
    async def test_a_team_verifies_its_own_entries_only(self, db: Any) -> None:
        store = AuditStore(db.client, db, signer=SIGNER)
        await store.append(entries("registry.commands", 0, range(6, 9), team="risk"))
        verdict = await verify_team(db, VERIFIER, team="fraud", limit=1000)
        assert verdict.ok and verdict.entries == 10 and verdict.scope == "team:fraud"

    async def test_an_edit_of_a_teams_entry_is_found_by_that_team(self, db: Any) -> None:
        target = await entry_at(db, "registry.commands:0", 5)
        await db.audit_log.update_one({"_id": target["_id"]}, {"$set": {"outcome": "ok-ish"}})
        verdict = await verify_team(db, VERIFIER, team="fraud", limit=1000)
        assert not verdict.ok and verdict.broken and verdict.broken["entry_id"] == target["_id"]

    async def test_removing_an_entry_next_to_a_teams_entry_is_found_by_that_team(self, db: Any) -> None:
        await db.audit_log.delete_one({"chain": "registry.commands:0", "seq": 3})
        verdict = await verify_team(db, VERIFIER, team="fraud", limit=1000)
        assert not verdict.ok and verdict.broken and verdict.broken["seq"] in (2, 4)


def legacy_chain(key: ChainKey, chain: str, count: int) -> tuple[list[Any], dict[str, Any]]:
    """``count`` v3 entries keyed with ``key`` and their MAC'd head, as the service wrote them before signed chains."""
    topic, _, partition = chain.rpartition(":")
    made, prev = entries(topic, int(partition), range(count)), Tail()
    for doc in made:
        doc["v"], doc["seq"], doc["prev_hash"] = 3, prev.seq + 1, prev.hash
        doc["hash"] = key.link(prev.hash, doc)
        prev = Tail(doc["seq"], doc["hash"], doc["offset"])
    head = {"_id": chain, "seq": prev.seq, "hash": prev.hash, "offset": prev.offset, "expires_at": None}
    return made, head | {"expiring_from": None, "mac": key.seal_tail(chain, prev)}


class TestMigration:
    CHAIN = "registry.commands:0"

    @pytest.fixture
    async def legacy_db(self, mongo_database: Any) -> tuple[Any, ChainKey]:
        key = ChainKey(secrets.token_bytes(32))
        await ensure_indexes(mongo_database, AUDIT_INDEXES)
        made, head = legacy_chain(key, self.CHAIN, 4)
        await mongo_database.audit_log.insert_many(made)
        await mongo_database.audit_heads.insert_one(head)
        return mongo_database, key

    async def test_a_keyed_chain_is_migrated_once_recorded_and_then_verifies_with_the_public_key(
        self, legacy_db: tuple[Any, ChainKey]
    ) -> None:
        db, key = legacy_db
        assert await migrate(db.client, db, signer=SIGNER, legacy=key) == [self.CHAIN]
        assert await migrate(db.client, db, signer=SIGNER, legacy=key) == []  # once
        record = await entry_at(db, self.CHAIN, 5)
        assert (record["type"], record["v"], record["actor"]) == (MIGRATED, 4, "audit") and "sig" in record
        head = await db.audit_heads.find_one({"_id": self.CHAIN})
        assert (head["anchor_seq"], "mac" in head, "sig" in head) == (4, False, True)
        await AuditStore(db.client, db, signer=SIGNER).append(entries("registry.commands", 0, range(4, 6)))
        keyed = await verify(db, Verifier(KeyRing.of(SIGNER), legacy=key))
        assert keyed.ok and keyed.entries == 7 and keyed.legacy_unchecked == 0
        public_only = await verify(db, VERIFIER)  # the chain key is needed only for the legacy contents
        assert public_only.ok and public_only.legacy_unchecked == 4

    async def test_a_legacy_entry_after_the_migration_point_fails(self, legacy_db: tuple[Any, ChainKey]) -> None:
        db, key = legacy_db
        await migrate(db.client, db, signer=SIGNER, legacy=key)
        # Even someone holding the old chain key cannot add a keyed entry once the chain is signed.
        last = await entry_at(db, self.CHAIN, 5)
        [forged] = entries("registry.commands", 0, range(9, 10), epoch="x")
        forged |= {"v": 3, "seq": 6, "prev_hash": last["hash"]}
        forged["hash"] = key.link(last["hash"], forged)
        await db.audit_log.insert_one(forged)
        await db.audit_heads.update_one({"_id": self.CHAIN}, {"$set": {"seq": 6, "hash": forged["hash"]}})
        verdict = await verify(db, Verifier(KeyRing.of(SIGNER), legacy=key))
        assert not verdict.ok and verdict.broken
        assert (verdict.broken["seq"], verdict.broken["entry_id"], verdict.broken["problem"]) == (
            6,
            forged["_id"],
            LEGACY_AFTER_ANCHOR,
        )

    async def test_without_the_chain_key_or_with_a_broken_chain_nothing_is_migrated(
        self, legacy_db: tuple[Any, ChainKey]
    ) -> None:
        db, key = legacy_db
        with pytest.raises(MigrationRefused, match="AUDIT_CHAIN_KEY"):
            await migrate(db.client, db, signer=SIGNER, legacy=None)
        await db.audit_log.update_one({"chain": self.CHAIN, "seq": 2}, {"$set": {"team": "mallory"}})
        with pytest.raises(MigrationRefused, match="does not verify"):
            await migrate(db.client, db, signer=SIGNER, legacy=key)
        head = await db.audit_heads.find_one({"_id": self.CHAIN})
        assert "sig" not in head and await db.audit_log.count_documents({"type": MIGRATED}) == 0

    async def test_a_chain_rewritten_without_the_key_and_its_mac_is_not_migrated(
        self, legacy_db: tuple[Any, ChainKey]
    ) -> None:
        db, key = legacy_db
        prev = Tail()
        forged = entries("registry.commands", 0, range(4), epoch="forged", team="mallory")
        for doc in forged:  # unversioned entries: plain SHA-256, computed without any key
            doc |= {"seq": prev.seq + 1, "prev_hash": prev.hash}
            doc.pop("v", None)
            doc["hash"] = key.link(prev.hash, doc)  # for v-less entries the key plays no part
            prev = Tail(doc["seq"], doc["hash"], doc["offset"])
        await db.audit_log.delete_many({"chain": self.CHAIN})
        await db.audit_log.insert_many(forged)
        await db.audit_heads.replace_one({"_id": self.CHAIN}, {"seq": 4, "hash": prev.hash, "offset": 3})
        with pytest.raises(MigrationRefused, match="does not verify"):
            await migrate(db.client, db, signer=SIGNER, legacy=key)
        assert await db.audit_log.count_documents({"type": MIGRATED}) == 0

    async def test_a_signed_chain_whose_head_lost_its_signature_is_not_re_signed(
        self, legacy_db: tuple[Any, ChainKey]
    ) -> None:
        db, key = legacy_db
        await migrate(db.client, db, signer=SIGNER, legacy=key)
        await db.audit_heads.update_one({"_id": self.CHAIN}, {"$unset": {"sig": ""}})
        with pytest.raises(MigrationRefused, match="of a signed chain"):
            await migrate(db.client, db, signer=SIGNER, legacy=key)
        assert "sig" not in await db.audit_heads.find_one({"_id": self.CHAIN})

    async def test_the_service_migrates_at_start_and_publishes_its_public_key(
        self, infra: Infra, db_name: str, mongo: AsyncMongoClient[dict[str, object]]
    ) -> None:
        retired = SigningKey.generate().public.raw.hex()  # a key rotated out earlier
        settings = audit_settings(infra, db_name).model_copy(update={"retired_public_keys": retired})
        assert settings.chain_key is not None and settings.signing_key is not None
        key = ChainKey(settings.chain_key.get_secret_value().encode())
        made, head = legacy_chain(key, self.CHAIN, 3)
        await mongo[db_name].audit_log.insert_many(made)
        await mongo[db_name].audit_heads.insert_one(head)
        await ensure_topics(settings, partitions=1)
        await store_admin_key(mongo[db_name])
        try:
            async with running(settings) as http:
                listed = (await http.get("/v1/audit", params={"type": MIGRATED})).json()["items"]
                published = (await http.get("/v1/audit/public-keys")).json()["keys"]
                verdict = (await http.get("/v1/audit/verify", params={"full": "true"})).json()
            in_chain = await mongo[db_name].audit_log.count_documents({"chain": self.CHAIN})
        finally:
            await mongo.drop_database(db_name)
        signer = SigningKey.parse(settings.signing_key.get_secret_value())
        assert [(e["seq"], e["sig"]["kid"]) for e in listed] == [(4, signer.public.kid)]
        assert published == KeyRing.of(signer, retired).public()
        assert [k["status"] for k in published] == ["current", "retired"]
        # The three legacy entries and the migration; other chains may have begun meanwhile (the
        # key registration announced at start), and they verify too.
        assert in_chain == 4
        assert verdict["ok"] is True and verdict["entries"] >= in_chain

    async def test_the_service_does_not_start_on_a_keyed_chain_without_the_chain_key(
        self, infra: Infra, db_name: str, mongo: AsyncMongoClient[dict[str, object]]
    ) -> None:
        settings = audit_settings(infra, db_name).model_copy(update={"chain_key": None})
        made, head = legacy_chain(ChainKey(secrets.token_bytes(32)), self.CHAIN, 2)
        await mongo[db_name].audit_log.insert_many(made)
        await mongo[db_name].audit_heads.insert_one(head)
        try:
            with pytest.raises(MigrationRefused, match="AUDIT_CHAIN_KEY"):
                async with running(settings):
                    pass
        finally:
            await mongo.drop_database(db_name)


class TestRotation:
    async def test_after_a_rotation_old_heads_verify_while_the_old_key_is_listed_as_retired(self, db: Any) -> None:
        await verify(db, VERIFIER, signer=SIGNER)  # checkpoints signed by the old key
        new = SigningKey.generate()
        rotated = Verifier(KeyRing.of(new, retired=SIGNER.public.raw.hex()))
        with pytest.raises(ChainRefused):  # the old key not listed: its heads cannot be trusted
            await AuditStore(db.client, db, signer=new).append(entries("registry.commands", 0, range(6, 8)))
        store = AuditStore(db.client, db, signer=new, verifier=rotated)
        await store.append(entries("registry.commands", 0, range(6, 8)))
        # registry.events:1 is idle: its head is still the old key's; registry.commands:0 the new one's.
        heads = {doc["_id"]: doc["sig"]["kid"] async for doc in db.audit_heads.find({})}
        assert heads == {"registry.commands:0": new.public.kid, "registry.events:1": SIGNER.public.kid}
        assert (await verify(db, rotated, signer=new, full=False)).ok
        assert (await verify(db, rotated, signer=new)).ok
        dropped = await verify(db, Verifier(KeyRing.of(new)))
        assert not dropped.ok and dropped.broken  # the idle chain's head is the old key's
        assert (dropped.broken["chain"], dropped.broken["problem"]) == ("registry.events:1", BAD_HEAD_SIGNATURE)
