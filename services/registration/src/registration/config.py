"""Registration service settings (``REGISTRATION_`` prefix over the shared ones)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict

from registry_contract import catalog
from registry_contract.auth import PLATFORM_TEAM, SCOPES
from registry_contract.trust_rules import RESERVED_CLAIMS
from shared.chassis.federation import issuer_url_allowed
from shared.chassis.settings import CommonSettings

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)


GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
# What a GitHub Actions token says of whose workflow it is; ref, environment or workflow alone
# would be met by a token of any repository on GitHub.
GITHUB_IDENTIFYING_CLAIMS = ("sub", "repository", "repository_id", "repository_owner", "repository_owner_id")


class SignInRule(BaseModel):
    """A platform rule for people: a token of ``issuer`` carrying ``claims`` acts for ``team`` with ``scopes``."""

    model_config = ConfigDict(extra="forbid")

    issuer: str
    claims: dict[str, Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(min_length=1)
    team: Annotated[str, StringConstraints(pattern=catalog.SLUG_PATTERN)]
    scopes: list[Annotated[str, StringConstraints(pattern="^(" + "|".join(SCOPES) + ")$")]] = Field(min_length=1)
    description: str | None = None


class RegistrationSettings(CommonSettings):
    """How the registration service consumes commands and relays its outbox.

    Every field is read from ``REGISTRATION_<FIELD>`` (e.g. ``REGISTRATION_DEPLOY_TRACKER_URL``);
    the README's settings table lists them.
    """

    model_config = SettingsConfigDict(env_prefix="REGISTRATION_", extra="ignore", populate_by_name=True)

    service_name: str = "registration"
    # Its own database (REGISTRATION_MONGODB_DATABASE); no other service reads or writes it.
    mongodb_database: str = "registration"
    http_port: int = 8081
    consumer_group: str = "registration"
    # Reads the tracker's deployment_status_changed events on registry.events (where versions run,
    # for refusing to delete a deployed one) into registration's deployed_environments.
    deployments_group: str = "registration-deployments"
    # The tracker's internal API: its event log bootstraps deployed_environments on a first start
    # (retried in the background while the tracker is unreachable; the service serves meanwhile).
    deploy_tracker_url: str = "http://127.0.0.1:8082"
    batch_max_records: int = 500
    batch_timeout_ms: int = 20
    # The broker holds each fetch of registry.commands up to this long for more commands (0: answers
    # at once): each batch is one transaction, synced on commit, so a trickle commits a few at a time.
    commands_linger_ms: int = Field(20, ge=0, le=5000)
    # The broker holds each fetch of registry.events (where versions run, for refusing deletes)
    # up to this long for more records (0: answers at once): most of those records are
    # registration's own events, skipped, so a fetch and offset commit each cost for nothing.
    deployments_linger_ms: int = Field(100, ge=0, le=5000)
    relay_interval_seconds: float = 0.2
    relay_batch_size: int = 1000
    artifact_schemes: tuple[str, ...] = ("s3",)
    commit_retries: int = 5
    # HTTP writes that arrive while a transaction runs are committed together in the next one.
    http_group_commit_max: int = 500
    # Per-key limit on Kafka commands (HTTP requests have the shared RATE_LIMIT_* settings).
    command_rate_per_second: float = 500.0
    command_burst: int = 2000
    # Usable (unrevoked, unexpired) keys a team may hold; creating one more is refused (409).
    max_keys_per_team: int = 100
    # Teams a model may be shared with; one more is refused (409). Each reader team costs every
    # query replica a search index, and teams are implicit (any slug), so only a cap bounds them.
    max_shares_per_model: int = Field(default=50, ge=1)
    # Fernet keys (comma-separated, newest first) sealing API keys' signature verifiers; whatever
    # else issues keys (the init job, `registry up`) reads the same variable. Unset: derived from
    # EVENT_SIGNING_KEY, whose holders can already act for any key on the bus. Unprefixed: the
    # name it had when shared.
    key_verifier_sealing_keys: SecretStr | None = Field(
        None, validation_alias=AliasChoices("KEY_VERIFIER_SEALING_KEYS", "key_verifier_sealing_keys")
    )

    # --- OpenID Connect tokens as bearers (registration verifies them for every service) ---------
    # Unprefixed: they are the platform's identity settings, named alike in every deployment file.
    oidc_issuers: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices("OIDC_ISSUERS", "oidc_issuers"),
        description="issuers whose tokens are accepted (JSON list of URLs, each exactly as its tokens' iss says); "
        "https, or http on a loopback host; empty: tokens are refused",
    )
    oidc_audiences: list[str] = Field(
        default_factory=lambda: ["model-registry"],
        validation_alias=AliasChoices("OIDC_AUDIENCES", "oidc_audiences"),
        description="a token's aud must name one of these (JSON list): the console's client id, the audience "
        "pipelines ask their provider for",
    )
    oidc_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256"],
        validation_alias=AliasChoices("OIDC_ALGORITHMS", "oidc_algorithms"),
        description="signature algorithms accepted (JSON list); only asymmetric ones may be listed",
    )
    oidc_sign_in_rules: list[SignInRule] = Field(
        default_factory=list,
        validation_alias=AliasChoices("OIDC_SIGN_IN_RULES", "oidc_sign_in_rules"),
        description="the platform's rules for people, tried in order before the teams' trust rules: JSON list of "
        '{"issuer", "claims": {name: value}, "team", "scopes"}; the first that matches decides',
    )
    oidc_identifying_claims: dict[str, list[str]] = Field(
        default_factory=lambda: {GITHUB_ACTIONS_ISSUER: list(GITHUB_IDENTIFYING_CLAIMS)},
        validation_alias=AliasChoices("OIDC_IDENTIFYING_CLAIMS", "oidc_identifying_claims"),
        description="per issuer, the claims that say whose workload a token is (JSON object: issuer -> names); a "
        "trust rule must match at least one, else any token of the issuer would meet it. An issuer not named: sub",
    )
    # Clock skew allowed between the provider and the registry on a token's exp, nbf and iat.
    oidc_leeway_seconds: float = Field(
        30, ge=0, le=300, validation_alias=AliasChoices("OIDC_LEEWAY_SECONDS", "oidc_leeway_seconds")
    )
    # The largest token read: a longer one is refused before anything in it is decoded.
    oidc_max_token_bytes: int = Field(
        8192, ge=1024, le=16_384, validation_alias=AliasChoices("OIDC_MAX_TOKEN_BYTES", "oidc_max_token_bytes")
    )
    # An unknown key id makes the issuer's JWKS be fetched again, at most this often per issuer.
    oidc_jwks_refresh_seconds: float = Field(
        30, ge=1, le=3600, validation_alias=AliasChoices("OIDC_JWKS_REFRESH_SECONDS", "oidc_jwks_refresh_seconds")
    )
    # A fetched JWKS is used at most this long before it is fetched again (rotations without new key ids).
    oidc_jwks_max_age_seconds: float = Field(
        3600, gt=0, validation_alias=AliasChoices("OIDC_JWKS_MAX_AGE_SECONDS", "oidc_jwks_max_age_seconds")
    )
    # How long fetching an issuer's discovery document and JWKS may take, in all.
    oidc_http_timeout_seconds: float = Field(
        5, gt=0, le=60, validation_alias=AliasChoices("OIDC_HTTP_TIMEOUT_SECONDS", "oidc_http_timeout_seconds")
    )
    # Trust rules a team may hold; one more is refused (409): every rule is tried on every token.
    max_trust_rules_per_team: int = Field(50, ge=1, le=1000)
    # Signing keys a team may hold; one more is refused (409): a signature naming no key is tried on each.
    max_signing_keys_per_team: int = Field(20, ge=1, le=100)

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: list[str]) -> list[str]:
        refused = sorted(set(algorithms) - ASYMMETRIC_ALGORITHMS)
        if refused:
            raise ValueError(
                f"not asymmetric, or unknown: {', '.join(refused)} (allowed: {sorted(ASYMMETRIC_ALGORITHMS)})"
            )
        return algorithms

    @model_validator(mode="after")
    def _sign_in_rules_can_match(self) -> RegistrationSettings:
        for number, rule in enumerate(self.oidc_sign_in_rules, 1):
            where = f"OIDC_SIGN_IN_RULES rule {number}"
            if rule.issuer not in self.oidc_issuers:
                raise ValueError(f"{where}: issuer {rule.issuer!r} is not on OIDC_ISSUERS, so it would match nothing")
            reserved = sorted(RESERVED_CLAIMS & set(rule.claims))
            if reserved:
                raise ValueError(f"{where}: cannot match on {', '.join(reserved)} (the verifier checks these)")
            if "platform:admin" in rule.scopes and rule.team != PLATFORM_TEAM:
                raise ValueError(f"{where}: platform:admin is for team {PLATFORM_TEAM!r} only")
        return self

    @field_validator("oidc_issuers")
    @classmethod
    def _issuers_over_tls(cls, issuers: list[str]) -> list[str]:
        for issuer in issuers:
            if not issuer_url_allowed(issuer):
                raise ValueError(f"{issuer!r}: an issuer is https, or http on a loopback host")
        return issuers


async def settings_of(request: Request) -> RegistrationSettings:
    """The running service's settings (a FastAPI dependency of the registration routes)."""
    settings = request.app.state.service.settings
    if not isinstance(settings, RegistrationSettings):
        raise TypeError(f"the registration routes need RegistrationSettings, not {type(settings).__name__}")
    return settings
