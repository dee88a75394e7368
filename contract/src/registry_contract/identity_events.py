"""Identity and configuration changes as events on ``registry.events`` (kept for ever in the audit log).

API keys, trust rules and signing keys (registration) and webhook subscriptions (deploy-tracker)
change through these events, so the audit log keeps every change for ever, whoever made it and
however. Each names its actor; none carries a secret, a secret's hash or a verifier, and a
webhook's URL is reduced to its origin (paths and queries of webhook URLs often embed a token).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

API_KEY_CREATED = "registry.event.api_key_created"
API_KEY_REVOKED = "registry.event.api_key_revoked"
WEBHOOK_CREATED = "registry.event.webhook_created"
WEBHOOK_SECRET_ROTATED = "registry.event.webhook_secret_rotated"
WEBHOOK_DELETED = "registry.event.webhook_deleted"
TRUST_RULE_CREATED = "registry.event.trust_rule_created"
TRUST_RULE_DELETED = "registry.event.trust_rule_deleted"
SIGNING_KEY_CREATED = "registry.event.signing_key_created"
SIGNING_KEY_DELETED = "registry.event.signing_key_deleted"


class _Change(BaseModel):
    """Who made the change: the acting key and its team (the correlation id is the envelope's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: str = Field(description="the team whose key or webhook changed (the Kafka key)")
    actor: str | None = Field(
        description="id of the key that made the change, or the tool that wrote it (``registry up``); "
        "null when unknown (a key revoked outside the API, announced late)"
    )
    actor_team: str | None = Field(None, description="the acting key's team (a platform admin acts for any team)")


class ApiKeyChanged(_Change):
    """Data of ``registry.event.api_key_created`` and ``api_key_revoked``: the key as its admins see it."""

    key_id: str
    key_name: str | None = Field(None, description="the key's label")
    scopes: list[str]
    expires_at: datetime | None = Field(None, description="when the key stops working (null: never)")
    announced_late: bool = Field(
        False, description="written to the keys collection directly (bootstrap) and announced at registration's start"
    )


class WebhookChanged(_Change):
    """Data of ``registry.event.webhook_created``, ``webhook_secret_rotated`` and ``webhook_deleted``."""

    webhook_id: str
    url: str = Field(description="the target's origin, scheme://host[:port]: its path and query are left out")
    event_types: list[str]
    active: bool
    previous_valid_seconds: int | None = Field(
        None, description="on a rotation: how long the replaced secret keeps signing beside the new one"
    )


class TrustRuleChanged(_Change):
    """Data of ``registry.event.trust_rule_created`` and ``trust_rule_deleted``: the rule as its admins see it."""

    rule_id: str
    issuer: str
    claims: dict[str, str] = Field(description="the claims a token must carry to act under the rule")
    scopes: list[str]
    description: str | None = None


class SigningKeyChanged(_Change):
    """Data of ``registry.event.signing_key_created`` and ``signing_key_deleted``: the key as its admins see it."""

    key_id: str = Field(description="the signing key's id (not an API key's)")
    name: str
    algorithm: str
    fingerprint: str = Field(description="sha256:<hex> of the key's DER SubjectPublicKeyInfo")
    public_key: str = Field(description="the public key, PEM (public: no secret)")
    description: str | None = None


IDENTITY_EVENT_MODELS: dict[str, type[BaseModel]] = {
    API_KEY_CREATED: ApiKeyChanged,
    API_KEY_REVOKED: ApiKeyChanged,
    WEBHOOK_CREATED: WebhookChanged,
    WEBHOOK_SECRET_ROTATED: WebhookChanged,
    WEBHOOK_DELETED: WebhookChanged,
    TRUST_RULE_CREATED: TrustRuleChanged,
    TRUST_RULE_DELETED: TrustRuleChanged,
    SIGNING_KEY_CREATED: SigningKeyChanged,
    SIGNING_KEY_DELETED: SigningKeyChanged,
}


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: no credentials, path, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")
