"""The console's server-drawn SVG charts: well-formed, escaped, no inline style, sane with odd data."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from query.console.charts import metric_chart
from query.console.deployments_chart import deployment_chart, segments

pytestmark = pytest.mark.unit
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def parsed(svg: str) -> ET.Element:
    """The chart as XML: it must be well-formed, and hold nothing the CSP would block or that runs."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    for element in root.iter():
        assert element.tag not in (f"{SVG}script", f"{SVG}style", f"{SVG}foreignObject", f"{SVG}image"), element.tag
        assert "style" not in element.attrib
        assert not any(name.lower().startswith("on") for name in element.attrib)
        assert not any("href" in name for name in element.attrib)
    return root


def numbers(svg: str) -> list[str]:
    """Every coordinate-like attribute value of the chart."""
    return re.findall(r' (?:x|y|x1|x2|y1|y2|cx|cy|r|width|height|points)="([^"]*)"', svg)


def report(env: str, version: str, status: str, day: int, hour: int = 9) -> dict[str, str]:
    return {
        "environment": env,
        "version": version,
        "status": status,
        "occurred_at": f"2026-03-{day:02d}T{hour:02d}:00:00Z",
        "received_at": f"2026-03-{day:02d}T{hour:02d}:00:05Z",
    }


class TestMetricChart:
    def test_each_version_with_the_metric_is_a_point_and_the_compared_ones_stand_out(self) -> None:
        svg = metric_chart("auc", [("1.0.0", 0.9), ("1.1.0", 0.93), ("1.2.0", 0.95)], compared={"1.2.0"})
        root = parsed(svg)
        circles = root.findall(f"{SVG}circle")
        assert len(circles) == 3
        assert [c.attrib["class"] for c in circles].count("chart-point chart-compared") == 1
        assert [c.findtext(f"{SVG}title") for c in circles] == ["1.0.0: 0.9", "1.1.0: 0.93", "1.2.0: 0.95"]
        labels = [t.text for t in root.findall(f"{SVG}text")]
        assert {"1.0.0", "1.1.0", "1.2.0", "version (SemVer order)", "auc"} <= set(labels)
        assert root.findall(f"{SVG}polyline")

    def test_a_hostile_metric_name_and_version_stay_text(self) -> None:
        svg = metric_chart(HOSTILE, [(HOSTILE, 1.0), ("1.0.1", 2.0)], compared={HOSTILE})
        assert "<script" not in svg and "<img" not in svg
        root = parsed(svg)
        assert root.findtext(f"{SVG}title") == f"{HOSTILE} across versions"
        assert any(t.text == HOSTILE for t in root.findall(f"{SVG}text"))

    def test_no_values_draws_a_message_not_an_empty_plot(self) -> None:
        root = parsed(metric_chart("f1", [("1.0.0", None), ("1.1.0", None)]))
        assert "No values of f1 recorded" in "".join(root.itertext())
        assert not root.findall(f"{SVG}circle")
        assert "No values" in "".join(parsed(metric_chart("f1", [])).itertext())

    def test_one_version_is_one_point_in_the_middle(self) -> None:
        svg = metric_chart("auc", [("1.0.0", 0.5)])
        circles = parsed(svg).findall(f"{SVG}circle")
        assert len(circles) == 1 and not parsed(svg).findall(f"{SVG}polyline")
        assert all(re.fullmatch(r"[-0-9., ]+", value) for value in numbers(svg))

    def test_negative_values_get_a_zero_line_and_not_a_number_is_left_out(self) -> None:
        svg = metric_chart("drift", [("1.0.0", -3.0), ("1.1.0", 2.0), ("1.2.0", float("nan")), ("1.3.0", float("inf"))])
        root = parsed(svg)
        assert len(root.findall(f"{SVG}circle")) == 2
        assert any(line.get("stroke-dasharray") for line in root.findall(f"{SVG}line"))  # the zero line
        assert "nan" not in svg.lower() and "inf" not in svg.lower()
        assert all(re.fullmatch(r"[-0-9., ]+", value) for value in numbers(svg))

    def test_a_version_without_the_metric_breaks_the_line(self) -> None:
        root = parsed(metric_chart("auc", [("1", 0.1), ("2", 0.2), ("3", None), ("4", 0.3), ("5", 0.4)]))
        assert len(root.findall(f"{SVG}polyline")) == 2


class TestDeploymentChart:
    def test_segments_last_until_the_next_report_and_live_ones_until_now(self) -> None:
        found = segments(
            [
                report("prod", "1.0.0", "deploying", 1),
                report("prod", "1.0.0", "deployed", 2),
                report("prod", "1.0.0", "retired", 5),
            ],
            NOW,
        )
        assert [(s.status, s.start.day, s.end.day, s.lasting) for s in found] == [
            ("deploying", 1, 2, True),
            ("deployed", 2, 5, True),
            ("retired", 5, 10, False),
        ]

    def test_one_lane_per_environment_a_row_per_version(self) -> None:
        reports = [
            report("prod", "1.0.0", "deployed", 1),
            report("staging", "1.1.0", "deployed", 3),
            report("prod", "1.1.0", "deploying", 4),
            report("prod", "1.1.0", "failed", 4, 10),
        ]
        svg = deployment_chart(reports, versions=["1.0.0", "1.1.0"], now=NOW)
        root = parsed(svg)
        segments_drawn = [r for r in root.findall(f"{SVG}rect") if "chart-segment" in (r.get("class") or "")]
        assert len(segments_drawn) == 4
        titles = [r.findtext(f"{SVG}title") for r in segments_drawn]
        assert "prod: 1.1.0 failed at 2026-03-04 10:00" in titles
        colours = {r.findtext(f"{SVG}title", "").split()[1]: r.get("fill") for r in segments_drawn}
        assert colours["1.0.0"] != colours["1.1.0"]

    def test_staging_comes_before_prod(self) -> None:
        svg = deployment_chart(
            [report("prod", "1.0.0", "deployed", 2), report("staging", "1.0.0", "deployed", 1)],
            versions=["1.0.0"],
            now=NOW,
        )
        texts = [t.text for t in parsed(svg).findall(f"{SVG}text")]
        assert texts.index("staging") < texts.index("prod")

    def test_hostile_environment_and_version_names_stay_text(self) -> None:
        svg = deployment_chart([report(HOSTILE, HOSTILE, HOSTILE, 1)], versions=[HOSTILE], now=NOW)
        assert "<script" not in svg and "<img" not in svg
        parsed(svg)

    def test_no_reports_draws_a_message_and_bad_times_are_skipped(self) -> None:
        assert "No deployment reported yet" in "".join(parsed(deployment_chart([], versions=[], now=NOW)).itertext())
        odd = [{"environment": "prod", "version": "1.0.0", "status": "deployed", "received_at": "not a time"}]
        assert "No deployment reported yet" in deployment_chart(odd, versions=["1.0.0"], now=NOW)

    def test_a_single_instant_does_not_divide_by_zero(self) -> None:
        svg = deployment_chart([report("prod", "1.0.0", "deployed", 10, 12)], versions=["1.0.0"], now=NOW)
        assert "nan" not in svg.lower() and "inf" not in svg.lower()
        assert all(re.fullmatch(r"[-0-9., ]+", value) for value in numbers(svg))

    def test_reports_stand_where_the_tracker_recorded_them_not_where_the_pipeline_dated_them(self) -> None:
        early = report("prod", "1.0.0", "deployed", 1) | {"occurred_at": "0001-01-01T00:00:00Z"}
        found = segments([early, report("prod", "1.0.0", "retired", 5)], NOW)
        assert [s.start.year for s in found] == [2026, 2026]
        svg = deployment_chart([early], versions=["1.0.0"], now=NOW)
        assert "0001-01-01" not in svg and "2026-03-01 09:00" in svg


class TestValuesAtTheFloatsLimits:
    @pytest.mark.parametrize(
        "values", [(1.7e308, -1.7e308), (1.7976931348623157e308, 1.7976931348623157e308), (5e-324, -5e-324, 0.0)]
    )
    def test_the_chart_keeps_finite_coordinates(self, values: tuple[float, ...]) -> None:
        svg = metric_chart("auc", [(f"1.{i}.0", v) for i, v in enumerate(values)], compared={"1.0.0"})
        parsed(svg)
        assert "nan" not in svg.lower() and "inf" not in svg.lower()
        assert len(re.findall("<circle", svg)) == len(values)
