"""Public shapes of the audit API: its entries and the verdicts of a verification.

The audit service builds them from its stored entries and verdicts (``audit.views``).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from registry_contract.times import UtcTime


class AuditEntryPublic(BaseModel):
    """One audited record; every field its hash covers is shown, so clients can check it too.

    Entries written before keyed chains lack the newer fields: those are ``null``.
    """

    id: str = Field(description="digest of the record's position and content")
    v: int | None = Field(None, description="chain format version; null before keyed chains")
    chain: str = Field(description="the source topic-partition, ``topic:partition``")
    seq: int
    topic: str
    partition: int
    offset: int
    received_at: UtcTime
    ts_key: str | None = Field(None, description="sort key; the value ``next_cursor`` continues from")
    ce_id: str | None = None
    type: str
    source: str | None = None
    time: str | None = Field(None, description="the event's own time, as the producer wrote it")
    verified: str | None = Field(None, description="``key``, ``service``, or null when nothing was proven")
    actor: str | None = None
    actor_team: str | None = None
    team: str | None = None
    model: str | None = None
    claims: dict[str, str] | None = Field(None, description="what an unproven record said about itself")
    outcome: str
    correlation_id: str | None = None
    causation_id: str | None = None
    detail: str | None = None
    expires_at: UtcTime | None = Field(None, description="when the entry may be deleted (access events); null: never")
    prev_expires_at: UtcTime | None = Field(None, description="the previous entry's ``expires_at``")
    prev_expiring_from: int | None = Field(
        None, description="first ``seq`` of the run of expiring entries the previous entry ends"
    )
    hash: str
    prev_hash: str
    sig: dict[str, str] | None = Field(
        None,
        description="the audit service's Ed25519 signature (``kid``, ``sig`` hex) over ``chain``, ``seq`` and "
        "``hash``, on every entry whose ``seq`` is a multiple of 64 (and the migration entry)",
    )


class BrokenLink(BaseModel):
    """The first entry that does not link to its chain."""

    chain: str
    seq: int
    entry_id: str | None = Field(description="null when the entry is missing")
    problem: str


class AuditVerification(BaseModel):
    """The answer of ``GET /v1/audit/verify``; ``first_broken`` is present only when not ``ok``."""

    ok: bool
    entries: int = Field(description="entries checked")
    chains: int = Field(description="chains checked")
    scope: str = Field(description="``all``, or ``team:<team>`` for a team's own entries")
    first_broken: BrokenLink | None = None
    legacy_unchecked: int | None = Field(
        None,
        description="entries written before signed chains whose contents were not checked (verified without "
        "the legacy ``AUDIT_CHAIN_KEY``): only their links and the signed migration point were",
    )


class AuditPublicKey(BaseModel):
    """A public key that verifies the audit service's signatures."""

    kid: str = Field(description="key id: the first 16 hex digits of the SHA-256 of the raw public key")
    alg: str = Field(description="``Ed25519``")
    public_key: str = Field(description="the raw 32-byte public key, hex")
    status: str = Field(description="``current`` (signs now) or ``retired`` (verifies earlier signatures)")


class AuditPublicKeys(BaseModel):
    """The answer of ``GET /v1/audit/public-keys``."""

    keys: list[AuditPublicKey]
