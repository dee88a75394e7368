"""The four services' apps, built from their settings' defaults, and the documents they publish."""

from __future__ import annotations

import contextlib
import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from audit.app import build_app as build_audit
from audit.config import AuditSettings
from deploy_tracker.app import build_app as build_deploy_tracker
from deploy_tracker.config import DeployTrackerSettings
from query.app import build_app as build_query
from query.config import QuerySettings
from registration.app import build_app as build_registration
from registration.config import RegistrationSettings

S = TypeVar("S", bound=BaseSettings)


def defaults(settings_class: type[S], **required: Any) -> S:
    """``settings_class`` with its defaults and ``required``, whatever the environment says.

    The pages must not change with the shell they are generated in (a ``TOPIC_EVENTS`` exported
    there would rename a channel), so the environment and any ``.env`` file are not read.
    """

    class Defaults(settings_class):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    built: S = Defaults(**required)
    return built


def _secret() -> str:
    # Throwaway secrets: a service refuses to start without them, and nothing documented shows them.
    return secrets.token_hex(32)


@dataclass(frozen=True)
class Service:
    """One service: its name, port, settings class and how to build its app."""

    name: str
    port: int
    settings: type[BaseSettings]
    build: Callable[[], FastAPI]

    def openapi(self) -> dict[str, Any]:
        """The document the service serves at ``GET /openapi.json``."""
        return self._get("/openapi.json")

    def asyncapi(self) -> dict[str, Any]:
        """The document the service serves at ``GET /asyncapi.json``."""
        return self._get("/asyncapi.json")

    def _get(self, path: str) -> dict[str, Any]:
        # Without a lifespan: documenting needs neither Kafka nor MongoDB. The request log goes nowhere.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            response = TestClient(self.build()).get(path)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document


SERVICES = (
    Service(
        "registration",
        8081,
        RegistrationSettings,
        lambda: build_registration(defaults(RegistrationSettings, event_signing_key=_secret())),
    ),
    Service("query", 8080, QuerySettings, lambda: build_query(defaults(QuerySettings, event_signing_key=_secret()))),
    Service(
        "deploy-tracker",
        8082,
        DeployTrackerSettings,
        lambda: build_deploy_tracker(
            defaults(
                DeployTrackerSettings, event_signing_key=_secret(), webhook_secret_keys=Fernet.generate_key().decode()
            )
        ),
    ),
    Service(
        "audit",
        8083,
        AuditSettings,
        lambda: build_audit(defaults(AuditSettings, event_signing_key=_secret(), signing_key=_secret())),
    ),
)
