"""The HTTP reference: each service's OpenAPI document, rendered by the site, and the catalogue of refusals."""

from __future__ import annotations

import json
from typing import get_args

from registry_contract.messages import RejectReason
from shared.chassis.problems import CATALOGUE, PROBLEM_TYPE_PREFIX
from tools.docs.services import SERVICES

INTRO = """\
# HTTP API reference

Each service serves its own OpenAPI 3.1 document at `GET /openapi.json`: every route, its
parameters, its request body, its success answer and its refusals. The pages below render the
documents as the services serve them; the JSON files beside them are those documents, for
generating a client. Both are generated (`python -m tools.docs`) and a test fails when they no
longer match the code.

| service | port | routes | document |
| --- | --- | --- | --- |
"""

CONVENTIONS = """
Every route under `/v1` needs a key: `Authorization: Bearer mr_…` (or `X-API-Key: mr_…`). Every
answer carries `X-Correlation-ID` (yours, echoed, or a new one). Every write answers
`X-Registry-Consistency`, the token a later read sends back to see that write
([read-your-writes](../../architecture/index.md#read-your-writes)). Every service also serves
`GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /openapi.json` and `GET /asyncapi.json`
([events](../events.md)).

## Refusals

Every refusal is an RFC 9457 problem (`application/problem+json`: `type`, `title`, `status`,
`detail`, `correlation_id`, and `errors` for invalid fields). One catalogue names them all, over
HTTP and on Kafka: a command refused on `registry.commands` gets a `command_rejected` event with
the same reason word.

| reason | status | title | problem type | also a Kafka `command_rejected` reason |
| --- | --- | --- | --- | --- |
"""


def documents() -> dict[str, str]:
    """Each service's OpenAPI document, as committed beside its page."""
    return {
        f"reference/http/{service.name}.json": json.dumps(service.openapi(), indent=2, ensure_ascii=False) + "\n"
        for service in SERVICES
    }


def pages() -> dict[str, str]:
    """The index page, and one page per service that the site renders from its document."""
    found = {"reference/http/index.md": _index()}
    for service in SERVICES:
        found[f"reference/http/{service.name}.md"] = f"[OAD(./{service.name}.json)]\n"
    return found | documents()


def _index() -> str:
    rows = [f"| {s.name} | {s.port} | [{s.name}]({s.name}.md) | [`{s.name}.json`]({s.name}.json) |" for s in SERVICES]
    on_kafka = set(get_args(RejectReason))
    problems = [
        f"| `{reason}` | {status} | {title} | `{PROBLEM_TYPE_PREFIX}{reason}` | {'yes' if reason in on_kafka else ''} |"
        for reason, (status, title) in CATALOGUE.items()
    ]
    return INTRO + "\n".join(rows) + "\n" + CONVENTIONS + "\n".join(problems) + "\n"
