"""What OpenID Connect tokens cost; prints a table (no assertions).

    .venv/bin/python bench/token_bench.py [--tokens 2000] [--requests 1000]

1. Registration's verifier alone, in process, against a provider faked over httpx.MockTransport
   (its requests counted): a good RS256 and ES256 token, and each kind of hostile token, per
   verification; and a flood of made-up key ids, with the JWKS fetches it caused.
2. Over HTTP on the embedded stack with a real provider (``oidc-provider-mock``) on loopback:
   ``GET /v1/models`` on the query service with an API key, and with an admitted token (its
   admission cached; the first request of each token asks registration), one client, p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, when run as a script

from registration.tokens import TokenVerifier
from shared.chassis.federation import TokenRefused
from tests.oidc_provider import OidcProvider, pipeline_subject, stack_environment
from tests.throwaway import throwaway_stack, unthrottled_admin_key

console = Console()
ISSUER, AUDIENCE = "https://idp.example.com", "model-registry"
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa", "alg": "RS256", "use": "sig"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ec", "alg": "ES256", "use": "sig"})


class Provider:
    def __init__(self, *keys: Key) -> None:
        self.jwks = {"keys": [key.as_dict(private=False) for key in keys]}
        self.requests = 0

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"})
        return httpx.Response(200, json=self.jwks)


def token(key: Key, alg: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ci", "iat": now, "exp": now + 600, **claims}
    return jwt.encode({"alg": alg, "kid": key.kid}, body, key, algorithms=[alg])


def forged(header: str, body: str, signature: str = "c2ln") -> str:
    """A token put together by hand (the hostile kinds)."""

    def part(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(body)}.{signature}"


async def per_verification(verifier: TokenVerifier, tokens: list[str]) -> tuple[float, str]:
    """Microseconds per verification, and the outcome of the last."""
    outcome = "admitted"
    started = time.perf_counter()
    for each in tokens:
        try:
            await verifier.verify(each)
            outcome = "admitted"
        except TokenRefused as refused:
            outcome = refused.reason
    return (time.perf_counter() - started) / len(tokens) * 1e6, outcome


async def verifier_rows(count: int) -> list[tuple[str, str, str, str]]:
    provider = Provider(RSA, EC)
    verifier = TokenVerifier(
        issuers=[ISSUER],
        audiences=[AUDIENCE],
        algorithms=["RS256", "ES256"],
        jwks_refresh_seconds=30,
        transport=httpx.MockTransport(provider.answer),
    )
    now = int(time.time())
    claims = f'{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"x","exp":{now + 600}}}'
    kinds: dict[str, Callable[[int], str]] = {
        "good RS256": lambda _: token(RSA, "RS256"),
        "good ES256": lambda _: token(EC, "ES256"),
        "alg none": lambda _: forged('{"alg":"none"}', claims, ""),
        "HS256": lambda _: forged('{"alg":"HS256"}', claims),
        "unlisted issuer": lambda _: forged('{"alg":"RS256","kid":"rsa"}', claims.replace(ISSUER, "https://evil")),
        "bad signature": lambda _: forged('{"alg":"RS256","kid":"rsa"}', claims),
        "expired": lambda _: token(RSA, "RS256", exp=now - 3600),
        "oversized": lambda _: token(RSA, "RS256", pad="x" * 9000),
        "made-up key ids (flood)": lambda i: forged(f'{{"alg":"RS256","kid":"k{i}"}}', claims),
    }
    rows = []
    try:
        await verifier.verify(token(RSA, "RS256"))  # the issuer's keys fetched once, as in service
        for kind, make in kinds.items():
            tokens = [make(i) for i in range(count)]
            before = provider.requests
            micros, outcome = await per_verification(verifier, tokens)
            rows.append((kind, f"{micros:,.0f}", outcome, str(provider.requests - before)))
    finally:
        await verifier.close()
    return rows


async def timed(send: Callable[[], Awaitable[httpx.Response]], requests: int) -> tuple[float, float]:
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        answer = await send()
        latencies.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text
    return statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]


async def http_rows(requests: int) -> list[tuple[str, str, str]]:
    with tempfile.TemporaryDirectory(prefix="token-bench-") as root:
        provider = OidcProvider(Path(root))
        await provider.start()
        os.environ.update(stack_environment(provider))  # the services inherit it
        # Both credentials far from the limit: a token's bucket is its rule's and subject's, not a key's own.
        os.environ.update(RATE_LIMIT_PER_SECOND="100000", RATE_LIMIT_BURST="100000")
        try:
            async with throwaway_stack("token-bench-") as stack:
                team = f"bench-{secrets.token_hex(3)}"
                admin = await unthrottled_admin_key(stack, name="token-bench")
                rule = {"issuer": provider.issuer, "claims": {"repository": "acme/bench"}, "scopes": ["models:read"]}
                async with httpx.AsyncClient(base_url=stack.url("registration"), timeout=30) as http:
                    as_admin = {"Authorization": f"Bearer {admin}"}
                    made = await http.post(f"/v1/teams/{team}/trust-rules", json=rule, headers=as_admin)
                    assert made.status_code == 201, made.text
                subject = pipeline_subject("acme/bench")
                await provider.set_user(subject, {"repository": "acme/bench"})
                bearer = await provider.id_token(subject)
                credentials = {
                    "API key": {"Authorization": f"Bearer {admin}"},
                    "OIDC token (admission cached)": {"Authorization": f"Bearer {bearer}", "X-Registry-Team": team},
                }
                rows: list[tuple[str, str, str]] = []
                async with httpx.AsyncClient(base_url=stack.url("query"), timeout=30) as http:
                    for what, headers in credentials.items():

                        async def read(headers: dict[str, str] = headers) -> httpx.Response:
                            return await http.get("/v1/models", headers=headers)

                        await read()  # warm: a token's first request asks registration
                        p50, p99 = await timed(read, requests)
                        rows.append((what, f"{p50:.2f}", f"{p99:.2f}"))
                return rows
        finally:
            await provider.stop()


async def main(args: argparse.Namespace) -> int:
    table = Table(title=f"Token verification in registration ({args.tokens} tokens of each kind)")
    for column in ("token", "µs per verification", "outcome", "JWKS/discovery requests"):
        table.add_column(column)
    for row in await verifier_rows(args.tokens):
        table.add_row(*row)
    console.print(table)
    table = Table(title=f"GET /v1/models on the query service, one client, {args.requests} requests")
    for column in ("credential", "p50 ms", "p99 ms"):
        table.add_column(column)
    for http_row in await http_rows(args.requests):
        table.add_row(*http_row)
    console.print(table)
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=2000, help="tokens of each kind verified in process")
    parser.add_argument("--requests", type=int, default=1000, help="HTTP requests per credential")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
