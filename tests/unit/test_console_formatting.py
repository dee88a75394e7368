"""What the console puts on a page from what teams wrote: escaped, links only to the web."""

from __future__ import annotations

from typing import Any

import pytest

from query.console import views
from query.console.formatting import markdown, number, snippet, web_url, when
from query.console.web import segment

pytestmark = pytest.mark.unit


class TestMarkdown:
    def test_raw_html_is_shown_as_text(self) -> None:
        html = markdown("<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\nok <b>inline</b>")
        assert "<script" not in html and "<img" not in html and "<b>" not in html
        assert "&lt;script&gt;" in html and "&lt;b&gt;inline&lt;/b&gt;" in html

    def test_only_web_links_become_links(self) -> None:
        html = markdown("[a](javascript:alert(1)) [b](data:text/html;base64,PHNjcmlwdD4=) [c](https://example.com)")
        assert 'href="https://example.com"' in html
        assert "javascript:" not in html.replace("[a](javascript:alert(1))", "")
        assert 'href="data:' not in html

    def test_links_go_only_to_the_web_or_to_mail(self) -> None:
        html = markdown(
            "[a](ms-msdt:/id%20PCWDiagnostic) [b](//evil.example/x) [c](vbscript:x) [d](file:///etc/passwd)"
            " [e](data:image/png;base64,iVBORw0KGgo=) [f](/console/models) [g](HTTPS://Example.com/ok)"
            " [h](mailto:team@example.com) [i](http:///nohost) ![j](//evil.example/pixel.png)"
        )
        hrefs = [part.split('"', 1)[0] for part in html.split('href="')[1:]]
        assert hrefs == ["HTTPS://Example.com/ok", "mailto:team@example.com"]
        assert "<img" not in html

    def test_headings_start_below_the_pages_own(self) -> None:
        assert str(markdown("# Title\n\n###### Deep")) == "<h3>Title</h3>\n<h6>Deep</h6>\n"

    def test_nothing_renders_as_nothing(self) -> None:
        assert markdown(None) == "" and markdown("") == ""


class TestSnippet:
    def test_matched_words_are_marked_and_the_rest_escaped(self) -> None:
        found = {"fragment": "<b>card</b> fraud", "highlights": [[3, 7], [12, 17]]}
        assert str(snippet(found)) == "&lt;b&gt;<mark>card</mark>&lt;/b&gt; <mark>fraud</mark>"

    def test_ranges_outside_the_fragment_are_ignored(self) -> None:
        found = {"fragment": "abc", "highlights": [[2, 99], [-5, 1], [1, 1]]}
        assert str(snippet(found)) == "abc"


def test_web_urls_only() -> None:
    assert web_url("https://ci.example.com/run/1") == "https://ci.example.com/run/1"
    assert web_url("javascript:alert(1)") is None and web_url("  https://x") is None and web_url(3) is None


def test_times_and_numbers() -> None:
    assert when("2026-11-27T10:53:05.123456Z") == "2026-11-27 10:53:05 UTC" and when(None) == "—"
    assert number(0.93123456) == "0.9312" and number(True) == "—" and number(None) == "—"


VERSIONS: list[dict[str, Any]] = [
    {"version": "2.0.0", "metrics": {"auc": 0.95, "latency_ms": 9.0}, "environments": {"prod": {}, "shadow": {}}},
    {"version": "1.1.0", "metrics": {"auc": 0.93, "latency_ms": 11.0, "f1": 0.7}, "environments": {"staging": {}}},
    {"version": "1.0.0", "metrics": {}, "environments": {"dev": {}}},
]


class TestModelPageViews:
    versions = VERSIONS

    def test_environments_in_promotion_order(self) -> None:
        assert views.environments_of(self.versions) == ["dev", "staging", "prod", "shadow"]

    def test_metrics_beside_the_next_lower_version(self) -> None:
        previous = views.previous_of(self.versions, self.versions[0])
        assert previous is self.versions[1] and views.previous_of(self.versions, self.versions[2]) is None
        rows = {row.name: row for row in views.compare_metrics(self.versions[0], previous)}
        assert rows["auc"].verdict == "better" and rows["latency_ms"].verdict == "better"
        assert rows["f1"].value is None and rows["f1"].change is None and rows["f1"].verdict == ""
        unmatched = {row.name: row.verdict for row in views.compare_metrics(self.versions[1], self.versions[2])}
        assert unmatched == {"auc": "", "f1": "", "latency_ms": ""}  # nothing to compare against

    def test_timelines_per_environment(self) -> None:
        reports = [{"environment": "prod", "n": 3}, {"environment": "dev", "n": 2}, {"environment": "prod", "n": 1}]
        assert views.timelines(reports) == [("dev", [reports[1]]), ("prod", [reports[0], reports[2]])]


def test_every_path_segment_the_console_builds_is_one_segment() -> None:
    assert segment("1.0.0+build.1") == "1.0.0%2Bbuild.1" and segment("@champion") == "@champion"
    assert segment("../../other/m") == "..%2F..%2Fother%2Fm" and segment("a?b#c%") == "a%3Fb%23c%25"
    assert segment("..") == "%2E%2E" and segment(".") == "%2E"
