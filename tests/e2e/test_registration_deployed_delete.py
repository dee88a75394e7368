"""Through the running stack: a version the tracker reports deployed cannot be deleted; once retired it can."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from registration.storage import DEPLOYED_ENVIRONMENTS
from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack
from registry_contract.ids import version_id
from tests.e2e.test_deployments import registered, report, send_waiting
from tests.http_tools import team_key
from tests.waiting import until

pytestmark = pytest.mark.e2e


async def test_a_deployed_version_is_kept_until_the_tracker_says_it_is_retired(stack: EmbeddedStack) -> None:
    team = f"del-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, ["models:read", "models:write", "deployments:write"])
    await registered(stack, team, token)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.mongodb_uri, tz_aware=True)
    table = client[service_database("registration")][DEPLOYED_ENVIRONMENTS]

    async def registration_knows(status: str) -> bool:
        # Registration hears of it from the tracker's deployment_status_changed, a moment after the report.
        doc = await table.find_one({"_id": version_id(team, "m", "1.0.0")})
        return doc is not None and doc["environments"].get("staging", {}).get("status") == status

    at = datetime.now(UTC)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(base_url=stack.url("registration"), headers=headers) as http:
            applied = await send_waiting(stack, token, report(team, "1.0.0", "staging", "deployed", at))
            assert applied.status_code == 200 and applied.json()["outcome"] == "applied", applied.text
            await until(lambda: registration_knows("deployed"), timeout=30, what="registration told of the deployment")
            refused = await http.delete(f"/v1/models/{team}/m/versions/1.0.0")
            assert refused.status_code == 409 and "staging" in refused.json()["detail"], refused.text

            retired = await send_waiting(stack, token, report(team, "1.0.0", "staging", "retired", at + timedelta(1)))
            assert retired.status_code == 200 and retired.json()["outcome"] == "applied", retired.text
            await until(lambda: registration_knows("retired"), timeout=30, what="registration told of the retirement")
            deleted = await http.delete(f"/v1/models/{team}/m/versions/1.0.0")
            assert deleted.status_code == 204, deleted.text
    finally:
        await client.close()
