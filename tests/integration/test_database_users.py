"""Each service's database user reaches its own database only, on the embedded SecantusDB with ``--auth``.

The server is started as ``registry up --tls`` starts it (:mod:`registry_cli.embedded_mongo` with
the users of :func:`registry_cli.database_users.users`), on a port and data directory of its own.
"""

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from registry_cli.config import free_port
from registry_cli.database_users import users
from registry_cli.processes import Child, wait_for_port
from registry_cli.secrets import StackSecrets, load_or_create
from registry_cli.stored_users import USERS_ENV

pytestmark = pytest.mark.integration
DATABASES = {"registration": "registration", "query": "query", "deploy-tracker": "deploy_tracker", "audit": "audit"}
Client = AsyncMongoClient[dict[str, Any]]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[int, StackSecrets]]:
    """A SecantusDB server requiring authentication, each service a user with its own database."""
    secrets, port = load_or_create(tmp_path), free_port()
    argv = [sys.executable, "-m", "registry_cli.embedded_mongo", "--transaction-lifetime-seconds", "10"]
    argv += ["--users-from-env", "--", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--storage-path", str(tmp_path / "mongo"), "--log-level", "WARNING"]
    child = Child("auth-mongo", argv, env={USERS_ENV: json.dumps(users(secrets, DATABASES))}, quiet=True)
    await child.start()
    try:
        await wait_for_port("127.0.0.1", port, timeout=60, process=child)
        yield port, secrets
    finally:
        await child.stop(grace=10)


def connect(port: int, secrets: StackSecrets, user: str) -> Client:
    password = secrets.database_password(user)
    return AsyncMongoClient(
        f"mongodb://{quote(user, safe='')}:{password}@127.0.0.1:{port}/?directConnection=true&retryWrites=false"
        "&authSource=admin&authMechanism=SCRAM-SHA-256&serverSelectionTimeoutMS=5000"
    )


async def test_a_service_reads_and_writes_its_own_database(server: tuple[int, StackSecrets]) -> None:
    port, secrets = server
    for service, database in DATABASES.items():
        client = connect(port, secrets, service)
        try:
            await client[database]["things"].insert_one({"_id": service})
            assert await client[database]["things"].find_one({"_id": service}) == {"_id": service}
        finally:
            await client.close()


async def test_a_service_can_neither_read_nor_write_another_services_database(
    server: tuple[int, StackSecrets],
) -> None:
    # The crossings issue 23 retires: the tracker wrote registration's versions, query read them,
    # every service read registration's api_keys. With its own user, each is refused by the server.
    port, secrets = server
    admin = connect(port, secrets, "registry-admin")
    await admin["registration"]["model_versions"].insert_one({"_id": "v1", "status": "registered"})
    await admin["registration"]["api_keys"].insert_one({"_id": "k1", "team": "platform"})
    await admin.close()
    for service in ("query", "deploy-tracker", "audit"):
        client = connect(port, secrets, service)
        try:
            with pytest.raises(OperationFailure, match="not authorized"):
                await client["registration"]["model_versions"].find_one({"_id": "v1"})
            with pytest.raises(OperationFailure, match="not authorized"):
                await client["registration"]["api_keys"].find_one({})
            with pytest.raises(OperationFailure, match="not authorized"):
                await client["registration"]["model_versions"].update_one({"_id": "v1"}, {"$set": {"status": "x"}})
        finally:
            await client.close()
    registration = connect(port, secrets, "registration")
    try:
        for database in ("query", "deploy_tracker", "audit"):
            with pytest.raises(OperationFailure, match="not authorized"):
                await registration[database]["anything"].find_one({})
        with pytest.raises(OperationFailure, match="not authorized"):  # nor any database it was not given
            await registration["model_registry"]["models"].insert_one({"_id": "m1"})
    finally:
        await registration.close()
    admin = connect(port, secrets, "registry-admin")
    try:
        assert (await admin["registration"]["model_versions"].find_one({"_id": "v1"}) or {})["status"] == "registered"
    finally:
        await admin.close()
