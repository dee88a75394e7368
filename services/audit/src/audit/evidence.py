"""Evidence bundles: a version's audit entries, event records and chain proof, signed (``GET /v1/audit/evidence``).

What a bundle holds and how it is checked offline is the contract's
(:mod:`registry_contract.evidence`, :mod:`registry_contract.evidence_check`). The service adds
what only it can: it reads the owning team's entries about the version, the records it kept of
their events, and, for each entry, the entries after it up to the next signed point of its chain.
It checks those undisclosed entries' contents itself (their hashes recompute and link, the signed
point verifies) and shows them by their hashes only; then it signs the bundle's proof. A chain
that does not check is not attested: the bundle says why.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from audit.links import Tail, Verifier, entry_fields, head_fields, must_be_signed
from audit.signing import SigningKey
from audit.storage import AUDIT_HEADS, AUDIT_LOG, AUDIT_RECORDS
from audit.views import entry_public
from registry_contract import messages
from registry_contract.audit_chain import SIGNED_EVERY, VERSION
from registry_contract.audit_views import AuditPublicKey
from registry_contract.documents import Document
from registry_contract.evidence import (
    MAX_EVIDENCE_ENTRIES,
    EvidenceAnchor,
    EvidenceBundle,
    EvidenceLink,
    EvidenceRecord,
    attested,
    events_of,
    summarize,
)
from registry_contract.times import utc_text
from shared.chassis.mongo import find_by_ids

_ALIASES = (messages.ALIAS_SET, messages.ALIAS_REMOVED)
SCAN_LIMIT = 20_000  # entries of the model (and accesses of the version) read at most per bundle


class ChainUnchecked(Exception):
    """An entry of the bundle does not link to a signed point: the service does not attest it."""


async def evidence(
    db: AsyncDatabase[Document],
    verifier: Verifier,
    signer: SigningKey,
    *,
    team: str,
    name: str,
    version: str,
    topics: dict[str, str],
    limit: int = MAX_EVIDENCE_ENTRIES,
) -> EvidenceBundle | None:
    """The bundle of ``team/name`` ``version``; ``None`` when the team's log has nothing about it.

    ``topics``: the ``events``, ``commands``, ``deploy`` and ``access`` topic names; entries are
    kept in that order of priority when more than ``limit`` concern the version.
    """
    log = db[AUDIT_LOG]
    model = f"{team}/{name}"
    about_model = await log.find({"team": team, "model": model}).sort("ts_key", 1).limit(SCAN_LIMIT).to_list()
    if not about_model:  # nothing about the model: no access scan for it either
        return None
    path = re.escape(f"/v1/models/{team}/{name}/versions/{version}")
    # Accesses of the version's URL, from the model's first entry on (none can come before it).
    since = {"ts_key": {"$gte": about_model[0]["ts_key"]}}
    access_query = {"team": team, "topic": topics["access"], "detail": {"$regex": f"^[A-Z]+ {path}[/ ?]"}} | since
    accesses = await log.find(access_query).sort("ts_key", 1).limit(SCAN_LIMIT).to_list()
    # Entries naming the version, and alias moves (which name the version they move to): only their records are read.
    candidates = [doc for doc in about_model if doc.get("detail") == f"version {version}" or doc["type"] in _ALIASES]
    event_ids = [doc["_id"] for doc in candidates if doc["topic"] == topics["events"]]
    kept = await find_by_ids(db[AUDIT_RECORDS], event_ids) if event_ids else {}
    chosen = [doc for doc in candidates if _concerns(doc, kept.get(doc["_id"]), version)] + accesses
    if not chosen:
        return None
    rank = {topic: place for place, topic in enumerate(topics[k] for k in ("events", "commands", "deploy", "access"))}
    # Legacy entries (before signed chains) are left out: their hashes need the legacy chain key.
    current = sorted((doc for doc in chosen if doc.get("v") == VERSION), key=lambda d: rank.get(d["topic"], 9))
    included = current[:limit]
    chains = sorted({doc["chain"] for doc in included})
    heads = {doc["_id"]: doc async for doc in db[AUDIT_HEADS].find({"_id": {"$in": chains}})}
    # Appended after the head was read: in the next bundle.
    included = sorted(
        (d for d in included if d["chain"] in heads and d["seq"] <= heads[d["chain"]]["seq"]),
        key=lambda d: (d["chain"], d["seq"]),
    )
    entries = [entry_public(doc) for doc in included]
    records = [
        EvidenceRecord.of(doc["_id"], doc["topic"], doc["partition"], doc["offset"], kept[doc["_id"]])
        for doc in included
        if doc["_id"] in kept
    ]
    unrecorded = sorted(doc["_id"] for doc in included if doc["topic"] == topics["events"] and doc["_id"] not in kept)
    bundle = EvidenceBundle(
        team=team,
        name=name,
        version=version,
        exported_at=utc_text(datetime.now(UTC)),
        limit=limit,
        truncated=len(current) > limit or SCAN_LIMIT in (len(about_model), len(accesses)),
        omitted=len(chosen) - len(included),
        summary=summarize(events_of(records, entries), team, name, version),
        entries=entries,
        records=records,
        unrecorded=unrecorded,
        links=[],
        anchors=[],
        public_keys=[AuditPublicKey.model_validate(key) for key in verifier.keys.public()],
    )
    try:
        bundle.links, bundle.anchors = await _proof(db, verifier, included, heads)
    except ChainUnchecked as exc:
        bundle.problem = str(exc)
        return bundle
    bundle.attestation = signer.sign("evidence", attested(bundle))
    return bundle


def _concerns(doc: Document, record: Document | None, version: str) -> bool:
    """Whether an entry of the model concerns ``version``: it names it, or its event moves an alias to or from it."""
    if doc.get("detail") == f"version {version}":
        return True
    if record is None or doc.get("type") not in _ALIASES:
        return False
    try:
        data = EvidenceRecord.of(doc["_id"], doc["topic"], doc["partition"], doc["offset"], record).event().data
    except ValueError:
        return False
    return data.get("previous_version") == version


def _signed_point(seq: int, head_seq: int) -> int:
    """The first seq at or after ``seq`` whose hash the service signed: an entry at a multiple of 64, or the head."""
    if must_be_signed(seq):
        return seq
    return min((seq // SIGNED_EVERY + 1) * SIGNED_EVERY, head_seq)


async def _proof(
    db: AsyncDatabase[Document], verifier: Verifier, included: list[Document], heads: dict[str, Document]
) -> tuple[list[EvidenceLink], list[EvidenceAnchor]]:
    """The hash-only links from each included entry to its chain's next signed point, and those points, checked."""
    by_chain: dict[str, list[Document]] = defaultdict(list)
    for doc in included:
        by_chain[doc["chain"]].append(doc)
    links: list[EvidenceLink] = []
    anchors: list[EvidenceAnchor] = []
    for chain in sorted(by_chain):
        head = heads[chain]
        if not verifier.head_ok(chain, head):
            raise ChainUnchecked(f"{chain}: the chain's head is not signed by the audit service")
        mine = {doc["seq"]: doc for doc in by_chain[chain]}
        wanted: set[int] = set()
        points: set[int] = set()
        for seq in mine:
            point = _signed_point(seq, head["seq"])
            points.add(point)
            wanted.update(range(seq, point + 1))
        others = {
            other["seq"]: other
            async for other in db[AUDIT_LOG].find({"chain": chain, "seq": {"$in": sorted(wanted - set(mine))}})
        }
        chain_docs = mine | others
        for seq in sorted(wanted):
            found = chain_docs.get(seq)
            if found is None:
                raise ChainUnchecked(f"{chain}: entry {seq} is missing")
            doc = found
            if verifier.digest(doc.get("prev_hash", ""), doc) != doc.get("hash"):
                raise ChainUnchecked(f"{chain}: entry {seq}'s hash does not match (entry edited)")
            before = chain_docs.get(seq - 1)
            if seq - 1 in wanted and before is not None and doc.get("prev_hash") != before["hash"]:
                raise ChainUnchecked(f"{chain}: entry {seq} does not link to entry {seq - 1}")
            if not verifier.entry_ok(doc):
                raise ChainUnchecked(f"{chain}: entry {seq}'s signature does not verify")
            if seq not in mine:
                links.append(EvidenceLink(chain=chain, seq=seq, prev_hash=doc["prev_hash"], hash=doc["hash"]))
        for point in sorted(points):
            anchors.append(_anchor(chain, chain_docs[point], head))
    return links, anchors


def _anchor(chain: str, doc: Document, head: Document) -> EvidenceAnchor:
    """The signed point at ``doc``: its own signature, or the head's when it is the chain's last entry."""
    seq, hash_ = doc["seq"], doc["hash"]
    if "sig" in doc:
        return EvidenceAnchor(
            chain=chain, seq=seq, hash=hash_, kind="entry", fields=entry_fields(chain, seq, hash_), sig=doc["sig"]
        )
    if head["seq"] != seq or head["hash"] != hash_:
        raise ChainUnchecked(f"{chain}: entry {seq} is neither signed nor the chain's head")
    return EvidenceAnchor(
        chain=chain, seq=seq, hash=hash_, kind="head", fields=head_fields(chain, Tail.of(head)), sig=head["sig"]
    )
