"""``python -m tools.docs [--check]``: write the reference pages, or only say which are stale."""

from __future__ import annotations

import argparse
import sys

from tools.docs.pages import generated, stale, write


def main(argv: list[str] | None = None) -> int:
    """Write ``docs/reference/`` from the code; with ``--check``, exit 1 if anything there is stale."""
    parser = argparse.ArgumentParser(prog="python -m tools.docs", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a page is stale")
    options = parser.parse_args(argv)
    pages = generated()
    if options.check:
        found = stale(pages)
        for path in found:
            print(f"stale: docs/{path}", file=sys.stderr)
        if found:
            print("regenerate with: .venv/bin/python -m tools.docs", file=sys.stderr)
        return 1 if found else 0
    for path in write(pages):
        print(f"wrote docs/{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
