"""What a refusal says: the problem's detail; a proxy's plain text; never a whole HTML error page."""

import httpx
import pytest

from registry_client.errors import MAX_DETAIL, NotFound, RegistryError, problem_error

pytestmark = pytest.mark.unit


def test_a_problem_gives_its_detail_and_class() -> None:
    response = httpx.Response(
        404, json={"type": "urn:registry:problem:not_found", "title": "Not found", "detail": "no model fraud/x"}
    )
    error = problem_error(response)
    assert isinstance(error, NotFound) and error.detail == "no model fraud/x" and error.reason == "not_found"


def test_an_html_error_page_is_its_status_phrase() -> None:
    page = "<html><body>" + "<p>upstream went away</p>" * 10_000 + "</body></html>"
    error = problem_error(httpx.Response(502, text=page, headers={"content-type": "text/html"}))
    assert type(error) is RegistryError and error.detail == "Bad Gateway"


def test_a_proxys_plain_text_is_kept_but_bounded() -> None:
    error = problem_error(httpx.Response(503, text="upstream connect error " + "x" * 10_000))
    assert error.detail.startswith("upstream connect error") and len(error.detail) == MAX_DETAIL
