"""Re-sealing stored webhook secrets under a new key, against MongoDB."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pymongo import AsyncMongoClient

from deploy_tracker.secret_box import SecretBox, reseal_all
from deploy_tracker.storage import WEBHOOKS
from tests.infra import Infra

pytestmark = pytest.mark.integration
OLD, NEW, LOST = (Fernet.generate_key().decode() for _ in range(3))


@pytest.fixture
async def webhooks(infra: Infra, db_name: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    yield client[db_name][WEBHOOKS]
    await client.drop_database(db_name)
    await client.close()


async def test_rotating_the_key_reseals_old_and_plain_secrets_and_leaves_current_ones(webhooks: Any) -> None:
    old, rotated = SecretBox([OLD]), SecretBox([NEW, OLD])
    current = rotated.seal("whsec_current")
    await webhooks.insert_many(
        [
            {"_id": "wh_old", "secret": old.seal("whsec_a"), "previous_secret": old.seal("whsec_b")},
            {"_id": "wh_plain", "secret": "whsec_plain"},  # stored before secrets were sealed
            {"_id": "wh_current", "secret": current},
            {"_id": "wh_lost", "secret": SecretBox([LOST]).seal("whsec_lost")},
        ]
    )
    assert await reseal_all(webhooks, rotated) == 2
    docs = {doc["_id"]: doc async for doc in webhooks.find()}
    newest_only = SecretBox([NEW])  # the old key can now be dropped
    assert newest_only.open(docs["wh_old"]["secret"]) == "whsec_a"
    assert newest_only.open(docs["wh_old"]["previous_secret"]) == "whsec_b"
    assert newest_only.open(docs["wh_plain"]["secret"]) == "whsec_plain"
    assert docs["wh_current"]["secret"] == current  # untouched
    assert docs["wh_lost"]["secret"].startswith("fernet:")  # left for its key to come back, not destroyed
    assert await reseal_all(webhooks, rotated) == 0  # nothing left to do


async def test_a_rotation_through_the_api_during_resealing_is_not_undone(webhooks: Any) -> None:
    old, rotated = SecretBox([OLD]), SecretBox([NEW, OLD])
    await webhooks.insert_one({"_id": "wh_racing", "secret": old.seal("whsec_a")})
    real_update = webhooks.update_one

    async def api_rotates_first(query: dict[str, Any], update: dict[str, Any], **options: Any) -> Any:
        # The API replaces the secret after re-sealing read it and before it writes.
        await real_update({"_id": query["_id"]}, {"$set": {"secret": rotated.seal("whsec_api")}})
        return await real_update(query, update, **options)

    webhooks.update_one = api_rotates_first
    assert await reseal_all(webhooks, rotated) == 0
    stored = await webhooks.find_one({"_id": "wh_racing"})
    assert rotated.open(stored["secret"]) == "whsec_api"
