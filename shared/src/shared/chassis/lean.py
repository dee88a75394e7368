"""Keeping libraries that only a terminal's user needs out of a service process.

structlog imports rich whenever it is installed, for coloured tracebacks in a terminal, and httpx
imports rich and pygments' lexers for its command line: about 5 MB of modules in every process.
A service logs JSON and never draws on a terminal, but in the workspace both are installed for the
CLI, so each service would carry them.
A ``None`` in ``sys.modules`` makes an import of that name raise ``ImportError``, which structlog
handles as "not installed" (and httpx, which then leaves its command line out).
"""

from __future__ import annotations

import sys

TERMINAL_ONLY = ("rich", "pygments")


def leave_out_terminal_libraries() -> None:
    """Mark the terminal-only libraries absent; call before anything imports structlog."""
    for name in TERMINAL_ONLY:
        if name not in sys.modules:  # already imported (not in a service process): left as it is
            sys.modules[name] = None  # type: ignore[assignment]  # the import system's own "absent" mark
