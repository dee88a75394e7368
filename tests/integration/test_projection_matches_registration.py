"""The read model's documents are registration's own, field for field, after every kind of write."""

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from query.app import build_app as build_query
from query.config import QuerySettings
from query.projection.consumer import Projection
from query.projection.model import parse_tokens
from registration.app import build_app as build_registration
from registration.config import RegistrationSettings
from registry_contract.ids import model_id
from shared.chassis.kafka import ensure_topics
from tests.factories import store_admin_key
from tests.infra import Infra
from tests.integration.key_owner import asking_registration_for_keys
from tests.integration.restarting import running, shared_settings

pytestmark = pytest.mark.integration
# The tracker's fields (status, environments) come from its own events; a version lists its aliases.
READ_SIDE_ONLY = {"aliases", "approval", "status", "environments"}


async def test_after_every_kind_of_write_the_projected_documents_equal_registrations(
    infra: Infra, db_name: str, unique: str
) -> None:
    common = shared_settings(infra, db_name)
    registration = RegistrationSettings(**common, consumer_group=f"r-{unique}", relay_interval_seconds=0.05)
    await ensure_topics(registration, partitions=1)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    await store_admin_key(client[db_name])
    team, name = f"team-{unique}", "m"
    base, parent = f"/v1/models/{team}/{name}", {"team": team, "name": name, "version": "1.0.0"}
    try:
        async with (
            running(build_registration(registration), "http://registration") as writes,
            asking_registration_for_keys(QuerySettings(**common)) as settings,
        ):
            app = build_query(settings)
            projection: Projection = app.state.projection
            async with running(app, "http://query"):
                tokens = []
                for method, path, body in [
                    ("POST", "/versions", _version("1.0.0", {"stage": "a"})),
                    ("POST", "/versions", _version("2.0.0-rc.1", {"stage": "b"})),
                    (
                        "POST",
                        "/versions",
                        _version("1.1.0", {"stage": "c"}, parent=parent),
                    ),
                    ("PATCH", "/versions/1.1.0", {"description": "edited", "metrics": {"auc": 0.91}}),
                    ("PUT", "/shares/other-team", None),
                    ("PUT", "/aliases/champion", {"version": "1.0.0"}),
                    ("PUT", "/aliases/champion", {"version": "1.1.0"}),
                    ("PUT", "/versions/1.0.0/approval", {"status": "approved", "comment": "ok"}),
                    ("DELETE", "/shares/other-team", None),
                    ("PATCH", "", {"description": "the model's own", "links": {"docs": "https://docs.example"}}),
                    ("POST", "/versions/1.0.0/lifecycle", {"state": "deprecated"}),
                    ("POST", "/versions", _version("1.2.0", {"stage": "d"})),
                    ("DELETE", "/versions/1.2.0", None),
                    ("DELETE", "/aliases/champion", None),
                ]:
                    answer = await writes.request(method, base + path, json=body)
                    assert answer.status_code < 300, (method, path, answer.text)
                    tokens += parse_tokens(answer.headers["X-Registry-Consistency"])
                assert await projection.model.reached(tokens, 20)
            db = client[db_name]
            mid = model_id(team, name)
            theirs = await db["models"].find_one({"_id": mid})
            assert theirs is not None
            ours = projection.model.models[mid]
            assert {k: ours.get(k) for k in theirs} == theirs
            live = {"model_id": mid, "deleted": {"$ne": True}}  # a deleted version's tombstone stays in its place
            stored = {v["_id"]: v for v in await db["model_versions"].find(live).to_list()}
            projected = projection.model.versions[mid]
            assert set(projected) == set(stored)
            for vid, version in stored.items():
                mine = {k: v for k, v in projected[vid].items() if k not in READ_SIDE_ONLY}
                assert mine == {k: v for k, v in version.items() if k not in READ_SIDE_ONLY}, vid
                assert projected[vid].get("approval", {}).get("status") == (version.get("approval") or {}).get(
                    "status", "pending"
                )
    finally:
        await client.close()


def _version(version: str, tags: dict[str, str], parent: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": version,
        "framework": "xgboost",
        "artifact_uri": f"s3://ml-models/m/{version}",
        "description": f"v{version}",
        "tags": tags,
    }
    if parent is not None:
        body["parent"] = parent
    return body
