"""``python -m registry_cli.embedded_mongo``: the SecantusDB daemon, with a transaction lifetime.

A process killed in the middle of a MongoDB transaction leaves it open, holding its write locks,
until the server reaps it: mongod after ``transactionLifetimeLimitSeconds`` (60 s by default),
SecantusDB after the same 60 s, and the client's disconnect aborts nothing. The service the
supervisor starts in its place redoes that very batch and waits on those locks all that time.
On MongoDB the knob is the ``transactionLifetimeLimitSeconds`` server parameter; SecantusDB's
daemon has no flag for it, so this launcher passes it to the server it builds.

With ``--users-from-env`` it also writes the users listed (JSON) in ``REGISTRY_DATABASE_USERS``
into the server's storage before it listens, and runs it with ``--auth``
(:mod:`registry_cli.database_users` says why). It imports
nothing of the services: a database server is not a service.

    python -m registry_cli.embedded_mongo --transaction-lifetime-seconds 10 [--users-from-env] -- <secantus options>
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import secantus.server
from secantus.cli import main as secantus_main

from registry_cli.stored_users import USERS_ENV, provision


def run(argv: list[str]) -> int:
    """Start the daemon with ``argv`` after ``--``, its transactions reaped after the given lifetime."""
    parser = argparse.ArgumentParser(prog="registry_cli.embedded_mongo")
    parser.add_argument("--transaction-lifetime-seconds", type=float, required=True)
    parser.add_argument("--users-from-env", action="store_true", help=f"provision {USERS_ENV}'s users; --auth")
    at = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:at])
    users: list[dict[str, Any]] = json.loads(os.environ.pop(USERS_ENV)) if args.users_from_env else []
    server_class: Any = secantus.server.SecantusDBServer
    original = server_class.__init__

    def init(self: Any, *positional: Any, **options: Any) -> None:
        original(self, *positional, **options, transaction_lifetime_seconds=args.transaction_lifetime_seconds)
        provision(self.storage, users)  # before the server listens: no moment without its users

    server_class.__init__ = init
    return int(secantus_main([*argv[at + 1 :], *(["--auth"] if args.users_from_env else [])]))


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
