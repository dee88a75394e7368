"""Every route of every service, fuzzed from its own OpenAPI document: never a 5xx, with a key or
without, and every answer whose status is documented matches its documented schema.

Schemathesis generates requests from ``/openapi.json`` (valid and invalid by the schema) and the
test fails on any server error; a bounded number of examples per operation keeps it quick.
"""

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SERVICES = ["registration", "query", "deploy-tracker", "audit"]
CALLERS = {"platform-admin": {"Authorization": f"Bearer {ADMIN_KEY.token}"}, "no-key": {}}


def fuzz_operation(operation: Any, base_url: str, headers: dict[str, str], examples: int) -> list[str]:
    failures: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=15)
        try:
            # No 5xx, and a documented status answers with the body its schema documents.
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        except Exception as failure:  # schemathesis raises one Failure or a FailureGroup of them
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {str(failure)[:300]}")

    run()
    return failures


def fuzz_service(base_url: str, headers: dict[str, str], examples: int) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        failures += fuzz_operation(result.ok(), base_url, headers, examples)  # type: ignore[union-attr]
    return failures


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("service", SERVICES)
async def test_no_request_the_schema_allows_or_refuses_makes_a_server_error(
    stack: EmbeddedStack, service: str, caller: str
) -> None:
    # Schemathesis calls synchronously: in a thread, so the event loop keeps draining the
    # services' log pipes meanwhile (a blocked pipe would stall the services themselves).
    examples = 25 if caller == "platform-admin" else 8
    failures = await asyncio.to_thread(fuzz_service, stack.url(service), CALLERS[caller], examples)
    assert not failures, "\n".join(failures[:20])
