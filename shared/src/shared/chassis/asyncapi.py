"""The Kafka side of the contract as an AsyncAPI 3.0 document, built from the message models.

Each service serves ``/asyncapi.json`` for the topics it consumes and publishes: every message
type with its data schema (the pydantic model the services validate with) and its CloudEvents
binary-mode headers. A test checks the records the services really send against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel

from registry_contract import messages
from registry_contract.envelope import SPEC_VERSION
from registry_contract.record_signing import KEYID_HEADER
from registry_contract.record_signing import SIGNATURE_HEADER as RECORD_SIGNATURE_HEADER
from shared.chassis.settings import CommonSettings
from shared.chassis.signing import PRINCIPAL_HEADER, SIGNATURE_HEADER

TopicKind = Literal["commands", "events", "deploy", "access"]
SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
_EVENTS = tuple(t for t in messages.EVENT_MODELS if t.startswith("registry.event."))
_ACCESS = tuple(t for t in messages.EVENT_MODELS if t.startswith("registry.access."))
MESSAGE_TYPES: dict[TopicKind, dict[str, type[BaseModel]]] = {
    "commands": dict(messages.COMMAND_MODELS),
    "events": {t: messages.EVENT_MODELS[t] for t in _EVENTS},
    "deploy": {messages.DEPLOY_STATUS_REPORTED: messages.DeploymentStatusReported},
    "access": {t: messages.EVENT_MODELS[t] for t in _ACCESS},
}
# Who may send on a topic: commands and deployment reports come from producers with a key.
_CARRIES_KEY: frozenset[TopicKind] = frozenset({"commands", "deploy"})


def _text(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _headers(message_type: str, kind: TopicKind) -> dict[str, Any]:
    properties = {
        "ce_specversion": _text("CloudEvents version", const=SPEC_VERSION),
        "ce_id": _text("unique per sender; the idempotency key of commands and reports"),
        "ce_source": _text("URI of the sender"),
        "ce_type": _text("the message type", const=message_type),
        "ce_time": _text("when it happened (RFC 3339, UTC)", format="date-time"),
        "content-type": _text("the data's media type", const="application/json"),
        "ce_correlationid": _text("one id across every message of one operation"),
        "ce_causationid": _text("ce_id of the message that caused this one"),
        "ce_subject": _text("team/name[@version] the message is about"),
    }
    required = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_correlationid"]
    if kind in _CARRIES_KEY:
        # Producers sign with their key (registry_contract.record_signing; the README gives the canonical string).
        properties[KEYID_HEADER] = _text("id of the API key that signed the record", pattern="^[A-Za-z0-9]{8}$")
        properties[RECORD_SIGNATURE_HEADER] = _text(
            "v1= and the hex HMAC-SHA256, under the key's signing key, of the record's canonical string",
            pattern="^v1=[0-9a-f]{64}$",
        )
        properties["authorization"] = _text(
            "the earlier form, Bearer <API key>: refused unless KAFKA_ACCEPT_BEARER_KEYS", deprecated=True
        )
    if kind == "events":  # set by the outbox relays of registration and the deploy-tracker
        properties["ce_revision"] = _text(
            "the owner's revision of the model after this event (its outbox position): with the "
            "data's model_id it makes the consistency token r.<model_id>.<revision> (registration) "
            "or d.<model_id>.<revision> (deploy-tracker)",
            pattern="^[0-9]{1,20}$",
        )
    if kind == "deploy" or kind not in _CARRIES_KEY:  # the tracker's HTTP bridge relays reports, signed
        properties[SIGNATURE_HEADER] = _text("HMAC of the record by the registry service that sent it")
        properties[PRINCIPAL_HEADER] = _text("key id a service acted for (HTTP bridges)")
    return {"type": "object", "properties": properties, "required": required}


def _message(message_type: str, model: type[BaseModel], kind: TopicKind, schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    return {
        "name": message_type,
        "title": message_type,
        "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else message_type,
        "contentType": "application/json",
        "headers": _headers(message_type, kind),
        "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": schema},
    }


def _message_key(message_type: str) -> str:
    return message_type.replace(".", "_")


def document(
    settings: CommonSettings, *, consumes: Iterable[TopicKind] = (), publishes: Iterable[TopicKind] = ()
) -> dict[str, Any]:
    """The AsyncAPI document of what the service named in ``settings`` consumes and publishes."""
    topics: dict[TopicKind, str] = {
        "commands": settings.topic_commands,
        "events": settings.topic_events,
        "deploy": settings.topic_deploy,
        "access": settings.topic_access,
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for action, kinds in (("receive", list(consumes)), ("send", list(publishes))):
        for kind in kinds:
            found = {_message_key(t): _message(t, m, kind, schemas) for t, m in MESSAGE_TYPES[kind].items()}
            channels[kind] = {"address": topics[kind], "messages": found}
            refs = [{"$ref": f"#/channels/{kind}/messages/{key}"} for key in found]
            operations[f"{action}_{kind}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{kind}"},
                "messages": refs,
            }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": f"Model Registry: {settings.service_name}", "version": "1"},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas},
    }


router = APIRouter(tags=["meta"])


@router.get("/asyncapi.json")
async def asyncapi(request: Request) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the topics this service consumes and publishes."""
    body: dict[str, Any] = request.app.state.asyncapi
    return body


def serve(
    app: FastAPI, settings: CommonSettings, *, consumes: Iterable[TopicKind] = (), publishes: Iterable[TopicKind] = ()
) -> None:
    """Serve the service's :func:`document` (built once) as ``GET /asyncapi.json``."""
    app.state.asyncapi = document(settings, consumes=consumes, publishes=publishes)
    app.include_router(router)
