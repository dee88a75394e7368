"""Query service settings (``QUERY_`` prefix over the shared ones)."""

from __future__ import annotations

from pydantic import Field, HttpUrl, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from shared.chassis.federation import issuer_url_allowed
from shared.chassis.settings import CommonSettings


class QuerySettings(CommonSettings):
    """The read API's settings."""

    model_config = SettingsConfigDict(env_prefix="QUERY_", extra="ignore", populate_by_name=True)

    service_name: str = "query"
    # Its own database (QUERY_MONGODB_DATABASE); no other service reads or writes it.
    mongodb_database: str = "query"
    http_port: int = 8080
    feed_cache_documents: int = Field(
        50_000, ge=0, description="rendered feed documents kept in memory (0: render every time)"
    )
    # The web console (/console): its actions go to registration's API, its audit page to audit's.
    registration_url: HttpUrl = Field(
        HttpUrl("http://127.0.0.1:8081"), description="the registration service, for the console's actions"
    )
    audit_url: HttpUrl = Field(HttpUrl("http://127.0.0.1:8083"), description="the audit service, for the console")
    console_session_hours: float = Field(8, gt=0, le=24 * 7, description="a console sign-in lasts at most this long")
    console_idle_minutes: float = Field(30, gt=0, le=24 * 60, description="…and ends after this long without a request")
    consistency_wait_seconds: float = Field(
        5, ge=0, le=60, description="how long a read with X-Registry-Consistency waits for the read model to reach it"
    )
    # What a restart replays from the topic beyond the stored checkpoint: a few seconds of events
    # cost nothing there, and each flush writes every model changed since the last one.
    projection_flush_seconds: float = Field(
        2.0, gt=0, le=60, description="the read model's changes are written to the query's database at most this often"
    )
    projection_linger_ms: int = Field(
        0,
        ge=0,
        le=5000,
        description="the broker holds each of the projection's fetches up to this long for more events (0: at once)",
    )
    projection_max_versions: int = Field(
        1_000_000,
        ge=1,
        description="the most versions the in-memory read model holds: beyond it the projection stops with an error",
    )
    deploy_tracker_url: str = Field(
        "http://127.0.0.1:8082", description="the deploy-tracker's internal URL, whose event log the projection reads"
    )
    console_secure_cookies: bool = Field(
        False, description="mark the session cookie Secure even when requests reach the service over plain HTTP"
    )
    # Signing in to the console through an OpenID Connect provider (authorization code with PKCE).
    # The ID token it gets is then used as the API key would be: registration's sign-in rules map it.
    console_oidc_issuer: str | None = Field(
        None,
        description="the OpenID Connect provider people sign in to the console with (its issuer URL; "
        "unset: API keys only). Registration must trust it too (OIDC_ISSUERS)",
    )
    console_oidc_client_id: str = Field(
        "model-registry",
        description="the console's client id at the provider: the ID tokens' audience, one of OIDC_AUDIENCES",
    )
    console_oidc_client_secret: SecretStr | None = Field(
        None, description="the console's client secret at the provider (unset: a public client, PKCE alone)"
    )
    console_oidc_scopes: str = Field(
        "openid profile email", description="the scopes the console asks the provider for (space-separated)"
    )
    console_oidc_provider_name: str = Field(
        "your identity provider", description='the provider as the sign-in page names it ("Sign in with …")'
    )
    console_public_url: HttpUrl | None = Field(
        None,
        description="the console's external base URL (scheme, host and port), from which the provider's redirect "
        "URI <base>/console/sign-in/oidc/callback is made (unset: from each request's own URL)",
    )

    @field_validator("console_oidc_issuer", mode="before")
    @classmethod
    def _issuer_or_none(cls, issuer: object) -> object:
        # An empty variable (a Compose default of "") means no provider, not one at "".
        if isinstance(issuer, str) and not issuer.strip():
            return None
        if isinstance(issuer, str) and not issuer_url_allowed(issuer):
            raise ValueError(f"{issuer!r}: an issuer is https, or http on a loopback host")
        return issuer

    @field_validator("console_oidc_client_secret", mode="before")
    @classmethod
    def _secret_or_none(cls, secret: object) -> object:
        return None if isinstance(secret, str) and not secret else secret
