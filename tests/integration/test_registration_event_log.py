"""Registration serves its event log and its versions to the other services (bootstrap, rebuild, catch-up)."""

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from registry_contract import messages
from registry_contract.identity_events import API_KEY_CREATED
from registry_contract.ids import model_id, version_id
from tests.infra import Infra
from tests.integration.registration_inprocess import registration_settings, running, service_headers
from tests.kafka_tools import Collector, header

pytestmark = pytest.mark.integration
ARTIFACT = {"artifact_uri": "s3://models/card/1", "framework": "scikit-learn"}


async def test_the_log_pages_through_what_the_relay_published_in_position_order(
    infra: Infra, db_name: str, mongo: AsyncMongoClient[dict[str, Any]], unique: str
) -> None:
    settings = await registration_settings(infra, db_name)
    name = f"card-{unique}"
    async with running(settings) as http, Collector(settings.kafka_bootstrap_servers, settings.topic_events) as events:
        for version in ("1.0.0", "1.1.0", "2.0.0"):
            answer = await http.post(f"/v1/models/fraud/{name}/versions", json={"version": version, **ARTIFACT})
            assert answer.status_code == 201, answer.text
        refused = await http.post(f"/v1/models/fraud/{name}/versions", json={"version": "2.0.0", **ARTIFACT})
        assert refused.status_code == 409
        # The bootstrap admin key announced at start, three registrations, one command_rejected.
        published = await events.wait_for(lambda r: True, count=5)
        # A row the broker refused for good was never published: the log leaves it out.
        await mongo[db_name]["outbox"].insert_one(
            {"_id": f"parked-{unique}", "type": "t", "source": "/s", "time": None, "position": 2**62, "data": {}}
            | {"parked_reason": "too large", "correlation_id": "c", "key": "k"}
        )
        pages: list[dict[str, Any]] = []
        after: int | None = 0
        while after is not None:
            answer = await http.get(
                "/internal/v1/events", params={"after": after, "limit": 2}, headers=service_headers(settings)
            )
            assert answer.status_code == 200, answer.text
            pages.append(answer.json())
            after = pages[-1]["next_after"]

    items = [item for page in pages for item in page["items"]]
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert [page["next_after"] for page in pages] == [items[1]["revision"], items[3]["revision"], None]
    assert [item["revision"] for item in items] == sorted(item["revision"] for item in items)
    assert [item["type"] for item in items] == [
        API_KEY_CREATED,
        messages.MODEL_VERSION_REGISTERED,
        messages.MODEL_VERSION_REGISTERED,
        messages.MODEL_VERSION_REGISTERED,
        messages.COMMAND_REJECTED,
    ]
    # Each item is the event the relay published: same id, same revision, same attributes, same data.
    by_id = {header(record, "ce_id"): record for record in published}
    for item in items:
        record = by_id[item["id"]]
        assert header(record, "ce_revision") == str(item["revision"])
        assert (header(record, "ce_type"), header(record, "ce_source")) == (item["type"], item["source"])
        assert header(record, "ce_subject") == item["subject"]
        assert header(record, "ce_correlationid") == item["correlation_id"]
        assert header(record, "ce_causationid") == item["causation_id"]
        assert record.value == _json(item["data"])
    assert set(items[0]) == {
        "id",
        "type",
        "source",
        "time",
        "subject",
        "correlation_id",
        "causation_id",
        "revision",
        "data",
    }


def _json(data: dict[str, Any]) -> bytes:
    import json

    return json.dumps(data, separators=(",", ":")).encode()


async def test_only_the_services_and_platform_admins_read_it(infra: Infra, db_name: str) -> None:
    settings = await registration_settings(infra, db_name)
    async with running(settings) as http:
        team_key = await http.post(
            "/v1/teams/fraud/api-keys", json={"name": "ci", "scopes": ["models:read", "team:admin"]}
        )
        assert team_key.status_code == 201, team_key.text
        as_team = {"Authorization": f"Bearer {team_key.json()['token']}"}
        anonymous = await http.get("/internal/v1/events", headers={"Authorization": ""})
        wrong = await http.get(
            "/internal/v1/events", headers={"Authorization": "", "X-Registry-Service-Token": "guess"}
        )
        team = await http.get("/internal/v1/events", headers=as_team)
        team_version = await http.get("/internal/v1/versions/fraud/x/1.0.0", headers=as_team)
        admin = await http.get("/internal/v1/events")  # the client's default: the platform admin's key
        service = await http.get("/internal/v1/events", headers={"Authorization": "", **service_headers(settings)})
        too_many = await http.get("/internal/v1/events", params={"limit": 1001})
        negative = await http.get("/internal/v1/events", params={"after": -1})
        public = (await http.get("/openapi.json")).json()["paths"]
    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert (team.status_code, team_version.status_code) == (403, 403)
    assert (admin.status_code, service.status_code) == (200, 200)
    assert (too_many.status_code, negative.status_code) == (422, 422)
    assert not [path for path in public if path.startswith("/internal")]


async def test_a_version_is_described_deleted_ones_too_and_an_unknown_one_is_404(
    infra: Infra, db_name: str, unique: str
) -> None:
    settings = await registration_settings(infra, db_name)
    name = f"card-{unique}"
    base = f"/v1/models/fraud/{name}"
    async with running(settings) as http:
        for version in ("1.0.0", "2.0.0+build.7"):
            assert (await http.post(f"{base}/versions", json={"version": version, **ARTIFACT})).status_code == 201
        decided = await http.put(
            f"{base}/versions/2.0.0+build.7/approval", json={"status": "approved", "comment": "ok"}
        )
        assert decided.status_code == 200, decided.text
        assert (await http.delete(f"{base}/versions/1.0.0")).status_code == 204
        internal = service_headers(settings)
        live = await http.get(f"/internal/v1/versions/fraud/{name}/2.0.0", headers=internal)
        gone = await http.get(f"/internal/v1/versions/fraud/{name}/1.0.0", headers=internal)
        unknown = await http.get(f"/internal/v1/versions/fraud/{name}/3.0.0", headers=internal)
        not_semver = await http.get(f"/internal/v1/versions/fraud/{name}/latest", headers=internal)
    assert live.status_code == 200, live.text
    body = live.json()
    assert {k: body[k] for k in ("model_id", "version_id", "team", "name", "version", "deleted")} == {
        "model_id": model_id("fraud", name),
        "version_id": version_id("fraud", name, "2.0.0"),
        "team": "fraud",
        "name": name,
        "version": "2.0.0+build.7",  # as registered: 2.0.0 names it by precedence
        "deleted": False,
    }
    assert (body["approval"]["status"], body["approval"]["comment"]) == ("approved", "ok")
    # registration's revision of the model when it answered: at least the approval's (the tracker keeps it)
    assert body["revision"] >= int(decided.headers["X-Registry-Consistency"].rsplit(".", 1)[1])
    assert gone.status_code == 200 and gone.json()["deleted"] is True and gone.json()["version"] == "1.0.0"
    assert (unknown.status_code, not_semver.status_code) == (404, 404)
