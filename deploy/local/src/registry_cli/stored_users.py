"""Users written into a SecantusDB server's storage before it listens (``registry up --tls``).

The database launcher (:mod:`registry_cli.embedded_mongo`) imports this module, so it imports
nothing but the standard library and SecantusDB: the services' settings that
:mod:`registry_cli.database_users` reads bring FastAPI, pydantic-settings and structlog, about
28 MB in each of the stack's two database servers.
"""

from __future__ import annotations

from typing import Any

USERS_ENV = "REGISTRY_DATABASE_USERS"  # the users (JSON) the launcher writes; never on its command line


def provision(storage: Any, wanted: list[dict[str, Any]]) -> None:
    """Write ``wanted`` into a SecantusDB storage as ``admin`` users (SCRAM-SHA-256), as createUser does."""
    from secantus.auth import SCRAM_SHA_256, derive_credentials

    for user in wanted:
        name = user["user"]
        record = {
            "_id": f"admin.{name}",
            "user": name,
            "db": "admin",
            "credentials": derive_credentials(user["pwd"], mechanism=SCRAM_SHA_256, username=name).to_doc(),
            "roles": user["roles"],
            "mechanisms": [SCRAM_SHA_256],
        }
        storage.add_user("admin", name, record, replace=True)
