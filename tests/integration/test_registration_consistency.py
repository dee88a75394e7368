"""Registration's HTTP writes answer with X-Registry-Consistency: the model's revision after the write."""

import re

import pytest
from pymongo import AsyncMongoClient

from registry_contract import messages
from registry_contract.ids import model_id
from tests.infra import Infra
from tests.integration.registration_inprocess import registration_settings, running
from tests.kafka_tools import Collector, header

pytestmark = pytest.mark.integration
TOKEN = re.compile(r"r\.(mdl_[0-9a-f]{24})\.([0-9]{1,20})")
ARTIFACT = {"artifact_uri": "s3://models/card/1", "framework": "scikit-learn"}


def token_of(response: object) -> tuple[str, int]:
    value = response.headers.get("X-Registry-Consistency")  # type: ignore[attr-defined]
    assert value is not None, "the write's answer carries no consistency token"
    match = TOKEN.fullmatch(value)
    assert match, value
    return match[1], int(match[2])


async def test_each_write_names_its_model_and_revision_the_outcome_row_and_published_event_carry(
    infra: Infra, db_name: str, mongo: AsyncMongoClient[dict[str, object]], unique: str
) -> None:
    settings = await registration_settings(infra, db_name)
    name = f"card-{unique}"
    base = f"/v1/models/fraud/{name}"
    async with running(settings) as http, Collector(settings.kafka_bootstrap_servers, settings.topic_events) as events:
        first = await http.post(
            f"{base}/versions", json={"version": "1.0.0", **ARTIFACT}, headers={"Idempotency-Key": f"k-{unique}"}
        )
        assert first.status_code == 201, first.text
        second = await http.post(f"{base}/versions", json={"version": "2.0.0", **ARTIFACT})
        aliased = await http.put(f"{base}/aliases/champion", json={"version": "2.0.0"})
        deleted = await http.delete(f"{base}/versions/1.0.0")
        assert (second.status_code, aliased.status_code, deleted.status_code) == (201, 200, 204)
        replay = await http.post(
            f"{base}/versions", json={"version": "1.0.0", **ARTIFACT}, headers={"Idempotency-Key": f"k-{unique}"}
        )
        refused = await http.post(f"{base}/versions", json={"version": "2.0.0", **ARTIFACT})
        # The four accepted writes' outcomes, in commit order on the model's one partition.
        published = await events.wait_for(lambda r: f"fraud/{name}" in (header(r, "ce_subject") or ""), count=4)

    tokens = [token_of(r) for r in (first, second, aliased, deleted)]
    assert {model for model, _ in tokens} == {model_id("fraud", name)}
    revisions = [revision for _, revision in tokens]
    assert revisions == sorted(revisions) and len(set(revisions)) == 4  # each write moves the model on
    assert token_of(replay) == tokens[0]  # a replayed request names the revision of the write it replays
    assert refused.status_code == 409 and "X-Registry-Consistency" not in refused.headers  # nothing was written

    rows = await mongo[db_name]["outbox"].find({"model_id": model_id("fraud", name)}).sort("position", 1).to_list()
    assert [row["position"] for row in rows] == revisions
    by_id = {str(header(record, "ce_id")): header(record, "ce_revision") for record in published}
    assert [by_id[str(row["_id"])] for row in rows] == [str(revision) for revision in revisions]
    assert rows[0]["type"] == messages.MODEL_VERSION_REGISTERED


async def test_the_header_is_in_the_openapi_document_of_every_write(infra: Infra, db_name: str) -> None:
    settings = await registration_settings(infra, db_name)
    async with running(settings) as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
    writes = {
        ("post", "/v1/models/{team}/{name}/versions", "201"),
        ("patch", "/v1/models/{team}/{name}/versions/{version}", "200"),
        ("post", "/v1/models/{team}/{name}/versions/{version}/lifecycle", "200"),
        ("delete", "/v1/models/{team}/{name}/versions/{version}", "204"),
        ("put", "/v1/models/{team}/{name}/versions/{version}/approval", "200"),
        ("put", "/v1/models/{team}/{name}/aliases/{alias}", "200"),
        ("delete", "/v1/models/{team}/{name}/aliases/{alias}", "204"),
        ("patch", "/v1/models/{team}/{name}", "200"),
        ("put", "/v1/models/{team}/{name}/shares/{other_team}", "200"),
        ("delete", "/v1/models/{team}/{name}/shares/{other_team}", "204"),
    }
    for method, path, status in writes:
        assert "X-Registry-Consistency" in paths[path][method]["responses"][status]["headers"], (method, path)
