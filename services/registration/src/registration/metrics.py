"""Prometheus metrics of the registration service, and how command outcomes are counted and audited."""

from __future__ import annotations

from prometheus_client import Counter

from registration.commands import Command, Outcome
from registry_contract import messages
from shared.chassis.access import ACCESS_DENIED, AUTH_FAILURES, RATE_LIMITED, AccessLog

COMMANDS = Counter(
    "registry_commands_total",
    "Commands handled, by type, outcome and reject reason",
    ["type", "outcome", "reason"],
)
REGISTRATIONS = Counter(
    "registry_registrations_total", "Model versions registered, by team and framework", ["team", "framework"]
)
REJECTIONS = Counter(
    "registry_rejections_total",
    "Commands rejected, by the sender's team (anonymous when unauthenticated) and reason",
    ["team", "reason"],
)
_DENIAL_EVENTS = {
    "unauthenticated": messages.ACCESS_AUTH_FAILED,
    "forbidden": messages.ACCESS_DENIED,
    "rate_limited": messages.ACCESS_RATE_LIMITED,
}


def observe(outcomes: list[Outcome], commands: list[Command], access: AccessLog, *, topic: str) -> None:
    """Count outcomes, and record refused commands as access events (every denial is one)."""
    # Outcomes come in the order of their commands. (Not matched by ce_id: two teams may use one.)
    for command, outcome in zip(commands, outcomes, strict=True):
        if outcome.replayed:
            continue
        reason = outcome.event.data.get("reason", "") if outcome.rejected else ""
        # ce_type comes from the sender: anything but a contract command type is counted as "other".
        command_type = command.event.type if command.event.type in messages.COMMAND_TYPES else "other"
        COMMANDS.labels(command_type, "rejected" if outcome.rejected else "accepted", reason).inc()
        if outcome.version is not None and outcome.event.type == messages.MODEL_VERSION_REGISTERED:
            REGISTRATIONS.labels(outcome.version["team"], outcome.version["framework"]).inc()
        principal = command.principal
        # The sender's authenticated team, never the team named in the command: labels stay bounded.
        team = principal.team if principal else "anonymous"
        if outcome.rejected:
            REJECTIONS.labels(team, reason).inc()
        if reason in _DENIAL_EVENTS:
            if reason == "unauthenticated":
                AUTH_FAILURES.labels(access.service, "command").inc()
            elif reason == "forbidden":
                ACCESS_DENIED.labels(access.service, team, "command").inc()
            else:
                RATE_LIMITED.labels(access.service, team).inc()
            access.record(
                _DENIAL_EVENTS[reason],
                principal=principal,
                method="KAFKA",
                path=topic,
                status={"unauthenticated": 401, "forbidden": 403}.get(reason, 429),
                reason=reason,
                resource_team=outcome.event.data.get("team"),
                # The command's own: a batch is handled outside any one request's context.
                correlation_id=command.event.correlation_id,
            )
