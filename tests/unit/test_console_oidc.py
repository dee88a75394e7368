"""Signing in to the console through an OpenID Connect provider: the redirect, the flow cookie, the refusals.

The console's routes run in a small app of their own, over fakes: a provider answering discovery
and the token endpoint through mock transports, the in-memory flow store, and a guard that
admits tokens whose ``groups`` hold ``console-people`` (registration's sign-in rules, in the stack).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from fastapi import FastAPI, Request
from pymongo.asynchronous.collection import AsyncCollection

from query.console import actions, oidc_sign_in
from query.console.identity_provider import IdentityProvider, token_claims
from query.console.sessions import Sessions, unseal
from query.console.sign_ins import MemorySignIns, SignInFlow
from query.console.web import Console, ConsoleRefusal, authenticated_again
from registry_contract.auth import FederatedIdentity, Principal
from registry_contract.documents import Document
from shared.chassis.federation import UNAVAILABLE, TokenRefused
from shared.chassis.http_auth import Guard, credentials_unavailable
from shared.chassis.keystore import KeyIntrospectionUnavailable
from shared.chassis.problems import Problem
from shared.chassis.ratelimit import RateLimiter

pytestmark = pytest.mark.unit
ISSUER = "https://idp.example"
CONSOLE = "http://console.test"
CALLBACK = f"{CONSOLE}/console/sign-in/oidc/callback"


def jws(claims: dict[str, Any]) -> str:
    """A token shaped as a JWS (the fake guard verifies nothing: registration does, in the stack)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class FakeProvider:
    """Discovery and a token endpoint; the ID token carries ``claims`` and the nonce it is told."""

    def __init__(self) -> None:
        self.claims: dict[str, Any] = {"sub": "alice", "name": "Alice", "groups": ["console-people"]}
        self.nonce: str | None = None
        self.token_error: str | None = None
        self.reachable = True
        self.exchanges: list[dict[str, list[str]]] = []

    def discovery(self, request: httpx.Request) -> httpx.Response:
        if not self.reachable:
            raise httpx.ConnectError("refused", request=request)
        assert request.url == f"{ISSUER}/.well-known/openid-configuration"
        document = {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/authorize",
            "token_endpoint": f"{ISSUER}/token",
        }
        return httpx.Response(200, json=document)

    def token(self, request: httpx2.Request) -> httpx2.Response:
        self.exchanges.append(parse_qs(request.content.decode()))
        if self.token_error:
            return httpx2.Response(400, json={"error": self.token_error})
        claims = {"iss": ISSUER, "aud": "model-registry", "exp": int(time.time()) + 300, **self.claims}
        if self.nonce is not None:
            claims["nonce"] = self.nonce
        return httpx2.Response(200, json={"access_token": "at", "token_type": "Bearer", "id_token": jws(claims)})


class FakeGuard:
    """Admits a token whose ``groups`` hold ``console-people`` (with ``scopes``), as registration's rules would."""

    def __init__(self) -> None:
        self.scopes = frozenset({"models:read", "models:write"})
        self.denials: list[str] = []
        self.limiter = RateLimiter(rate=1, burst=5)  # sign-in starts per client address
        self.registration_away = False

    async def authenticate_token(self, request: Request, token: str | None) -> Principal:
        if self.registration_away:
            raise credentials_unavailable("tokens")
        claims = token_claims(token or "")
        if "console-people" not in claims.get("groups", []):
            raise Problem("unauthenticated", "a valid API key, or an OpenID Connect token a trust rule admits")
        identity = FederatedIdentity(issuer=claims["iss"], subject=claims["sub"], rule_id="platform-console-people")
        return Principal(key_id="platform-console-people", team="oidc-people", scopes=self.scopes, identity=identity)

    def admit(self, request: Request, principal: Principal) -> Principal:
        return principal

    def deny(self, request: Request, principal: Principal, *, status: int, reason: str) -> None:
        self.denials.append(reason)


class FakeSessions:
    """The two calls of ``console_sessions`` a sign-in makes (``insert_one``), kept in a list."""

    def __init__(self) -> None:
        self.records: list[Document] = []

    async def insert_one(self, record: Document) -> None:
        self.records.append(record)


class World:
    """The console app with its fakes, and a browser-like client of it."""

    def __init__(self, *, provider: bool = True, public_url: str | None = None, secure: bool = False) -> None:
        self.provider, self.guard, self.stored = FakeProvider(), FakeGuard(), FakeSessions()
        self.flows = MemorySignIns()
        self.discovery = httpx.AsyncClient(transport=httpx.MockTransport(self.provider.discovery))
        identity_provider = IdentityProvider(
            issuer=ISSUER,
            client_id="model-registry",
            client_secret=None,
            scopes="openid profile email",
            name="Test IdP",
            http=self.discovery,
            oauth_options={"transport": httpx2.MockTransport(self.provider.token)},
        )
        unused = httpx.AsyncClient()
        app = FastAPI()
        app.state.console = Console(
            sessions=Sessions(
                cast(AsyncCollection[Document], self.stored), lifetime=timedelta(hours=8), idle=timedelta(minutes=30)
            ),
            guard=cast(Guard, self.guard),
            reads=unused,
            registration=unused,
            audit=unused,
            secure_cookies=secure,
            sign_ins=self.flows,
            identity_provider=identity_provider if provider else None,
            public_url=public_url,
        )
        app.include_router(actions.router)
        app.include_router(oidc_sign_in.router)
        self.browser = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE)

    async def close(self) -> None:
        await self.browser.aclose()
        await self.discovery.aclose()

    async def leave_for_provider(self, next_page: str = "/console/teams/oidc-people") -> dict[str, str]:
        """Follow the sign-in link: the authorization request's parameters; the provider will answer with its nonce."""
        sent = await self.browser.get("/console/sign-in/oidc", params={"next": next_page})
        assert sent.status_code == 302, sent.text
        query = {name: values[0] for name, values in parse_qs(urlsplit(sent.headers["location"]).query).items()}
        self.provider.nonce = query["nonce"]
        return query

    async def come_back(self, **params: str) -> httpx.Response:
        return await self.browser.get("/console/sign-in/oidc/callback", params=params)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    made = World()
    yield made
    await made.close()


def set_cookie(response: httpx.Response, name: str) -> str:
    found = [header for header in response.headers.get_list("set-cookie") if header.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


# --- leaving for the provider ---------------------------------------------------------------


async def test_the_authorization_request_carries_an_s256_challenge_state_nonce_and_the_callback(world: World) -> None:
    sent = await world.browser.get("/console/sign-in/oidc", params={"next": "/console/teams/oidc-people"})
    assert sent.status_code == 302
    location = urlsplit(sent.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/authorize"
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert query["response_type"] == "code" and query["client_id"] == "model-registry"
    assert query["redirect_uri"] == CALLBACK and query["scope"] == "openid profile email"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32 and query["state"] != query["nonce"]

    flow = await world.flows.take(world.browser.cookies["mr_console_oidc"])
    assert flow is not None and (flow.state, flow.nonce) == (query["state"], query["nonce"])
    challenge = base64.urlsafe_b64encode(hashlib.sha256(flow.code_verifier.encode()).digest()).rstrip(b"=").decode()
    assert query["code_challenge"] == challenge and 43 <= len(flow.code_verifier) <= 128
    assert flow.next_page == "/console/teams/oidc-people" and flow.redirect_uri == CALLBACK


async def test_each_sign_in_gets_its_own_state_nonce_and_verifier(world: World) -> None:
    first, second = await world.leave_for_provider(), await world.leave_for_provider()
    assert {first[name] for name in ("state", "nonce", "code_challenge")}.isdisjoint(
        {second[name] for name in ("state", "nonce", "code_challenge")}
    )


async def test_the_flow_cookie_is_lax_http_only_scoped_to_the_sign_in_paths_and_short_lived(world: World) -> None:
    sent = await world.browser.get("/console/sign-in/oidc")
    cookie = set_cookie(sent, "mr_console_oidc").lower()
    attributes = {part.strip() for part in cookie.split(";")[1:]}
    assert {"httponly", "max-age=600", "path=/console/sign-in", "samesite=lax"} <= attributes
    assert "secure" not in attributes  # plain HTTP, and QUERY_CONSOLE_SECURE_COOKIES off


async def test_the_flow_cookie_is_secure_as_the_session_cookie_is() -> None:
    world = World(secure=True)
    try:
        cookie = set_cookie(await world.browser.get("/console/sign-in/oidc"), "mr_console_oidc").lower()
    finally:
        await world.close()
    assert "secure" in {part.strip() for part in cookie.split(";")}


async def test_sign_in_starts_from_one_address_are_rate_limited(world: World) -> None:
    statuses = [(await world.browser.get("/console/sign-in/oidc")).status_code for _ in range(8)]
    assert statuses[:5] == [302] * 5 and statuses[-1] == 429


async def test_the_redirect_uri_is_made_from_the_public_url_when_set() -> None:
    world = World(public_url="https://registry.example.com/")
    try:
        query = await world.leave_for_provider()
    finally:
        await world.close()
    assert query["redirect_uri"] == "https://registry.example.com/console/sign-in/oidc/callback"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/console/", "/v1/models"])
async def test_next_leads_only_to_console_pages(world: World, target: str) -> None:
    await world.browser.get("/console/sign-in/oidc", params={"next": target})
    flow = await world.flows.take(world.browser.cookies["mr_console_oidc"])
    assert flow is not None and flow.next_page == "/console/search"


async def test_a_provider_that_cannot_be_reached_leaves_the_sign_in_page_with_a_message(world: World) -> None:
    world.provider.reachable = False
    page = await world.browser.get("/console/sign-in/oidc")
    assert page.status_code == 502 and "Test IdP could not be reached" in page.text
    assert "mr_console_oidc" not in world.browser.cookies and world.flows.flows == {}


async def test_the_sign_in_page_offers_the_provider_when_one_is_set(world: World) -> None:
    page = await world.browser.get("/console/sign-in", params={"next": "/console/teams/oidc-people"})
    assert "Sign in with Test IdP" in page.text
    assert 'href="/console/sign-in/oidc?next=%2Fconsole%2Fteams%2Foidc-people"' in page.text


async def test_without_a_provider_the_sign_in_page_asks_for_a_key_only() -> None:
    world = World(provider=False)
    try:
        page = await world.browser.get("/console/sign-in")
        link = await world.browser.get("/console/sign-in/oidc")
        back = await world.come_back(code="c", state="s")
    finally:
        await world.close()
    assert "provider-sign-in" not in page.text and 'name="api_key"' in page.text
    assert link.status_code == back.status_code == 404 and "not set up here" in link.text


# --- coming back ----------------------------------------------------------------------------


async def test_a_person_a_rule_admits_gets_a_session_holding_the_token_until_it_expires(world: World) -> None:
    query = await world.leave_for_provider()
    page = await world.come_back(code="the-code", state=query["state"])

    assert page.status_code == 200, page.text
    # The console's own page moves on: a redirect would leave the new SameSite=Strict cookie behind.
    assert '<meta http-equiv="refresh" content="0; url=/console/teams/oidc-people">' in page.text
    assert "Signed in as Alice" in page.text
    session_cookie = set_cookie(page, "mr_console").lower()
    assert "samesite=strict" in session_cookie and "httponly" in session_cookie and "path=/console" in session_cookie
    assert "mr_console_oidc" not in world.browser.cookies  # the flow's cookie is gone

    exchange = world.provider.exchanges[-1]
    assert exchange["grant_type"] == ["authorization_code"] and exchange["code"] == ["the-code"]
    assert exchange["redirect_uri"] == [CALLBACK] and exchange["client_id"] == ["model-registry"]
    assert len(exchange["code_verifier"][0]) >= 43

    [record] = world.stored.records
    id_token = unseal(world.browser.cookies["mr_console"], record["sealed_key"])
    assert id_token is not None and token_claims(id_token)["nonce"] == query["nonce"]
    assert record["via"] == "oidc" and record["team"] == "oidc-people"
    assert record["person"] == {"issuer": ISSUER, "subject": "alice", "name": "Alice", "email": None}
    expiry = datetime.fromtimestamp(token_claims(id_token)["exp"], UTC)
    assert record["expires_at"] == expiry and record["idle_until"] <= expiry  # never past the token's own exp


async def test_a_callback_without_the_flow_cookie_is_refused(world: World) -> None:
    query = await world.leave_for_provider()
    world.browser.cookies.clear()
    page = await world.come_back(code="the-code", state=query["state"])
    assert page.status_code == 400 and "did not start in this browser" in page.text
    assert world.provider.exchanges == [] and world.stored.records == []


async def test_a_callback_with_another_state_is_refused(world: World) -> None:
    await world.leave_for_provider()
    page = await world.come_back(code="the-code", state="forged-state")
    assert page.status_code == 400 and "does not belong to this sign-in" in page.text
    assert world.provider.exchanges == [] and world.stored.records == []


async def test_a_replayed_callback_finds_its_flow_used(world: World) -> None:
    query = await world.leave_for_provider()
    flow_id = world.browser.cookies["mr_console_oidc"]
    assert (await world.come_back(code="the-code", state=query["state"])).status_code == 200
    world.browser.cookies.set("mr_console_oidc", flow_id, path="/console/sign-in")
    page = await world.come_back(code="the-code", state=query["state"])
    assert page.status_code == 400 and "used already" in page.text
    assert len(world.stored.records) == 1


async def test_an_error_from_the_provider_is_shown_by_its_code_only(world: World) -> None:
    await world.leave_for_provider()
    page = await world.come_back(error="access_denied", error_description="Call +1 555 0100 to unlock your account")
    assert page.status_code == 400 and "Test IdP did not sign you in (access_denied)" in page.text
    assert "555" not in page.text  # a link's free text is never shown as the console's words
    assert "mr_console_oidc" not in world.browser.cookies and world.flows.flows == {}


async def test_an_id_token_with_another_nonce_is_refused(world: World) -> None:
    query = await world.leave_for_provider()
    world.provider.nonce = "a-nonce-of-another-sign-in"
    page = await world.come_back(code="the-code", state=query["state"])
    assert page.status_code == 400 and "not issued for this sign-in" in page.text
    assert world.stored.records == []


async def test_an_id_token_without_a_nonce_is_refused(world: World) -> None:
    query = await world.leave_for_provider()
    world.provider.nonce = None
    page = await world.come_back(code="the-code", state=query["state"])
    assert page.status_code == 400 and world.stored.records == []


async def test_a_person_no_rule_admits_is_told_to_ask_a_platform_admin(world: World) -> None:
    world.provider.claims["groups"] = ["sales"]
    query = await world.leave_for_provider()
    page = await world.come_back(code="the-code", state=query["state"])
    assert page.status_code == 401
    assert "no rule of the platform gives this account access to the registry: ask a platform admin" in page.text
    assert world.stored.records == []


async def test_an_account_without_models_read_is_refused_and_the_denial_recorded(world: World) -> None:
    world.guard.scopes = frozenset({"deployments:write"})
    query = await world.leave_for_provider()
    page = await world.come_back(code="the-code", state=query["state"])
    assert page.status_code == 403 and "models:read" in page.text
    assert world.guard.denials == ["missing scope models:read"] and world.stored.records == []


async def test_registration_away_is_a_sign_in_page_to_retry_with_its_retry_after(world: World) -> None:
    world.guard.registration_away = True
    query = await world.leave_for_provider()
    page = await world.come_back(code="the-code", state=query["state"])
    assert (page.status_code, page.headers.get("retry-after")) == (503, "5")
    assert "cannot be checked right now" in page.text and world.stored.records == []


async def test_a_code_the_provider_refuses_is_a_sign_in_page_not_an_error(world: World) -> None:
    world.provider.token_error = "invalid_grant"
    query = await world.leave_for_provider()
    page = await world.come_back(code="stale", state=query["state"])
    assert page.status_code == 400 and "did not accept this sign-in&#39;s code (invalid_grant)" in page.text


async def test_a_callback_without_a_code_is_refused(world: World) -> None:
    query = await world.leave_for_provider()
    page = await world.come_back(state=query["state"])
    assert page.status_code == 400 and "sent no authorization code" in page.text


# --- the parts ------------------------------------------------------------------------------


async def test_a_flow_is_taken_once_and_not_after_ten_minutes() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    flows = MemorySignIns(clock=lambda: now)
    flow = SignInFlow.new(redirect_uri=CALLBACK, next_page="/console/search")
    first, second = await flows.begin(flow), await flows.begin(flow)
    assert await flows.take(first) == flow and await flows.take(first) is None
    now += timedelta(minutes=10)
    assert await flows.take(second) is None and await flows.take("unknown") is None


async def test_a_key_session_is_opened_as_before() -> None:
    stored = FakeSessions()
    sessions = Sessions(
        cast(AsyncCollection[Document], stored), lifetime=timedelta(hours=8), idle=timedelta(minutes=30)
    )
    _, session = await sessions.create("mr_abcdefgh_" + "x" * 43, Principal(key_id="abcdefgh", team="fraud"))
    [record] = stored.records
    assert record["via"] == "api_key" and "person" not in record and session.person is None
    assert record["expires_at"] - record["created_at"] == timedelta(hours=8)


class FakeFederation:
    def __init__(self, admitted: Principal | None, *, refusal: str = "expired") -> None:
        self.admitted, self.refusal = admitted, refusal

    async def authenticate(self, token: str, *, team: str | None) -> Principal:
        if self.admitted is None:
            raise TokenRefused(self.refusal)
        return self.admitted


class UnreachableKeys:
    """Registration away: every key lookup fails as the remote key store's does."""

    async def authenticate(self, token: str | None) -> Principal | None:
        raise KeyIntrospectionUnavailable("registration unreachable for a key lookup (authenticate)")


async def test_each_page_authenticates_a_sessions_token_again_through_the_federation() -> None:
    token = jws({"sub": "alice"})
    principal = Principal(key_id="rule", team="oidc-people")
    guard = Guard(keystore=cast(Any, None), limiter=cast(Any, None), access=cast(Any, None), watch=cast(Any, None))
    assert await authenticated_again(guard, token) is None  # no federation: no token is admitted
    guard.federation = cast(Any, FakeFederation(principal))
    assert await authenticated_again(guard, token) == principal
    guard.federation = cast(Any, FakeFederation(None))
    assert await authenticated_again(guard, token) is None  # expired, or its rule deleted: sign in again


async def test_an_outage_of_registration_is_a_503_to_retry_not_a_sign_out() -> None:
    # None would close the session (the visitor signs in again); a refusal leaves it open.
    guard = Guard(
        keystore=cast(Any, UnreachableKeys()), limiter=cast(Any, None), access=cast(Any, None), watch=cast(Any, None)
    )
    with pytest.raises(ConsoleRefusal) as refused:
        await authenticated_again(guard, "mr_abcdefgh_" + "x" * 43)
    assert (refused.value.status, refused.value.headers) == (503, {"Retry-After": "5"})
    guard.federation = cast(Any, FakeFederation(None, refusal=UNAVAILABLE))
    with pytest.raises(ConsoleRefusal) as refused:
        await authenticated_again(guard, jws({"sub": "alice"}))
    assert (refused.value.status, refused.value.headers) == (503, {"Retry-After": "5"})


@pytest.mark.parametrize("token", ["", "a.b", "a.!!!.c", f"a.{base64.urlsafe_b64encode(b'[1]').decode()}.c"])
def test_a_token_whose_payload_is_no_json_object_is_unreadable(token: str) -> None:
    with pytest.raises(ValueError):
        token_claims(token)
