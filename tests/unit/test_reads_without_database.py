"""Every read route answers from the read model in memory: with no MongoDB to reach, reads still answer."""

import secrets
import typing
from datetime import UTC, datetime

import httpx
import pytest

from query.app import build_app
from query.config import QuerySettings
from query.deps import Caller
from registry_contract.auth import Principal
from tests.read_models import MemoryWorld

pytestmark = pytest.mark.unit
UNREACHABLE = "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=100&connectTimeoutMS=100"
T0 = datetime(2026, 12, 1, tzinfo=UTC)
REPORTED = {"status": "deployed", "occurred_at": T0, "received_at": T0}
FRAUD = Principal(key_id="k1", team="fraud", scopes=frozenset({"models:read"}))


async def test_every_read_answers_with_the_database_unreachable() -> None:
    world = MemoryWorld()
    await world.register("fraud", "card", "1.0.0", "1.1.0", tags={"owner": "alice"})
    await world.register("fraud", "tuned", parent={"team": "fraud", "name": "card", "version": "1.0.0"})
    world.model("fraud", "card")["aliases"] = {"champion": "1.0.0"}
    world.sync()
    world.add_report("fraud", "card", "1.0.0", environment="prod", outcome="applied", report_id="r1", **REPORTED)
    model_id = world.model("fraud", "card")["_id"]
    registered = {"_id": "e1", "type": "registry.event.model_version_registered", "time": T0, "data": {}, "position": 1}
    world.read_model.history[model_id] = [registered]
    app = build_app(QuerySettings(event_signing_key=secrets.token_hex(32), mongodb_uri=UNREACHABLE))
    app.state.read_model.adopt(world.read_model)
    app.dependency_overrides[typing.get_args(Caller)[1].dependency] = lambda: FRAUD
    base = "/v1/models/fraud/card"
    paths = [
        "/v1/models?tag=owner:alice",
        "/v1/teams/fraud/models",
        f"/v1/models/id/{model_id}",
        base,
        f"{base}/history",
        f"{base}/versions",
        f"{base}/versions/latest",
        f"{base}/versions/@champion",
        f"{base}/versions/1.0.0/lineage",
        f"{base}/versions/1.0.0/deployments",
        f"{base}/deployments?outcome=applied",
        f"{base}/aliases",
        "/v1/teams/fraud/versions",
        "/v1/teams/fraud/deployments",
        "/v1/assistant/models/fraud/card/card",
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://query") as client:
        for path in paths:
            answer = await client.get(path)
            assert answer.status_code == 200, (path, answer.text)
        lineage = (await client.get(f"{base}/versions/1.0.0/lineage")).json()
        assert [child["name"] for child in lineage["children"]] == ["tuned"]
        assert (await client.get(f"{base}/versions/@champion")).json()["version"] == "1.0.0"
