"""The embedded databases' users with ``registry up --tls``: who holds what, and nothing printed in the clear."""

from pathlib import Path

import pytest

from registry_cli.config import DATABASE_ADMIN, StackSettings
from registry_cli.database_users import (
    AUDIT_SERVER_USERS,
    SERVICE_SETTINGS,
    SHARED_SERVER_USERS,
    redacted,
    service_database,
    users,
)
from registry_cli.secrets import load_or_create
from registry_cli.stack import service_env
from tests.imports import modules_loaded_by

pytestmark = pytest.mark.unit


def test_each_service_holds_read_write_on_its_own_database_only(tmp_path: Path) -> None:
    secrets = load_or_create(tmp_path)
    databases = {"registration": "registration", "query": "query", "deploy-tracker": "deploy_tracker", "audit": "audit"}
    shared = {user["user"]: user for user in users(secrets, databases)}
    assert shared[DATABASE_ADMIN]["roles"] == [{"role": "root", "db": "admin"}]
    for service, database in databases.items():
        assert shared[service]["roles"] == [{"role": "readWrite", "db": database}]
    assert len({user["pwd"] for user in shared.values()}) == len(shared)  # one password each
    audit = {user["user"] for user in users(secrets, {"audit": "audit"})}
    assert audit == {DATABASE_ADMIN, "audit"}  # the audit log's server knows no other service


def test_the_stack_gives_each_service_the_database_its_settings_name(tmp_path: Path) -> None:
    settings = StackSettings(data_dir=tmp_path)
    for service, settings_class in SERVICE_SETTINGS.items():
        assert service_database(service) == settings_class().mongodb_database
        prefix = service.upper().replace("-", "_")
        assert service_env(settings, service)[f"{prefix}_MONGODB_DATABASE"] == service_database(service)
    assert set(SERVICE_SETTINGS) == set(SHARED_SERVER_USERS) >= set(AUDIT_SERVER_USERS)


def test_connection_strings_carry_a_user_only_with_tls_and_print_without_the_password(tmp_path: Path) -> None:
    plain = StackSettings(data_dir=tmp_path)
    assert "@" not in plain.mongodb_uri and redacted(plain.mongodb_uri) == plain.mongodb_uri
    closed = StackSettings(data_dir=tmp_path, tls=True)
    password = load_or_create(tmp_path).database_password("query")
    assert f"query:{password}@" in closed.service_mongodb_uri("query")
    assert f"{DATABASE_ADMIN}:" in closed.audit_mongodb_uri and "authSource=admin" in closed.audit_mongodb_uri
    shown = redacted(closed.service_mongodb_uri("query"))
    assert password not in shown and "query:***@" in shown


def test_the_database_launcher_imports_nothing_of_the_services() -> None:
    # The services' settings bring FastAPI, pydantic, structlog, OpenTelemetry: 28 MB in each database server.
    heavy = {"fastapi", "pydantic", "structlog", "opentelemetry", "httpx", "shared", "registration", "query", "audit"}
    loaded = {name.split(".")[0] for name in modules_loaded_by("registry_cli.embedded_mongo")} & heavy
    assert loaded == set(), loaded
