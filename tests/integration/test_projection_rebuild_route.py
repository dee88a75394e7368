"""POST /internal/v1/projection/rebuild: operators and services only; the model rebuilt from the owners' real logs."""

from typing import Any

import pytest
from pymongo import AsyncMongoClient
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from query.app import build_app as build_query
from query.config import QuerySettings
from query.projection.consumer import Projection
from registration.app import build_app as build_registration
from registration.config import RegistrationSettings
from shared.chassis.kafka import ensure_topics
from shared.chassis.keystore import issue_key
from shared.chassis.verifiers import internal_token
from tests.factories import store_admin_key
from tests.infra import Infra
from tests.integration.key_owner import asking_registration_for_keys
from tests.integration.restarting import running, shared_settings
from tests.waiting import serving, until

pytestmark = pytest.mark.integration
REBUILD = "/internal/v1/projection/rebuild"


async def empty_log(request: Request) -> JSONResponse:
    """A deploy-tracker that has published nothing yet."""
    return JSONResponse({"items": [], "next_after": None})


async def team_key(infra: Infra, db_name: str, team: str) -> str:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
    try:
        await store_admin_key(client[db_name])
        key, _ = await issue_key(
            client[db_name]["api_keys"], team=team, name="w", scopes=["models:read"], created_by="t"
        )
    finally:
        await client.close()
    return key.token


async def test_the_rebuild_answers_operators_only_and_rebuilds_from_registrations_log(
    infra: Infra, db_name: str, unique: str
) -> None:
    common = shared_settings(infra, db_name)
    registration = RegistrationSettings(**common, consumer_group=f"r-{unique}", relay_interval_seconds=0.05)
    await ensure_topics(registration, partitions=1)
    team = f"team-{unique}"
    theirs = await team_key(infra, db_name, team)
    async with (
        serving([Route("/internal/v1/events", empty_log)]) as tracker,
        running(build_registration(registration), "http://registration") as writes,
        asking_registration_for_keys(QuerySettings(**common, deploy_tracker_url=f"http://127.0.0.1:{tracker}")) as q,
    ):
        app = build_query(q)
        projection: Projection = app.state.projection
        async with running(app, "http://query") as reads:
            for version in ("1.0.0", "1.1.0"):
                body = {"version": version, "framework": "xgboost", "artifact_uri": f"s3://ml-models/m/{version}"}
                written = await writes.post(f"/v1/models/{team}/m/versions", json=body)
                assert written.status_code == 201, written.text

            async def projected() -> bool:
                return len(projection.model.sorted_versions(next(iter(projection.model.models), ""))) == 2

            await until(projected, what="both versions in the read model")
            nobody = await reads.post(REBUILD, headers={"Authorization": ""})
            assert nobody.status_code == 401, nobody.text
            team_member = await reads.post(REBUILD, headers={"Authorization": f"Bearer {theirs}"})
            assert team_member.status_code == 403, team_member.text
            assert team_member.headers["content-type"].startswith("application/problem+json")
            for headers in ({}, {"Authorization": "", "X-Registry-Service-Token": internal_token(q)}):
                rebuilt = await reads.post(REBUILD, headers=headers)  # the admin's key, then the services'
                assert rebuilt.status_code == 200, rebuilt.text
                assert rebuilt.json()["versions"] == 2 and rebuilt.json()["events"]["d"] == 0
                assert rebuilt.json()["events"]["r"] >= 2
            assert len(projection.model.sorted_versions(next(iter(projection.model.models)))) == 2
