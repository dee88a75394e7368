"""Forwarded headers are believed from the configured proxies only: behind a TLS gateway cookies stay Secure."""

import secrets

import httpx
import pytest
from pydantic import ValidationError

from query.app import build_app
from query.config import QuerySettings

pytestmark = pytest.mark.unit
GATEWAY = "172.30.0.10"
KEY = secrets.token_hex(32)


async def sign_in_cookie(client: str, headers: dict[str, str], proxies: list[str]) -> str:
    """The sign-in form's cookie as the query service sets it for a request from ``client``."""
    app = build_app(QuerySettings(event_signing_key=KEY, trusted_proxies=proxies))
    transport = httpx.ASGITransport(app=app, client=(client, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://query:8080") as http:
        form = await http.get("/console/sign-in", headers=headers)
    assert form.status_code == 200, form.text
    return next(c for c in form.headers.get_list("set-cookie") if c.startswith("mr_console_sign_in=")).lower()


async def test_behind_a_trusted_tls_gateway_the_console_cookie_is_secure() -> None:
    cookie = await sign_in_cookie(GATEWAY, {"X-Forwarded-Proto": "https"}, [GATEWAY])
    assert "; secure" in cookie


async def test_a_network_of_proxies_may_be_trusted() -> None:
    cookie = await sign_in_cookie(GATEWAY, {"X-Forwarded-Proto": "https"}, ["172.30.0.0/24"])
    assert "; secure" in cookie


@pytest.mark.parametrize(
    ("client", "proxies"),
    [("10.9.9.9", [GATEWAY]), (GATEWAY, []), ("127.0.0.1", [])],
    ids=["not-the-proxy", "none-configured", "loopback-not-implied"],
)
async def test_forwarded_headers_from_anyone_else_are_ignored(client: str, proxies: list[str]) -> None:
    cookie = await sign_in_cookie(client, {"X-Forwarded-Proto": "https"}, proxies)
    assert "; secure" not in cookie


@pytest.mark.parametrize("proxy", ["*", "gateway", "10.0.0.0/33"])
def test_only_addresses_and_networks_are_proxies(proxy: str) -> None:
    with pytest.raises(ValidationError, match="not an IP address or network"):
        QuerySettings(event_signing_key=KEY, trusted_proxies=[proxy])
