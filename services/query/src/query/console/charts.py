"""Charts of the console drawn on the server as inline SVG: the pieces every chart shares, and a metric across versions.

The deployments over time are in :mod:`query.console.deployments_chart`.

Pure functions from API data to SVG text. No script, no ``style`` attribute or element (the
console's Content-Security-Policy allows neither inline), no external reference: colours are SVG
presentation attributes, sizes come from ``console.css`` through classes. Every string a team
chose (metric names, versions, environments) is escaped, in text and in attributes alike.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from html import escape
from typing import TypeGuard

LINE, POINT, COMPARED = "#1f4e79", "#1f4e79", "#d55e00"
INK, MUTED, GRID, BAD = "#1b1f24", "#5a6470", "#d8dde3", "#b42318"
MAX_X_LABELS = 12

W, H = 420, 230
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 12, 62


def text(value: object) -> str:
    """``value`` escaped for SVG text and attributes alike."""
    return escape(str(value), quote=True)


def _number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"


def svg(width: int, height: int, ident: str, title: str, description: str, body: list[str], css: str) -> str:
    """The ``<svg>`` element around ``body``, titled for screen readers."""
    ident = text(ident)
    return "".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css}" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-labelledby="{ident}-t {ident}-d">',
            f'<title id="{ident}-t">{text(title)}</title><desc id="{ident}-d">{text(description)}</desc>',
            *body,
            "</svg>",
        ]
    )


def empty(width: int, height: int, ident: str, title: str, message: str) -> str:
    """A framed chart holding only ``message`` (nothing to draw)."""
    body = [
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="none" stroke="{GRID}"/>',
        f'<text x="{width / 2:.1f}" y="{height / 2:.1f}" text-anchor="middle" fill="{MUTED}" font-size="13">'
        f"{text(message)}</text>",
    ]
    return svg(width, height, ident, title, message, body, "chart-empty")


def metric_chart(
    name: str, points: Sequence[tuple[str, float | None]], *, compared: Collection[str] = (), ident: str = "metric"
) -> str:
    """One metric across versions (``points`` oldest SemVer first; ``None``: the version lacks it) as SVG.

    The compared versions are drawn larger, in another colour. A gap in the line is a version
    without the metric; values that are not finite numbers count as missing.
    """
    title = f"{name} across versions"
    values = [(i, version, float(v)) for i, (version, v) in enumerate(points) if _finite(v)]
    if not values:
        return empty(W, 80, ident, title, f"No values of {name} recorded")
    # Drawn in units of the largest magnitude: the span of values near the float's limits
    # (1.7e308 and -1.7e308) would overflow, and so would a padding around it.
    scale = max(1.0, *(abs(v) for _, _, v in values))
    low, high = min(v for _, _, v in values) / scale, max(v for _, _, v in values) / scale
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    span = high - low
    low, high = low - span * 0.05, high + span * 0.05
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    inset = 14  # points stay clear of the frame and the value labels beside it
    step = (plot_w - 2 * inset) / max(len(points) - 1, 1)

    def x(index: int) -> float:
        return LEFT + (inset + index * step if len(points) > 1 else plot_w / 2)

    def y(scaled: float) -> float:
        return TOP + plot_h - (scaled - low) / (high - low) * plot_h

    body = [f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="{GRID}"/>']
    for tick in (low + (high - low) * f for f in (0.05 / 1.1, 0.5, 1.05 / 1.1)):
        if not math.isfinite(tick * scale):  # a rounding past the float's limit: no label
            continue
        body.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{GRID}"/>')
        body.append(
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="12" fill="{MUTED}">'
            f"{text(_number(tick * scale))}</text>"
        )
    if low < 0 < high:
        body.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="{MUTED}" '
            'stroke-dasharray="4 3"/>'
        )
    for run in _runs(values):
        if len(run) > 1:
            coords = " ".join(f"{x(i):.1f},{y(v / scale):.1f}" for i, _, v in run)
            body.append(f'<polyline points="{coords}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    every = math.ceil(len(points) / MAX_X_LABELS)
    for index, (version, _) in enumerate(points):
        if index % every == 0 or index == len(points) - 1 or version in compared:
            body.append(
                f'<text x="{x(index):.1f}" y="{TOP + plot_h + 14}" text-anchor="end" font-size="12" fill="{INK}" '
                f'transform="rotate(-35 {x(index):.1f} {TOP + plot_h + 14})">{text(version)}</text>'
            )
    for index, version, value in values:
        chosen = version in compared
        colour, radius = (COMPARED, 5.5) if chosen else (POINT, 3.5)
        body.append(
            f'<circle cx="{x(index):.1f}" cy="{y(value / scale):.1f}" r="{radius}" fill="{colour}" stroke="#fff" '
            f'stroke-width="1.5" class="chart-point{" chart-compared" if chosen else ""}">'
            f"<title>{text(version)}: {text(_number(value))}</title></circle>"
        )
    body.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{H - 4}" text-anchor="middle" font-size="12" fill="{MUTED}">'
        "version (SemVer order)</text>"
    )
    body.append(
        f'<text x="14" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" font-size="12" fill="{MUTED}" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">{text(short(name, 28))}</text>'
    )
    description = "; ".join(f"{version} {_number(value)}" for _, version, value in values)
    return svg(W, H, ident, title, description, body, "chart-metric")


def _runs(values: list[tuple[int, str, float]]) -> list[list[tuple[int, str, float]]]:
    """Consecutive points (no version without the metric between them), each drawn as one line."""
    runs: list[list[tuple[int, str, float]]] = []
    for point in values:
        if runs and runs[-1][-1][0] == point[0] - 1:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def short(words: str, limit: int) -> str:
    """``words`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return words if len(words) <= limit else words[: limit - 1] + "…"


def _finite(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
