"""The events reference: every topic and message type, from the AsyncAPI documents the services serve."""

from __future__ import annotations

import json
from typing import Any

from tools.docs.markdown import code, table, text
from tools.docs.services import SERVICES

INTRO = """\
# Events reference (Kafka)

Every topic, every message type on it, its CloudEvents headers and its data, as the services
document them in their AsyncAPI 3.0 documents (`GET /asyncapi.json` on each service; the files
beside this page are those documents). Both are generated from the pydantic models the services
validate with (`python -m tools.docs`), and a test fails when they no longer match the code. How
the envelope, the keys and the outcomes work:
[the architecture](../architecture/index.md#kafka-topics-and-the-envelope).
"""

Schema = dict[str, Any]
# Who else sends on a topic, besides the services: producers and pipelines, signing with their key.
OUTSIDE_SENDERS = {"commands": "producers", "deploy": "pipelines"}


def documents() -> dict[str, Schema]:
    """Each service's AsyncAPI document, by service name."""
    return {service.name: service.asyncapi() for service in SERVICES}


def files(found: dict[str, Schema]) -> dict[str, str]:
    """The documents as committed beside the page."""
    return {
        f"reference/asyncapi/{name}.json": json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        for name, document in found.items()
    }


def pages() -> dict[str, str]:
    """The events page and the documents it is made from."""
    found = documents()
    return {"reference/events.md": page(found)} | files(found)


def page(found: dict[str, Schema]) -> str:
    """The events page (markdown) from the services' AsyncAPI documents."""
    channels: dict[str, Schema] = {}
    roles: dict[str, dict[str, list[str]]] = {}
    schemas: dict[str, Schema] = {}
    for service, document in found.items():
        for kind, channel in document["channels"].items():
            channels.setdefault(kind, channel)
        for operation in document["operations"].values():
            kind = operation["channel"]["$ref"].rsplit("/", 1)[1]
            roles.setdefault(kind, {"send": [], "receive": []})[operation["action"]].append(service)
        schemas |= document["components"]["schemas"]
    rows = [
        [
            f"[{code(channel['address'])}](#{_anchor(kind)})",
            ", ".join(filter(None, [OUTSIDE_SENDERS.get(kind, ""), *roles[kind]["send"]])),
            ", ".join(roles[kind]["receive"]),
            str(len(channel["messages"])),
        ]
        for kind, channel in channels.items()
    ]
    parts = [INTRO, "## Topics\n", table(["topic", "sent by", "received by", "message types"], rows)]
    parts += [_channel(kind, channel) for kind, channel in channels.items()]
    parts.append("## Shared schemas\n")
    parts += [_schema_section(name, schema) for name, schema in sorted(schemas.items())]
    return "\n".join(parts)


def _anchor(kind: str) -> str:
    return f"topic-{kind}"


def _channel(kind: str, channel: Schema) -> str:
    messages = list(channel["messages"].values())
    headers = messages[0]["headers"]
    rows = [
        [code(name), "yes" if name in headers.get("required", []) else "", _notes(schema, header=name != "ce_type")]
        for name, schema in headers["properties"].items()
    ]
    parts = [
        f"## {code(channel['address'])} {{#{_anchor(kind)}}}\n",
        "Headers of every message on this topic (CloudEvents binary mode; `ce_type` is the message type):\n",
        table(["header", "required", "meaning"], rows),
    ]
    return "\n".join(parts + [_message(message) for message in messages])


def _message(message: Schema) -> str:
    schema = message["payload"]["schema"]
    summary = message.get("summary") or ""
    return "\n".join([f"### {code(message['name'])}\n", text(summary.replace("``", "`")) + "\n", _fields(schema)])


def _schema_section(name: str, schema: Schema) -> str:
    description = text(schema.get("description", ""))
    return "\n".join([f"### {name} {{#schema-{name.lower()}}}\n", description + "\n", _fields(schema)])


def _fields(schema: Schema) -> str:
    properties: dict[str, Schema] = schema.get("properties", {})
    if not properties:
        return "No fields of its own" + (": any object.\n" if schema.get("additionalProperties") else ".\n")
    required = set(schema.get("required", []))
    rows = [
        [code(name), _type(field), "yes" if name in required else "", _notes(field)]
        for name, field in properties.items()
    ]
    extra = "" if schema.get("additionalProperties", True) else "\nNo other field is accepted.\n"
    return table(["field", "type", "required", "notes"], rows) + extra


def _type(schema: Schema) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#schema-{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_type(option) for option in schema["anyOf"])
    if "const" in schema:
        return code(json.dumps(schema["const"]))
    if "enum" in schema:
        return " or ".join(code(json.dumps(value)) for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {_type(schema['additionalProperties'])}"
    if kind == "string" and "format" in schema:
        return f"string ({schema['format']})"
    return str(kind) if kind else "any"


_LIMITS = {
    "minLength": "at least {} character",
    "maxLength": "at most {} character",
    "maxItems": "at most {} item",
    "maxProperties": "at most {} entries",
}


def _plural(words: str, count: int) -> str:
    if count == 1:
        return words.replace("entries", "entry")
    return words if words.endswith("entries") else words + "s"


def _notes(schema: Schema, *, header: bool = False) -> str:
    notes = [text(schema["description"])] if schema.get("description") else []
    options = schema.get("anyOf", [schema])
    for option in options:
        if "pattern" in option:
            notes.append("matches " + code(option["pattern"]))
        for key, words in _LIMITS.items():
            if key in option:
                notes.append(_plural(words.format(option[key]), option[key]))
        if "propertyNames" in option and "pattern" in option["propertyNames"]:
            notes.append("keys match " + code(option["propertyNames"]["pattern"]))
    if header and "const" in schema:
        notes.append("always " + code(schema["const"]))
    if header and "format" in schema:
        notes.append(schema["format"])
    if "default" in schema and schema["default"] is not None:
        notes.append("default " + code(json.dumps(schema["default"])))
    return "; ".join(notes)
