"""The client turns answers into the contract's models, refusals into typed errors, and lists into iterators."""

import json
from typing import Any

import httpx
import pytest

from registry_client import (
    BadSignature,
    Conflict,
    DuplicateVersion,
    Forbidden,
    Invalid,
    NotApproved,
    NotFound,
    RateLimited,
    RegistryClient,
    RegistryError,
    Unauthenticated,
    Unsigned,
    WaitTimedOut,
    correlated,
)
from registry_contract.assistant_views import DocumentPublic, StreamEnd
from registry_contract.deployment_views import ReportAccepted, ReportOutcome
from registry_contract.views import ModelVersionPublic
from tests.client_fakes import KEY, Recorder, async_client, model_json, problem, sync_client, version_json

pytestmark = pytest.mark.unit


class TestProblemsBecomeTypedErrors:
    @pytest.mark.parametrize(
        ("status", "reason", "error"),
        [
            (401, "unauthenticated", Unauthenticated),
            (403, "forbidden", Forbidden),
            (404, "not_found", NotFound),
            (409, "conflict", Conflict),
            (409, "duplicate_version", DuplicateVersion),
            (409, "not_approved", NotApproved),
            (409, "unsigned", Unsigned),
            (422, "invalid", Invalid),
            (422, "bad_signature", BadSignature),
            (429, "rate_limited", RateLimited),
            (413, "too_large", RegistryError),
        ],
    )
    def test_each_problem_type_has_its_error(self, status: int, reason: str, error: type[RegistryError]) -> None:
        answer = problem(status, reason, "why", correlation_id="c-1")
        with sync_client(Recorder(answer), retry=None) as client, pytest.raises(error) as raised:
            client.get_model("fraud", "card")
        assert type(raised.value) is error
        assert (raised.value.status, raised.value.reason, raised.value.detail) == (status, reason, "why")
        assert raised.value.correlation_id == "c-1"

    def test_a_duplicate_and_a_refused_deployment_are_conflicts(self) -> None:
        assert issubclass(DuplicateVersion, Conflict) and issubclass(NotApproved, Conflict)

    def test_invalid_carries_the_field_errors(self) -> None:
        errors = [{"loc": ["body", "framework"], "msg": "Input should be 'xgboost', …", "type": "literal_error"}]
        with sync_client(Recorder(problem(422, "invalid", errors=errors))) as client, pytest.raises(Invalid) as raised:
            client.register_version("fraud", "card", "1.0.0", framework="xgb", artifact_uri="s3://b/k")
        assert raised.value.errors == errors

    def test_an_answer_that_is_not_problem_json_still_becomes_an_error(self) -> None:
        answer = httpx.Response(502, text="Bad Gateway", headers={"X-Correlation-ID": "c-2"})
        with sync_client(Recorder(answer)) as client, pytest.raises(RegistryError) as raised:
            client.get_model("fraud", "card")
        assert (raised.value.status, raised.value.detail, raised.value.correlation_id) == (502, "Bad Gateway", "c-2")


class TestPagination:
    @staticmethod
    def pages(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        following = {None: "p2", "p2": "p3", "p3": None}[cursor]
        items = [model_json(name=f"{cursor or 'p1'}-{n}") for n in range(2)]
        return httpx.Response(200, json={"items": items, "next_cursor": following})

    def test_an_iterator_follows_next_cursor_to_the_last_page(self) -> None:
        fake = Recorder(self.pages)
        with sync_client(fake) as client:
            names = [model.name for model in client.models(team="fraud", tags={"owner": "alice"}, page_size=2)]
        assert names == ["p1-0", "p1-1", "p2-0", "p2-1", "p3-0", "p3-1"]
        assert [request.url.params.get("cursor") for request in fake.requests] == [None, "p2", "p3"]
        assert all(request.url.params.get_list("tag") == ["owner:alice"] for request in fake.requests)

    def test_an_iterator_reads_no_page_before_it_is_needed(self) -> None:
        fake = Recorder(self.pages)
        with sync_client(fake) as client:
            models = client.models()
            assert fake.requests == []
            next(models)
            assert len(fake.requests) == 1

    async def test_the_async_client_iterates_asynchronously(self) -> None:
        fake = Recorder(self.pages)
        async with async_client(fake) as client:
            names = [version.name async for version in client.models()]
        assert len(names) == 6 and len(fake.requests) == 3

    def test_a_page_keeps_its_cursor_for_later(self) -> None:
        with sync_client(Recorder(self.pages)) as client:
            page = client.models_page(limit=2)
        assert page.next_cursor == "p2" and len(page.items) == 2

    def test_version_filters_are_sent_as_the_api_names_them(self) -> None:
        fake = Recorder(httpx.Response(200, json={"items": [], "next_cursor": None}))
        with sync_client(fake) as client:
            list(client.versions("fraud", "card", version_range=">=1.2.0", include_prerelease=True, lifecycle="active"))
        params = fake.requests[0].url.params
        assert (params["range"], params["include_prerelease"], params["lifecycle"]) == (">=1.2.0", "true", "active")

    def test_the_document_feed_is_read_until_it_is_caught_up(self) -> None:
        def feed(request: httpx.Request) -> httpx.Response:
            cursor = request.url.params.get("cursor")
            doc: dict[str, Any] = {"id": f"mdl_{cursor}", "text": "", "metadata": {}, "updated_at": None}
            doc["deleted"] = False
            return httpx.Response(200, json={"items": [doc], "next_cursor": f"{cursor}+", "has_more": cursor != "a+"})

        with sync_client(Recorder(feed)) as client:
            assert [d.id for d in client.documents(cursor="a")] == ["mdl_a", "mdl_a+"]

    def test_the_ndjson_stream_ends_with_where_to_resume(self) -> None:
        doc: dict[str, Any] = {"id": "mdl_1", "text": "# card", "metadata": {}, "updated_at": None, "deleted": False}
        lines = json.dumps(doc) + "\n\n" + json.dumps({"next_cursor": "c9"}) + "\n"
        fake = Recorder(httpx.Response(200, text=lines, headers={"content-type": "application/x-ndjson"}))
        with sync_client(fake) as client:
            items = list(client.stream_documents(cursor="c1"))
        assert isinstance(items[0], DocumentPublic) and items[-1] == StreamEnd(next_cursor="c9")
        assert fake.requests[0].headers["Accept"] == "application/x-ndjson"

    def test_a_stream_cut_short_is_an_error(self) -> None:
        doc: dict[str, Any] = {"id": "mdl_1", "text": "", "metadata": {}, "updated_at": None, "deleted": False}
        fake = Recorder(httpx.Response(200, text=json.dumps(doc) + "\n"))
        with sync_client(fake) as client, pytest.raises(RegistryError, match="ended before its last line"):
            list(client.stream_documents())


class TestRegisterAndWait:
    @staticmethod
    def registry(readable_after: int) -> Recorder:
        reads = iter(range(100))

        def answer(request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                assert request.url.host == "registration.test"
                return httpx.Response(201, json=version_json(version="1.4.0"))
            assert request.url.host == "query.test"
            if next(reads) < readable_after:
                return problem(404, "not_found")
            return httpx.Response(200, json=version_json(version="1.4.0", aliases=["champion"]))

        return Recorder(answer)

    def test_wait_returns_once_the_query_service_reads_the_version(self) -> None:
        fake = self.registry(readable_after=2)
        urls = {"registration_url": "http://registration.test", "query_url": "http://query.test"}
        with sync_client(fake, **urls) as client:
            version = client.register_version(
                "fraud", "card", "1.4.0", framework="onnx", artifact_uri="s3://b/k", wait=True
            )
        assert version.aliases == ["champion"]  # the query service's answer
        assert [r.url.path for r in fake.requests[1:]] == ["/v1/models/fraud/card/versions/1.4.0"] * 3

    def test_a_version_never_readable_times_out_saying_it_was_registered(self) -> None:
        urls = {"registration_url": "http://registration.test", "query_url": "http://query.test"}
        fake = self.registry(readable_after=10**6)
        with sync_client(fake, **urls) as client, pytest.raises(WaitTimedOut) as raised:
            client.register_version(
                "fraud", "card", "1.4.0", framework="onnx", artifact_uri="s3://b/k", wait=True, wait_timeout=0
            )
        registered = raised.value.result
        assert isinstance(registered, ModelVersionPublic) and registered.version == "1.4.0"


class TestRequests:
    def test_a_gateway_serves_every_service_and_a_service_url_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("REGISTRY_QUERY_URL", raising=False)
        client = RegistryClient("k", gateway_url="https://registry.example/", audit_url="http://audit:8083")
        assert client.config.urls == {
            "registration": "https://registry.example",
            "query": "https://registry.example",
            "deploy-tracker": "https://registry.example",
            "audit": "http://audit:8083",
        }
        client.close()

    def test_defaults_are_the_local_ports_and_the_key_comes_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name in ("REGISTRY_GATEWAY_URL", "REGISTRY_QUERY_URL", "REGISTRY_REGISTRATION_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("REGISTRY_API_KEY", KEY)
        with RegistryClient() as client:
            assert client.config.api_key == KEY
            assert (client.config.urls["query"], client.config.urls["registration"]) == (
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8081",
            )

    def test_paths_escape_what_is_not_a_segment_and_keep_aliases(self) -> None:
        fake = Recorder(httpx.Response(200, json=version_json()))
        with sync_client(fake) as client:
            client.get_version("fraud", "card", "@champion")
            client.get_version("fraud", "card", "1.0.0+build/7")
        assert [r.url.raw_path for r in fake.requests] == [
            b"/v1/models/fraud/card/versions/@champion",
            b"/v1/models/fraud/card/versions/1.0.0%2Bbuild%2F7",
        ]
        assert fake.requests[0].headers["Authorization"] == f"Bearer {KEY}"

    def test_a_deployment_report_may_wait_for_the_outcome(self) -> None:
        outcome = {
            "event_id": "e1",
            "outcome": "applied",
            "environment": "prod",
            "reported_status": "deployed",
            "status": "deployed",
            "previous_status": None,
        }
        fake = Recorder(httpx.Response(200, json=outcome), httpx.Response(202, json={"event_id": "e2"}))
        with sync_client(fake) as client:
            waited = client.report_deployment("fraud", "card", "1.0.0", "prod", "deployed", wait=30)
            accepted = client.report_deployment("fraud", "card", "1.0.0", "prod", "deployed")
        assert isinstance(waited, ReportOutcome) and isinstance(accepted, ReportAccepted)
        assert fake.requests[0].headers["Prefer"] == "wait=30" and "Prefer" not in fake.requests[1].headers
        sent: dict[str, Any] = json.loads(fake.requests[1].content)
        assert sent["occurred_at"] and sent["environment"] == "prod" and "target" not in sent


class TestCorrelation:
    def test_one_operation_sends_one_correlation_id_on_every_try_and_reports_it(self) -> None:
        def echo(request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                200, json=model_json(), headers={"X-Correlation-ID": request.headers["X-Correlation-ID"]}
            )

        fake = Recorder(problem(503, "not_ready"), echo)
        with sync_client(fake) as client:
            client.get_model("fraud", "card")
            first, retried = (request.headers["X-Correlation-ID"] for request in fake.requests)
            assert first == retried == client.last_correlation_id
            client.get_model("fraud", "card")
            assert client.last_correlation_id != first

    def test_the_id_may_be_set_per_client_and_per_block(self) -> None:
        fake = Recorder(httpx.Response(200, json=model_json()))
        with sync_client(fake, correlation_id="client-wide") as client:
            client.get_model("fraud", "card")
            with correlated("build-8812"):
                client.get_model("fraud", "card")
        assert [r.headers["X-Correlation-ID"] for r in fake.requests] == ["client-wide", "build-8812"]
