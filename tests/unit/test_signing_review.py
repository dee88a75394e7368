"""Findings of the review of record signing (issue 22): each fails without its fix.

- a verifier that cannot be fetched (registration down, 5xx, credentials refused) is a dependency
  fault, so the batch is retried instead of its signed records being dead-lettered;
- a ``ce_signature`` or ``ce_keyid`` out of its format is refused as unauthenticated, saying why,
  instead of crashing the handler (non-ASCII text) or reaching the audit as an actor;
- the audit attributes a key's signature only on the topics that carry commands and reports;
- a revoked key is not cached again by a lookup that was in flight when it was forgotten.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka.structs import ConsumerRecord
from cryptography.fernet import Fernet

from audit.entries import Source, entry_for
from audit.subscribers import _entry
from registry_contract import messages
from registry_contract.auth import ApiKey, generate_api_key
from registry_contract.envelope import decode
from registry_contract.record_signing import RecordProof, signature_matches, signing_key
from shared.chassis.consuming import is_transient
from shared.chassis.identity import RecordIdentity
from shared.chassis.keystore import MongoKeyStore
from shared.chassis.keystore_memory import InMemoryKeyStore
from shared.chassis.signing import EventSigner
from shared.chassis.verifiers import VERIFIER_FIELD, RemoteVerifiers, VerifierBox
from tests.factories import command_event, register_data

pytestmark = pytest.mark.unit
SCOPES = frozenset({"models:write"})


def consumer_record(topic: str, value: bytes, headers: list[tuple[str, bytes]]) -> Any:
    stamp = int(datetime.now(UTC).timestamp() * 1000)
    return ConsumerRecord(topic, 0, 0, stamp, 1, b"k", value, None, 1, len(value), headers)


def signed_command(key: ApiKey) -> tuple[bytes, list[tuple[str, bytes]]]:
    return command_event(messages.REGISTER_MODEL_VERSION, register_data("fraud", "m"), token=key.token).to_kafka()


def with_header(headers: list[tuple[str, bytes]], name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(k, value) if k == name else (k, v) for k, v in headers]


@pytest.fixture
def key() -> ApiKey:
    return generate_api_key()


@pytest.fixture
def keys(key: ApiKey) -> InMemoryKeyStore:
    store = InMemoryKeyStore()
    store.add(key, team="fraud", scopes=SCOPES)
    return store


def identity(keys: InMemoryKeyStore) -> RecordIdentity:
    return RecordIdentity(keystore=keys, signer=EventSigner(b"s" * 32))


class TestAVerifierThatCannotBeFetched:
    """Registration's outage must not dead-letter records: the fetch fails as a dependency does."""

    async def test_registration_down_is_transient(self) -> None:
        with socket.socket() as closed:  # a port nobody listens on once this socket is closed
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        remote = RemoteVerifiers(f"http://127.0.0.1:{port}", "token", timeout=2.0)
        try:
            with pytest.raises(Exception) as raised:
                await remote("abcd1234", {})
        finally:
            await remote.close()
        assert is_transient(raised.value), repr(raised.value)

    @pytest.mark.parametrize("status", [500, 503, 401, 403])
    async def test_a_server_error_or_a_refused_credential_is_transient(self, status: int) -> None:
        transport = httpx.MockTransport(lambda _request: httpx.Response(status, json={"title": "no"}))
        remote = RemoteVerifiers("http://registration", "token", transport=transport)
        try:
            with pytest.raises(Exception) as raised:
                await remote("abcd1234", {})
        finally:
            await remote.close()
        assert is_transient(raised.value), repr(raised.value)

    async def test_the_key_store_passes_the_outage_on_for_a_retry(self, key: ApiKey) -> None:
        transport = httpx.MockTransport(lambda _request: httpx.Response(503))
        remote = RemoteVerifiers("http://registration", "token", transport=transport)
        box = VerifierBox([Fernet.generate_key().decode()])
        doc = {"_id": key.key_id, "team": "fraud", "scopes": sorted(SCOPES), "secret_hash": key.secret_hash}
        doc[VERIFIER_FIELD] = box.seal_for(key.token)
        store = MongoKeyStore(GatedKeys(doc), verifiers=remote)  # type: ignore[arg-type]
        proof = decode(*signed_command(key)).proof
        assert proof is not None
        try:
            with pytest.raises(Exception) as raised:
                await store.verify(proof)
        finally:
            await remote.close()
        assert is_transient(raised.value), repr(raised.value)

    async def test_an_unknown_key_is_still_no_verifier(self) -> None:
        remote = RemoteVerifiers("http://registration", "token", transport=httpx.MockTransport(_not_found))
        try:
            assert await remote("abcd1234", {}) is None
        finally:
            await remote.close()


def _not_found(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(404)


class TestAProofOutOfItsFormat:
    async def test_a_non_ascii_signature_is_refused_saying_why_not_crashing(
        self, key: ApiKey, keys: InMemoryKeyStore
    ) -> None:
        value, headers = signed_command(key)
        headers = with_header(headers, "ce_signature", ("v1=" + "é" * 64).encode())
        raw = consumer_record("registry.commands", value, headers)
        provenance = await identity(keys).provenance(raw, decode(value, headers))
        assert provenance.principal is None
        assert provenance.why_not is not None and "ce_signature" in provenance.why_not

    async def test_a_key_id_out_of_format_is_refused_saying_why(self, key: ApiKey, keys: InMemoryKeyStore) -> None:
        value, headers = signed_command(key)
        headers = with_header(headers, "ce_keyid", b"../admin")
        raw = consumer_record("registry.commands", value, headers)
        provenance = await identity(keys).provenance(raw, decode(value, headers))
        assert provenance.principal is None
        assert provenance.why_not is not None and "ce_keyid is not a key id" in provenance.why_not

    def test_signatures_are_compared_as_bytes(self, key: ApiKey) -> None:
        proof = decode(*signed_command(key)).proof
        assert proof is not None
        odd = RecordProof(key.key_id, "v1=" + "é" * 64, proof.canonical, True)
        assert not signature_matches(signing_key(key.token.split("_", 2)[2]), odd)

    def test_the_audit_keeps_no_key_id_out_of_format(self, key: ApiKey) -> None:
        value, headers = signed_command(key)
        headers = with_header(headers, "ce_keyid", b"<img src=x>")
        event = decode(value, headers)
        source = Source.of("registry.commands", 0, 0, b"k", value, headers)
        entry = entry_for(source, event=event, error=None, received_at=datetime.now(UTC))
        assert entry["verified"] is None and entry["claims"]["actor"] == "malformed-key"


class TestTheAuditAttributesKeysOnTheirTopicsOnly:
    @pytest.mark.parametrize(
        ("topic", "verified"),
        [
            ("registry.commands", "key"),
            ("deploy.events", "key"),
            ("registry.commands.dlq", None),
            ("registry.events", None),
        ],
    )
    async def test_a_signed_command_is_the_keys_act_only_on_a_commands_or_reports_topic(
        self, key: ApiKey, keys: InMemoryKeyStore, topic: str, verified: str | None
    ) -> None:
        value, headers = signed_command(key)
        key_topics = frozenset({"registry.commands", "deploy.events"})  # the settings' defaults
        record = consumer_record(topic, value, headers)
        entry = await _entry(
            record, datetime.now(UTC), identity(keys), key_topics=key_topics, events_topic="registry.events"
        )
        assert entry["verified"] == verified
        if verified is None:
            assert entry["actor"] is None and entry["claims"]["actor"] == key.key_id


class GatedKeys:
    """An ``api_keys`` stand-in whose lookups can be held in flight."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()

    async def find_one(self, query: dict[str, str]) -> dict[str, Any] | None:
        found = dict(self.doc) if query["_id"] == self.doc["_id"] else None
        self.entered.set()
        await self.gate.wait()
        return found


@pytest.mark.parametrize("drop", ["forget", "clear"])
async def test_a_lookup_in_flight_when_a_key_is_forgotten_does_not_cache_it_unrevoked(key: ApiKey, drop: str) -> None:
    keys = GatedKeys({"_id": key.key_id, "team": "fraud", "scopes": sorted(SCOPES), "secret_hash": key.secret_hash})
    store = MongoKeyStore(keys, ttl=60)  # type: ignore[arg-type]
    keys.gate.clear()
    in_flight = asyncio.create_task(store.authenticate(key.token))
    await keys.entered.wait()
    keys.doc["revoked"] = True  # revoked while the lookup had already read the record
    if drop == "forget":
        store.forget(key.key_id)
    else:
        store.clear()  # the key evictions (re)start
    keys.gate.set()
    await in_flight
    assert await store.authenticate(key.token) is None
