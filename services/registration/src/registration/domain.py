"""The registration rules: what a valid version is and how versions change. No I/O here."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from registry_contract.documents import Document
from registry_contract.ids import model_id, version_id
from registry_contract.messages import ModelRef, RegisterModelVersion, RejectReason, ShareModel
from registry_contract.versioning import precedence_key

__all__ = ["model_id", "version_id"]

MAX_ALIASES = 32  # per model
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
LIFECYCLE_TRANSITIONS: dict[str, frozenset[str]] = {
    "active": frozenset({"deprecated", "archived"}),
    "deprecated": frozenset({"active", "archived"}),
    "archived": frozenset(),
}


class RegistrationError(Exception):
    """A command the registry refuses; ``reason`` is its ``command_rejected`` code."""

    reason: RejectReason = "invalid"

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class InvalidCommand(RegistrationError):
    """The command's data breaks a validation rule."""

    reason: RejectReason = "invalid"


class DuplicateVersion(RegistrationError):
    """A version with the same SemVer precedence already exists for this model."""

    reason: RejectReason = "duplicate_version"


class NotFound(RegistrationError):
    """The model or version the command refers to does not exist."""

    reason: RejectReason = "not_found"


class Unauthenticated(RegistrationError):
    """The command carried no valid key."""

    reason: RejectReason = "unauthenticated"


class Forbidden(RegistrationError):
    """The key may not do this to this team's models."""

    reason: RejectReason = "forbidden"


class RateLimited(RegistrationError):
    """The key sent commands faster than its limit."""

    reason: RejectReason = "rate_limited"


class Conflict(RegistrationError):
    """The command is valid but not in the current state (e.g. an illegal lifecycle move)."""

    reason: RejectReason = "conflict"


def check_artifact_uri(uri: str, *, schemes: Sequence[str]) -> None:
    """Refuse URIs of unconfigured schemes, invalid S3 bucket names or empty keys."""
    parts = urlsplit(uri)
    if parts.scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise InvalidCommand(f"artifact_uri must use one of: {allowed}", [field_error("artifact_uri", "scheme")])
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if parts.scheme == "s3" and (
        not _BUCKET.match(bucket) or ".." in bucket or _IPV4.match(bucket) or bucket.startswith("xn--")
    ):
        raise InvalidCommand(f"{bucket!r} is not a valid S3 bucket name", [field_error("artifact_uri", "bucket")])
    if not bucket or not key:
        raise InvalidCommand("artifact_uri needs a bucket and a non-empty key", [field_error("artifact_uri", "key")])


def field_error(name: str, kind: str) -> dict[str, Any]:
    return {"loc": ["data", name], "msg": f"invalid {kind}", "type": f"{name}.{kind}"}


def version_key(version: str) -> str:
    """Precedence key of a version string already validated as SemVer."""
    return precedence_key(version)


RESERVED_TEAMS = frozenset({"id"})  # /v1/models/id/{model_id} would shadow a team named "id"


def check_team_name(team: str) -> None:
    """Refuse team slugs that collide with fixed URL segments."""
    if team in RESERVED_TEAMS:
        raise InvalidCommand(f"team name {team!r} is reserved", [field_error("team", "reserved")])


def check_lifecycle_move(current: str, wanted: str) -> None:
    """Allow only the moves of :data:`LIFECYCLE_TRANSITIONS`."""
    if wanted not in LIFECYCLE_TRANSITIONS[current]:
        raise Conflict(f"cannot move a version from {current!r} to {wanted!r}")


def tag_pairs(tags: dict[str, str]) -> list[str]:
    """``key:value`` strings, indexed so that a tag filter is one index lookup."""
    return [f"{k}:{v}" for k, v in tags.items()]


def new_version(
    data: RegisterModelVersion,
    *,
    created_by: str,
    command_id: str,
    now: datetime,
    provenance: Document | None = None,
) -> Document:
    """The stored document of a version being registered (``provenance``: its verified signature, if any)."""
    return {
        "_id": version_id(data.team, data.name, data.version),
        "model_id": model_id(data.team, data.name),
        "team": data.team,
        "name": data.name,
        "version": data.version,
        "version_key": version_key(data.version),
        "prerelease": "-" in data.version.split("+", 1)[0],
        **data.model_dump(exclude={"team", "name", "version", "provenance"}),
        "provenance": provenance,
        "tag_pairs": tag_pairs(data.tags),
        "lifecycle": "active",
        "created_at": now,
        "updated_at": now,
        "created_by": created_by,
        "command_id": command_id,
    }


def version_ref(version: Document) -> dict[str, Any]:
    """The fields that name a version in events."""
    return {k: version[k] for k in ("model_id", "team", "name", "version")}


def model_ref(ref: ModelRef) -> dict[str, Any]:
    """The fields that name a model in events."""
    return {"model_id": model_id(ref.team, ref.name), "team": ref.team, "name": ref.name}


def share_ref(data: ShareModel) -> dict[str, Any]:
    """The fields that name a share in events and in the shares collection."""
    return {
        "model_id": model_id(data.team, data.name),
        "team": data.team,
        "name": data.name,
        "with_team": data.with_team,
    }


def share_id(data: ShareModel) -> str:
    """The id of the share of ``data``'s model with ``data.with_team``."""
    return f"{model_id(data.team, data.name)}:{data.with_team}"
