"""What one deployment report does: read it, check its sender, move the state machine (no I/O)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.transitions import (
    APPROVED,
    approval_status,
    decide,
    needs_approval,
    needs_provenance,
    overall,
    provenance_verified,
    skips_deploying,
)
from registry_contract import messages
from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.ids import sender_scoped, version_id

Reported = messages.DeploymentStatusReported


@dataclass(frozen=True)
class Report:
    """A deployment report with the principal of the key that sent it (``None``: no valid key)."""

    event: CloudEvent
    principal: Principal | None
    unproven: str | None = None  # with no principal: why the record proves none (told its sender)

    @property
    def key(self) -> str:
        """The report's identity: its ``ce_id`` within the sender's team, so no other sender can suppress it."""
        return sender_scoped(self.sender_team, self.event.id)

    @property
    def sender_team(self) -> str | None:
        """The team of the key that sent the report (``None``: no valid key)."""
        return self.principal.team if self.principal else None


@dataclass(frozen=True)
class Rejected:
    """Why a report changes nothing: a reason code of the problem catalogue and a message for its sender."""

    reason: str
    message: str


UNAUTHENTICATED = Rejected("unauthenticated", "the report needs a valid API key")
FORBIDDEN = Rejected(
    "forbidden",
    "this key may not report deployments of this model: that takes deployments:write in its team, or platform:admin",
)
# The setting that lists the environments where a version goes to work only once approved.
APPROVAL_ENVIRONMENTS = DeployTrackerSettings.env_name("approval_environments")
# The setting that lists the environments where a version goes to work only with verified provenance.
PROVENANCE_ENVIRONMENTS = DeployTrackerSettings.env_name("provenance_environments")


@dataclass(frozen=True)
class Refused:
    """A report that changes nothing, with as much of it as its sender may say."""

    why: Rejected
    data: Reported | None = None  # set when the sender may report on the model (filed under the model)
    claimed: Reported | None = None  # set when the model is not the sender's: kept in history, never applied
    version: Document | None = None  # the version, when it exists
    previous: str | None = None  # the environment's status before the report

    @property
    def version_id(self) -> str | None:
        """The id of the version the report is about, when the sender may report on it."""
        return version_id(self.data.team, self.data.name, self.data.version) if self.data is not None else None


@dataclass(frozen=True)
class Moved:
    """A report the state machine takes: ``applied``, or ``out_of_order`` (history only)."""

    outcome: str
    data: Reported
    version: Document
    previous: str | None  # the environment's status before the report (``None``: never reported)

    @property
    def version_id(self) -> str:
        """The id of the version the report moves."""
        return version_id(self.data.team, self.data.name, self.data.version)

    @property
    def skipped_deploying(self) -> bool:
        """Whether the report is its environment's first and reports an end state (no ``deploying`` seen)."""
        return self.outcome == "applied" and skips_deploying(self.previous, self.data.status)


Verdict = Refused | Moved


def parse(event: CloudEvent) -> Reported | Rejected:
    """The report's data, or why it cannot be read."""
    if event.type != messages.DEPLOY_STATUS_REPORTED:
        return Rejected("invalid", f"unsupported report type {event.type!r}")
    try:
        return Reported.model_validate(event.data)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return Rejected("invalid", "invalid report: " + details)


def judge(
    report: Report,
    parsed: Reported | Rejected,
    versions: Mapping[str, Document],
    *,
    approval_environments: Collection[str] = frozenset(),
    provenance_environments: Collection[str] = frozenset(),
) -> Verdict:
    """What one report does: the first failing check refuses it, authentication first.

    The approval gate comes before the state machine: a report that would put an unapproved
    version to work in a gated environment is ``not_approved`` wherever the machine would take it.
    The provenance gate follows it: a version without verified provenance is ``unsigned`` there.
    """
    principal = report.principal
    if principal is None:  # before validation: nothing about the data is said to strangers
        return Refused(Rejected("unauthenticated", report.unproven) if report.unproven else UNAUTHENTICATED)
    if isinstance(parsed, Rejected):
        return Refused(parsed)
    # Only the owning team (or a platform admin) reports deployments; a share grants reading only.
    if not principal.has("deployments:write") or not principal.acts_for(parsed.team):
        return Refused(FORBIDDEN, claimed=parsed)
    version = versions.get(version_id(parsed.team, parsed.name, parsed.version))
    if version is None or version.get("deleted"):
        return Refused(Rejected("not_found", f"{parsed.team}/{parsed.name} has no version {parsed.version}"), parsed)
    gated = needs_approval(parsed.environment, parsed.status, approval_environments)
    if gated and approval_status(version) != APPROVED:
        return _unapproved(parsed, version)
    if needs_provenance(parsed.environment, parsed.status, provenance_environments) and not provenance_verified(
        version
    ):
        return _unsigned(parsed, version)
    return _move(parsed, version)


def _unapproved(data: Reported, version: Document) -> Refused:
    """The refusal of a report that would put an unapproved ``version`` to work where approval is required."""
    what = f"{data.team}/{data.name} {data.version}"
    message = (
        f"{what} is not approved for {data.environment} (approval: {approval_status(version)}): a key with "
        f"models:approve approves it first; {APPROVAL_ENVIRONMENTS} lists the environments that need approval"
    )
    previous = _environment(version, data.environment)
    return Refused(Rejected("not_approved", message), data, version=version, previous=previous)


def _unsigned(data: Reported, version: Document) -> Refused:
    """The refusal of a report that would put ``version``, without verified provenance, to work where it is required."""
    what = f"{data.team}/{data.name} {data.version}"
    message = (
        f"{what} has no verified provenance, which {data.environment} requires: register a version with a "
        f"signature (provenance.signature) one of the team's signing keys verifies; {PROVENANCE_ENVIRONMENTS} "
        "lists the environments that require it"
    )
    previous = _environment(version, data.environment)
    return Refused(Rejected("unsigned", message), data, version=version, previous=previous)


def _environment(version: Document, environment: str) -> str | None:
    """The status of ``environment`` of ``version`` (``None``: never reported)."""
    current = (version.get("environments") or {}).get(environment)
    return str(current["status"]) if current else None


def _move(data: Reported, version: Document) -> Verdict:
    """Where the state machine (``transitions``) takes the report's environment of ``version``."""
    current = (version.get("environments") or {}).get(data.environment)
    previous = current["status"] if current else None
    outcome = decide(current, data.status, data.occurred_at.astimezone(UTC))
    if outcome == "illegal_transition":
        message = f"{previous or 'registered'} → {data.status} is not allowed in {data.environment}"
        return Refused(Rejected("conflict", message), data, version=version, previous=previous)
    return Moved(outcome, data, version, previous)


def status_after(moved: Moved, report_id: str, now: datetime) -> Document:
    """The version's status fields once ``moved`` is applied: its environments and overall status."""
    data = moved.data
    environments = dict(moved.version.get("environments") or {})
    environments[data.environment] = {
        "status": data.status,
        "occurred_at": data.occurred_at.astimezone(UTC),
        "report_id": report_id,
        "target": data.target,
        "updated_at": now,
    }
    return {"environments": environments, "status": overall(environments)}
