"""Small helpers to write markdown that Python-Markdown renders as meant."""

from __future__ import annotations

import html
import re

# A fenced block, or an inline code span (single or double backticks): left as they are.
_CODE = re.compile(r"^```.*?^```$|``[^`\n]+``|`[^`\n]+`", re.DOTALL | re.MULTILINE)


def escape_outside_code(markdown: str, *, cell: bool = False) -> str:
    """Escape ``<``, ``>`` and ``&`` where they are text: help texts say ``REGISTRY_<SERVICE>_URL``.

    In a table ``cell``, a ``|`` outside code is escaped too (inside code it cannot break the cell).
    """

    def plain(part: str) -> str:
        escaped = html.escape(part, quote=False)
        return escaped.replace("|", "\\|") if cell else escaped

    out, start = [], 0
    for match in _CODE.finditer(markdown):
        out += [plain(markdown[start : match.start()]), match.group(0)]
        start = match.end()
    out.append(plain(markdown[start:]))
    return "".join(out)


def text(value: str) -> str:
    """``value`` (a docstring, a comment) as one table cell: one line, no HTML, no cell break."""
    return escape_outside_code(" ".join(value.split()), cell=True)


def code(value: str) -> str:
    """``value`` as an inline code span."""
    fence = "``" if "`" in value else "`"
    return f"{fence}{value}{fence}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table whose cells are already markdown."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
