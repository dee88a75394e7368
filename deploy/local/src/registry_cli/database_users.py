"""The embedded databases' users (``registry up --tls``): an administrator, and one user per service.

Behind its TLS front each SecantusDB server listens on a loopback port that any local user can
reach, and without authentication one insert into ``api_keys`` there makes a platform admin. So
with ``--tls`` both run with ``--auth`` (SCRAM-SHA-256): ``registry-admin`` (``root``: the stack
itself, the CLI, backups, tests) and each service as itself with ``readWrite`` on its own database
only (:func:`service_database`), on the servers it uses (the audit service alone on the audit
log's): a service's user cannot read or write another service's database. Passwords
derive from ``database_secret`` in ``<data dir>/secrets.json``
(:meth:`registry_cli.secrets.StackSecrets.database_password`).

SecantusDB provisions users only through a server that does not yet require them; instead, its
launcher (:mod:`registry_cli.embedded_mongo`) writes these users into the server's storage before
it listens (:mod:`registry_cli.stored_users`), from the environment variable
``REGISTRY_DATABASE_USERS`` (never its command line, which other local users can read), replacing
any earlier record of the same name: a restored backup's users take the current passwords.

``python -m registry_cli.database_users`` prints the administrator's connection strings (with
``REGISTRY_STACK_TLS=true`` and the stack's other ``REGISTRY_STACK_`` settings) for the commands that read
``MONGODB_URI`` / ``AUDIT_MONGODB_URI``: ``eval "$(REGISTRY_STACK_TLS=true python -m registry_cli.database_users)"``.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from audit.config import AuditSettings
from deploy_tracker.config import DeployTrackerSettings
from query.config import QuerySettings
from registration.config import RegistrationSettings
from registry_cli.config import DATABASE_ADMIN, StackSettings
from registry_cli.secrets import StackSecrets
from shared.chassis.settings import CommonSettings

# Who uses each server: the shared one, and the audit log's own.
SHARED_SERVER_USERS = ("registration", "query", "deploy-tracker", "audit")
AUDIT_SERVER_USERS = ("audit",)
SERVICE_SETTINGS: dict[str, type[CommonSettings]] = {
    "registration": RegistrationSettings,
    "query": QuerySettings,
    "deploy-tracker": DeployTrackerSettings,
    "audit": AuditSettings,
}


def service_database(service: str) -> str:
    """The database ``service`` owns in the stack: its settings' default (``<PREFIX>_MONGODB_DATABASE``)."""
    return str(SERVICE_SETTINGS[service].model_fields["mongodb_database"].default)


def users(secrets: StackSecrets, databases: Mapping[str, str]) -> list[dict[str, Any]]:
    """The users of one server: the administrator, then each service of ``databases`` on its own database."""
    roles = {DATABASE_ADMIN: [{"role": "root", "db": "admin"}]}
    roles |= {service: [{"role": "readWrite", "db": database}] for service, database in databases.items()}
    return [{"user": user, "pwd": secrets.database_password(user), "roles": held} for user, held in roles.items()]


def redacted(uri: str) -> str:
    """``uri`` with its password replaced by ``***`` (for printing)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def main() -> int:
    """Print the stack's administrator connection strings as shell assignments (``eval "$(…)"``)."""
    settings = StackSettings()
    print(f"export MONGODB_URI={shlex.quote(settings.mongodb_uri)}")
    print(f"export AUDIT_MONGODB_URI={shlex.quote(settings.audit_mongodb_uri)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
