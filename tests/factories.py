"""Builders of commands and raw CloudEvents shared by the tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

from shared.contract import messages
from shared.contract.auth import Principal, generate_api_key
from shared.contract.envelope import CloudEvent

# A platform admin acts for every team; tests of authorization build narrower principals.
ADMIN_KEY = generate_api_key()
PRODUCER = Principal(key_id="test0001", team="platform", scopes=frozenset({"platform:admin"}))


def register_data(team: str, name: str, version: str = "1.0.0", **fields: Any) -> dict[str, Any]:
    return {
        "team": team,
        "name": name,
        "version": version,
        "framework": "xgboost",
        "artifact_uri": f"s3://ml-models/{team}/{name}/{version}/model.tar.gz",
        **fields,
    }


def command_event(
    ce_type: str, data: dict[str, Any], *, event_id: str | None = None, token: str | None = None, **attrs: Any
) -> CloudEvent:
    authorization = f"Bearer {token}" if token else None
    return CloudEvent(
        id=event_id or uuid.uuid4().hex, source="/tests", type=ce_type, data=data, authorization=authorization, **attrs
    )


def register_event(
    team: str,
    name: str,
    version: str = "1.0.0",
    *,
    token: str | None = None,
    correlation_id: str | None = None,
    **fields: Any,
) -> CloudEvent:
    attrs = {"correlation_id": correlation_id} if correlation_id else {}
    data = register_data(team, name, version, **fields)
    return command_event(messages.REGISTER_MODEL_VERSION, data, token=token, **attrs)


def binary_record(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    return event.to_kafka()


def structured_record(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    body = event.to_structured()
    headers = [("content-type", b"application/cloudevents+json")]
    if event.authorization:  # the credential travels as a Kafka header in both modes
        headers.append(("authorization", event.authorization.encode()))
    return json.dumps(body).encode(), headers


async def store_admin_key(db: Any) -> str:
    """Put :data:`ADMIN_KEY` (a platform admin) into ``db``'s api_keys; return its token."""
    from shared.chassis.keystore import issue_key

    await issue_key(
        db["api_keys"], team="platform", name="tests", scopes=["platform:admin"], created_by="tests", given=ADMIN_KEY
    )
    return ADMIN_KEY.token
