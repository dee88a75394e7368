"""A team's administration (scope ``team:admin``): keys, trust rules, signing keys, webhooks (deploy-tracker)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from registry_client.config import ApiBase
from registry_client.steps import Call, as_model, body, no_content, path, query
from registry_client.surface import endpoint
from registry_contract.admin_views import ApiKeyList, WebhookCreated, WebhookDeliveryList, WebhookList
from registry_contract.signing_keys import SigningKeyList, SigningKeyPublic
from registry_contract.trust_rules import TrustRuleList, TrustRulePublic
from registry_contract.views import ApiKeyCreated, KeyRateLimit


class TeamAdmin(ApiBase):
    """Keys, trust rules, signing keys and webhook subscriptions of a team."""

    @endpoint
    def create_api_key(
        self,
        team: str,
        name: str,
        scopes: Sequence[str],
        *,
        expires_at: datetime | None = None,
        rate_limit: KeyRateLimit | None = None,
    ) -> Call[ApiKeyCreated]:
        """Create a key; its ``token`` is in this answer only. ``rate_limit`` is for platform admins to set."""
        data = body(name=name, scopes=list(scopes), expires_at=expires_at, rate_limit=rate_limit)
        return Call("registration", "POST", path("teams", team, "api-keys"), as_model(ApiKeyCreated), json=data)

    @endpoint
    def list_api_keys(self, team: str) -> Call[ApiKeyList]:
        """The team's keys, oldest first, without their secrets."""
        return Call("registration", "GET", path("teams", team, "api-keys"), as_model(ApiKeyList))

    @endpoint
    def revoke_api_key(self, team: str, key_id: str) -> Call[None]:
        """Revoke a key: registration refuses it at once, the other services as its event reaches them."""
        return Call("registration", "DELETE", path("teams", team, "api-keys", key_id), no_content)

    @endpoint
    def create_trust_rule(
        self,
        team: str,
        *,
        issuer: str,
        claims: Mapping[str, str],
        scopes: Sequence[str],
        description: str | None = None,
    ) -> Call[TrustRulePublic]:
        """Let OpenID Connect tokens of ``issuer`` carrying ``claims`` act for ``team`` with ``scopes``, keyless.

        Args:
            team: the team the matching tokens act for.
            issuer: an issuer on the platform's list (``OIDC_ISSUERS``), as the tokens' ``iss`` says it.
            claims: claim name to the value the token must carry (a list claim: contain), e.g.
                ``{"repository": "acme/fraud-model", "ref": "refs/heads/main"}``.
            scopes: what a matching token may do; at most the caller's own, never ``platform:admin``.
            description: a label for the rule.

        """
        data = body(issuer=issuer, claims=dict(claims), scopes=list(scopes), description=description)
        return Call("registration", "POST", path("teams", team, "trust-rules"), as_model(TrustRulePublic), json=data)

    @endpoint
    def list_trust_rules(self, team: str) -> Call[TrustRuleList]:
        """The team's trust rules, oldest first."""
        return Call("registration", "GET", path("teams", team, "trust-rules"), as_model(TrustRuleList))

    @endpoint
    def delete_trust_rule(self, team: str, rule_id: str) -> Call[None]:
        """Delete a trust rule: tokens that only it matched stop acting for the team."""
        return Call("registration", "DELETE", path("teams", team, "trust-rules", rule_id), no_content)

    @endpoint
    def add_signing_key(
        self, team: str, name: str, public_key_pem: str, *, description: str | None = None
    ) -> Call[SigningKeyPublic]:
        """Trust signatures by this elliptic-curve public key (PEM, P-256 or P-384) on the team's versions.

        A version registered with ``provenance={"signature": ...}`` is verified against the team's
        signing keys and refused ``bad_signature`` (:class:`Invalid`) unless one of them verifies it.
        """
        data = body(name=name, public_key=public_key_pem, description=description)
        route = path("teams", team, "signing-keys")
        return Call("registration", "POST", route, as_model(SigningKeyPublic), json=data)

    @endpoint
    def list_signing_keys(self, team: str) -> Call[SigningKeyList]:
        """The team's signing keys, oldest first, with their fingerprints."""
        return Call("registration", "GET", path("teams", team, "signing-keys"), as_model(SigningKeyList))

    @endpoint
    def remove_signing_key(self, team: str, key_id: str) -> Call[None]:
        """Stop trusting a signing key: registrations it signed are refused; verified versions keep their record."""
        return Call("registration", "DELETE", path("teams", team, "signing-keys", key_id), no_content)

    @endpoint
    def create_webhook(
        self,
        team: str,
        url: str,
        event_types: Sequence[str],
        *,
        active: bool | None = None,
        description: str | None = None,
        max_attempts: int | None = None,
    ) -> Call[WebhookCreated]:
        """Subscribe ``url`` to the team's ``event_types`` (``*``: all); the answer's ``secret`` is shown only there."""
        data = body(
            url=url, event_types=list(event_types), active=active, description=description, max_attempts=max_attempts
        )
        return Call("deploy-tracker", "POST", path("teams", team, "webhooks"), as_model(WebhookCreated), json=data)

    @endpoint
    def list_webhooks(self, team: str) -> Call[WebhookList]:
        """The team's subscriptions, without their secrets."""
        return Call("deploy-tracker", "GET", path("teams", team, "webhooks"), as_model(WebhookList))

    @endpoint
    def delete_webhook(self, team: str, webhook_id: str) -> Call[None]:
        """Remove a subscription; its pending deliveries stop."""
        return Call("deploy-tracker", "DELETE", path("teams", team, "webhooks", webhook_id), no_content)

    @endpoint
    def rotate_webhook_secret(
        self, team: str, webhook_id: str, *, previous_valid_seconds: int | None = None
    ) -> Call[WebhookCreated]:
        """A new signing secret (shown once); the old one keeps signing beside it for the overlap."""
        data = body(previous_valid_seconds=previous_valid_seconds) or None
        route = path("teams", team, "webhooks", webhook_id, "secret")
        return Call("deploy-tracker", "POST", route, as_model(WebhookCreated), json=data)

    @endpoint
    def list_deliveries(
        self, team: str, webhook_id: str, *, status: str | None = None, limit: int | None = None
    ) -> Call[WebhookDeliveryList]:
        """A subscription's recent deliveries, newest first (``status``: ``pending``, ``delivered`` or ``dead``)."""
        route = path("teams", team, "webhooks", webhook_id, "deliveries")
        return Call("deploy-tracker", "GET", route, as_model(WebhookDeliveryList), query(status=status, limit=limit))
