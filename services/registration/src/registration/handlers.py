"""Command handling: parse, authorize, apply each command's use case, commit the batch once.

Commands are handled a batch at a time, and the batch is one MongoDB transaction: the stand-in
writes several times more documents per second in bulk than one at a time. A batch is first
tried optimistically, without reading what registrations might collide with (unique indexes
catch that); only when the commit reports a duplicate key is it re-run reading everything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from registration import domain
from registration.batch import DEFAULT_MAX_SHARES, Batch
from registration.commands import Command, Outcome, Rejected, parse, request_fingerprint
from registration.config import RegistrationSettings
from registration.repository import ConcurrentWrite, Repository
from registration.usecases import USE_CASES
from registry_contract import messages
from registry_contract.documents import Document
from registry_contract.times import to_stored_precision
from shared.outbox.rows import event_from_outbox

__all__ = ["Command", "Outcome", "checked_first", "event_from_outbox", "handle_commands", "request_fingerprint"]


# Commands whose rules read the model document (its readers or aliases), or whose answer shows the
# version with its aliases (the model keeps them). A registration reads it only to create it, so
# not when this process knows it is stored (registration.known_models): see _load.
MODEL_READING = (
    messages.UpdateModelVersion,
    messages.SetApproval,
    messages.ShareModel,
    messages.SetAlias,
    messages.RemoveAlias,
    messages.UpdateModel,
    messages.DeleteVersion,
    messages.SetVersionLifecycle,
)


# Verifies the provenance signatures of registrations: command key -> the provenance to record, or
# the refusal (``bad_signature``). Awaited once per batch, before its transaction.
CheckSignatures = Callable[
    [Sequence[tuple[str, messages.RegisterModelVersion]]], Awaitable[dict[str, Document | Rejected]]
]
UNCHECKED = Rejected("bad_signature", "this registry verifies no signatures: register the version without provenance")


# What limits a key's commands over Kafka (HTTP requests have the services' RATE_LIMIT_* settings).
COMMAND_RATE = " and ".join(RegistrationSettings.env_name(f) for f in ("command_rate_per_second", "command_burst"))


def utcnow() -> datetime:
    """Now, truncated to milliseconds as BSON stores it, so stored and returned values agree."""
    return to_stored_precision(datetime.now(UTC))


async def handle_commands(
    commands: Sequence[Command],
    *,
    repo: Repository,
    artifact_schemes: Sequence[str],
    retries: int = 5,
    max_shares: int = DEFAULT_MAX_SHARES,
    check_signatures: CheckSignatures | None = None,
) -> list[Outcome]:
    """Handle ``commands`` in order; one outcome per command, in their order.

    A command already handled yields its stored outcome. Registrations carrying a signature are
    verified first, outside the transaction (``check_signatures``; none: every signature is refused).
    """
    signed = await _signatures(commands, artifact_schemes, check_signatures)
    read_everything = False
    for attempt in range(retries + 1):
        try:
            return await _handle_once(
                commands, repo, artifact_schemes, read_everything=read_everything, max_shares=max_shares, signed=signed
            )
        except ConcurrentWrite:
            # A duplicate, a redelivery or another writer: re-run, reading everything first.
            read_everything = True
            if attempt == retries:
                raise
    raise AssertionError("unreachable")


async def _handle_once(
    commands: Sequence[Command],
    repo: Repository,
    artifact_schemes: Sequence[str],
    *,
    read_everything: bool,
    max_shares: int,
    signed: dict[str, Document | Rejected],
) -> list[Outcome]:
    done = await repo.outcomes_of([c.key for c in commands]) if read_everything else {}
    parsed: dict[str, tuple[Command, messages.ModelRef | Rejected]] = {}
    for command in commands:
        if command.key not in parsed:  # a command already handled too: its answer shows its version
            checked = signed.get(command.key)
            refused = checked if isinstance(checked, Rejected) else None
            parsed[command.key] = (command, refused or parse(command, artifact_schemes))
    # A refused command reads nothing: how long its refusal takes must not tell whether what it
    # names exists (another team's model this process knows, say). An answered one is replayed.
    wanted = [data for key, (command, data) in parsed.items() if key in done or _refusal(command, data) is None]
    batch = await _load(repo, wanted, read_everything=read_everything)
    batch.max_shares = max_shares
    batch.provenance = {key: found for key, found in signed.items() if not isinstance(found, Rejected)}
    fresh = {key: apply(batch, command, data) for key, (command, data) in parsed.items() if key not in done}
    if batch.changes.outbox:
        await repo.commit(batch.changes)  # numbers the rows: their positions are the revisions
        repo.known_models.add(model_id for model_id, change in batch.changes.models.items() if change.writes())
    rows = {row.get("command_key"): row for row in batch.changes.outbox}
    fresh = {key: _revised(outcome, rows[key]) for key, outcome in fresh.items()}
    return [fresh.get(c.key) or _replayed(c, done.get(c.key) or batch.outcome_row(c.key), batch) for c in commands]


async def _signatures(
    commands: Sequence[Command], artifact_schemes: Sequence[str], check: CheckSignatures | None
) -> dict[str, Document | Rejected]:
    """The verified provenance (or refusal) of each registration with a signature its sender may send.

    A sender refused anyway (no key, a missing scope, another team) has nothing verified: its
    command is refused as it would be without a signature, and no team's keys are tried for it.
    """
    wanted: dict[str, messages.RegisterModelVersion] = {}
    known: dict[str, Document | Rejected] = {}  # checked before the command queued
    for command in commands:
        if command.event.type != messages.REGISTER_MODEL_VERSION or not command.event.data.get("provenance"):
            continue  # the common case, told without parsing the command twice
        data = parse(command, artifact_schemes)
        if not isinstance(data, messages.RegisterModelVersion) or data.provenance is None:
            continue
        if _refusal(command, data) is None:
            if command.signature_checked is not None:
                known.setdefault(command.key, command.signature_checked)
            else:
                wanted.setdefault(command.key, data)
    if not wanted:
        return known
    if check is None:
        return dict.fromkeys(wanted, UNCHECKED) | known
    return await check(list(wanted.items())) | known


async def checked_first(
    command: Command, *, artifact_schemes: Sequence[str], check_signatures: CheckSignatures | None
) -> Command:
    """``command`` carrying its signature's check, done now: the batch it joins does not wait on it."""
    found = await _signatures([command], artifact_schemes, check_signatures)
    return replace(command, signature_checked=found[command.key]) if command.key in found else command


def _revised(outcome: Outcome, row: Document) -> Outcome:
    """``outcome`` with the model and revision of its committed outbox row."""
    return replace(outcome, model_id=row.get("model_id"), revision=row.get("position"))


async def _load(repo: Repository, parsed: list[messages.ModelRef | Rejected], *, read_everything: bool) -> Batch:
    """A batch holding the versions and models the parsed commands refer to.

    Registrations are not read unless ``read_everything``: the versions collection's unique _id
    refuses a duplicate, a deleted version's number too (its tombstone keeps the _id). Their models
    are read, to create a model only once, unless this process knows them stored
    (:mod:`registration.known_models`). A version's parent (lineage) is read with its model, to
    check that it may be named. The reads are independent: they run at once.
    """
    refs = [d for d in parsed if isinstance(d, messages.ModelRef)]
    registrations = [d for d in refs if isinstance(d, messages.RegisterModelVersion)]
    versions = {
        domain.version_id(d.team, d.name, d.version)
        for d in refs
        if isinstance(d, messages.VersionRef) and (read_everything or not isinstance(d, messages.RegisterModelVersion))
    }
    parents = [d.parent for d in registrations if d.parent is not None]
    versions |= {domain.version_id(p.team, p.name, p.version) for p in parents}
    models = {domain.model_id(d.team, d.name) for d in refs if isinstance(d, MODEL_READING)}
    models |= {domain.model_id(p.team, p.name) for p in parents}
    # A registration reads its model only to create it: not one this process knows is stored.
    registered = {domain.model_id(d.team, d.name) for d in registrations}
    stored: set[str] = set() if read_everything else {m for m in registered - models if m in repo.known_models}
    models |= registered - stored
    # Where the versions to delete run (deletes are refused while deploying or deployed).
    deleted = {domain.version_id(d.team, d.name, d.version) for d in refs if isinstance(d, messages.DeleteVersion)}
    found, models_found, deployed = await asyncio.gather(
        repo.versions_by_id(sorted(versions)), repo.models_by_id(sorted(models)), repo.deployments_of(sorted(deleted))
    )
    repo.known_models.add(models_found)
    return Batch(found, models_found, utcnow(), deployed=deployed, stored_models=stored)


def apply(batch: Batch, command: Command, data: messages.ModelRef | Rejected) -> Outcome:
    """Apply one parsed command to ``batch``: its use case's outcome, or its rejection."""
    claimed = data if isinstance(data, messages.ModelRef) else None
    refusal = _refusal(command, data)
    if refusal is None:
        assert claimed is not None
        try:
            event, version = USE_CASES[command.event.type].apply(batch, command, claimed)
            return Outcome(command.event.id, event, None if version is None else batch.shown(version))
        except domain.RegistrationError as error:
            refusal = Rejected.of(error)
    return Outcome(command.event.id, batch.reject(command, refusal, claimed))


def _refusal(command: Command, data: messages.ModelRef | Rejected) -> Rejected | None:
    """Why the sender may not run this command, in the order a stranger learns least."""
    principal = command.principal
    if principal is None:  # before validation: say nothing about the data to strangers
        return Rejected("unauthenticated", command.unproven or "the command needs a signature of a valid API key")
    if command.throttled:
        limit = "its own rate limit (a platform admin's to set)" if principal.rate_limit else f"{COMMAND_RATE} allow"
        return Rejected("rate_limited", f"this key sent commands faster than {limit}; retry later")
    if isinstance(data, Rejected):
        return data
    scope = USE_CASES[command.event.type].scope
    if not principal.has(scope):
        return Rejected("forbidden", f"this key lacks the {scope} scope")
    if not principal.acts_for(data.team):
        return Rejected(
            "forbidden", f"this key belongs to team {principal.team!r}, not {data.team!r} (platform:admin acts for any)"
        )
    return None


# Outcomes whose stored event names a version without showing it: a replay answers its version as it is now.
CHANGED_VERSION = (
    messages.MODEL_VERSION_UPDATED,
    messages.VERSION_LIFECYCLE_CHANGED,
    messages.VERSION_APPROVAL_CHANGED,
)


def _replayed(command: Command, stored: Document, batch: Batch) -> Outcome:
    fingerprint = stored.get("fingerprint")
    event = event_from_outbox(stored)
    version = None
    if event.type in CHANGED_VERSION:
        found = batch.versions.get(domain.version_id(event.data["team"], event.data["name"], event.data["version"]))
        version = None if found is None or found.get("deleted") else batch.shown(found)
    return Outcome(
        command.event.id,
        event,
        version,
        replayed=True,
        fingerprint=fingerprint if isinstance(fingerprint, str) else None,
        model_id=stored.get("model_id"),
        revision=stored.get("position"),
    )
