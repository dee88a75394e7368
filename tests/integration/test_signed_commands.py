"""Registration over the real broker and database: signed commands act, everything else is refused.

A command proves its key with a signature, never by carrying it: whoever reads ``registry.commands``
must not collect working keys. A bad or tampered signature, one outside the time window and (by
default) a bearer key get ``command_rejected`` ``unauthenticated`` naming why, and a replay of a
signed command changes nothing more.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from registration.app import build_app
from registration.config import RegistrationSettings
from registry_contract import messages
from registry_contract.auth import ApiKey, generate_api_key
from registry_contract.envelope import CloudEvent, decode
from registry_contract.record_signing import signing_key
from shared.chassis.bootstrap import store_bootstrap_key
from shared.chassis.identity import BAD_SIGNATURE, BEARER_REFUSED
from shared.chassis.keystore import MongoKeyStore, issue_key
from shared.chassis.verifiers import (
    INTERNAL_TOKEN_HEADER,
    VERIFIER_PATH,
    RemoteVerifiers,
    VerifierBox,
    internal_token,
)
from tests.factories import ADMIN_KEY, bearer_event, command_event, register_data
from tests.integration.test_registration_consumer import key_of, running, settings
from tests.kafka_tools import Collector, caused_by, header, publish_raw

__all__ = ["settings"]  # the fixture, shared with the consumer's other tests
pytestmark = pytest.mark.integration
Record = tuple[bytes, list[tuple[str, bytes]], bytes]


def signed(team: str, name: str, version: str = "1.0.0", **attributes: Any) -> CloudEvent:
    data = register_data(team, name, version)
    return command_event(messages.REGISTER_MODEL_VERSION, data, token=ADMIN_KEY.token, **attributes)


def raw(event: CloudEvent) -> Record:
    value, headers = event.to_kafka()
    return value, headers, key_of(event.data)


def outcome(record: Any) -> tuple[str | None, Any]:
    data = json.loads(record.value)
    return header(record, "ce_type"), (data.get("reason"), data.get("message"))


async def team_key(settings: RegistrationSettings, mongo: AsyncMongoClient[dict[str, object]], team: str) -> ApiKey:
    """A key of ``team`` that can sign (sealed verifier), to be revoked when the test ends."""
    from shared.chassis.verifiers import VerifierBox

    key, _ = await issue_key(
        mongo[settings.mongodb_database]["api_keys"],
        team=team,
        name="bearer-test",
        scopes=["models:write"],
        created_by="tests",
        verifiers=VerifierBox.of(settings, sealing_keys=settings.key_verifier_sealing_keys),
    )
    return key


async def revoke(settings: RegistrationSettings, mongo: AsyncMongoClient[dict[str, object]], key: ApiKey) -> None:
    # What this test put on the bus must authenticate nowhere once it is over.
    await mongo[settings.mongodb_database]["api_keys"].update_one({"_id": key.key_id}, {"$set": {"revoked": True}})


class TestSignedCommands:
    async def test_only_a_valid_signature_in_its_window_acts_and_its_replay_changes_nothing(
        self, settings: RegistrationSettings, mongo: AsyncMongoClient[dict[str, object]], unique: str
    ) -> None:
        good = signed("fraud", f"ok-{unique}")
        forged_value, forged_headers = signed("fraud", f"forged-{unique}").to_kafka()
        forged_headers = [(n, b"v1=" + b"0" * 64 if n == "ce_signature" else r) for n, r in forged_headers]
        tampered_event = signed("fraud", f"tampered-{unique}")
        value, headers = tampered_event.to_kafka()
        tampered = (value.replace(b"xgboost", b"onnx"), headers, key_of(tampered_event.data))
        stale = signed("fraud", f"stale-{unique}", time=datetime.now(UTC) - timedelta(minutes=10))
        marker = signed("fraud", f"ok-{unique}", "2.0.0")  # after the replay, on the same partition
        records = [
            raw(good),
            (forged_value, forged_headers, key_of(good.data)),
            tampered,
            raw(stale),
            raw(good),  # a replay of the same signed record
            raw(marker),
        ]
        async with running(settings), Collector(settings.kafka_bootstrap_servers, settings.topic_events) as events:
            await publish_raw(settings.kafka_bootstrap_servers, settings.topic_commands, records)
            await events.wait_for(caused_by(marker.id))
            for event in (stale, tampered_event):
                await events.wait_for(caused_by(event.id))
            answers = {
                name: [outcome(r) for r in events.matching(caused_by(event_id))]
                for name, event_id in [
                    ("good", good.id),
                    ("forged", dict(forged_headers)["ce_id"].decode()),
                    ("tampered", tampered_event.id),
                    ("stale", stale.id),
                ]
            }
        assert answers["good"] == [(messages.MODEL_VERSION_REGISTERED, (None, None))]  # once: the replay did nothing
        assert answers["forged"] == [(messages.COMMAND_REJECTED, ("unauthenticated", BAD_SIGNATURE))]
        assert answers["tampered"] == [(messages.COMMAND_REJECTED, ("unauthenticated", BAD_SIGNATURE))]
        [(kind, (reason, message))] = answers["stale"]
        assert (kind, reason) == (messages.COMMAND_REJECTED, "unauthenticated") and "300 s" in message
        versions = mongo[settings.mongodb_database].model_versions
        assert await versions.count_documents({"name": {"$regex": f"-{unique}$"}}) == 2  # good 1.0.0 and 2.0.0

    async def test_a_bearer_key_is_refused_by_default_naming_why(
        self, settings: RegistrationSettings, mongo: AsyncMongoClient[dict[str, object]], unique: str
    ) -> None:
        key = await team_key(settings, mongo, "fraud")
        command = bearer_event(messages.REGISTER_MODEL_VERSION, register_data("fraud", f"b-{unique}"), token=key.token)
        try:
            async with running(settings), Collector(settings.kafka_bootstrap_servers, settings.topic_events) as events:
                await publish_raw(settings.kafka_bootstrap_servers, settings.topic_commands, [raw(command)])
                [answer] = await events.wait_for(caused_by(command.id))
        finally:
            await revoke(settings, mongo, key)
        assert outcome(answer) == (messages.COMMAND_REJECTED, ("unauthenticated", BEARER_REFUSED))

    async def test_a_bearer_key_acts_while_the_transition_setting_accepts_it(
        self, settings: RegistrationSettings, mongo: AsyncMongoClient[dict[str, object]], unique: str
    ) -> None:
        transition = settings.model_copy(update={"kafka_accept_bearer_keys": True})
        key = await team_key(settings, mongo, "fraud")
        command = bearer_event(messages.REGISTER_MODEL_VERSION, register_data("fraud", f"t-{unique}"), token=key.token)
        try:
            async with (
                running(transition),
                Collector(transition.kafka_bootstrap_servers, settings.topic_events) as events,
            ):
                await publish_raw(transition.kafka_bootstrap_servers, settings.topic_commands, [raw(command)])
                [answer] = await events.wait_for(caused_by(command.id))
        finally:
            await revoke(settings, mongo, key)
        assert header(answer, "ce_type") == messages.MODEL_VERSION_REGISTERED
        assert key.token.encode() not in answer.value and all(key.token.encode() not in v for _, v in answer.headers)


class TestTheVerifierRoute:
    """``GET /internal/v1/keys/{key_id}/verifier``: for the registry's services only."""

    async def test_it_answers_only_the_services_credential(self, settings: RegistrationSettings) -> None:
        app = build_app(settings)
        path = VERIFIER_PATH.format(key_id=ADMIN_KEY.key_id)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registration") as http:
            anonymous = await http.get(path)
            with_a_key = await http.get(path, headers={"Authorization": f"Bearer {ADMIN_KEY.token}"})
            wrong = await http.get(path, headers={INTERNAL_TOKEN_HEADER: "not-the-token"})
            right = await http.get(path, headers={INTERNAL_TOKEN_HEADER: internal_token(settings)})
        assert [anonymous.status_code, with_a_key.status_code, wrong.status_code] == [401, 401, 401]
        assert right.status_code == 200, right.text
        secret = ADMIN_KEY.token.split("_", 2)[2]
        assert base64.b64decode(right.json()["verifier"]) == signing_key(secret)
        assert secret not in right.text and ADMIN_KEY.secret_hash not in right.text

    async def test_unknown_revoked_and_unsigning_keys_alike_have_none(
        self, settings: RegistrationSettings, mongo: AsyncMongoClient[dict[str, object]]
    ) -> None:
        keys = mongo[settings.mongodb_database]["api_keys"]
        revoked = await team_key(settings, mongo, "fraud")
        await revoke(settings, mongo, revoked)
        unsigning, _ = await issue_key(keys, team="fraud", name="old", scopes=["models:write"], created_by="tests")
        app = build_app(settings)
        headers = {INTERNAL_TOKEN_HEADER: internal_token(settings)}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registration") as http:
            answers = [
                (await http.get(VERIFIER_PATH.format(key_id=key_id), headers=headers)).status_code
                for key_id in ("nokey123", revoked.key_id, unsigning.key_id)
            ]
        assert answers == [404, 404, 404]

    async def test_an_expired_key_has_none(
        self, settings: RegistrationSettings, mongo: AsyncMongoClient[dict[str, object]]
    ) -> None:
        keys = mongo[settings.mongodb_database]["api_keys"]
        expired, _ = await issue_key(
            keys,
            team="fraud",
            name="expired",
            scopes=["models:write"],
            created_by="tests",
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
            verifiers=VerifierBox.of(settings, sealing_keys=settings.key_verifier_sealing_keys),
        )
        app = build_app(settings)
        headers = {INTERNAL_TOKEN_HEADER: internal_token(settings)}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registration") as http:
            answer = await http.get(VERIFIER_PATH.format(key_id=expired.key_id), headers=headers)
        assert answer.status_code == 404, answer.text

    async def test_another_service_verifies_signatures_with_what_it_fetches(
        self, settings: RegistrationSettings, mongo: AsyncMongoClient[dict[str, object]]
    ) -> None:
        app = build_app(settings)
        remote = RemoteVerifiers(
            "http://registration", internal_token(settings), transport=httpx.ASGITransport(app=app)
        )
        store = MongoKeyStore(mongo[settings.mongodb_database]["api_keys"], verifiers=remote)
        try:
            proof = decode(*signed("fraud", "m").to_kafka()).proof
            forged = decode(
                *command_event(messages.REGISTER_MODEL_VERSION, {}, token=generate_api_key().token).to_kafka()
            ).proof
            assert proof is not None and forged is not None
            principal = await store.verify(proof)
            assert principal is not None and principal.key_id == ADMIN_KEY.key_id
            assert await store.verify(replace(forged, key_id=ADMIN_KEY.key_id)) is None
        finally:
            await remote.close()


async def test_a_given_bootstrap_key_stored_before_signing_gets_its_verifier_at_the_next_start(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    key = generate_api_key()
    keys = mongo_database["api_keys"]
    await issue_key(keys, team="platform", name="bootstrap", scopes=["platform:admin"], created_by="old", given=key)
    box = VerifierBox([Fernet.generate_key().decode()])
    await store_bootstrap_key(mongo_database, key.token, created_by="registry up", verifiers=box)
    record = await keys.find_one({"_id": key.key_id})
    assert record is not None and box.verifier_of(record) == signing_key(key.token.split("_", 2)[2])
