"""The audit service: entries of your team's audit log (scope ``audit:read``) and the verification of its chains."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict, Unpack

from registry_client.config import ApiBase
from registry_client.steps import Call, Items, as_model, pages, path, query
from registry_client.surface import endpoint, iterator
from registry_contract.audit_views import AuditEntryPublic, AuditPublicKeys, AuditVerification
from registry_contract.evidence import EvidenceBundle
from registry_contract.views import Page


class AuditFilters(TypedDict, total=False):
    """Filters of the audit log; they combine. ``team`` defaults to the key's (only platform admins read others)."""

    team: str
    model: str  # team/name
    type: str  # a CloudEvents type, or "undecodable"
    principal: str  # the acting key's id
    correlation_id: str
    since: datetime
    until: datetime


def _entries(limit: int | None, cursor: str | None, filters: AuditFilters) -> Call[Page[AuditEntryPublic]]:
    params = query(**filters, limit=limit, cursor=cursor)
    return Call("audit", "GET", path("audit"), as_model(Page[AuditEntryPublic]), params)


class AuditReads(ApiBase):
    """The audit API."""

    @endpoint
    def audit_page(
        self, *, limit: int | None = None, cursor: str | None = None, **filters: Unpack[AuditFilters]
    ) -> Call[Page[AuditEntryPublic]]:
        """One page of audit entries, newest first."""
        return _entries(limit, cursor, filters)

    @iterator
    def audit_entries(
        self, *, page_size: int | None = None, **filters: Unpack[AuditFilters]
    ) -> Items[AuditEntryPublic]:
        """Every audit entry matching ``filters``, newest first."""
        return pages(self.config.retry, lambda cursor: _entries(page_size, cursor, filters))

    @endpoint
    def verify_audit(self, *, full: bool | None = None, limit: int | None = None) -> Call[AuditVerification]:
        """Verify the audit chains: ``ok``, or the first broken link.

        A platform admin verifies every chain (``full``: from the start, not the last checkpoint);
        a team key verifies its team's newest ``limit`` entries and their links.
        """
        return Call("audit", "GET", path("audit", "verify"), as_model(AuditVerification), query(full=full, limit=limit))

    @endpoint
    def audit_public_keys(self) -> Call[AuditPublicKeys]:
        """The Ed25519 public keys that verify the audit chains (current and retired): all an auditor needs."""
        return Call("audit", "GET", path("audit", "public-keys"), as_model(AuditPublicKeys))

    @endpoint
    def export_evidence(self, team: str, name: str, version: str) -> Call[EvidenceBundle]:
        """One version's evidence bundle: its history, the audit entries that prove it and the chain proof.

        Check it offline with :func:`registry_contract.evidence_check.verify_bundle` (or ``registry
        audit verify --bundle``). Scope ``audit:read`` of the owning team, or a platform admin.
        """
        return Call("audit", "GET", path("audit", "evidence", team, name, version), as_model(EvidenceBundle))
