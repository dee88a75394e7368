"""Every route each service serves, from its own OpenAPI document: what the gateway tests route."""

import re
import secrets
from collections.abc import Callable

from cryptography.fernet import Fernet
from fastapi import FastAPI

from audit.app import build_app as build_audit
from audit.config import AuditSettings
from deploy_tracker.app import build_app as build_deploy_tracker
from deploy_tracker.config import DeployTrackerSettings
from query.app import build_app as build_query
from query.config import QuerySettings
from registration.app import build_app as build_registration
from registration.config import RegistrationSettings

KEY = secrets.token_hex(32)
APPS: dict[str, Callable[[], FastAPI]] = {
    "registration": lambda: build_registration(RegistrationSettings(event_signing_key=KEY)),
    "query": lambda: build_query(QuerySettings(event_signing_key=KEY)),
    "deploy-tracker": lambda: build_deploy_tracker(
        DeployTrackerSettings(event_signing_key=KEY, webhook_secret_keys=Fernet.generate_key().decode())
    ),
    "audit": lambda: build_audit(AuditSettings(event_signing_key=KEY, signing_key=KEY)),
}
# Answered by the gateway itself, or kept inside the cluster: never routed to a service.
EDGE_ONLY = {"/healthz", "/readyz", "/metrics"}
# Each service documents itself; through the one entry point only query's documents are served.
DOCUMENTS = {"/docs", "/openapi.json", "/asyncapi.json"}
NOT_IN_OPENAPI = [("query", "GET", "/console"), ("query", "POST", "/console/sign-in"), ("query", "POST", "/mcp")]


def documented_routes() -> list[tuple[str, str, str]]:
    """(service, method, path with its parameters filled) for every operation every service documents."""
    routes = []
    for service, build in APPS.items():
        for path, operations in build().openapi()["paths"].items():
            if path in EDGE_ONLY or (path in DOCUMENTS and service != "query"):
                continue
            concrete = re.sub(r"\{([^}]+)\}", lambda m: "1.0.0" if m.group(1) == "version" else f"x-{m.group(1)}", path)
            routes += [(service, method.upper(), concrete) for method in operations]
    return routes + NOT_IN_OPENAPI
