"""The FastAPI dependencies that authenticate, rate-limit and authorize every request."""

import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, NoReturn

import structlog
from fastapi import Depends, Header, Request

from registry_contract import messages
from registry_contract.auth import Principal, bearer_token, parse_api_key
from shared.chassis.access import ACCESS_DENIED, AUTH_FAILURES, RATE_LIMITED, AccessLog, FailureWatch
from shared.chassis.federation import TEAM_HEADER, UNAVAILABLE, Federation, TokenRefused, looks_like_token
from shared.chassis.http_params import SlugPath
from shared.chassis.keystore import KeyIntrospectionUnavailable, KeyStore
from shared.chassis.problems import Problem
from shared.chassis.ratelimit import RateLimiter
from shared.chassis.settings import CommonSettings

PrincipalDependency = Callable[..., Awaitable[Principal]]
TeamHeader = Annotated[
    str | None,
    Header(
        description="with an OpenID Connect token: the team it acts for; only that team's trust rules "
        "are tried (not needed for the platform's sign-in rules)"
    ),
]


INTERNAL_HEADER = "x-registry-internal"
# On an internal request: its caller's own request is recorded as the access (a console page
# view), so this read of the API it makes is not recorded again.
RECORDED_BY_CALLER_HEADER = "x-registry-recorded-by-caller"
CREDENTIALS_RETRY_AFTER_SECONDS = 5  # a registration restart or a network blip, not a long outage


def credentials_unavailable(what: str) -> Problem:
    """The 503 of a credential that cannot be checked while registration is away: retry, nothing was admitted."""
    return Problem(
        "unavailable",
        f"{what} cannot be checked right now (the registration service is unreachable); retry",
        headers={"Retry-After": str(CREDENTIALS_RETRY_AFTER_SECONDS)},
    )


class Guard:
    """Authenticates the key of a request, applies its rate limit, and records failures.

    A request the service sends to itself on a caller's behalf (an MCP tool running the HTTP
    route it stands for) carries :attr:`internal_headers`: it is authenticated and authorized as
    the caller, but takes no second rate-limit token, the caller's request having taken one. The
    header's value is a secret made per process, so no request from outside can carry it.
    """

    def __init__(
        self,
        *,
        keystore: KeyStore,
        limiter: RateLimiter,
        access: AccessLog,
        watch: FailureWatch,
        federation: Federation | None = None,
    ) -> None:
        self.keystore, self.limiter, self.access, self.watch = keystore, limiter, access, watch
        self.federation = federation  # OpenID Connect tokens; None: only API keys authenticate
        self._internal_secret = secrets.token_urlsafe(32)

    @property
    def internal_headers(self) -> dict[str, str]:
        """Headers of a request this process sends to itself on behalf of an already rate-limited caller."""
        return {INTERNAL_HEADER: self._internal_secret}

    @property
    def internal_unrecorded_headers(self) -> dict[str, str]:
        """:attr:`internal_headers` of a read whose caller's request is recorded as the access itself."""
        return {**self.internal_headers, RECORDED_BY_CALLER_HEADER: "1"}

    def is_internal(self, request: Request) -> bool:
        """Whether ``request`` came from this process on a caller's behalf (see the class docstring)."""
        return self.is_internal_headers(request.headers)

    def is_internal_headers(self, headers: Mapping[str, str]) -> bool:
        """:meth:`is_internal` for a request's headers."""
        sent = headers.get(INTERNAL_HEADER)
        return sent is not None and hmac.compare_digest(sent.encode(), self._internal_secret.encode())

    def recorded_by_caller(self, headers: Mapping[str, str]) -> bool:
        """Whether an internal request's access is recorded by its caller's own request (not again)."""
        return RECORDED_BY_CALLER_HEADER in headers and self.is_internal_headers(headers)

    async def __call__(
        self,
        request: Request,
        # Read from the request by authenticate(); declared so /openapi.json documents the headers.
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
        x_registry_team: TeamHeader = None,
    ) -> Principal:
        return self.admit(request, await self.authenticate(request))

    def admit(self, request: Request, principal: Principal) -> Principal:
        """Take ``principal``'s rate-limit token for ``request`` (none if internal), or the 429 (recorded)."""
        wait = 0.0 if self.is_internal(request) else self.limiter.take(principal.limit_key, principal.rate_limit)
        if wait > 0:
            RATE_LIMITED.labels(self.access.service, principal.team).inc()
            self.access.record(
                messages.ACCESS_RATE_LIMITED,
                principal=principal,
                method=request.method,
                path=request.url.path,
                status=429,
            )
            raise Problem(
                "rate_limited",
                rate_limit_exceeded(principal, self.limiter),
                headers={"Retry-After": str(max(1, round(wait + 0.499)))},
            )
        request.state.principal = principal
        # Every later log line of this request names who asked (the key id is public, never the secret).
        structlog.contextvars.bind_contextvars(team=principal.team, key_id=principal.key_id)
        return principal

    async def authenticate(self, request: Request) -> Principal:
        """The principal of the request's key, or the one 401 problem for every kind of failure (recorded)."""
        token = bearer_token(request.headers.get("authorization"), request.headers.get("x-api-key"))
        return await self.authenticate_token(request, token)

    async def authenticate_token(self, request: Request, token: str | None) -> Principal:
        """The principal of ``token`` (sent by ``request`` other than in a header: a sign-in form), or the 401."""
        if token and self.federation is not None and looks_like_token(token):
            try:
                return await self.federation.authenticate(token, team=_named_team(request))
            except TokenRefused as refused:
                if refused.reason == UNAVAILABLE:  # registration is away: not the caller's fault, retry
                    raise credentials_unavailable("tokens") from None
                return self._refuse(request, f"token {refused.reason}", source="")
        try:
            principal = await self.keystore.authenticate(token)
        except KeyIntrospectionUnavailable:
            # Not a 401: that tells a client its key is bad, and it may well be fine (nothing is admitted).
            raise credentials_unavailable("API keys") from None
        if principal is not None:
            return principal
        parsed = parse_api_key(token) if token else None
        reason = "missing" if not token else ("malformed" if parsed is None else "invalid")
        return self._refuse(request, reason, source=parsed[0] if parsed else "")

    def _refuse(self, request: Request, reason: str, *, source: str) -> NoReturn:
        """Count and record a failed authentication, and raise the one 401 every failure gets."""
        AUTH_FAILURES.labels(self.access.service, reason).inc()
        self.watch.failed(source or (request.client.host if request.client else "unknown"), reason)
        self.access.record(
            messages.ACCESS_AUTH_FAILED,
            principal=None,
            method=request.method,
            path=request.url.path,
            status=401,
            reason=reason,
        )
        # One answer for every failure, so probing learns nothing about which keys exist.
        raise Problem(
            "unauthenticated",
            "a valid API key, or an OpenID Connect token a rule admits (a team's trust rules: for the team "
            "named in X-Registry-Team), is required",
            headers={"WWW-Authenticate": "Bearer"},
        )

    def deny(
        self, request: Request, principal: Principal, *, status: int, reason: str, resource_team: str | None = None
    ) -> None:
        """Count and record a refusal of an authenticated caller."""
        ACCESS_DENIED.labels(self.access.service, principal.team, reason).inc()
        self.access.record(
            messages.ACCESS_DENIED,
            principal=principal,
            method=request.method,
            path=request.url.path,
            status=status,
            reason=reason,
            resource_team=resource_team,
        )

    def demand(self, request: Request, principal: Principal, scope: str) -> Principal:
        """``principal`` if it holds ``scope``; else a 403 problem, after recording the denial."""
        if not principal.has(scope):
            self.deny(request, principal, status=403, reason=f"missing scope {scope}")
            raise Problem("forbidden", f"this key lacks the {scope} scope")
        return principal


def _named_team(request: Request) -> str | None:
    """The team a token's caller says it acts for (``X-Registry-Team``), if it says one."""
    return (request.headers.get(TEAM_HEADER) or "").strip()[:64] or None


def rate_limit_exceeded(principal: Principal, limiter: RateLimiter) -> str:
    """The 429's detail: the limit ``principal`` went over, and the setting (or key field) that sets it."""
    if principal.rate_limit is not None:
        rate, burst = principal.rate_limit
        return f"this key's own rate limit of {rate:g}/s (burst {burst}) exceeded; a platform admin sets it per key"
    rate_setting, burst_setting = (CommonSettings.env_name(f) for f in ("rate_limit_per_second", "rate_limit_burst"))
    return (
        f"rate limit of {limiter.rate:g}/s (burst {limiter.burst}) exceeded: the service's {rate_setting} and "
        f"{burst_setting}, or a key's own rate_limit set by a platform admin"
    )


def guard_of(request: Request) -> Guard:
    """The app's guard (``app.state.guard``, set by :func:`shared.chassis.http_app.service_app`)."""
    guard: Guard = request.app.state.guard
    return guard


async def authenticated(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
    x_registry_team: TeamHeader = None,
) -> Principal:
    """For module-level routes: the caller's principal, whatever its scopes."""
    return await guard_of(request)(request, authorization, x_api_key, x_registry_team)


def requires(scope: str) -> PrincipalDependency:
    """For module-level routes: the caller's principal, which must hold ``scope``.

    Resolves the app's :class:`Guard` per request, so routers need nothing at import time.
    """

    async def dependency(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
        x_registry_team: TeamHeader = None,
    ) -> Principal:
        guard = guard_of(request)
        return guard.demand(request, await guard(request, authorization, x_api_key, x_registry_team), scope)

    return dependency


def administers_team(resource: str) -> PrincipalDependency:
    """For ``/v1/teams/{team}/…`` routes: the caller, holding ``team:admin`` for the path's team.

    Its own team, or any for a platform admin; otherwise a 403 and an access event naming
    ``resource`` ("keys", "webhooks") and the team it was refused.
    """

    async def dependency(
        team: SlugPath, request: Request, caller: Annotated[Principal, Depends(requires("team:admin"))]
    ) -> Principal:
        if not caller.acts_for(team):
            guard_of(request).deny(request, caller, status=403, reason=f"other team's {resource}", resource_team=team)
            raise Problem(
                "forbidden",
                f"this key cannot manage team {team!r}: that takes team:admin in {team!r}, or platform:admin",
            )
        return caller

    return dependency
