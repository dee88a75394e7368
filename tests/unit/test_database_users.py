"""The embedded databases' users with ``registry up --tls``: who holds what, and nothing printed in the clear."""

from pathlib import Path

import pytest

from registry_cli.config import DATABASE_ADMIN, StackSettings
from registry_cli.database_users import AUDIT_SERVER_USERS, SHARED_SERVER_USERS, redacted, users
from registry_cli.secrets import load_or_create

pytestmark = pytest.mark.unit


def test_each_service_holds_read_write_on_the_registry_database_only(tmp_path: Path) -> None:
    secrets = load_or_create(tmp_path)
    shared = {user["user"]: user for user in users(secrets, SHARED_SERVER_USERS, "model_registry")}
    assert shared[DATABASE_ADMIN]["roles"] == [{"role": "root", "db": "admin"}]
    for service in SHARED_SERVER_USERS:
        assert shared[service]["roles"] == [{"role": "readWrite", "db": "model_registry"}]
    assert len({user["pwd"] for user in shared.values()}) == len(shared)  # one password each
    audit = {user["user"] for user in users(secrets, AUDIT_SERVER_USERS, "model_registry")}
    assert audit == {DATABASE_ADMIN, "audit"}  # the audit log's server knows no other service


def test_connection_strings_carry_a_user_only_with_tls_and_print_without_the_password(tmp_path: Path) -> None:
    plain = StackSettings(data_dir=tmp_path)
    assert "@" not in plain.mongodb_uri and redacted(plain.mongodb_uri) == plain.mongodb_uri
    closed = StackSettings(data_dir=tmp_path, tls=True)
    password = load_or_create(tmp_path).database_password("query")
    assert f"query:{password}@" in closed.service_mongodb_uri("query")
    assert f"{DATABASE_ADMIN}:" in closed.audit_mongodb_uri and "authSource=admin" in closed.audit_mongodb_uri
    shown = redacted(closed.service_mongodb_uri("query"))
    assert password not in shown and "query:***@" in shown
