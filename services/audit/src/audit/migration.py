"""Re-anchoring keyed (legacy) chains under the audit service's signature, once, at start-up.

A chain whose head carries a MAC (``AUDIT_CHAIN_KEY``) instead of a signature is verified from
its genesis with the chain key; then, in one transaction, an entry recording the migration
(type :data:`MIGRATED`, kept for ever) is chained after its last entry and the head is replaced
by a signed one whose ``anchor_seq``/``anchor_hash`` name that last legacy entry. From then on
every entry is ``v`` 4 and only the legacy part needs the chain key to check its contents.

A chain is migrated only if its head's MAC verifies under the chain key and its entries verify
from the genesis with versions that never decrease; one that already holds anything only the
signing service writes (a ``v`` 4 or signed entry, a signed checkpoint) while its head is
unsigned is someone else's work. Either is not migrated: the service refuses to start and
names the chain and why (a signature over it would vouch for a forgery).
"""

from __future__ import annotations

from datetime import datetime

import structlog
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from audit.chain import verify_legacy
from audit.entries import received_now
from audit.links import MIGRATED, ChainKey, Tail, extend, sign_entry
from audit.signing import SigningKey
from audit.storage import AUDIT_HEADS, AUDIT_LOG, AUDIT_VERIFIED
from registry_contract.documents import Document
from registry_contract.sortkeys import time_key
from shared.chassis.settings import ConfigurationError

log = structlog.get_logger(__name__)
__all__ = ["MIGRATED", "MigrationRefused", "migrate", "migration_entry"]


class MigrationRefused(ConfigurationError):
    """A legacy chain cannot be migrated: no chain key to verify it with, or it does not verify."""


async def migrate(
    client: AsyncMongoClient[Document],
    db: AsyncDatabase[Document],
    *,
    signer: SigningKey,
    legacy: ChainKey | None,
    now: datetime | None = None,
) -> list[str]:
    """Re-anchor every chain whose head is not signed; return the chains migrated by this call."""
    migrated = []
    async for head in db[AUDIT_HEADS].find({"sig": {"$exists": False}}):
        chain = head["_id"]
        if legacy is None:
            raise MigrationRefused(
                f"audit chain {chain} was written under AUDIT_CHAIN_KEY: set it once so the service can verify "
                "and re-anchor it under AUDIT_SIGNING_KEY"
            )
        signed = await db[AUDIT_LOG].find_one(
            {"chain": chain, "$or": [{"v": {"$gt": 3}}, {"sig": {"$exists": True}}]}, {"seq": 1}
        )
        if signed is not None or await db[AUDIT_VERIFIED].find_one({"_id": chain, "sig": {"$exists": True}}):
            where = f"entry seq {signed['seq']} is" if signed else "its verification checkpoint is"
            raise MigrationRefused(
                f"audit chain {chain} has an unsigned head but {where} of a signed chain: "
                "a head whose signature was removed is not re-signed (restore it from a backup)"
            )
        verdict = await verify_legacy(db, legacy, chain, now=now)
        if not verdict.ok:
            raise MigrationRefused(f"audit chain {chain} does not verify under AUDIT_CHAIN_KEY: {verdict.broken}")
        if await _reanchor(client, db, head, signer=signer, entries=verdict.entries):
            migrated.append(chain)
            log.info("audit_chain_migrated", chain=chain, anchor_seq=head["seq"], kid=signer.public.kid)
    return migrated


def migration_entry(chain: str, old: Tail, *, kid: str, verified: int) -> Document:
    """The entry that records a chain's migration (``v`` 4, chained after the last legacy entry)."""
    topic, _, partition = chain.rpartition(":")
    at = received_now()
    entry_id = f"migration-{chain}"
    return {
        "_id": entry_id,
        "chain": chain,
        "topic": topic,
        "partition": int(partition) if partition.isdigit() else 0,
        "offset": old.offset,
        "received_at": at,
        "ts_key": time_key(at, entry_id),
        "ce_id": None,
        "type": MIGRATED,
        "source": "audit",
        "time": at.isoformat(),
        "verified": "service",
        "actor": "audit",
        "actor_team": None,
        "team": None,
        "model": None,
        "claims": None,
        "outcome": "ok",
        "correlation_id": None,
        "causation_id": None,
        "detail": (
            f"re-anchored at seq {old.seq} (hash {old.hash}) under signing key {kid}, "
            f"after {verified} legacy entries verified with AUDIT_CHAIN_KEY"
        ),
    }


async def _reanchor(
    client: AsyncMongoClient[Document], db: AsyncDatabase[Document], head: Document, *, signer: SigningKey, entries: int
) -> bool:
    """Chain the migration entry and sign the head in one transaction; ``False``: another replica did it."""
    chain, old = head["_id"], Tail.of(head)
    # Legacy chains did not state where expiry began: any sign of it (an access chain) covers the whole chain.
    expiring = old.expires_at is not None or old.expiring_from is not None
    expiring = expiring or bool(
        await db[AUDIT_LOG].find_one(
            {"chain": chain, "$or": [{"expires_at": {"$ne": None}}, {"prev_expires_at": {"$ne": None}}]}, {"_id": 1}
        )
    )
    since = 1 if expiring else None
    anchored = Tail(old.seq, old.hash, old.offset, old.expires_at, old.expiring_from, old.seq, old.hash, since)
    entry = migration_entry(chain, old, kid=signer.public.kid, verified=entries)
    tail = extend(anchored, entry, retention=None)  # kept for ever, whatever the chain's topic
    sign_entry(signer, entry)  # signed wherever it falls: the migration point's witness

    async def write(session: AsyncClientSession) -> None:
        await db[AUDIT_LOG].insert_one(entry, session=session)
        result = await db[AUDIT_HEADS].update_one(
            {"_id": chain, "seq": old.seq, "sig": {"$exists": False}},
            {"$set": tail.head(signer, chain), "$unset": {"mac": ""}},
            session=session,
        )
        if result.matched_count != 1:
            raise DuplicateKeyError("the head moved: another replica migrated this chain")

    try:
        async with client.start_session() as session:
            await session.with_transaction(write)
    except DuplicateKeyError:
        return False
    return True
