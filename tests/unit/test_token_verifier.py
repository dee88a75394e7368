"""Verifying OpenID Connect tokens: what is accepted, each reason for a refusal, and what it costs.

The provider is faked over httpx.MockTransport (discovery and JWKS, every request counted) and
time is a fake clock, so refresh intervals and expiries are exact.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey

from registration import issuer_keys
from registration.config import RegistrationSettings
from registration.tokens import TokenVerifier
from shared.chassis.federation import TokenRefused

pytestmark = pytest.mark.unit

ISSUER = "https://idp.example.com"
AUDIENCE = "model-registry"
NOW = 1_700_000_000.0
REFRESH = 30.0
RSA_KEY = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig", "alg": "RS256"})
EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
# The same private key, not bound to RS256: what signs a token under another algorithm.
UNBOUND_RSA_KEY = RSAKey.import_key(
    {name: value for name, value in RSA_KEY.as_dict(private=True).items() if name != "alg"}
)


class Provider:
    """A fake OpenID provider: discovery and JWKS, counting what is asked of it."""

    def __init__(self, *keys: Key) -> None:
        self.jwks: dict[str, Any] = {"keys": [key.as_dict(private=False) for key in keys]}
        self.discovery: dict[str, Any] = {"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"}
        self.failing = False
        self.paths: list[str] = []

    def publish(self, *keys: Key) -> None:
        self.jwks = {"keys": [key.as_dict(private=False) for key in keys]}

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if self.failing:
            return httpx.Response(503)
        if str(request.url) == f"{ISSUER}/.well-known/openid-configuration":
            return httpx.Response(200, json=self.discovery)
        if str(request.url) == f"{ISSUER}/jwks":
            return httpx.Response(200, json=self.jwks)
        return httpx.Response(404)

    @property
    def jwks_fetches(self) -> int:
        return self.paths.count("/jwks")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def claims(**changes: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "iat": int(NOW), "exp": int(NOW) + 300}
    return {name: value for name, value in {**base, **changes}.items() if value is not None}


def sign(key: Key = RSA_KEY, alg: str = "RS256", kid: str | None = "", **changes: Any) -> str:
    """A token signed with ``key``, naming ``kid`` (default: the key's own; None: no kid)."""
    header = {"alg": alg} | ({} if kid is None else {"kid": kid or key.kid})
    return jwt.encode(header, claims(**changes), key, algorithms=[alg])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assemble(header: Any, payload: Any, signature: str = "c2ln") -> str:
    """A token put together by hand, raw JSON text allowed, with whatever signature."""
    texts = [part if isinstance(part, str) else json.dumps(part) for part in (header, payload)]
    return ".".join([b64(texts[0].encode()), b64(texts[1].encode()), signature])


@pytest.fixture
def provider() -> Provider:
    return Provider(RSA_KEY, EC_KEY)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def verifier(provider: Provider, clock: Clock) -> AsyncIterator[TokenVerifier]:
    verifier = TokenVerifier(
        issuers=[ISSUER],
        audiences=[AUDIENCE],
        algorithms=["RS256", "ES256", "PS256"],
        jwks_refresh_seconds=REFRESH,
        transport=httpx.MockTransport(provider.answer),
        clock=clock,
    )
    yield verifier
    await verifier.close()


async def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenRefused) as refusal:
        await verifier.verify(token)
    return refusal.value.reason


# --- accepted --------------------------------------------------------------------------------------


async def test_an_rs256_token_of_a_listed_issuer_verifies(verifier: TokenVerifier) -> None:
    verified = await verifier.verify(sign(groups=["ml", "ops"]))

    assert (verified.issuer, verified.subject) == (ISSUER, "alice")
    assert verified.claims["groups"] == ["ml", "ops"]
    assert verified.expires_at == datetime.fromtimestamp(NOW + 300, UTC)


async def test_an_es256_token_verifies(verifier: TokenVerifier) -> None:
    assert (await verifier.verify(sign(EC_KEY, "ES256"))).subject == "alice"


async def test_an_audience_list_naming_ours_verifies(verifier: TokenVerifier) -> None:
    assert await verifier.verify(sign(aud=["other", AUDIENCE]))


async def test_keys_are_fetched_once_for_many_tokens(verifier: TokenVerifier, provider: Provider) -> None:
    for _ in range(5):
        await verifier.verify(sign())

    assert provider.paths == ["/.well-known/openid-configuration", "/jwks"]


async def test_a_token_without_a_kid_verifies_under_the_key_that_signed_it(
    verifier: TokenVerifier, provider: Provider
) -> None:
    # The issuer has two keys; a token naming neither is tried under each (a bounded number).
    assert (await verifier.verify(sign(kid=None))).subject == "alice"
    assert (await verifier.verify(sign(EC_KEY, "ES256", kid=None))).subject == "alice"
    # No key of the issuer is for PS256 (its RSA key is bound to RS256): none is tried.
    assert await refused(verifier, sign(UNBOUND_RSA_KEY, "PS256", kid=None)) == "unknown_key"


async def test_a_rotation_without_kids_is_followed_at_most_once_per_interval(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    # A provider that signs without key ids (as the test provider of the end-to-end suite does).
    assert (await verifier.verify(sign(kid=None))).subject == "alice"
    rotated = RSAKey.generate_key(2048, parameters={"kid": "rsa-2", "use": "sig", "alg": "RS256"})
    provider.publish(rotated)
    fetches = provider.jwks_fetches
    # Within the interval: no fetch, however many tokens fail.
    for _ in range(20):
        assert await refused(verifier, sign(rotated, kid=None)) == "signature"
    assert provider.jwks_fetches == fetches
    clock.now += REFRESH
    assert (await verifier.verify(sign(rotated, kid=None, iat=int(clock.now), exp=int(clock.now) + 300))).subject
    assert provider.jwks_fetches == fetches + 1


# --- refused before any key is looked for -----------------------------------------------------------


async def test_a_token_over_the_size_limit_is_too_large(verifier: TokenVerifier, provider: Provider) -> None:
    assert await refused(verifier, sign(padding="x" * 8192)) == "too_large"
    assert provider.paths == []


@pytest.mark.parametrize(
    "token",
    [
        "a.b",
        "a.b.c.d",
        "..",
        "e30.e30.c2ln!",
        assemble({"alg": "RS256"}, claims()).replace(".", ".=", 1),
        assemble("not json", claims()),
        assemble([], claims()),
        assemble({"alg": "RS256", "jwk": {"kty": "RSA"}}, claims()),
        assemble({"alg": "RS256", "kid": 7}, claims()),
        assemble({"alg": "RS256"}, ["not", "an", "object"]),
        assemble({"alg": "RS256"}, '{"iss": "a", "iss": "' + ISSUER + '"}'),
        assemble({"alg": "RS256"}, '{"exp": NaN}'),
        assemble({"alg": "RS256"}, {"deep": json.loads("[" * 20 + "]" * 20)}),
        assemble({"alg": "RS256"}, '{"a": ' + "[" * 3000 + "]" * 3000 + "}"),
    ],
    ids=[
        "two-segments",
        "four-segments",
        "empty-segments",
        "bad-signature-alphabet",
        "padding",
        "header-not-json",
        "header-not-object",
        "nested-header",
        "header-number",
        "payload-not-object",
        "repeated-claim",
        "nan",
        "deep-payload",
        "deeper-than-the-parser",
    ],
)
async def test_a_token_not_shaped_as_a_jws_is_malformed(
    verifier: TokenVerifier, provider: Provider, token: str
) -> None:
    assert await refused(verifier, token) == "malformed"
    assert provider.paths == []


async def test_an_unsigned_token_is_refused_by_its_algorithm(verifier: TokenVerifier) -> None:
    assert await refused(verifier, assemble({"alg": "none"}, claims(), signature="")) == "algorithm"
    assert await refused(verifier, assemble({"typ": "JWT"}, claims())) == "algorithm"


async def test_an_hmac_token_keyed_with_the_public_key_is_refused_by_its_algorithm(
    verifier: TokenVerifier, provider: Provider
) -> None:
    """The classic confusion: HS256 "verified" with the RSA public key's PEM as the secret."""
    unsigned = assemble({"alg": "HS256", "kid": RSA_KEY.kid}, claims(), signature="").rstrip(".")
    secret = RSA_KEY.as_pem(private=False)
    token = f"{unsigned}.{b64(hmac.new(secret, unsigned.encode(), hashlib.sha256).digest())}"

    assert await refused(verifier, token) == "algorithm"
    assert provider.paths == []


async def test_an_algorithm_not_allowed_is_refused(verifier: TokenVerifier) -> None:
    assert await refused(verifier, sign(UNBOUND_RSA_KEY, "RS512")) == "algorithm"


@pytest.mark.parametrize("issuer", ["https://evil.example.com", ISSUER + "/", ISSUER.upper(), None, [ISSUER]], ids=repr)
async def test_an_issuer_not_listed_costs_no_request(verifier: TokenVerifier, provider: Provider, issuer: Any) -> None:
    assert await refused(verifier, sign(iss=issuer)) == "issuer"
    assert provider.paths == []


# --- keys ---------------------------------------------------------------------------------------------


async def test_a_discovery_document_naming_another_issuer_gives_no_keys(
    verifier: TokenVerifier, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[dict[str, Any]] = []
    monkeypatch.setattr(issuer_keys.log, "warning", lambda event, **fields: warnings.append(fields))
    provider.discovery["issuer"] = ISSUER + "/"

    assert await refused(verifier, sign()) == "jwks_unavailable"
    assert "/jwks" not in provider.paths
    assert warnings and warnings[0]["issuer"] == ISSUER


async def test_a_jwks_uri_over_plain_http_is_not_fetched(verifier: TokenVerifier, provider: Provider) -> None:
    provider.discovery["jwks_uri"] = "http://idp.example.com/jwks"

    assert await refused(verifier, sign()) == "jwks_unavailable"
    assert provider.jwks_fetches == 0


@pytest.mark.parametrize(
    "jwks",
    [{"keys": [{"kty": "RSA", "kid": str(n)} for n in range(101)]}, {"keys": [], "padding": "x" * 300_000}, {}],
    ids=["too-many-keys", "too-large", "no-keys"],
)
async def test_a_jwks_past_its_bounds_gives_no_keys(
    verifier: TokenVerifier, provider: Provider, jwks: dict[str, Any]
) -> None:
    provider.jwks = jwks
    assert await refused(verifier, sign()) == "jwks_unavailable"


async def test_encryption_and_secret_keys_of_a_jwks_are_ignored(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    provider.jwks["keys"][0]["use"] = "enc"
    provider.jwks["keys"].append({"kty": "oct", "kid": "secret", "k": b64(b"s" * 32)})

    assert await refused(verifier, sign()) == "unknown_key"
    clock.now += REFRESH
    assert await refused(verifier, sign(kid="secret")) == "unknown_key"


async def test_a_failed_fetch_is_retried_after_the_refresh_interval(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    provider.failing = True
    assert await refused(verifier, sign()) == "jwks_unavailable"
    provider.failing = False
    assert await refused(verifier, sign()) == "jwks_unavailable"
    assert len(provider.paths) == 1

    clock.now += REFRESH
    assert await verifier.verify(sign())


async def test_keys_older_than_their_maximum_age_are_fetched_again(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    await verifier.verify(sign())
    provider.publish(EC_KEY)  # the RSA key withdrawn, no new kid to prompt a refetch
    clock.now += 3600

    assert await refused(verifier, sign(exp=int(clock.now) + 300)) == "unknown_key"
    assert provider.jwks_fetches == 2


async def test_keys_past_a_maximum_age_shorter_than_the_refresh_interval_are_fetched_at_once(
    provider: Provider, clock: Clock
) -> None:
    transport = httpx.MockTransport(provider.answer)
    verifier = TokenVerifier(
        issuers=[ISSUER],
        audiences=[AUDIENCE],
        algorithms=["RS256"],
        jwks_max_age_seconds=10,
        transport=transport,
        clock=clock,
    )
    await verifier.verify(sign())
    clock.now += 10

    assert all(await asyncio.gather(verifier.verify(sign()), verifier.verify(sign())))  # the second joins the fetch
    assert provider.jwks_fetches == 2
    await verifier.close()


async def test_a_wall_clock_set_back_does_not_freeze_the_keys(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    await verifier.verify(sign())
    provider.publish(EC_KEY)
    clock.now -= 600  # the keys now look fetched in the future

    assert await refused(verifier, sign(iat=int(clock.now))) == "unknown_key"
    assert provider.jwks_fetches == 2


async def test_a_wall_clock_set_back_does_not_hold_off_the_retry_of_a_failed_fetch(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    provider.failing = True
    assert await refused(verifier, sign()) == "jwks_unavailable"
    provider.failing = False
    clock.now -= 600

    assert await verifier.verify(sign(iat=int(clock.now)))


async def test_a_flood_of_unknown_kids_fetches_the_jwks_once_per_interval(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    await verifier.verify(sign())
    clock.now += REFRESH  # a refetch is allowed again
    flood = [sign(EC_KEY, "ES256", kid=secrets.token_hex(8)) for _ in range(1000)]

    reasons = await asyncio.gather(*(refused(verifier, token) for token in flood[:500]))
    reasons += [await refused(verifier, token) for token in flood[500:]]

    assert set(reasons) == {"unknown_key"}
    assert provider.jwks_fetches == 2  # the first fetch, and one refetch for the whole flood


async def test_a_key_rotated_in_at_the_provider_verifies_after_the_refresh_interval(
    verifier: TokenVerifier, provider: Provider, clock: Clock
) -> None:
    await verifier.verify(sign())
    new_key = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"})
    provider.publish(new_key)
    rotated = sign(new_key, exp=int(NOW) + 3000)

    assert await refused(verifier, rotated) == "unknown_key"  # fetched too recently to ask again
    clock.now += REFRESH
    assert (await verifier.verify(rotated)).subject == "alice"
    assert provider.jwks_fetches == 2


# --- signature ------------------------------------------------------------------------------------------


async def test_a_token_signed_by_another_key_under_a_known_kid_has_a_bad_signature(verifier: TokenVerifier) -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    assert await refused(verifier, sign(impostor)) == "signature"


async def test_a_tampered_payload_has_a_bad_signature(verifier: TokenVerifier) -> None:
    header, _, signature = sign().split(".")
    forged = f"{header}.{b64(json.dumps(claims(sub='root')).encode())}.{signature}"
    assert await refused(verifier, forged) == "signature"


async def test_a_key_bound_to_another_algorithm_does_not_verify(verifier: TokenVerifier) -> None:
    """The published key says RS256; a PS256 token naming it is refused even though PS256 is allowed."""
    assert await refused(verifier, sign(UNBOUND_RSA_KEY, "PS256")) == "signature"


# --- claims -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": int(NOW) - 31}, "expired"),
        ({"nbf": int(NOW) + 31}, "not_yet_valid"),
        ({"iat": int(NOW) + 31}, "not_yet_valid"),
        ({"aud": "another-service"}, "audience"),
        ({"aud": ["a", "b"]}, "audience"),
        ({"aud": None}, "audience"),
        ({"exp": None}, "claims"),
        ({"exp": "tomorrow"}, "claims"),
        ({"exp": 10**20}, "claims"),
        ({"sub": ""}, "claims"),
        ({"sub": None}, "claims"),
        ({"sub": 42}, "claims"),
        ({"name": "Alice\nlevel=admin"}, "claims"),
        ({"groups": ["ml", "ops\x00"]}, "claims"),
        ({"email": "a@example.com\x7f"}, "claims"),
        ({f"c{n}": n for n in range(200)}, "claims"),
    ],
    ids=lambda value: repr(value)[:40],
)
async def test_claims_that_do_not_hold_are_refused(
    verifier: TokenVerifier, changes: dict[str, Any], reason: str
) -> None:
    assert await refused(verifier, sign(**changes)) == reason


@pytest.mark.parametrize("changes", [{"exp": int(NOW) - 29}, {"nbf": int(NOW) + 29}, {"iat": int(NOW) + 29}], ids=repr)
async def test_times_within_the_leeway_are_accepted(verifier: TokenVerifier, changes: dict[str, Any]) -> None:
    assert await verifier.verify(sign(**changes))


# --- construction -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: TokenVerifier(issuers=[ISSUER], audiences=[AUDIENCE], algorithms=["HS256"]),
        lambda: TokenVerifier(issuers=[ISSUER], audiences=[AUDIENCE], algorithms=["none"]),
        lambda: TokenVerifier(issuers=["http://idp.example.com"], audiences=[AUDIENCE], algorithms=["RS256"]),
    ],
    ids=["hmac", "none", "plain-http-issuer"],
)
def test_a_verifier_refuses_to_be_built_unsafe(build: Callable[[], TokenVerifier]) -> None:
    with pytest.raises(ValueError):
        build()


async def test_a_verifier_is_built_from_the_settings() -> None:
    settings = RegistrationSettings(oidc_issuers=[ISSUER], oidc_leeway_seconds=0)
    verifier = TokenVerifier.of(settings)
    assert await refused(verifier, sign(iss="https://other.example.com")) == "issuer"
    await verifier.close()


async def test_a_jwks_uri_the_http_client_cannot_parse_fails_the_token_not_the_request(
    verifier: TokenVerifier, provider: Provider
) -> None:
    provider.discovery["jwks_uri"] = "https://a\x00b.example/jwks"
    assert await refused(verifier, sign()) == "jwks_unavailable"
