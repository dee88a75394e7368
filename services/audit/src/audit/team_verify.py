"""Verifying one team's audit entries without showing it anyone else's.

Chains are per topic-partition, so a team's entries sit between other teams' entries. Each of
the team's entries is checked against its own hash (so it was not edited) and against its two
neighbours' links (so nothing was inserted or removed right next to it); the neighbours are
read for their hashes only and never reported. Removing another team's entry elsewhere in a
chain is for the platform verification to find. A neighbour may be missing because it expired
(access events): only where the hashed expiry fields say so (:func:`audit.links.may_be_gone`),
and only if the entry still present before the gap (read, never reported) has expired too.
The chain's head must carry the audit service's signature, and an entry's version must match
the migration point it states, as in the platform verification.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from audit.chain import (
    BAD_ENTRY_SIGNATURE,
    BAD_HEAD_SIGNATURE,
    EXPIRY_HASHED,
    GENESIS,
    Verdict,
    Verifier,
    anchor_problem,
    expiry_problem,
    may_expire,
    version_problem,
)
from audit.links import Tail, has_expired, may_be_gone, may_precede_a_gap
from audit.newest import newest_first
from audit.storage import AUDIT_HEADS, AUDIT_LOG
from registry_contract.documents import Document

DEFAULT_TEAM_VERIFY = 10_000
MAX_TEAM_VERIFY = 100_000
_LINKS = {"seq": 1, "hash": 1, "prev_hash": 1, "chain": 1}
_GAP = "previous entries missing after an entry that has not expired (expiry removes only the oldest)"


async def verify_team(
    db: AsyncDatabase[Document],
    verifier: Verifier,
    *,
    team: str,
    limit: int,
    now: datetime | None = None,
    newest_written: str | None = None,
) -> Verdict:
    """Check ``team``'s newest ``limit`` entries and their links; report only the team's own entries.

    ``newest_written`` is where the newest entries are looked for first (:func:`audit.newest.newest_first`).
    """
    now = now or datetime.now(UTC)
    docs = await newest_first(db[AUDIT_LOG], {"team": team}, limit, newest_written=newest_written)
    by_chain: dict[str, list[Document]] = defaultdict(list)
    for doc in docs:
        by_chain[doc["chain"]].append(doc)
    heads = {doc["_id"]: doc async for doc in db[AUDIT_HEADS].find({"_id": {"$in": sorted(by_chain)}})}
    checked, unchecked = 0, 0
    for chain in sorted(by_chain):
        mine = sorted(by_chain[chain], key=lambda d: d["seq"])
        head = heads.get(chain)
        if head is not None and not verifier.head_ok(chain, head):
            broken = {"chain": chain, "seq": head["seq"], "entry_id": None, "problem": BAD_HEAD_SIGNATURE}
            return Verdict(False, checked, len(by_chain), broken, scope=f"team:{team}")
        wanted = sorted({s for d in mine for s in (d["seq"] - 1, d["seq"] + 1)} - {d["seq"] for d in mine})
        around = {d["seq"]: d for d in mine}
        async for doc in db[AUDIT_LOG].find({"chain": chain, "seq": {"$in": wanted}}, _LINKS):
            around.setdefault(doc["seq"], doc)
        for doc in mine:
            if doc["seq"] - 1 not in around and doc["seq"] > 1:  # a gap before it: what stands before the gap
                earlier = await db[AUDIT_LOG].find_one({"chain": chain, "seq": {"$lt": doc["seq"]}}, sort=[("seq", -1)])
                if earlier is not None and _stands_live(verifier, earlier, head, now):
                    broken = {"chain": chain, "seq": doc["seq"], "entry_id": doc["_id"], "problem": _GAP}
                    return Verdict(
                        False, checked, len(by_chain), broken, scope=f"team:{team}", legacy_unchecked=unchecked
                    )
            problem = _problem(verifier, doc, around, head, now)
            if problem:
                broken = {"chain": chain, "seq": doc["seq"], "entry_id": doc["_id"], "problem": problem}
                return Verdict(False, checked, len(by_chain), broken, scope=f"team:{team}", legacy_unchecked=unchecked)
            checked += 1
            unchecked += verifier.digest(doc.get("prev_hash", ""), doc) is None
    return Verdict(True, checked, len(by_chain), scope=f"team:{team}", legacy_unchecked=unchecked)


def _stands_live(verifier: Verifier, doc: Document, head: Document | None, now: datetime) -> bool:
    """Whether ``doc``, present before a gap, rules out that the gap expired (as the platform walk judges)."""
    anchor = Tail.of(head)
    checked = verifier.digest(doc.get("prev_hash", ""), doc) == doc.get("hash")
    if may_precede_a_gap(doc, checked=checked and verifier.entry_ok(doc), now=now):
        return False
    unhashed_legacy = doc.get("v") in (None, 2) and doc["seq"] <= anchor.anchor_seq
    return may_expire(doc["seq"], anchor.expiring_since) and not unhashed_legacy


def _problem(
    verifier: Verifier, doc: Document, around: dict[int, Document], head: Document | None, now: datetime
) -> str | None:
    anchor = Tail.of(head)  # no head: nothing may be legacy, and the entry is reported below
    problem = version_problem(doc, anchor.anchor_seq) or expiry_problem(doc, anchor.expiring_since)
    if problem:
        return problem
    digest = verifier.digest(doc.get("prev_hash", ""), doc)
    if digest is not None and doc.get("hash") != digest:
        return "hash does not match (entry edited)"
    problem = anchor_problem(doc, anchor.anchor_seq, anchor.anchor_hash)
    if problem:
        return problem
    if not verifier.entry_ok(doc):
        return BAD_ENTRY_SIGNATURE
    before = around.get(doc["seq"] - 1)
    expected_prev = GENESIS if doc["seq"] == 1 else (before or {}).get("hash")
    expired_before = (
        before is None
        and doc.get("v") in EXPIRY_HASHED
        and digest is not None
        and may_expire(doc["seq"] - 1, anchor.expiring_since)
        and may_be_gone(
            doc.get("prev_expires_at"), doc.get("prev_expiring_from"), first_missing=doc["seq"] - 1, now=now
        )
    )
    if doc.get("prev_hash") != expected_prev and not expired_before:
        return "previous entry missing or changed"
    after = around.get(doc["seq"] + 1)
    if after is not None:
        return None if after.get("prev_hash") == doc["hash"] else "next entry does not link to this one"
    if head is None or head["seq"] != doc["seq"] or head["hash"] != doc["hash"]:
        # The next entry expires no earlier than this one: gone while this one has expired too
        # (a TTL pass under way), it is for the platform verification to judge.
        return None if has_expired(doc.get("expires_at"), now=now) else "next entry missing (or the chain's head moved)"
    return None
