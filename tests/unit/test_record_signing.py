"""Producers sign records with their API key instead of sending it; consumers verify, in a window.

A record that carried ``authorization: Bearer mr_…`` would hand working keys to whoever can read
``registry.commands`` or ``deploy.events``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from cryptography.fernet import Fernet

from registry_contract import messages
from registry_contract.auth import ApiKey, Principal, generate_api_key
from registry_contract.envelope import CloudEvent, decode
from registry_contract.record_signing import canonical_string, signature_headers
from shared.chassis.identity import BAD_SIGNATURE, BEARER_REFUSED, NO_PROOF, RecordIdentity
from shared.chassis.keystore import KeyStore, MongoKeyStore
from shared.chassis.keystore_memory import InMemoryKeyStore
from shared.chassis.keystore_remote import RemoteKeyStore
from shared.chassis.signing import EventSigner
from shared.chassis.verifiers import VERIFIER_FIELD, VerifierBox, sealed_verifiers
from tests.bus_scan import credentials_in
from tests.factories import bearer_event, command_event, register_data, register_event
from tests.unit.test_keystore_remote import FakeRegistration

pytestmark = pytest.mark.unit
SCOPES = frozenset({"models:write"})


def record(value: bytes, headers: list[tuple[str, bytes]], *, broker_time: datetime | None = None) -> Any:
    stamp = int((broker_time or datetime.now(UTC)).timestamp() * 1000)
    return ConsumerRecord(
        "registry.commands", 0, 0, stamp, 1 if broker_time else 0, b"k", value, None, 1, len(value), headers
    )


def identity(keys: KeyStore, *, accept_bearer: bool = False) -> RecordIdentity:
    return RecordIdentity(keystore=keys, signer=EventSigner(b"s" * 32), accept_bearer=accept_bearer)


async def prove(keys: KeyStore, value: bytes, headers: list[tuple[str, bytes]], **options: Any) -> Any:
    broker_time = options.pop("broker_time", None)
    raw = record(value, headers, broker_time=broker_time)
    return await identity(keys, **options).provenance(raw, decode(value, headers))


def signed(key: ApiKey, **attributes: Any) -> CloudEvent:
    """A registration command signed with ``key``, with these CloudEvent attributes."""
    return command_event(messages.REGISTER_MODEL_VERSION, register_data("fraud", "card"), token=key.token, **attributes)


@pytest.fixture
def key() -> ApiKey:
    return generate_api_key()


@pytest.fixture
def keys(key: ApiKey) -> InMemoryKeyStore:
    store = InMemoryKeyStore()
    store.add(key, team="fraud", scopes=SCOPES)
    return store


class TestTheCanonicalString:
    def test_is_the_documented_eight_lines_and_a_second_implementation_signs_alike(self, key: ApiKey) -> None:
        event = signed(key, subject="fraud/card")
        value, headers = event.to_kafka()
        sent = dict(headers)
        secret = key.token.split("_", 2)[2]
        # As the README specifies it, written again without the registry's code.
        lines = [
            "REGISTRY-HMAC-SHA256-V1",
            key.key_id,
            sent["ce_id"].decode(),
            sent["ce_source"].decode(),
            sent["ce_type"].decode(),
            sent["ce_time"].decode(),
            "fraud/card",
            hashlib.sha256(value).hexdigest(),
        ]
        signing = hmac.new(secret.encode(), b"registry-signing-v1", hashlib.sha256).digest()
        expected = "v1=" + hmac.new(signing, "\n".join(lines).encode(), hashlib.sha256).hexdigest()
        assert sent["ce_keyid"] == key.key_id.encode() and sent["ce_signature"] == expected.encode()
        assert decode(value, headers).proof is not None
        assert decode(value, headers).proof.canonical == "\n".join(lines)  # type: ignore[union-attr]

    def test_no_header_and_no_byte_of_the_value_holds_the_key(self, key: ApiKey) -> None:
        value, headers = register_event("fraud", "card", token=key.token).to_kafka()
        secret = key.token.split("_", 2)[2].encode()
        assert not any(secret in raw or key.token.encode() in raw for _, raw in headers) and secret not in value
        assert "authorization" not in dict(headers)


class TestRecordIdentity:
    async def test_a_signed_command_proves_its_key(self, key: ApiKey, keys: InMemoryKeyStore) -> None:
        value, headers = register_event("fraud", "card", token=key.token).to_kafka()
        proven = await prove(keys, value, headers)
        assert proven.principal == Principal(key_id=key.key_id, team="fraud", scopes=SCOPES)

    async def test_a_structured_mode_command_is_signed_over_its_whole_value(
        self, key: ApiKey, keys: InMemoryKeyStore
    ) -> None:
        event = register_event("fraud", "card", token=key.token)
        body = event.to_structured()
        value = json.dumps(body).encode()
        attributes = {name: body[name] for name in ("id", "source", "type", "time")}
        headers = [("content-type", b"application/cloudevents+json")]
        headers += signature_headers(key.token, attributes=attributes, value=value)
        assert (await prove(keys, value, headers)).principal is not None

    async def test_a_signature_made_with_another_key_is_refused(self, key: ApiKey, keys: InMemoryKeyStore) -> None:
        forger = generate_api_key()
        value, headers = register_event("fraud", "card", token=forger.token).to_kafka()
        claimed = [(name, key.key_id.encode() if name == "ce_keyid" else raw) for name, raw in headers]
        proven = await prove(keys, value, claimed)
        assert (proven.principal, proven.why_not) == (None, BAD_SIGNATURE)

    @pytest.mark.parametrize(
        "tamper",
        [
            lambda value, headers: (value.replace(b'"card"', b'"other"'), headers),
            lambda value, headers: (
                value,
                [(n, b"registry.command.delete_version" if n == "ce_type" else r) for n, r in headers],
            ),
            lambda value, headers: (value, [(n, b"fraud/other" if n == "ce_subject" else r) for n, r in headers]),
            lambda value, headers: (value, [(n, b"other-id" if n == "ce_id" else r) for n, r in headers]),
        ],
        ids=["body", "type", "subject", "id"],
    )
    async def test_a_tampered_record_is_refused(
        self, key: ApiKey, keys: InMemoryKeyStore, tamper: Callable[[bytes, list[Any]], tuple[bytes, list[Any]]]
    ) -> None:
        event = signed(key, subject="fraud/card")
        value, headers = tamper(*event.to_kafka())
        proven = await prove(keys, value, headers)
        assert (proven.principal, proven.why_not) == (None, BAD_SIGNATURE)

    @pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)], ids=["old", "future"])
    async def test_a_record_outside_the_window_is_refused_saying_so(
        self, key: ApiKey, keys: InMemoryKeyStore, offset: timedelta
    ) -> None:
        event = signed(key, time=datetime.now(UTC) + offset)
        proven = await prove(keys, *event.to_kafka())
        assert proven.principal is None and "more than 300 s (KAFKA_SIGNATURE_WINDOW_SECONDS)" in (proven.why_not or "")

    async def test_the_window_is_judged_on_the_brokers_append_time_when_the_topic_keeps_it(
        self, key: ApiKey, keys: InMemoryKeyStore
    ) -> None:
        # A consumer catching up an hour later still accepts what the broker took in time.
        sent_at = datetime.now(UTC) - timedelta(hours=1)
        event = signed(key, time=sent_at)
        proven = await prove(keys, *event.to_kafka(), broker_time=sent_at + timedelta(seconds=2))
        assert proven.principal is not None

    async def test_a_signed_record_without_a_time_is_refused(self, key: ApiKey, keys: InMemoryKeyStore) -> None:
        value, headers = register_event("fraud", "card", token=key.token).to_kafka()
        signed = dict(headers)
        untimed = [(n, r) for n, r in headers if n not in ("ce_time", "ce_keyid", "ce_signature")]
        attributes = {
            "id": signed["ce_id"].decode(),
            "source": "/tests",
            "type": signed["ce_type"].decode(),
            "time": "",
        }
        untimed += signature_headers(key.token, attributes=attributes, value=value)
        proven = await prove(keys, value, untimed)
        assert proven.principal is None and "ce_time" in (proven.why_not or "")

    async def test_a_bearer_key_is_refused_by_default_naming_why(self, key: ApiKey, keys: InMemoryKeyStore) -> None:
        value, headers = bearer_event(
            messages.REGISTER_MODEL_VERSION, register_data("fraud", "c"), token=key.token
        ).to_kafka()
        proven = await prove(keys, value, headers)
        assert (proven.principal, proven.why_not) == (None, BEARER_REFUSED)

    async def test_a_bearer_key_is_accepted_while_the_transition_setting_allows(
        self, key: ApiKey, keys: InMemoryKeyStore
    ) -> None:
        value, headers = bearer_event(
            messages.REGISTER_MODEL_VERSION, register_data("fraud", "c"), token=key.token
        ).to_kafka()
        assert (await prove(keys, value, headers, accept_bearer=True)).principal is not None

    async def test_a_record_with_no_proof_says_how_to_sign(self, keys: InMemoryKeyStore) -> None:
        proven = await prove(keys, *register_event("fraud", "card").to_kafka())
        assert (proven.principal, proven.why_not) == (None, NO_PROOF)

    async def test_a_key_made_before_signing_cannot_sign_and_a_revoked_key_signs_nothing(self) -> None:
        old, revoked = generate_api_key(), generate_api_key()
        keys = InMemoryKeyStore()
        keys.add(old, team="fraud", scopes=SCOPES, can_sign=False)
        keys.add(revoked, team="fraud", scopes=SCOPES)
        keys.revoke(revoked.key_id)
        for token in (old.token, revoked.token):
            assert (await prove(keys, *register_event("fraud", "card", token=token).to_kafka())).principal is None


class FakeKeys:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def find_one(self, query: dict[str, str]) -> dict[str, Any] | None:
        found = self.docs.get(query["_id"])
        return dict(found) if found else None


def mongo_store(key: ApiKey, *, can_sign: bool = True) -> tuple[KeyStore, Callable[[], None]]:
    box = VerifierBox([Fernet.generate_key().decode()])
    collection = FakeKeys()
    doc: dict[str, Any] = {"_id": key.key_id, "team": "fraud", "scopes": sorted(SCOPES), "secret_hash": key.secret_hash}
    if can_sign:
        doc[VERIFIER_FIELD] = box.seal_for(key.token)
    collection.docs[key.key_id] = doc
    store = MongoKeyStore(collection, ttl=0, verifiers=sealed_verifiers(box))  # type: ignore[arg-type]

    def revoke() -> None:
        doc["revoked"] = True

    return store, revoke


def memory_store(key: ApiKey, *, can_sign: bool = True) -> tuple[KeyStore, Callable[[], None]]:
    store = InMemoryKeyStore()
    store.add(key, team="fraud", scopes=SCOPES, can_sign=can_sign)
    return store, lambda: store.revoke(key.key_id)


def remote_store(key: ApiKey, *, can_sign: bool = True) -> tuple[KeyStore, Callable[[], None]]:
    registration = FakeRegistration()
    registration.add(key, can_sign=can_sign)
    store = RemoteKeyStore("http://registration", "token", ttl=0, transport=registration.transport())
    return store, lambda: registration.keys[key.key_id].update(revoked=True)


@pytest.mark.parametrize("make", [mongo_store, memory_store, remote_store], ids=["mongo", "memory", "remote"])
class TestEveryKeyStore:
    """The same answers from the Mongo key store (sealed verifiers), registration's introspection, and the fake."""

    async def test_a_signature_verifies_and_a_wrong_one_does_not(self, make: Any, key: ApiKey) -> None:
        store, _ = make(key)
        event = register_event("fraud", "card", token=key.token)
        proof = decode(*event.to_kafka()).proof
        assert proof is not None and (await store.verify(proof)) is not None
        forged = decode(*register_event("fraud", "card", token=generate_api_key().token).to_kafka()).proof
        assert forged is not None
        wrong = type(proof)(key.key_id, forged.signature, proof.canonical, True)
        assert await store.verify(wrong) is None

    async def test_a_revoked_key_neither_authenticates_nor_signs(self, make: Any, key: ApiKey) -> None:
        store, revoke = make(key)
        proof = decode(*register_event("fraud", "card", token=key.token).to_kafka()).proof
        assert proof is not None and await store.authenticate(key.token) is not None
        revoke()
        store.forget(key.key_id)
        assert await store.authenticate(key.token) is None and await store.verify(proof) is None

    async def test_a_key_without_a_verifier_authenticates_but_signs_nothing(self, make: Any, key: ApiKey) -> None:
        store, _ = make(key, can_sign=False)
        proof = decode(*register_event("fraud", "card", token=key.token).to_kafka()).proof
        assert proof is not None and await store.verify(proof) is None
        assert await store.authenticate(key.token) is not None


def test_a_cloud_event_never_serialises_the_key_it_signs_with(key: ApiKey) -> None:
    event = CloudEvent(source="/t", type="x", sign_with=key.token)
    assert key.token not in event.model_dump_json() and key.token not in repr(event)
    assert canonical_string(key_id="k", event_id="i", source="s", event_type="t", time="x", subject=None, value=b"")


def test_the_bus_scan_finds_keys_in_headers_values_and_credential_headers(key: ApiKey) -> None:
    # The scan of every topic (tests/e2e/test_nothing_on_the_bus.py) must see what it looks for.
    value, headers = bearer_event(messages.REGISTER_MODEL_VERSION, {"note": key.token}, token=key.token).to_kafka()
    found = list(credentials_in([record(value, [*headers, ("x-api-key", b"opaque")])]))
    assert {(f.where, f.token) for f in found} == {
        ("authorization", key.token.encode()),
        ("value", key.token.encode()),
        ("x-api-key", b"opaque"),
    }


async def test_a_bearer_key_beside_a_valid_signature_is_refused_too(key: ApiKey, keys: InMemoryKeyStore) -> None:
    # Accepting the signature would let producers keep sending their key alongside it.
    event = signed(key).model_copy(update={"authorization": f"Bearer {key.token}"})
    proven = await prove(keys, *event.to_kafka())
    assert (proven.principal, proven.why_not) == (None, BEARER_REFUSED)
    assert (await prove(keys, *event.to_kafka(), accept_bearer=True)).principal is not None
