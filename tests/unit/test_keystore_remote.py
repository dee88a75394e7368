"""The key store of every service but registration: registration's introspection routes behind a cache.

Faked registration (httpx.MockTransport): what is asked, how often, and what is kept of a token.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from registry_contract import messages
from registry_contract.auth import ApiKey, generate_api_key, hash_secret
from registry_contract.envelope import decode
from registry_contract.record_signing import RecordProof, signing_key
from shared.chassis.consuming import is_transient
from shared.chassis.identity import RecordIdentity
from shared.chassis.keystore import KeyIntrospectionUnavailable
from shared.chassis.keystore_remote import AUTHENTICATE_PATH, MAX_TOKEN_CHARS, RemoteKeyStore
from shared.chassis.signing import EventSigner
from tests.factories import bearer_event, command_event, register_data
from tests.waiting import until

pytestmark = pytest.mark.unit


class FakeRegistration:
    """Registration's internal key routes over a dict of keys; counts the requests it answers."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.asked: Counter[str] = Counter()
        self.status: int | None = None  # answer every request with this status (an outage of sorts)
        self.gate: asyncio.Event | None = None  # held requests wait for it
        self.bodies: list[bytes] = []

    def add(self, key: ApiKey, *, team: str = "fraud", can_sign: bool = True, **extra: Any) -> None:
        self.keys[key.key_id] = {"token": key.token, "team": team, "can_sign": can_sign, **extra}

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.asked[path] += 1
        self.bodies.append(request.content)
        if self.gate is not None:
            await self.gate.wait()
        if self.status is not None:
            return httpx.Response(self.status, json={"title": "no"})
        if path == AUTHENTICATE_PATH:
            token = json.loads(request.content)["token"]
            held = next((k for k in self.keys.values() if k["token"] == token), None)
        else:
            key_id = path.split("/")[4]
            held = self.keys.get(key_id)
        if held is None or held.get("revoked"):
            return httpx.Response(404, json={"title": "Not found"})
        key_id = held["token"].split("_")[1]
        if path.endswith("/verifier"):
            secret = held["token"].split("_", 2)[2]
            return httpx.Response(
                200, json={"key_id": key_id, "verifier": base64.b64encode(signing_key(secret)).decode()}
            )
        record = {
            "key_id": key_id,
            "team": held["team"],
            "scopes": ["models:write"],
            "platform_admin": False,
            "expires_at": held.get("expires_at"),
            "rate_limit": held.get("rate_limit"),
            "can_sign": held["can_sign"],
        }
        return httpx.Response(200, json=record)


@pytest.fixture
def registration() -> FakeRegistration:
    return FakeRegistration()


@pytest.fixture
def key(registration: FakeRegistration) -> ApiKey:
    made = generate_api_key()
    registration.add(made)
    return made


def store_of(registration: FakeRegistration, **options: Any) -> RemoteKeyStore:
    return RemoteKeyStore("http://registration", "service-token", transport=registration.transport(), **options)


def proof_of(key: ApiKey) -> RecordProof:
    event = command_event(messages.REGISTER_MODEL_VERSION, register_data("fraud", "m"), token=key.token)
    proof = decode(*event.to_kafka()).proof
    assert proof is not None
    return proof


def failures(lookup: str) -> float:
    return REGISTRY.get_sample_value("registry_key_introspection_failures_total", {"lookup": lookup}) or 0.0


class TestAuthenticate:
    async def test_a_key_registration_vouches_for_is_its_principal_and_is_asked_once_per_ttl(
        self, registration: FakeRegistration, key: ApiKey
    ) -> None:
        store = store_of(registration, ttl=60)
        first = await store.authenticate(key.token)
        again = await store.authenticate(key.token)
        assert first is not None and first == again
        assert (first.key_id, first.team, first.scopes) == (key.key_id, "fraud", frozenset({"models:write"}))
        assert registration.asked[AUTHENTICATE_PATH] == 1

    async def test_the_cache_keeps_the_tokens_hash_never_the_token(
        self, registration: FakeRegistration, key: ApiKey
    ) -> None:
        store = store_of(registration, ttl=60)
        await store.authenticate(key.token)
        secret = key.token.split("_", 2)[2]
        kept = repr(store._cache)
        assert secret not in kept and key.token not in kept and hash_secret(secret) not in kept

    async def test_a_refusal_is_cached_too(self, registration: FakeRegistration) -> None:
        store = store_of(registration, ttl=60)
        unknown = generate_api_key().token
        assert await store.authenticate(unknown) is None
        assert await store.authenticate(unknown) is None
        assert registration.asked[AUTHENTICATE_PATH] == 1

    async def test_an_answer_is_asked_again_once_the_ttl_has_passed(
        self, registration: FakeRegistration, key: ApiKey
    ) -> None:
        now = [0.0]
        store = store_of(registration, ttl=5, clock=lambda: now[0])
        await store.authenticate(key.token)
        now[0] = 4.9
        await store.authenticate(key.token)
        assert registration.asked[AUTHENTICATE_PATH] == 1
        now[0] = 5.1
        registration.keys[key.key_id]["revoked"] = True
        assert await store.authenticate(key.token) is None
        assert registration.asked[AUTHENTICATE_PATH] == 2

    @pytest.mark.parametrize("token", [None, "", "not-a-key", "mr_abcd1234_" + "a" * MAX_TOKEN_CHARS])
    async def test_what_is_not_a_key_is_refused_without_asking(
        self, registration: FakeRegistration, token: str | None
    ) -> None:
        assert await store_of(registration).authenticate(token) is None
        assert sum(registration.asked.values()) == 0

    async def test_a_key_that_expires_while_cached_stops_at_its_expiry(self, registration: FakeRegistration) -> None:
        made = generate_api_key()
        registration.add(made, expires_at=(datetime.now(UTC) + timedelta(milliseconds=50)).isoformat())
        store = store_of(registration, ttl=60)
        assert await store.authenticate(made.token) is not None

        async def refused() -> bool:
            return await store.authenticate(made.token) is None

        await until(refused, timeout=5, what="the expired key refused", interval=0.02)
        assert registration.asked[AUTHENTICATE_PATH] == 1  # from the cached record: no new question

    async def test_a_keys_own_rate_limit_reaches_its_principal(self, registration: FakeRegistration) -> None:
        made = generate_api_key()
        registration.add(made, rate_limit={"per_second": 2.5, "burst": 7})
        principal = await store_of(registration).authenticate(made.token)
        assert principal is not None and principal.rate_limit == (2.5, 7)


class TestForget:
    async def test_forget_drops_every_entry_of_the_key_and_no_other(
        self, registration: FakeRegistration, key: ApiKey
    ) -> None:
        other = generate_api_key()
        registration.add(other)
        store = store_of(registration, ttl=60)
        await store.authenticate(key.token)
        await store.authenticate(other.token)
        await store.principal_of(key.key_id)
        registration.keys[key.key_id]["revoked"] = True
        store.forget(key.key_id)
        assert await store.authenticate(key.token) is None
        assert await store.principal_of(key.key_id) is None
        assert await store.authenticate(other.token) is not None
        assert registration.asked[AUTHENTICATE_PATH] == 3  # key twice, the other once

    async def test_forget_drops_a_cached_refusal_of_the_key_too(self, registration: FakeRegistration) -> None:
        made = generate_api_key()
        store = store_of(registration, ttl=60)
        assert await store.authenticate(made.token) is None
        registration.add(made)  # the key exists now (its creation event evicts like a revocation)
        store.forget(made.key_id)
        assert await store.authenticate(made.token) is not None

    async def test_a_lookup_in_flight_across_forget_is_not_cached_nor_joined(
        self, registration: FakeRegistration, key: ApiKey
    ) -> None:
        store = store_of(registration, ttl=60)
        registration.gate = asyncio.Event()
        before = asyncio.create_task(store.authenticate(key.token))
        await asyncio.sleep(0.01)
        assert registration.asked[AUTHENTICATE_PATH] == 1
        registration.keys[key.key_id]["revoked"] = True
        store.forget(key.key_id)
        after = asyncio.create_task(store.authenticate(key.token))  # must not join the lookup of before
        await asyncio.sleep(0.01)
        registration.gate.set()
        assert await after is None
        await before  # whatever it read, it read before the revocation
        assert registration.asked[AUTHENTICATE_PATH] == 2
        assert await store.authenticate(key.token) is None
        assert registration.asked[AUTHENTICATE_PATH] == 2

    async def test_clear_drops_everything(self, registration: FakeRegistration, key: ApiKey) -> None:
        store = store_of(registration, ttl=60)
        await store.authenticate(key.token)
        store.clear()
        await store.authenticate(key.token)
        assert registration.asked[AUTHENTICATE_PATH] == 2


class TestBounds:
    async def test_concurrent_lookups_of_one_token_share_one_request(
        self, registration: FakeRegistration, key: ApiKey
    ) -> None:
        store = store_of(registration, ttl=60)
        registration.gate = asyncio.Event()
        lookups = [asyncio.create_task(store.authenticate(key.token)) for _ in range(20)]
        await asyncio.sleep(0.01)
        registration.gate.set()
        principals = await asyncio.gather(*lookups)
        assert all(p is not None and p.key_id == key.key_id for p in principals)
        assert registration.asked[AUTHENTICATE_PATH] == 1

    async def test_a_cancelled_caller_does_not_cancel_the_others(
        self, registration: FakeRegistration, key: ApiKey
    ) -> None:
        store = store_of(registration, ttl=60)
        registration.gate = asyncio.Event()
        first = asyncio.create_task(store.authenticate(key.token))
        second = asyncio.create_task(store.authenticate(key.token))
        await asyncio.sleep(0.01)
        first.cancel()
        registration.gate.set()
        assert await second is not None

    async def test_the_cache_holds_at_most_max_entries(self, registration: FakeRegistration) -> None:
        store = store_of(registration, ttl=60, max_entries=3)
        for _ in range(10):
            await store.authenticate(generate_api_key().token)
        assert len(store._cache) == 3


class TestRegistrationAway:
    @pytest.mark.parametrize("status", [500, 503, 401, 403, 400])
    async def test_a_key_is_not_refused_but_unavailable_while_registration_cannot_answer(
        self, registration: FakeRegistration, key: ApiKey, status: int
    ) -> None:
        store = store_of(registration, ttl=60)
        before = failures("authenticate")
        registration.status = status
        with pytest.raises(KeyIntrospectionUnavailable) as raised:
            await store.authenticate(key.token)
        assert is_transient(raised.value)
        assert failures("authenticate") == before + 1
        registration.status = None  # back: the outage was not cached as a refusal
        assert await store.authenticate(key.token) is not None

    async def test_unreachable_registration_admits_nothing_and_says_it_is_unavailable(self, key: ApiKey) -> None:
        def refuse(_request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused")

        store = RemoteKeyStore("http://registration", "t", transport=httpx.MockTransport(refuse))
        before = failures("authenticate")
        with pytest.raises(KeyIntrospectionUnavailable):
            await store.authenticate(key.token)
        assert failures("authenticate") == before + 1
        assert await store.authenticate("not a key") is None  # nothing to ask: refused as before
        assert failures("authenticate") == before + 1

    async def test_a_bearer_record_waits_for_registration_instead_of_being_refused(
        self, registration: FakeRegistration, key: ApiKey
    ) -> None:
        # KAFKA_ACCEPT_BEARER_KEYS: the record's key is checked as a presented key is; an outage
        # must fail the batch (retried), not reject a record whose key may well be valid.
        identity = RecordIdentity(keystore=store_of(registration), signer=EventSigner(b"s" * 32), accept_bearer=True)
        event = bearer_event(messages.REGISTER_MODEL_VERSION, register_data("fraud", "m"), token=key.token)
        value, headers = event.to_kafka()
        record = ConsumerRecord("registry.commands", 0, 0, 0, 0, None, value, None, 0, len(value), headers)
        registration.status = 503
        with pytest.raises(KeyIntrospectionUnavailable):
            await identity.provenance(record, event)
        registration.status = None
        assert (await identity.provenance(record, event)).principal is not None

    async def test_a_signed_record_waits_for_registration_instead_of_being_refused(
        self, registration: FakeRegistration, key: ApiKey
    ) -> None:
        store = store_of(registration)
        registration.status = 503
        with pytest.raises(KeyIntrospectionUnavailable) as raised:
            await store.verify(proof_of(key))
        assert is_transient(raised.value)
        with pytest.raises(KeyIntrospectionUnavailable):
            await store.principal_of(key.key_id)


class TestVerify:
    async def test_a_record_signed_by_a_usable_key_proves_it(self, registration: FakeRegistration, key: ApiKey) -> None:
        store = store_of(registration, ttl=60)
        principal = await store.verify(proof_of(key))
        assert principal is not None and principal.key_id == key.key_id
        assert await store.verify(proof_of(key)) is not None
        assert registration.asked[f"/internal/v1/keys/{key.key_id}/verifier"] == 1

    async def test_a_forged_signature_proves_nothing(self, registration: FakeRegistration, key: ApiKey) -> None:
        forger = generate_api_key()
        forged = replace(proof_of(forger), key_id=key.key_id)
        assert await store_of(registration).verify(forged) is None

    async def test_a_key_that_cannot_sign_is_not_asked_for_a_verifier(self, registration: FakeRegistration) -> None:
        made = generate_api_key()
        registration.add(made, can_sign=False)
        store = store_of(registration)
        assert await store.verify(proof_of(made)) is None
        assert registration.asked[f"/internal/v1/keys/{made.key_id}/verifier"] == 0

    async def test_a_revoked_key_proves_nothing_once_forgotten(
        self, registration: FakeRegistration, key: ApiKey
    ) -> None:
        store = store_of(registration, ttl=60)
        assert await store.verify(proof_of(key)) is not None
        registration.keys[key.key_id]["revoked"] = True
        store.forget(key.key_id)
        assert await store.verify(proof_of(key)) is None
