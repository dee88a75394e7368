"""Builders of commands and raw CloudEvents shared by the tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

from shared import messages
from shared.auth import Principal
from shared.envelope import CloudEvent

PRODUCER = Principal(key_id="test0001", team="fraud")


def register_data(team: str, name: str, version: str = "1.0.0", **fields: Any) -> dict[str, Any]:
    return {
        "team": team,
        "name": name,
        "version": version,
        "framework": "xgboost",
        "artifact_uri": f"s3://ml-models/{team}/{name}/{version}/model.tar.gz",
        **fields,
    }


def command_event(ce_type: str, data: dict[str, Any], *, event_id: str | None = None, **attrs: Any) -> CloudEvent:
    return CloudEvent(id=event_id or uuid.uuid4().hex, source="/tests", type=ce_type, data=data, **attrs)


def register_event(team: str, name: str, version: str = "1.0.0", **fields: Any) -> CloudEvent:
    return command_event(messages.REGISTER_MODEL_VERSION, register_data(team, name, version, **fields))


def binary_record(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    return event.to_kafka()


def structured_record(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    body = event.to_structured()
    return json.dumps(body).encode(), [("content-type", b"application/cloudevents+json")]
