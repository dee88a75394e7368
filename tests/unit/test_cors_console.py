"""CORS never covers the cookie-authenticated console, whatever origins are listed."""

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shared.chassis.cors import ListedOrigins

pytestmark = pytest.mark.unit
LISTED = "https://console.example.com"
PREFLIGHT = {
    "Origin": LISTED,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}


async def page(_: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def client() -> httpx.AsyncClient:
    paths = ["/console", "/console/models/fraud/m", "/consoles", "/v1/models"]
    app = Starlette(routes=[Route(path, page, methods=["GET", "POST"]) for path in paths])
    transport = httpx.ASGITransport(app=ListedOrigins(app, origins=[LISTED]))
    return httpx.AsyncClient(transport=transport, base_url="http://query")


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("access-control-")}


@pytest.mark.parametrize("path", ["/console", "/console/models/fraud/m"])
async def test_a_listed_origin_gets_no_cors_header_from_the_console(path: str) -> None:
    async with client() as http:
        simple = await http.get(path, headers={"Origin": LISTED})
        preflight = await http.options(path, headers=PREFLIGHT)
    assert simple.status_code == 200 and cors_headers(simple) == {}
    assert preflight.status_code == 405 and cors_headers(preflight) == {}


@pytest.mark.parametrize("path", ["/v1/models", "/consoles"])
async def test_a_listed_origin_still_gets_cors_from_the_apis(path: str) -> None:
    async with client() as http:
        simple = await http.get(path, headers={"Origin": LISTED})
        preflight = await http.options(path, headers=PREFLIGHT)
    assert simple.headers["access-control-allow-origin"] == LISTED
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-credentials"] == "true"
