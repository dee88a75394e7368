"""The registration service's writes: versions (register, update, lifecycle, approval, delete) and models.

Routes that take an ``Idempotency-Key`` get one per call (yours, or one made once for all of the
call's tries): a retried registration is applied once, and its retry answers the first outcome.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx
from pydantic import BaseModel

from registry_client.config import ApiBase
from registry_client.errors import WaitTimedOut, problem_error
from registry_client.retry import RETRIED_STATUSES, RetryPolicy, retry_after
from registry_client.steps import Call, Flow, Send, Sleep, as_model, body, exchange, idempotency, no_content, path
from registry_client.surface import endpoint, operation
from registry_contract.views import ModelVersionPublic
from registry_contract.write_views import AliasPublic, ModelUpdatedPublic, ShareChange

Lifecycle = Literal["active", "deprecated", "archived"]
ApprovalStatus = Literal["pending", "approved", "rejected"]
Json = Mapping[str, Any] | BaseModel
_VERSION = as_model(ModelVersionPublic)
_FIRST_POLL, _LONGEST_POLL = 0.05, 1.0


def readable(policy: RetryPolicy, written: ModelVersionPublic, timeout: float) -> Flow[ModelVersionPublic]:
    """Read ``written`` back from the query service within ``timeout`` seconds; return what it reads.

    The read carries the write's consistency token (the driver adds it), so the query service
    answers once its projection has the write: one read, normally. It answers 503 (with
    ``Retry-After``) when it could not catch up within its own wait, and 404 when it predates
    tokens; both are tried again, backing off, until ``timeout``.
    """
    call = Call("query", "GET", path("models", written.team, written.name, "versions", written.version), _VERSION)
    deadline, pause = time.monotonic() + timeout, _FIRST_POLL
    while True:
        reply = yield Send(call)
        if isinstance(reply, httpx.TransportError):
            wait = pause
            if time.monotonic() + wait > deadline:
                raise reply
        elif reply.is_success:
            return call.parse(reply)
        elif reply.status_code in (404, *RETRIED_STATUSES):
            wait = max(pause, retry_after(reply) or 0.0)
            if time.monotonic() + wait > deadline:
                message = (
                    f"{written.team}/{written.name} {written.version} was registered but not readable in {timeout:g}s"
                )
                raise WaitTimedOut(message, result=written) from None
        else:
            raise problem_error(reply)
        yield Sleep(wait)
        pause = min(pause * 2, _LONGEST_POLL)


class VersionWrites(ApiBase):
    """Writes of versions (scope ``models:write``; approvals ``models:approve``)."""

    @operation
    def register_version(
        self,
        team: str,
        name: str,
        version: str,
        *,
        framework: str,
        artifact_uri: str,
        framework_version: str | None = None,
        artifact_digest: str | None = None,
        deployment_targets: Sequence[str] | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        parameters: Mapping[str, str] | None = None,
        signature: Mapping[str, Any] | None = None,
        source: Json | None = None,
        parent: Json | None = None,
        provenance: Json | None = None,
        idempotency_key: str | None = None,
        wait: bool = False,
        wait_timeout: float = 30.0,
    ) -> Flow[ModelVersionPublic]:
        """Register a version (the first one creates the model).

        Raises :class:`DuplicateVersion` when its SemVer precedence exists and :class:`Invalid`
        (with the field ``errors``) when it breaks the contract. With ``wait``, returns once the
        query service reads it back: one read carrying the write's consistency token
        (:class:`WaitTimedOut` after ``wait_timeout`` seconds).
        ``source`` and ``parent`` take mappings or :mod:`registry_contract.messages` models.
        ``provenance`` is ``{"signature": ...}`` (:func:`registry_client.signing.sign_model`'s answer):
        verified against the team's signing keys, else refused ``bad_signature`` (:class:`Invalid`).
        """
        data = body(
            version=version,
            framework=framework,
            framework_version=framework_version,
            artifact_uri=artifact_uri,
            artifact_digest=artifact_digest,
            deployment_targets=deployment_targets,
            description=description,
            tags=tags,
            metrics=metrics,
            parameters=parameters,
            signature=signature,
            source=source,
            parent=parent,
            provenance=provenance,
        )
        route = path("models", team, name, "versions")
        call = Call("registration", "POST", route, _VERSION, json=data, headers=idempotency(idempotency_key))
        registered = yield from exchange(self.config.retry, call)
        if not wait:
            return registered
        return (yield from readable(self.config.retry, registered, wait_timeout))

    @endpoint
    def update_version(
        self,
        team: str,
        name: str,
        version: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        idempotency_key: str | None = None,
    ) -> Call[ModelVersionPublic]:
        """Change a version's description, tags or metrics (the fields given)."""
        data = body(description=description, tags=tags, metrics=metrics)
        route = path("models", team, name, "versions", version)
        return Call("registration", "PATCH", route, _VERSION, json=data, headers=idempotency(idempotency_key))

    @endpoint
    def set_lifecycle(
        self, team: str, name: str, version: str, state: Lifecycle, *, idempotency_key: str | None = None
    ) -> Call[ModelVersionPublic]:
        """Move a version to ``active``, ``deprecated`` or ``archived``."""
        route = path("models", team, name, "versions", version, "lifecycle")
        headers = idempotency(idempotency_key)
        return Call("registration", "POST", route, _VERSION, json={"state": state}, headers=headers)

    @endpoint
    def set_approval(
        self,
        team: str,
        name: str,
        version: str,
        status: ApprovalStatus,
        *,
        comment: str | None = None,
        idempotency_key: str | None = None,
    ) -> Call[ModelVersionPublic]:
        """Approve or reject a version (scope ``models:approve``); gated environments need ``approved``."""
        route = path("models", team, name, "versions", version, "approval")
        data = body(status=status, comment=comment)
        return Call("registration", "PUT", route, _VERSION, json=data, headers=idempotency(idempotency_key))

    @endpoint
    def delete_version(self, team: str, name: str, version: str) -> Call[None]:
        """Delete a version deployed nowhere and named by no alias (else :class:`Conflict`); its number stays taken."""
        return Call("registration", "DELETE", path("models", team, name, "versions", version), no_content)


class ModelWrites(ApiBase):
    """Writes of a model as a whole: its metadata, aliases (``models:write``) and shares (``team:admin``)."""

    @endpoint
    def update_model(
        self,
        team: str,
        name: str,
        *,
        description: str | None = None,
        owners: Sequence[Json] | None = None,
        documentation: str | None = None,
        tags: Mapping[str, str] | None = None,
        links: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Call[ModelUpdatedPublic]:
        """Set the model's own description, owners, markdown documentation, tags or links (the fields given).

        ``owners`` are ``{"name", "email"?, "role"?}`` mappings or :class:`registry_contract.messages.Contact`.
        """
        data = body(description=description, owners=owners, documentation=documentation, tags=tags, links=links)
        route = path("models", team, name)
        return Call(
            "registration",
            "PATCH",
            route,
            as_model(ModelUpdatedPublic),
            json=data,
            headers=idempotency(idempotency_key),
        )

    @endpoint
    def set_alias(self, team: str, name: str, alias: str, version: str) -> Call[AliasPublic]:
        """Point ``alias`` (``champion``, ``production``…) at ``version``; it moves if it pointed elsewhere."""
        route = path("models", team, name, "aliases", alias)
        return Call("registration", "PUT", route, as_model(AliasPublic), json={"version": version})

    @endpoint
    def remove_alias(self, team: str, name: str, alias: str) -> Call[None]:
        """Remove an alias (the version stays)."""
        return Call("registration", "DELETE", path("models", team, name, "aliases", alias), no_content)

    @endpoint
    def share(self, team: str, name: str, with_team: str) -> Call[ShareChange]:
        """Let ``with_team`` read every version of the model."""
        return Call("registration", "PUT", path("models", team, name, "shares", with_team), as_model(ShareChange))

    @endpoint
    def unshare(self, team: str, name: str, with_team: str) -> Call[None]:
        """Withdraw ``with_team``'s read access: at once for reads carrying this write's consistency token.

        Other reads follow within the query service's projection lag.
        """
        return Call("registration", "DELETE", path("models", team, name, "shares", with_team), no_content)
