"""Reads honour X-Registry-Consistency: they wait, bounded, until the read model has applied the write named."""

import asyncio
import secrets
import typing
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from query.app import build_app
from query.config import QuerySettings
from query.deps import CONSISTENT, Caller
from query.projection.model import ReadModel
from registry_contract.auth import Principal
from shared.chassis import problems

pytestmark = pytest.mark.unit
MODEL = "mdl_" + "a" * 24
FRAUD = Principal(key_id="k1", team="fraud", scopes=frozenset({"models:read"}))


def app_over(read_model: ReadModel, *, wait: float) -> FastAPI:
    """A read route behind the consistency dependency, the caller already authenticated."""
    app = FastAPI()
    problems.install(app)
    router = APIRouter(dependencies=CONSISTENT)

    @router.get("/read")
    async def read() -> dict[str, Any]:
        return {"models": len(read_model.models)}

    app.include_router(router)
    app.state.read_model, app.state.consistency_wait_seconds = read_model, wait
    authenticate = typing.get_args(Caller)[1].dependency
    app.dependency_overrides[authenticate] = lambda: FRAUD
    return app


async def get(app: FastAPI, header: str | None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://query") as client:
        return await client.get("/read", headers={"X-Registry-Consistency": header} if header else {})


async def test_a_read_without_a_token_answers_at_once() -> None:
    assert (await get(app_over(ReadModel(), wait=5), None)).status_code == 200


async def test_a_read_waits_until_the_write_is_applied() -> None:
    read_model = ReadModel()
    reading = asyncio.create_task(get(app_over(read_model, wait=30), f"r.{MODEL}.7"))
    await asyncio.sleep(0.05)
    assert not reading.done()
    read_model.revisions[("r", MODEL)] = 7
    read_model.models[MODEL] = {"_id": MODEL}
    read_model.notify({MODEL})
    answer = await asyncio.wait_for(reading, 10)
    assert answer.status_code == 200 and answer.json() == {"models": 1}


async def test_a_write_already_applied_or_older_answers_at_once() -> None:
    read_model = ReadModel()
    read_model.revisions[("r", MODEL)] = 9
    read_model.revisions[("d", MODEL)] = 3
    assert (await get(app_over(read_model, wait=30), f"r.{MODEL}.8, d.{MODEL}.3")).status_code == 200


async def test_a_write_not_reached_in_time_is_503_with_retry_after() -> None:
    answer = await get(app_over(ReadModel(), wait=0.05), f"d.{MODEL}.1")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    body = answer.json()
    assert body["type"] == "urn:registry:problem:unavailable"
    assert body["detail"] == "the read model has not yet reached this write"


@pytest.mark.parametrize(
    "header",
    [
        "x.mdl_aaaaaaaaaaaaaaaaaaaaaaaa.1",
        f"r.{MODEL}",
        f"r.{MODEL}.-1",
        "r.mdl_short.1",
        f"r.{MODEL}.{'9' * 21}",
        ",".join([f"r.{MODEL}.1"] * 9),
    ],
)
async def test_a_malformed_token_is_refused_without_waiting(header: str) -> None:
    answer = await get(app_over(ReadModel(), wait=30), header)
    assert answer.status_code == 422 and answer.json()["type"] == "urn:registry:problem:invalid"


def test_every_read_route_documents_the_header() -> None:
    schema = build_app(QuerySettings(event_signing_key=secrets.token_hex(32))).openapi()
    reads = {
        path: operation
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method == "get" and path.startswith("/v1/") and path != "/v1/meta"
    }
    assert "/v1/models/{team}/{name}/versions/{version}" in reads and "/v1/assistant/search" in reads
    for path, operation in reads.items():
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "x-registry-consistency" in {h.lower() for h in headers}, path
        assert "503" in operation["responses"], path
