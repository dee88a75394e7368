"""Jinja filters of the console: times, numbers, links, search snippets and markdown, all escaped.

Everything a team wrote (descriptions, documentation, tags, links, comments) reaches the page
through autoescaping or through :func:`markdown`, which renders CommonMark with raw HTML off, so
no team can put a script, a frame or a form on another reader's page. Links go out only to
absolute ``http``/``https`` URLs and ``mailto:`` (markdown-it's own check refuses four schemes
and lets ``ms-msdt:``, ``//host`` and the rest through, so :class:`_WebLinksOnly` replaces it;
:func:`web_url` for links outside markdown), and the Content-Security-Policy forbids inline
scripts besides.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment
from markdown_it import MarkdownIt
from markupsafe import Markup, escape


class _WebLinksOnly(MarkdownIt):
    """CommonMark whose links and images may point only at ``http(s)://host…`` or ``mailto:``."""

    def validateLink(self, url: str) -> bool:
        """Whether a link or image target may be rendered; anything else stays as its source text."""
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            return False
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            return bool(parts.hostname)
        return scheme == "mailto" and bool(parts.path)


_markdown = _WebLinksOnly("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
MAX_MARKDOWN_CHARS = 200_000  # the documentation limit is 64 KiB; a card adds a few KiB


def markdown(text: str | None, heading_below: int = 2) -> Markup:
    """``text`` rendered as CommonMark with raw HTML shown as text, never interpreted.

    Its headings start below the page's own ``<h{heading_below}>``, so a ``# Title`` in a team's
    documentation never competes with the page's title (for screen readers too).
    """
    if not text:
        return Markup("")
    env: dict[str, object] = {}
    tokens = _markdown.parse(text[:MAX_MARKDOWN_CHARS], env)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + heading_below)}"
    # The renderer escapes every text token; html=False turns raw HTML blocks into text tokens.
    return Markup(_markdown.renderer.render(tokens, _markdown.options, env))


def snippet(found: dict[str, Any] | None) -> Markup:
    """A search snippet with its matched words in ``<mark>``, built from the fragment and its ranges."""
    if not found:
        return Markup("")
    fragment: str = found.get("fragment") or ""
    pieces: list[str] = []
    at = 0
    for start, end in sorted(tuple(pair) for pair in found.get("highlights") or []):
        if start < at or end > len(fragment) or start >= end:
            continue
        pieces += [str(escape(fragment[at:start])), f"<mark>{escape(fragment[start:end])}</mark>"]
        at = end
    pieces.append(str(escape(fragment[at:])))
    return Markup("".join(pieces))


def web_url(url: object) -> str | None:
    """``url`` if it is an ``http(s)`` URL (safe in an ``href``), else ``None``."""
    if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
        return url
    return None


def when(value: object) -> str:
    """An API timestamp as ``YYYY-MM-DD HH:MM:SS UTC`` (what people scan), or ``—``."""
    if not isinstance(value, str):
        return "—"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: object) -> str:
    """A metric value: up to 4 significant decimals, no trailing noise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.4e}"


def signed(value: object) -> str:
    """A difference with its sign (``+0.012``), or ``—``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"{value:+.4g}"


def install(env: Environment) -> None:
    """Register the filters on the console's template environment."""
    env.filters.update(markdown=markdown, snippet=snippet, web_url=web_url, when=when, number=number, signed=signed)
