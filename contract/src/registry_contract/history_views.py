"""What the history reads answer: an alias's moves, an environment's timeline, a model's timeline.

Each entry is built from an event or a deployment report the query service holds; lists come
oldest first (the model's timeline newest first), paginated with ``next_cursor``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from registry_contract import messages
from registry_contract.documents import Document
from registry_contract.times import UtcTime

AliasAction = Literal["set", "moved", "removed"]
TimelineKind = Literal["alias", "approval", "deleted", "deployment"]


class AliasMovePublic(BaseModel):
    """One set, move or removal of an alias."""

    alias: str
    action: AliasAction = Field(
        description="set (new alias, or set again to the version it named), moved (to another version) or removed"
    )
    version: str | None = Field(description="the version the alias pointed at after this change (null once removed)")
    previous_version: str | None = Field(description="the version it pointed at before (null if it was new)")
    at: UtcTime = Field(description="when registration made the change")
    event_id: str
    correlation_id: str | None = None
    by: str | None = Field(None, description="the key id that made the change, when the event names one")

    @classmethod
    def of(cls, row: Document) -> AliasMovePublic:
        """The move a history row (``alias_set`` or ``alias_removed``) records."""
        data = row["data"]
        version, previous = data.get("version"), data.get("previous_version")
        removed = row["type"] == messages.ALIAS_REMOVED
        action: AliasAction = "removed" if removed else ("set" if previous in (None, version) else "moved")
        return cls(
            alias=data["alias"],
            action=action,
            version=None if removed else version,
            previous_version=previous,
            at=row["time"],
            event_id=row["_id"],
            correlation_id=row.get("correlation_id"),
            by=data.get("by"),
        )


class EnvironmentChangePublic(BaseModel):
    """One status change in an environment: which version moved, from what to what, and when."""

    environment: str
    version: str
    previous_status: str | None = Field(description="the version's status there before (null: its first report)")
    status: str
    at: UtcTime = Field(description="when the deploy-tracker recorded the report (received_at)")
    occurred_at: UtcTime = Field(description="when the pipeline says it happened")
    report_id: str = Field(description="the report's CloudEvent id")
    target: str | None = None
    pipeline: str | None = None
    run_id: str | None = None
    correlation_id: str | None = None
    reporter: str | None = Field(None, description="the key id that sent the report")

    @classmethod
    def of(cls, row: Document) -> EnvironmentChangePublic:
        """The change an applied deployment report records."""
        fields = ("environment", "version", "previous_status", "status", "occurred_at", "target", "pipeline")
        values: dict[str, Any] = {name: row.get(name) for name in fields}
        return cls(
            **values,
            at=row.get("received_at"),  # the timelines leave out reports without one
            report_id=row.get("report_id") or row["_id"],
            run_id=row.get("run_id"),
            correlation_id=row.get("correlation_id"),
            reporter=row.get("reporter"),
        )


class TimelineEntryPublic(BaseModel):
    """One entry of a model's timeline: an alias move, an approval decision, a deletion or a deployment."""

    kind: TimelineKind
    at: UtcTime
    version: str | None = Field(description="the version concerned (an alias's new version; null once removed)")
    subject: str | None = Field(None, description="the alias (kind alias) or the environment (kind deployment)")
    previous: str | None = Field(None, description="before: the alias's version, the approval or the status")
    current: str | None = Field(None, description="after: the approval or the status (kind approval, deployment)")
    by: str | None = Field(None, description="the key id that made the change, when known")
    ref: str = Field(description="the event id (the report id for a deployment)")
    correlation_id: str | None = None
