"""How a service other than registration authenticates tokens: registration's answer, cached, never past expiry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from starlette.requests import Request

from shared.chassis.federation import (
    MAX_TOKEN_CHARS,
    TOKENS_PATH,
    UNAVAILABLE,
    RemoteFederation,
    TokenRefused,
    looks_like_token,
)
from shared.chassis.http_auth import Guard
from shared.chassis.problems import Problem

pytestmark = pytest.mark.unit


class Registration:
    """Registration's internal route, faked: admits ``good`` for team fraud under rule Rule0001."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []
        self.down = False
        self.expires_at = datetime.now(UTC) + timedelta(hours=1)

    def answer(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == TOKENS_PATH
        body = json.loads(request.content)
        self.asked.append(body)
        if self.down:
            return httpx.Response(502)
        if body["token"] != "a.good.token":
            return httpx.Response(404, json={"reason": "no_rule"})
        identity = {"issuer": "https://idp", "subject": "ci", "rule": "Rule0001", "claims": {"repository": "acme/x"}}
        return httpx.Response(
            200,
            json={
                "key_id": "Rule0001",
                "team": "fraud",
                "scopes": ["models:write"],
                "identity": identity,
                "expires_at": self.expires_at.isoformat(),
            },
        )


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registration() -> Registration:
    return Registration()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def federation(registration: Registration, clock: Clock) -> RemoteFederation:
    return RemoteFederation(
        "http://registration", "svc", ttl=5, transport=httpx.MockTransport(registration.answer), clock=clock
    )


async def reason(federation: RemoteFederation, token: str, team: str | None = None) -> str:
    with pytest.raises(TokenRefused) as refusal:
        await federation.authenticate(token, team=team)
    return refusal.value.reason


async def test_an_admitted_token_is_its_rules_principal_asked_once_within_the_cache(
    federation: RemoteFederation, registration: Registration
) -> None:
    principal = await federation.authenticate("a.good.token", team="fraud")
    assert (principal.key_id, principal.team, principal.identity and principal.identity.subject) == (
        "Rule0001",
        "fraud",
        "ci",
    )
    await federation.authenticate("a.good.token", team="fraud")
    assert registration.asked == [{"token": "a.good.token", "team": "fraud"}]
    await federation.authenticate("a.good.token", team=None)  # another team named: another answer
    assert len(registration.asked) == 2


async def test_a_cached_admission_never_outlives_the_token(
    federation: RemoteFederation, registration: Registration
) -> None:
    registration.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert await reason(federation, "a.good.token") == "expired"


async def test_refusals_are_cached_until_a_rule_changes(
    federation: RemoteFederation, registration: Registration
) -> None:
    assert await reason(federation, "a.bad.token") == "no_rule"
    assert await reason(federation, "a.bad.token") == "no_rule"
    assert len(registration.asked) == 1
    federation.forget("NewRule1")  # a trust_rule_created event: the refusal may not hold any more
    assert await reason(federation, "a.bad.token") == "no_rule"
    assert len(registration.asked) == 2


async def test_a_deleted_rules_admissions_are_dropped(federation: RemoteFederation, registration: Registration) -> None:
    await federation.authenticate("a.good.token", team=None)
    federation.forget("Rule0001")
    await federation.authenticate("a.good.token", team=None)
    assert len(registration.asked) == 2


async def test_an_outage_is_not_remembered_and_an_oversized_token_is_never_sent(
    federation: RemoteFederation, registration: Registration
) -> None:
    registration.down = True
    assert await reason(federation, "a.good.token") == UNAVAILABLE
    registration.down = False
    assert (await federation.authenticate("a.good.token", team=None)).team == "fraud"
    asked = len(registration.asked)
    assert await reason(federation, "a." + "x" * MAX_TOKEN_CHARS + ".c") == "too_large"
    assert len(registration.asked) == asked


def test_only_a_three_part_credential_that_is_not_a_key_is_taken_for_a_token() -> None:
    assert looks_like_token("eyJ.eyJ.sig")
    assert not looks_like_token("mr_abcdefgh_" + "x" * 43)
    assert not looks_like_token("no-dots")


class _Access:
    def __init__(self) -> None:
        self.recorded: list[dict[str, Any]] = []
        self.service = "query"

    def record(self, event_type: str, **fields: Any) -> None:
        self.recorded.append({"type": event_type, **fields})


class _Watch:
    def failed(self, source: str, reason: str) -> None:
        pass


class _Refusing:
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.teams: list[str | None] = []

    async def authenticate(self, token: str, *, team: str | None) -> Any:
        self.teams.append(team)
        raise TokenRefused(self.reason)

    def forget(self, rule_id: str) -> None:
        pass

    def clear(self) -> None:
        pass


def _request(headers: dict[str, str]) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/v1/models", "headers": raw, "client": ("1.2.3.4", 1)})


async def _status(reason: str, headers: dict[str, str]) -> tuple[int, _Access, _Refusing]:
    access, federation = _Access(), _Refusing(reason)
    guard = Guard(
        keystore=cast(Any, None), limiter=cast(Any, None), access=cast(Any, access), watch=cast(Any, _Watch())
    )
    guard.federation = federation
    with pytest.raises(Problem) as problem:
        await guard.authenticate(_request(headers))
    return problem.value.status, access, federation


async def test_a_refused_token_is_the_one_401_with_its_reason_recorded_and_an_outage_a_503() -> None:
    status, access, federation = await _status(
        "expired", {"authorization": "Bearer a.b.c", "x-registry-team": " fraud "}
    )
    assert status == 401 and access.recorded[0]["reason"] == "token expired"
    assert federation.teams == ["fraud"]
    status, access, _ = await _status(UNAVAILABLE, {"authorization": "Bearer a.b.c"})
    assert status == 503 and access.recorded == []
