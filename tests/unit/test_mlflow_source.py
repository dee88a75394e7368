"""The MLflow reader's bounds and error reports, against answers no real server gives on demand."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from registry_client.cli.mlflow_import.source import (
    MlflowAnswerTooLarge,
    MlflowRequestFailed,
    MlflowSource,
    MlflowUnexpectedAnswer,
    SourceLimits,
    name_filter,
)

pytestmark = pytest.mark.unit
URI = "http://mlflow.test"


def source(answer: Callable[[httpx.Request], httpx.Response], **options: Any) -> MlflowSource:
    return MlflowSource(URI, transport=httpx.MockTransport(answer), **options)


def test_a_server_that_is_not_mlflow_is_named_as_such() -> None:
    with (
        source(lambda _: httpx.Response(200, text="<html>sign in</html>")) as reader,
        pytest.raises(MlflowUnexpectedAnswer, match=re.escape("(is http://mlflow.test an MLflow tracking server?)")),
    ):
        reader.registered_models()


def test_a_refusal_of_the_credentials_says_to_check_them() -> None:
    body = {"error_code": "PERMISSION_DENIED", "message": "no access"}
    with (
        source(lambda _: httpx.Response(403, json=body)) as reader,
        pytest.raises(MlflowRequestFailed, match=re.escape("403 PERMISSION_DENIED no access (check the credentials")),
    ):
        reader.registered_models()


def test_an_empty_page_that_still_has_a_token_ends_the_paging() -> None:
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, json={"registered_models": [], "next_page_token": "again"})

    with source(answer) as reader:
        assert reader.registered_models() == []
    assert len(asked) == 1


def test_the_token_and_page_size_are_sent_and_pages_follow_their_token() -> None:
    pages = {None: (["a", "b"], "t1"), "t1": (["c"], None)}

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer s3cret"
        assert request.url.params["max_results"] == "2" and request.url.params["order_by"] == "name ASC"
        names, token = pages[request.url.params.get("page_token")]
        body = {"registered_models": [{"name": n} for n in names], **({"next_page_token": token} if token else {})}
        return httpx.Response(200, json=body)

    with source(answer, token="s3cret", limits=SourceLimits(page_size=2)) as reader:
        assert [m.name for m in reader.registered_models()] == ["a", "b", "c"]


def test_an_mlmodel_file_past_its_size_cap_is_not_read() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/model-versions/search"):
            return httpx.Response(200, json={"model_versions": [{"name": "m", "version": "1", "source": "s3://b/k"}]})
        return httpx.Response(200, text="flavors:\n" + "  x: " + "y" * 2000)

    with source(answer, read_flavors=True, limits=SourceLimits(max_mlmodel_bytes=1000)) as reader:
        [version] = reader.model_versions("m")
        assert version.flavors is None


def endless(chunk: bytes) -> Iterator[bytes]:
    """A body without a length that never ends: only a bounded reader returns from it."""
    while True:
        yield chunk


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda: httpx.Response(200, content=b'{"registered_models": [' + b" " * 5000 + b"]}"), id="sized"),
        pytest.param(lambda: httpx.Response(200, content=endless(b" " * 1024)), id="endless"),
        pytest.param(lambda: httpx.Response(500, content=endless(b"x" * 1024)), id="endless-error"),
    ],
)
def test_an_answer_past_its_size_cap_is_refused_not_read(body: Callable[[], httpx.Response]) -> None:
    with (
        source(lambda _: body(), limits=SourceLimits(max_answer_bytes=4096)) as reader,
        pytest.raises(MlflowAnswerTooLarge, match="cap of 4096"),
    ):
        reader.registered_models()


def test_an_answer_within_its_size_cap_is_read() -> None:
    answer = httpx.Response(200, json={"registered_models": [{"name": "a"}]})
    with source(lambda _: answer, limits=SourceLimits(max_answer_bytes=4096)) as reader:
        assert [m.name for m in reader.registered_models()] == ["a"]


@pytest.mark.parametrize(("name", "query"), [("plain", "name='plain'"), ("it's", 'name="it\'s"'), ("both'\"", None)])
def test_a_models_name_is_quoted_as_mlflows_filter_parser_allows(name: str, query: str | None) -> None:
    assert name_filter(name) == query


def test_only_an_http_tracking_uri_is_taken() -> None:
    with pytest.raises(ValueError, match="http"):
        MlflowSource("databricks://profile")
