"""Each audit forgery of issue 22 (finding 1), done in the running stack's audit database, fails verification.

Whoever can write the audit MongoDB recomputes every hash it likes (they are plain SHA-256) but
cannot sign: ``GET /v1/audit/verify?full=true`` answers ``ok: false`` naming the first bad entry.
Each test puts the chain back as it was, so the session's log verifies again afterwards.
"""

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from audit.chain import BAD_HEAD_SIGNATURE, LEGACY_AFTER_ANCHOR
from audit.links import canonical, link
from audit.signing import KeyRing, SigningKey
from registry_cli.database_users import service_database
from registry_cli.secrets import load_or_create
from registry_cli.stack import EmbeddedStack
from registry_client import AsyncRegistryClient
from registry_contract.audit_chain import LEGACY_FIELDS
from tests.factories import ADMIN_KEY, binary_record, register_event
from tests.kafka_tools import publish_raw
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
SPAN = 7  # the newest entries of the chain each forgery works on


@contextlib.asynccontextmanager
async def command_chain(stack: EmbeddedStack) -> AsyncIterator[tuple[Any, str, list[dict[str, Any]]]]:
    """A registry.commands chain with at least ``SPAN`` fresh entries; put back as it was afterwards."""
    team = f"forge-{uuid.uuid4().hex[:6]}"
    correlation = f"forge-{uuid.uuid4().hex[:10]}"
    records = []
    for step in range(SPAN):
        value, headers = binary_record(register_event(team, "m", f"1.{step}.0", correlation_id=correlation))
        records.append((value, headers, f"{team}/m".encode()))
    await publish_raw(stack.settings.kafka_bootstrap, "registry.commands", records)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.audit_mongodb_uri, tz_aware=True)
    db = client[service_database("audit")]

    async def audited() -> list[dict[str, Any]] | None:
        found = (
            await db.audit_log.find({"correlation_id": correlation, "topic": "registry.commands"})
            .sort("seq", 1)
            .to_list()
        )
        return found if len(found) == SPAN else None

    mine = await until(audited, timeout=60, what="the commands audited")
    chain = mine[0]["chain"]
    head = await db.audit_heads.find_one({"_id": chain})
    assert head is not None and head["seq"] == mine[-1]["seq"], "the chain moved on after the commands"
    newest = await db.audit_log.find({"chain": chain, "seq": {"$gt": head["seq"] - SPAN}}).sort("seq", 1).to_list()
    try:
        yield db, chain, newest
    finally:
        await db.audit_log.delete_many({"chain": chain, "seq": {"$gt": head["seq"] - SPAN}})
        await db.audit_log.insert_many(newest)
        await db.audit_heads.replace_one({"_id": chain}, head)
        await client.close()


async def verify(stack: EmbeddedStack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN, timeout=60) as http:
        response = await http.get("/v1/audit/verify", params={"full": "true"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def named(verdict: dict[str, Any]) -> tuple[Any, ...]:
    broken = verdict["first_broken"]
    return verdict["ok"], broken["chain"], broken["seq"], broken["entry_id"], broken["problem"]


async def rehash(db: Any, chain: str, docs: list[dict[str, Any]], prev: str, *, unversioned: bool = False) -> str:
    """Store ``docs`` relinked after ``prev`` with hashes recomputed, as anyone can; the last hash."""
    for doc in docs:
        doc.pop("sig", None)
        if unversioned:
            doc.pop("v", None)
        doc["prev_hash"] = prev
        body = prev.encode() + canonical(
            doc, LEGACY_FIELDS
        )  # the published formula of pre-keyed entries if unversioned else None
        doc["hash"] = prev = hashlib.sha256(body).hexdigest() if body else link(prev, doc)
        await db.audit_log.replace_one({"_id": doc["_id"]}, doc)
    await db.audit_heads.update_one({"_id": chain}, {"$set": {"hash": prev}})
    return prev


async def test_dropping_v_and_recomputing_the_hashes_fails_at_the_first_entry_changed(stack: EmbeddedStack) -> None:
    async with command_chain(stack) as (db, chain, newest):
        first = newest[2]
        await rehash(db, chain, [dict(doc) for doc in newest[2:]], newest[1]["hash"], unversioned=True)
        verdict = await verify(stack)
    assert named(verdict) == (False, chain, first["seq"], first["_id"], LEGACY_AFTER_ANCHOR)
    assert (await verify(stack))["ok"] is True  # put back


async def test_an_entry_appended_at_the_head_with_the_head_moved_fails_at_that_entry(stack: EmbeddedStack) -> None:
    async with command_chain(stack) as (db, chain, newest):
        last = newest[-1]
        forged = {
            **last,
            "_id": uuid.uuid4().hex[:40],
            "seq": last["seq"] + 1,
            "offset": last["offset"] + 1,
            "team": "other-team",
            "actor": "mallory",
            "outcome": "ok",
            "detail": "approved for prod",
            "prev_hash": last["hash"],
        }
        forged.pop("sig", None)
        forged["hash"] = link(last["hash"], forged)
        await db.audit_log.insert_one(forged)
        moved = {"seq": forged["seq"], "hash": forged["hash"], "offset": forged["offset"]}
        await db.audit_heads.update_one({"_id": chain}, {"$set": moved})
        verdict = await verify(stack)
        await db.audit_log.delete_one({"_id": forged["_id"]})
    assert named(verdict) == (False, chain, forged["seq"], forged["_id"], BAD_HEAD_SIGNATURE)
    assert (await verify(stack))["ok"] is True


async def test_entries_deleted_with_their_neighbours_given_a_past_expiry_fail(stack: EmbeddedStack) -> None:
    async with command_chain(stack) as (db, chain, newest):
        before, gone, after = newest[1], newest[2:4], newest[4:]
        await db.audit_log.delete_many({"_id": {"$in": [doc["_id"] for doc in gone]}})
        past = datetime.now(UTC) - timedelta(days=1)
        edited = [dict(before) | {"expires_at": past}]
        edited.append(dict(after[0]) | {"prev_expires_at": past, "prev_expiring_from": before["seq"]})
        edited += [dict(doc) for doc in after[1:]]
        # The entry after the gap keeps its link to the deleted one; everything else is rehashed.
        prev = await rehash(db, chain, edited[:1], newest[0]["hash"])
        await rehash(db, chain, edited[1:2], gone[-1]["hash"])
        await rehash(db, chain, edited[2:], edited[1]["hash"])
        verdict = await verify(stack)
    assert prev
    assert verdict["ok"] is False and "expiry" in verdict["first_broken"]["problem"], verdict
    assert named(verdict)[:4] == (False, chain, before["seq"], before["_id"])  # the first entry changed
    assert (await verify(stack))["ok"] is True


async def test_the_published_public_key_is_the_one_the_stack_signs_with(stack: EmbeddedStack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN) as http:
        response = await http.get("/v1/audit/public-keys")
    assert response.status_code == 200, response.text
    async with AsyncRegistryClient(ADMIN_KEY.token, audit_url=stack.url("audit")) as client:
        published = await client.audit_public_keys()
    signer = SigningKey.parse(load_or_create(stack.settings.data_dir).audit_signing_key)
    assert response.json()["keys"] == KeyRing.of(signer).public()
    assert [key.public_key for key in published.keys] == [signer.public.raw.hex()]
