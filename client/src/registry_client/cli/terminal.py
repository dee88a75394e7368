"""Text from a server made safe for a terminal: no escape sequence, no bidi trick, no rich markup.

Names, descriptions, cards and problem details come from other teams (or from an MLflow server):
printed raw, ``ESC ] 52`` writes the clipboard, ``ESC ] 8`` spoofs a link, ``ESC [ 2J`` clears the
screen, and ``[link=…]`` is rich markup. Every string a command prints goes through
:func:`visible` (plain output), :func:`markup` (rich tables and consoles) or :func:`json_text`.
"""

from __future__ import annotations

import re

from rich.markup import escape

# C0 but newline and tab, DEL, C1; and the bidi embeddings, overrides and isolates (Trojan Source).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_BREAK = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What JSON encoders leave raw inside strings (they escape C0 themselves; newlines between tokens stay).
_JSON_RAW = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _shown(found: re.Match[str]) -> str:
    char = found.group()
    return "^[" if char == "\x1b" else f"\\u{ord(char):04x}"


def visible(text: str, *, lines: bool = True) -> str:
    r"""``text`` with each control character shown as ``\uXXXX`` (ESC as ``^[``); newline and tab kept if ``lines``."""
    return (_CONTROL if lines else _CONTROL_OR_BREAK).sub(_shown, text)


def markup(text: str, *, lines: bool = True) -> str:
    """``text`` made :func:`visible` and escaped for rich, which would otherwise read ``[…]`` as style or link."""
    return escape(visible(text, lines=lines))


def json_text(text: str) -> str:
    r"""JSON text with the control characters JSON leaves raw (DEL, C1, bidi) written as ``\uXXXX`` escapes.

    They can only stand inside JSON strings, where the escape means the same character: the
    document stays valid and equal, and UTF-8 names stay readable.
    """
    return _JSON_RAW.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
