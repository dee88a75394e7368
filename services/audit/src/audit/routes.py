"""The audit API: ``GET /v1/audit``, ``/verify``, ``/public-keys`` and ``/evidence/{team}/{name}/{version}``."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from pymongo.asynchronous.database import AsyncDatabase

from audit.chain import Verifier, verify
from audit.evidence import evidence
from audit.newest import newest_first
from audit.signing import SigningKey
from audit.storage import AUDIT_LOG
from audit.store import AuditStore
from audit.team_verify import DEFAULT_TEAM_VERIFY, MAX_TEAM_VERIFY, verify_team
from audit.views import entry_public, verification_public
from registry_contract import catalog
from registry_contract.audit_views import AuditEntryPublic, AuditPublicKeys, AuditVerification
from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.evidence import MAX_EVIDENCE_ENTRIES, EvidenceBundle
from registry_contract.sortkeys import time_key
from registry_contract.views import Page
from shared.chassis.http_auth import guard_of, requires
from shared.chassis.http_params import SlugPath, VersionPath
from shared.chassis.problems import Problem, documented, keyed_route_refusals

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=keyed_route_refusals("invalid"))


async def _db(request: Request) -> AsyncDatabase[Document]:
    """The audit log's database (its own server's, when it has one)."""
    log_db: AsyncDatabase[Document] = request.app.state.audit_db
    return log_db


async def _verifier(request: Request) -> Verifier:
    verifier: Verifier = request.app.state.verifier
    return verifier


async def _newest_written(request: Request) -> str | None:
    """The ``ts_key`` of the newest entry this process wrote, where a page starts looking (audit.newest)."""
    store: AuditStore = request.app.state.audit_store
    return store.newest_written


NewestWritten = Annotated[str | None, Depends(_newest_written)]


async def _signer(request: Request) -> SigningKey:
    signer: SigningKey = request.app.state.signer
    return signer


Reader = Annotated[Principal, Depends(requires("audit:read"))]
Db = Annotated[AsyncDatabase[Document], Depends(_db)]
Checker = Annotated[Verifier, Depends(_verifier)]
Signer = Annotated[SigningKey, Depends(_signer)]


class AuditFilters(BaseModel):
    """The query of ``GET /v1/audit``: every filter is optional, and they combine."""

    team: str | None = Field(None, pattern=catalog.SLUG_PATTERN, description="default: the caller's team")
    model: str | None = Field(None, max_length=130, description="``team/name``")
    type: str | None = Field(None, max_length=128, description="CloudEvents type, or ``undecodable``")
    principal: str | None = Field(None, max_length=64, description="the acting key's id")
    correlation_id: str | None = Field(None, max_length=128)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(catalog.DEFAULT_PAGE_SIZE, ge=1, le=catalog.MAX_PAGE_SIZE)
    cursor: str | None = Field(None, max_length=300, description="``next_cursor`` of the previous page")

    def query(self, team: str | None) -> Document:
        """The MongoDB filter of these parameters, within ``team``'s entries (any team if ``None``)."""
        equal = {
            "team": team,
            "model": self.model,
            "type": self.type,
            "actor": self.principal,
            "correlation_id": self.correlation_id,
        }
        query: dict[str, Any] = {field: value for field, value in equal.items() if value}
        bounds: dict[str, str] = {}
        if self.since:
            bounds["$gte"] = time_key(self.since, "")
        if self.until:
            bounds["$lt"] = time_key(self.until, "")
        if self.cursor:
            bounds["$lt"] = min(self.cursor, bounds.get("$lt", self.cursor))
        if bounds:
            query["ts_key"] = bounds
        return query


def _readable_team(request: Request, caller: Principal, team: str | None) -> str | None:
    """The team whose entries ``caller`` reads: its own, unless it is a platform admin."""
    if caller.is_platform_admin:
        return team
    if team and team != caller.team:
        guard_of(request).deny(request, caller, status=403, reason="other team's audit", resource_team=team)
        raise Problem(
            "forbidden", "you can read only your own team's audit entries (every team's takes platform:admin)"
        )
    return caller.team


@router.get("")
async def list_entries(
    caller: Reader,
    request: Request,
    db: Db,
    filters: Annotated[AuditFilters, Query()],
    newest_written: NewestWritten,
) -> Page[AuditEntryPublic]:
    """Entries newest first; ``next_cursor`` continues. Callers see their own team's entries."""
    query = filters.query(_readable_team(request, caller, filters.team))
    limit = filters.limit
    docs = await newest_first(db[AUDIT_LOG], query, limit + 1, newest_written=newest_written)
    next_cursor = docs[limit - 1]["ts_key"] if len(docs) > limit else None
    return Page[AuditEntryPublic](items=[entry_public(doc) for doc in docs[:limit]], next_cursor=next_cursor)


@router.get("/verify", response_model_exclude_unset=True)
async def verify_chains(
    caller: Reader,
    db: Db,
    verifier: Checker,
    signer: Signer,
    newest_written: NewestWritten,
    full: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_TEAM_VERIFY)] = DEFAULT_TEAM_VERIFY,
) -> AuditVerification:
    """Verify the audit log: ``ok`` or the first broken link.

    A platform admin verifies every chain, from the last verified point (``full=true``: from
    the start). A team key verifies its own team's newest ``limit`` entries: each one's hash
    and its links to its neighbours, without seeing other teams' entries.
    """
    if caller.is_platform_admin:
        return verification_public(await verify(db, verifier, signer=signer, full=full))
    verdict = await verify_team(db, verifier, team=caller.team, limit=limit, newest_written=newest_written)
    return verification_public(verdict)


@router.get("/public-keys")
async def public_keys(caller: Reader, verifier: Checker) -> AuditPublicKeys:
    """The Ed25519 public keys that verify the audit chain's signed heads, checkpoints and signed entries.

    The ``current`` key signs; ``retired`` ones verify what they signed before a rotation. With
    these alone (no secret), ``registry audit verify --public-key`` checks a chain offline.
    """
    return AuditPublicKeys.model_validate({"keys": verifier.keys.public()})


@router.get("/evidence/{team}/{name}/{version}", responses=documented("not_found"))
async def evidence_bundle(
    caller: Reader,
    request: Request,
    db: Db,
    verifier: Checker,
    signer: Signer,
    team: SlugPath,
    name: SlugPath,
    version: VersionPath,
) -> EvidenceBundle:
    """One version's evidence: its history from its events, the audit entries that prove it, and the chain proof.

    The owning team's entries about the version (its commands, events, deployment reports and the
    accesses of its URL), at most 500 (``truncated`` says when more exist; events
    first, then commands, reports and accesses), each with every field its hash covers; the Kafka
    records of its events (each one's digest is its entry's id), with a summary of what they say:
    the registration (fields, lineage, provenance), updates, approvals, lifecycle changes, alias
    moves to or from it, deployment reports, status changes and each environment's last status.
    The chain proof links each entry, through the hashes only of the entries after it (never
    shown: they may be other teams'), to the next point of its chain the service signed, and the
    service's Ed25519 ``attestation`` signs it all. ``registry audit verify --bundle FILE`` checks
    it offline. Scope ``audit:read`` of the owning team, or a platform admin; for anyone else,
    and for a version the team's log has nothing about, 404 ``not_found``.
    """
    if not caller.is_platform_admin and caller.team != team:  # answered like a miss, leaving no trace
        raise Problem("not_found", f"no audit entries about {team}/{name} {version[:64]!r}")
    topics: dict[str, str] = request.app.state.evidence_topics
    bundle = await evidence(
        db, verifier, signer, team=team, name=name, version=version, topics=topics, limit=MAX_EVIDENCE_ENTRIES
    )
    if bundle is None:
        raise Problem("not_found", f"no audit entries about {team}/{name} {version[:64]!r}")
    return bundle
