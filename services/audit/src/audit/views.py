"""The audit API's public shapes (:mod:`registry_contract.audit_views`) built from stored entries and verdicts."""

from __future__ import annotations

from audit.chain import CHAINED_FIELDS, Verdict
from registry_contract.audit_views import AuditEntryPublic, AuditVerification
from registry_contract.documents import Document

_SHOWN = (*CHAINED_FIELDS, "hash", "prev_hash", "sig")


def entry_public(doc: Document) -> AuditEntryPublic:
    """The public view of a stored entry: every field its hash covers."""
    return AuditEntryPublic.model_validate({("id" if name == "_id" else name): doc.get(name) for name in _SHOWN})


def verification_public(verdict: Verdict) -> AuditVerification:
    """The public view of a verdict; ``first_broken`` is left unset (so not shown) when ``ok``."""
    return AuditVerification.model_validate(verdict.public())
