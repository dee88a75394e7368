"""The console's chart of deployments over time, drawn on the server as inline SVG (see :mod:`query.console.charts`).

One lane per environment, a row per version, a bar per status period, placed by when the
deploy-tracker recorded each report (``received_at``, as the timelines are), not by the time a
pipeline says it happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from query.console.charts import BAD, GRID, INK, MUTED, W, empty, short, svg, text
from query.console.views import environment_key
from registry_contract.times import as_utc

# Colour-blind-safe palette (Okabe and Ito), one colour per version in a deployment chart.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#8c6d00", "#000000")
LIVE = ("deploying", "deployed")  # a status that lasts until the next report
MAX_LANE_ROWS = 40  # (environment, version) rows one deployment chart draws


@dataclass(frozen=True)
class Segment:
    """A version's status in an environment from ``start`` until ``end`` (the next report, or the chart's end)."""

    environment: str
    version: str
    status: str
    start: datetime
    end: datetime
    lasting: bool  # drawn to ``end``; a failure, rollback or retirement is drawn as a mark at ``start``


def segments(reports: Sequence[dict[str, Any]], now: datetime) -> list[Segment]:
    """Applied deployment reports as status segments per environment and version, oldest first.

    Each report stands where the tracker recorded it (``received_at``): a pipeline's own clock
    (``occurred_at``, however far off) cannot stretch the axis.
    """
    rows: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for report in reports:
        moment = as_utc(report.get("received_at"))
        if moment is None or not report.get("environment") or not report.get("version"):
            continue
        key = (str(report["environment"]), str(report["version"]))
        rows.setdefault(key, []).append((moment, str(report.get("status") or "")))
    found = []
    for (environment, version), changes in rows.items():
        changes.sort()
        for index, (start, status) in enumerate(changes):
            end = changes[index + 1][0] if index + 1 < len(changes) else max(now, start)
            lasting = index + 1 < len(changes) or status in LIVE
            found.append(Segment(environment, version, status, start, end, lasting))
    return sorted(found, key=lambda s: s.start)


def deployment_chart(
    reports: Sequence[dict[str, Any]], *, versions: Sequence[str], now: datetime | None = None, ident: str = "deploys"
) -> str:
    """Deployments over time as SVG: one lane per environment, a row per version, segments by status.

    ``versions`` (oldest SemVer first) fixes each version's colour; ``reports`` are applied
    deployment reports (any order). At most ``MAX_LANE_ROWS`` rows are drawn.
    """
    title = "Deployments over time"
    now = now or datetime.now(UTC)
    found = segments(reports, now)
    if not found:
        return empty(W, 80, ident, title, "No deployment reported yet")
    colours = {version: PALETTE[i % len(PALETTE)] for i, version in enumerate(versions)}
    start, end = min(s.start for s in found), max(max(s.end for s in found), now)
    timeline = _Timeline(start, end)
    lanes, rows, bottom = _lanes(found, versions)
    body = lanes + [
        _segment(s, rows[key], timeline, colours) for s in found if (key := (s.environment, s.version)) in rows
    ]
    body += _time_axis(timeline, bottom)
    legend, height = _legend([v for v in versions if any(s.version == v for s in found)], colours, bottom + 36)
    environments = len({s.environment for s in found})
    description = f"{len(found)} status periods in {environments} environments from {_when(start)} to {_when(end)}"
    if len(rows) < len({(s.environment, s.version) for s in found}):
        description += "; more rows than shown"
    return svg(CHART_W, height, ident, title, description, body + legend, "chart-deployments")


CHART_W, LANE_LEFT, LANE_RIGHT, ROW_H = 860, 180, 20, 16


@dataclass(frozen=True)
class _Timeline:
    """The time axis of a deployment chart: ``start`` at the lanes' left edge, ``end`` at their right."""

    start: datetime
    end: datetime

    def x(self, moment: datetime) -> float:
        seconds = max((self.end - self.start).total_seconds(), 1.0)
        return LANE_LEFT + (moment - self.start).total_seconds() / seconds * (CHART_W - LANE_LEFT - LANE_RIGHT)


def _lanes(found: list[Segment], versions: Sequence[str]) -> tuple[list[str], dict[tuple[str, str], float], float]:
    """Each environment's lane (promotion order), a labelled row per version: the SVG, each row's top, the bottom."""
    by_environment: dict[str, list[str]] = {}
    for segment in found:
        rows = by_environment.setdefault(segment.environment, [])
        if segment.version not in rows:
            rows.append(segment.version)
    order = {version: index for index, version in enumerate(versions)}
    drawn: list[str] = []
    placed: dict[tuple[str, str], float] = {}
    y = 12.0
    for env in sorted(by_environment, key=environment_key):
        top, labels = y, []
        for version in sorted(by_environment[env], key=lambda v: (order.get(v, len(order)), v)):
            if len(placed) == MAX_LANE_ROWS:
                break
            placed[(env, version)] = y
            labels.append(
                f'<text x="{LANE_LEFT - 8}" y="{y + 12:.1f}" text-anchor="end" font-size="12" fill="{INK}">'
                f"{text(short(version, 16))}</text>"
            )
            y += ROW_H + 2
        if not labels:
            break
        drawn.append(
            f'<rect x="2" y="{top - 4:.1f}" width="{CHART_W - 4}" height="{y - top + 6:.1f}" rx="4" fill="#f6f7f9" '
            f'stroke="{GRID}"/><text x="10" y="{top + 12:.1f}" font-size="12" font-weight="600" fill="{INK}">'
            f"{text(short(env, 14))}</text>"
        )
        drawn += labels
        y += 10
    return drawn, placed, y


def _segment(segment: Segment, row: float, timeline: _Timeline, colours: dict[str, str]) -> str:
    """One status period as a bar: colour by version, opacity and outline by status, a tooltip saying which."""
    colour = colours.get(segment.version, MUTED)
    x0 = timeline.x(segment.start)
    x1 = max(timeline.x(segment.end), x0 + 4) if segment.lasting else x0 + 4
    opacity = {"deployed": "1", "deploying": "0.45"}.get(segment.status, "0.25")
    stroke = BAD if segment.status in ("failed", "rolled_back") else colour
    dash = ' stroke-dasharray="3 2"' if segment.status in ("retired", "rolled_back") else ""
    span = f"{_when(segment.start)} to {_when(segment.end)}" if segment.lasting else f"at {_when(segment.start)}"
    what = f"{segment.environment}: {segment.version} {segment.status} {span}"
    return (
        f'<rect x="{x0:.1f}" y="{row + 1:.1f}" width="{x1 - x0:.1f}" height="{ROW_H - 2}" rx="2" fill="{colour}" '
        f'fill-opacity="{opacity}" stroke="{stroke}" stroke-width="1.5"{dash} '
        f'class="chart-segment status-{text(_slug(segment.status))}"><title>{text(what)}</title></rect>'
    )


def _time_axis(timeline: _Timeline, y: float) -> list[str]:
    """The time axis under the lanes, with four labelled ticks (UTC)."""
    left, right = timeline.x(timeline.start), timeline.x(timeline.end)
    drawn = [f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{MUTED}"/>']
    for fraction, anchor in ((0.0, "start"), (1 / 3, "middle"), (2 / 3, "middle"), (1.0, "end")):
        moment = timeline.start + (timeline.end - timeline.start) * fraction
        at = timeline.x(moment)
        drawn.append(
            f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{y:.1f}" y2="{y + 4:.1f}" stroke="{MUTED}"/>'
            f'<text x="{at:.1f}" y="{y + 16:.1f}" text-anchor="{anchor}" font-size="12" fill="{MUTED}">'
            f"{text(_when(moment))} UTC</text>"
        )
    return drawn


STATUS_KEYS = (
    ("deployed", "1", MUTED, ""),
    ("deploying", "0.45", MUTED, ""),
    ("failed", "0.25", BAD, ""),
    ("rolled_back", "0.25", BAD, ' stroke-dasharray="3 2"'),
    ("retired", "0.25", MUTED, ' stroke-dasharray="3 2"'),
)


def _legend(shown: list[str], colours: dict[str, str], y: float) -> tuple[list[str], int]:
    """A line of version colours and a line of status styles; the SVG and the chart's height under them."""
    drawn: list[str] = []
    x = 10.0
    for version in shown[: len(PALETTE) * 2]:
        if x > CHART_W - 120:
            x, y = 10.0, y + 18
        drawn.append(
            f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="12" height="10" fill="{colours[version]}"/>'
            f'<text x="{x + 16:.1f}" y="{y:.1f}" font-size="12" fill="{INK}">{text(short(version, 16))}</text>'
        )
        x += 28 + 7 * min(len(version), 16)
    x, y = 10.0, y + 18
    for status, opacity, stroke, dash in STATUS_KEYS:
        drawn.append(
            f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="18" height="10" fill="{MUTED}" fill-opacity="{opacity}" '
            f'stroke="{stroke}" stroke-width="1.5"{dash}/>'
            f'<text x="{x + 22:.1f}" y="{y:.1f}" font-size="12" fill="{INK}">{status.replace("_", " ")}</text>'
        )
        x += 100
    return drawn, int(y + 10)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)[:32]
