"""What the deploy-tracker's HTTP bridge answers to a deployment report: accepted, or (``Prefer: wait``) its outcome.

A version's deployment history is :class:`registry_contract.views.VersionDeployments`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from registry_contract.documents import Document


class ReportAccepted(BaseModel):
    """A report published for the tracker, which applies it asynchronously."""

    event_id: str = Field(description="the CloudEvent id of the published report")
    status: Literal["accepted"] = "accepted"


class ReportOutcome(BaseModel):
    """What the tracker made of a report it took (``Prefer: wait``): applied, or kept as out of order."""

    event_id: str = Field(description="the CloudEvent id of the published report")
    outcome: Literal["applied", "out_of_order"] = Field(
        description="applied, or out_of_order: older than the environment's last report, kept in history only"
    )
    environment: str
    reported_status: str = Field(description="the status the report gave")
    status: str | None = Field(description="the environment's status after the report")
    previous_status: str | None = Field(description="the environment's status before the report")
    skipped_deploying: bool = Field(
        False, description="the environment's first report gave its end state: no deploying was seen"
    )

    @classmethod
    def of(cls, row: Document) -> ReportOutcome:
        """The outcome recorded in a history row the tracker did not refuse."""
        applied = row["outcome"] == "applied"
        return cls(
            event_id=row["report_id"],
            outcome=row["outcome"],
            environment=row["environment"],
            reported_status=row["status"],
            status=row["status"] if applied else row.get("previous_status"),
            previous_status=row.get("previous_status"),
            skipped_deploying=bool(row.get("skipped_deploying")),
        )
