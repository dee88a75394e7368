"""Registration's key introspection on a real port over the real database, and RemoteKeyStore over it.

Registration owns ``api_keys``; query, the tracker and audit authenticate keys through these routes.
They answer the services' credential only, 404 alike for every kind of unusable key, never carry a
secret, its hash or a verifier, and bound what they are asked to check.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from registry_contract import messages
from registry_contract.auth import ApiKey, Principal, generate_api_key
from registry_contract.envelope import decode
from shared.chassis.http_app import service_app
from shared.chassis.http_auth import requires
from shared.chassis.kafka import make_broker
from shared.chassis.keystore import KeyIntrospectionUnavailable, issue_key
from shared.chassis.keystore_remote import AUTHENTICATE_PATH, KEY_PATH, RemoteKeyStore
from shared.chassis.mongo import make_client
from shared.chassis.settings import CommonSettings
from shared.chassis.verifiers import INTERNAL_TOKEN_HEADER, VerifierBox, internal_token
from tests.factories import ADMIN_KEY, command_event, register_data, store_admin_key
from tests.infra import Infra
from tests.integration.key_owner import registration_serving_keys

pytestmark = pytest.mark.integration
Keys = AsyncDatabase[dict[str, Any]]


@pytest.fixture
def settings(infra: Infra, db_name: str) -> CommonSettings:
    return CommonSettings(
        mongodb_uri=infra.mongodb_uri,
        mongodb_database=db_name,
        event_signing_key=infra.signing_key,
        key_cache_seconds=60,
    )


@pytest.fixture
async def registration(settings: CommonSettings, mongo_database: Keys) -> AsyncIterator[str]:
    await store_admin_key(mongo_database)
    async with registration_serving_keys(settings) as url:
        yield url


@pytest.fixture
async def service(settings: CommonSettings, registration: str) -> AsyncIterator[httpx.AsyncClient]:
    """Registration as a service calls it: with the services' credential."""
    headers = {INTERNAL_TOKEN_HEADER: internal_token(settings)}
    async with httpx.AsyncClient(base_url=registration, headers=headers) as http:
        yield http


@pytest.fixture
async def store(settings: CommonSettings, registration: str) -> AsyncIterator[RemoteKeyStore]:
    remote = RemoteKeyStore.of(settings.model_copy(update={"registration_internal_url": registration}))
    yield remote
    await remote.close()


async def a_key(keys: Keys, settings: CommonSettings, **options: Any) -> ApiKey:
    key, _ = await issue_key(
        keys["api_keys"],
        team="fraud",
        name="ci",
        scopes=["models:write", "models:read"],
        created_by="tests",
        verifiers=VerifierBox.of(settings, sealing_keys=None),
        **options,
    )
    return key


class TestTheRoutes:
    async def test_a_usable_key_is_its_principal_record_without_any_secret(
        self, service: httpx.AsyncClient, mongo_database: Keys, settings: CommonSettings
    ) -> None:
        key = await a_key(mongo_database, settings, rate_limit=(3.0, 6))
        by_token = await service.post(AUTHENTICATE_PATH, json={"token": key.token})
        by_id = await service.get(KEY_PATH.format(key_id=key.key_id))
        assert by_token.status_code == by_id.status_code == 200, by_token.text
        assert by_token.json() == by_id.json()
        assert by_token.json() == {
            "key_id": key.key_id,
            "team": "fraud",
            "scopes": ["models:read", "models:write"],
            "platform_admin": False,
            "expires_at": None,
            "rate_limit": {"per_second": 3.0, "burst": 6},
            "can_sign": True,
        }
        secret = key.token.split("_", 2)[2]
        for text in (by_token.text, by_id.text):
            assert secret not in text and key.secret_hash not in text and "verifier" not in text

    async def test_the_admin_key_is_a_platform_admin(self, service: httpx.AsyncClient) -> None:
        answer = await service.post(AUTHENTICATE_PATH, json={"token": ADMIN_KEY.token})
        assert answer.status_code == 200 and answer.json()["platform_admin"] is True

    async def test_every_unusable_key_is_the_same_404(
        self, service: httpx.AsyncClient, mongo_database: Keys, settings: CommonSettings
    ) -> None:
        revoked = await a_key(mongo_database, settings)
        await mongo_database["api_keys"].update_one({"_id": revoked.key_id}, {"$set": {"revoked": True}})
        expired = await a_key(mongo_database, settings, expires_at=datetime.now(UTC) - timedelta(seconds=1))
        usable = await a_key(mongo_database, settings)
        wrong_secret = f"mr_{usable.key_id}_{generate_api_key().token.split('_', 2)[2]}"
        tokens = [generate_api_key().token, revoked.token, expired.token, wrong_secret, "not-a-key"]
        answers = [await service.post(AUTHENTICATE_PATH, json={"token": token}) for token in tokens]
        assert [a.status_code for a in answers] == [404] * 5
        assert len({a.json()["detail"] for a in answers}) == 1  # nothing tells them apart
        assert all(a.headers["content-type"].startswith("application/problem+json") for a in answers)
        by_id = [await service.get(KEY_PATH.format(key_id=k)) for k in ("nokey123", revoked.key_id, expired.key_id)]
        assert [a.status_code for a in by_id] == [404] * 3

    async def test_only_the_services_credential_is_answered(self, registration: str) -> None:
        async with httpx.AsyncClient(base_url=registration) as http:
            answers = [
                await http.post(AUTHENTICATE_PATH, json={"token": ADMIN_KEY.token}, headers=headers)
                for headers in ({}, {"Authorization": f"Bearer {ADMIN_KEY.token}"}, {INTERNAL_TOKEN_HEADER: "wrong"})
            ]
            by_id = await http.get(KEY_PATH.format(key_id=ADMIN_KEY.key_id), headers={INTERNAL_TOKEN_HEADER: "wrong"})
        assert [a.status_code for a in answers] == [401, 401, 401] and by_id.status_code == 401
        assert all("platform" not in a.text for a in answers)  # nothing of the key leaks to a stranger

    async def test_what_it_checks_is_bounded(self, service: httpx.AsyncClient) -> None:
        overlong = await service.post(AUTHENTICATE_PATH, json={"token": "mr_abcd1234_" + "a" * 1000})
        assert overlong.status_code == 422 and overlong.headers["content-type"].startswith("application/problem+json")
        huge = await service.post(AUTHENTICATE_PATH, content=b'{"token": "' + b"a" * 300_000 + b'"}')
        assert huge.status_code == 413
        not_json = await service.post(AUTHENTICATE_PATH, content=b"token=x")
        assert not_json.status_code == 422
        assert (await service.get(KEY_PATH.format(key_id="x" * 65))).status_code == 422


class TestTheRemoteKeyStore:
    async def test_a_key_authenticates_and_signs_through_registration(
        self, store: RemoteKeyStore, mongo_database: Keys, settings: CommonSettings
    ) -> None:
        key = await a_key(mongo_database, settings)
        principal = await store.authenticate(key.token)
        assert principal is not None and (principal.key_id, principal.team) == (key.key_id, "fraud")
        assert await store.principal_of(key.key_id) == principal
        event = command_event(messages.REGISTER_MODEL_VERSION, register_data("fraud", "m"), token=key.token)
        proof = decode(*event.to_kafka()).proof
        assert proof is not None
        assert await store.verify(proof) == principal
        assert await store.authenticate(generate_api_key().token) is None

    async def test_a_revoked_key_is_refused_as_soon_as_it_is_forgotten(
        self, store: RemoteKeyStore, mongo_database: Keys, settings: CommonSettings
    ) -> None:
        key = await a_key(mongo_database, settings)
        assert await store.authenticate(key.token) is not None
        await mongo_database["api_keys"].update_one({"_id": key.key_id}, {"$set": {"revoked": True}})
        assert await store.authenticate(key.token) is not None  # cached (KEY_CACHE_SECONDS=60 here)
        store.forget(key.key_id)  # what the key evictions do on api_key_revoked
        assert await store.authenticate(key.token) is None
        assert await store.principal_of(key.key_id) is None

    async def test_registration_away_admits_nothing_and_says_it_is_unavailable(self, settings: CommonSettings) -> None:
        with socket.socket() as closed:  # a port nobody listens on once this socket is closed
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        away = RemoteKeyStore.of(settings.model_copy(update={"registration_internal_url": f"http://127.0.0.1:{port}"}))
        before = REGISTRY.get_sample_value("registry_key_introspection_failures_total", {"lookup": "authenticate"})
        try:
            with pytest.raises(KeyIntrospectionUnavailable):
                await away.authenticate(ADMIN_KEY.token)
        finally:
            await away.close()
        after = REGISTRY.get_sample_value("registry_key_introspection_failures_total", {"lookup": "authenticate"})
        assert (after or 0) == (before or 0) + 1


class TestAServiceWhileRegistrationIsAway:
    async def test_a_cached_key_keeps_working_and_any_other_is_a_503_to_retry_never_a_401_or_500(
        self, settings: CommonSettings, mongo_database: Keys
    ) -> None:
        await store_admin_key(mongo_database)
        other = await a_key(mongo_database, settings)
        async with registration_serving_keys(settings) as url:
            asking = settings.model_copy(update={"service_name": "asks-keys", "registration_internal_url": url})
            service = service_app(settings=asking, client=make_client(asking), broker=make_broker(asking))

            @service.app.get("/whoami")
            async def whoami(principal: Annotated[Principal, Depends(requires("models:read"))]) -> dict[str, str]:
                return {"key_id": principal.key_id}

            transport = httpx.ASGITransport(app=service.app)
            http = httpx.AsyncClient(transport=transport, base_url="http://service")
            admin = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
            assert (await http.get("/whoami", headers=admin)).json() == {"key_id": ADMIN_KEY.key_id}
        # Registration has stopped: what was cached still answers; anything else is admitted to
        # nothing, and told to retry (a 401 would say the key is bad, and it is not).
        try:
            assert (await http.get("/whoami", headers=admin)).status_code == 200
            refused = await http.get("/whoami", headers={"Authorization": f"Bearer {other.token}"})
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.headers["retry-after"] == "5" and refused.json()["type"].endswith("unavailable")
            malformed = await http.get("/whoami", headers={"Authorization": "Bearer not-a-key"})
            assert malformed.status_code == 401  # nothing to ask registration about: refused as ever
        finally:
            await http.aclose()
            await service.client.close()
