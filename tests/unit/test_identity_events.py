"""Key and webhook changes as events: what they carry (never a secret) and how the audit reads them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from audit.entries import Source, entry_for, received_now
from deploy_tracker.webhook_events import webhook_event
from deploy_tracker.webhook_fanout import wants
from deploy_tracker.webhook_routes import EVENT_TYPES
from registration.key_events import event_id, key_event
from registry_contract import messages
from registry_contract.auth import Principal, generate_api_key
from registry_contract.envelope import CloudEvent
from registry_contract.identity_events import (
    API_KEY_CREATED,
    API_KEY_REVOKED,
    IDENTITY_EVENT_MODELS,
    WEBHOOK_CREATED,
    WEBHOOK_SECRET_ROTATED,
    url_origin,
)

pytestmark = pytest.mark.unit
ADMIN = Principal(key_id="adm00001", team="fraud", scopes=frozenset({"team:admin"}))
SECRET_LIKE = re.compile(r"secret|token|hash|verifier|password|signature|sealed|authorization", re.IGNORECASE)


def stored_key() -> tuple[str, dict[str, object]]:
    """A key as the keys collection holds it, with every secret-derived field a record may have."""
    key = generate_api_key()
    record = {
        "_id": key.key_id,
        "team": "fraud",
        "name": "ci",
        "scopes": ["models:read", "models:write"],
        "secret_hash": key.secret_hash,
        "verifier": "sealed-verifier-bytes",  # request signing keeps one beside the hash
        "revoked": False,
        "created_at": datetime.now(UTC),
        "created_by": "adm00001",
        "expires_at": datetime(2030, 1, 1, tzinfo=UTC),
        "rate_limit": None,
    }
    return key.token, record


def stored_webhook() -> dict[str, object]:
    return {
        "_id": "wh_0123456789abcdef",
        "team": "fraud",
        "url": "https://user:pw@hooks.example.com:8443/services/T00/B00/XXXXSECRETPATH?token=abc#frag",
        "event_types": ["*"],
        "active": True,
        "secret": "gAAAA-sealed-current",
        "previous_secret": "gAAAA-sealed-previous",
        "created_at": datetime.now(UTC),
        "created_by": "adm00001",
    }


class TestNoSecretInTheEvents:
    def test_no_event_model_has_a_secret_like_field(self) -> None:
        for event_type, model in IDENTITY_EVENT_MODELS.items():
            assert not [f for f in model.model_fields if SECRET_LIKE.search(f)], event_type

    def test_a_key_event_carries_the_public_record_and_nothing_derived_from_its_secret(self) -> None:
        token, record = stored_key()
        for event_type in (API_KEY_CREATED, API_KEY_REVOKED):
            event = key_event(record, event_type, actor=ADMIN)
            text = json.dumps(event.data)
            secret = token.rsplit("_", 1)[1]
            assert secret not in text and str(record["secret_hash"]) not in text and "sealed-verifier" not in text
            assert not [f for f in event.data if SECRET_LIKE.search(f)]
            assert event.data == {
                "team": "fraud",
                "actor": "adm00001",
                "actor_team": "fraud",
                "key_id": record["_id"],
                "key_name": "ci",
                "scopes": ["models:read", "models:write"],
                "expires_at": "2030-01-01T00:00:00Z",
                "announced_late": False,
            }
            IDENTITY_EVENT_MODELS[event_type].model_validate(event.data)

    def test_a_webhook_event_carries_where_it_points_but_no_secret_nor_the_url_path(self) -> None:
        doc = stored_webhook()
        event = webhook_event(doc, WEBHOOK_SECRET_ROTATED, actor=ADMIN, previous_valid_seconds=3600)
        text = json.dumps(event.data)
        for hidden in ("sealed", "SECRETPATH", "token=abc", "user:pw", "frag"):
            assert hidden not in text, hidden
        assert event.data["url"] == "https://hooks.example.com:8443"
        assert (event.data["webhook_id"], event.data["actor"], event.data["previous_valid_seconds"]) == (
            "wh_0123456789abcdef",
            "adm00001",
            3600,
        )


class TestKeyEventIds:
    def test_one_change_of_one_key_has_one_id_whoever_announces_it(self) -> None:
        _, record = stored_key()
        by_route = key_event(record, API_KEY_CREATED, actor=ADMIN)
        at_start = key_event(record, API_KEY_CREATED, actor=None, late=True)
        assert by_route.id == at_start.id == event_id(str(record["_id"]), API_KEY_CREATED)
        assert key_event(record, API_KEY_REVOKED, actor=ADMIN).id != by_route.id

    def test_a_late_announcement_names_who_wrote_the_key(self) -> None:
        _, record = stored_key()
        record["created_by"] = "registry up"
        data = key_event(record, API_KEY_CREATED, actor=None, late=True).data
        assert (data["actor"], data["actor_team"], data["announced_late"]) == ("registry up", None, True)


class TestUrlOrigin:
    @pytest.mark.parametrize(
        ("url", "origin"),
        [
            ("https://example.com/hook?x=1", "https://example.com"),
            ("http://a:b@10.0.0.1:8080/p", "http://10.0.0.1:8080"),
            ("https://[2001:db8::1]:9443/p", "https://[2001:db8::1]:9443"),
            ("https://example.com:notaport/p", "https://example.com"),
        ],
    )
    def test_only_scheme_host_and_port_remain(self, url: str, origin: str) -> None:
        assert url_origin(url) == origin


class TestAuditEntries:
    def entry(self, event: CloudEvent) -> dict[str, object]:
        source = Source.of("registry.events", 0, 7, b"fraud", b"{}", [])
        return entry_for(source, event=event, error=None, received_at=received_now(), signed=True)

    def test_a_signed_key_event_is_filed_under_its_team_with_its_actor(self) -> None:
        _, record = stored_key()
        entry = self.entry(key_event(record, API_KEY_CREATED, actor=ADMIN))
        assert (entry["team"], entry["actor"], entry["actor_team"], entry["model"]) == (
            "fraud",
            "adm00001",
            "fraud",
            None,
        )
        assert entry["type"] == API_KEY_CREATED and entry["outcome"] == "ok"
        assert f"key {record['_id']} (ci) scopes models:read,models:write" == entry["detail"]

    def test_a_webhook_event_detail_names_the_webhook_and_its_origin(self) -> None:
        entry = self.entry(webhook_event(stored_webhook(), WEBHOOK_CREATED, actor=ADMIN))
        assert entry["detail"] == "webhook wh_0123456789abcdef -> https://hooks.example.com:8443"
        assert entry["actor"] == "adm00001"

    def test_other_events_cannot_name_an_actor_in_their_data(self) -> None:
        event = CloudEvent(
            source="/registry/registration",
            type=messages.MODEL_UPDATED,
            data={"team": "fraud", "name": "m", "actor": "someone", "actor_team": "platform", "created_by": "k1"},
        )
        entry = self.entry(event)
        assert (entry["actor"], entry["actor_team"]) == ("k1", None)


class TestWebhookFanOut:
    def test_key_and_webhook_changes_reach_no_webhook_not_even_one_subscribed_to_everything(self) -> None:
        everything = {"_id": "wh_1", "team": "fraud", "event_types": ["*"], "active": True}
        _, record = stored_key()
        assert not wants(everything, key_event(record, API_KEY_CREATED, actor=ADMIN))
        assert not wants(everything, webhook_event(stored_webhook(), WEBHOOK_CREATED, actor=ADMIN))
        model_change = CloudEvent(source="/r", type=messages.MODEL_UPDATED, data={"team": "fraud", "name": "m"})
        assert wants(everything, model_change)
        assert not set(IDENTITY_EVENT_MODELS) & set(EVENT_TYPES)
