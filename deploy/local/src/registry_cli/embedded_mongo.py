"""``python -m registry_cli.embedded_mongo``: the SecantusDB daemon, with a transaction lifetime.

A process killed in the middle of a MongoDB transaction leaves it open, holding its write locks,
until the server reaps it: mongod after ``transactionLifetimeLimitSeconds`` (60 s by default),
SecantusDB after the same 60 s, and the client's disconnect aborts nothing. The service the
supervisor starts in its place redoes that very batch and waits on those locks all that time.
On MongoDB the knob is the ``transactionLifetimeLimitSeconds`` server parameter; SecantusDB's
daemon has no flag for it, so this launcher passes it to the server it builds.

    python -m registry_cli.embedded_mongo --transaction-lifetime-seconds 10 -- <secantus options>
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

import secantus.server
from secantus.cli import main as secantus_main


def run(argv: list[str]) -> int:
    """Start the daemon with ``argv`` after ``--``, its transactions reaped after the given lifetime."""
    parser = argparse.ArgumentParser(prog="registry_cli.embedded_mongo")
    parser.add_argument("--transaction-lifetime-seconds", type=float, required=True)
    at = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:at])
    server_class: Any = secantus.server.SecantusDBServer
    server_class.__init__ = functools.partialmethod(
        server_class.__init__, transaction_lifetime_seconds=args.transaction_lifetime_seconds
    )
    return int(secantus_main(argv[at + 1 :]))


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
