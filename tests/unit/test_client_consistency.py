"""Read-your-writes in the client: a write's consistency token is kept per model and sent on its reads."""

import httpx
import pytest

from registry_client import WaitTimedOut
from registry_client.consistency import ConsistencyTokens, consistent, model_of_route
from registry_contract.ids import model_id
from tests.client_fakes import Recorder, async_client, problem, sync_client, version_json

pytestmark = pytest.mark.unit
HEADER = "X-Registry-Consistency"
CARD = model_id("fraud", "card")
OTHER = model_id("fraud", "other")
URLS = {"registration_url": "http://registration.test", "query_url": "http://query.test"}


def token(model: str, revision: int, owner: str = "r") -> str:
    return f"{owner}.{model}.{revision}"


def written(header: str | None, **fields: str) -> httpx.Response:
    headers = {HEADER: header} if header is not None else {}
    return httpx.Response(201, json=version_json(**fields), headers=headers)


def registry(*tokens: str | None) -> Recorder:
    """Registration answers each write with the next token; the query service answers reads."""
    answers = iter(tokens)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "registration.test":
            name = request.url.path.split("/")[4]
            return written(next(answers), name=name)
        return httpx.Response(200, json=version_json())

    return Recorder(answer)


def sent(request: httpx.Request) -> list[str]:
    value = request.headers.get(HEADER)
    return value.split(",") if value else []


class TestTheTokenOfAWriteIsSentOnReadsOfItsModel:
    def test_every_read_of_the_model_carries_the_token_of_the_last_write(self) -> None:
        fake = registry(token(CARD, 10), token(CARD, 12))
        with sync_client(fake, **URLS) as client:
            client.register_version("fraud", "card", "1.0.0", framework="onnx", artifact_uri="s3://b/k")
            client.update_version("fraud", "card", "1.0.0", description="better")
            client.get_version("fraud", "card", "@champion")
            client.get_model_by_id(CARD)
        writes, reads = fake.requests[:2], fake.requests[2:]
        assert all(HEADER not in request.headers for request in writes)
        assert [sent(request) for request in reads] == [[token(CARD, 12)]] * 2
        assert client.last_consistency_token == token(CARD, 12)
        assert client.consistency_token("fraud", "card") == token(CARD, 12)

    @pytest.mark.parametrize(
        "route",
        [
            "/v1/models/fraud/card",
            "/v1/models/fraud/card/versions",
            "/v1/models/fraud/card/versions/latest",
            "/v1/models/fraud/card/versions/@champion",
            "/v1/models/fraud/card/history",
            "/v1/models/fraud/card/aliases",
            "/v1/models/fraud/card/versions/1.0.0/deployments",
            "/v1/models/fraud/card/versions/1.0.0/lineage",
            "/v1/assistant/models/fraud/card/card",
            f"/v1/models/id/{CARD}",
        ],
    )
    def test_each_route_of_a_model_is_a_read_of_that_model(self, route: str) -> None:
        assert model_of_route(route) == CARD

    def test_a_read_of_another_model_waits_for_nothing_of_this_one(self) -> None:
        fake = registry(token(CARD, 10))
        with sync_client(fake, **URLS) as client:
            client.register_version("fraud", "card", "1.0.0", framework="onnx", artifact_uri="s3://b/k")
            client.get_model("fraud", "other")
        assert HEADER not in fake.requests[1].headers

    def test_the_tracker_s_token_and_registration_s_are_both_sent(self) -> None:
        tokens = ConsistencyTokens()
        tokens.remember(token(CARD, 10))
        tokens.remember(token(CARD, 7, owner="d"))
        assert tokens.header_for("/v1/models/fraud/card/versions/1.0.0/deployments") == (
            f"{token(CARD, 10)},{token(CARD, 7, owner='d')}"
        )

    def test_lists_and_searches_carry_the_most_recent_writes_at_most_eight(self) -> None:
        tokens = ConsistencyTokens()
        models = [model_id("fraud", f"m{i}") for i in range(10)]
        for revision, model in enumerate(models):
            tokens.remember(token(model, revision))
        header = tokens.header_for("/v1/models") or ""
        assert header.split(",") == [token(models[i], i) for i in range(9, 1, -1)]
        assert tokens.header_for("/v1/assistant/search") == header

    async def test_the_async_client_sends_them_too(self) -> None:
        fake = registry(token(CARD, 10))
        async with async_client(fake, **URLS) as client:
            await client.register_version("fraud", "card", "1.0.0", framework="onnx", artifact_uri="s3://b/k")
            await client.get_model("fraud", "card")
        assert sent(fake.requests[1]) == [token(CARD, 10)]

    def test_no_token_goes_to_registration_or_audit(self) -> None:
        fake = registry(token(CARD, 10), token(CARD, 11))
        with sync_client(fake, **URLS) as client:
            client.register_version("fraud", "card", "1.0.0", framework="onnx", artifact_uri="s3://b/k")
            client.register_version("fraud", "card", "1.1.0", framework="onnx", artifact_uri="s3://b/k")
        assert HEADER not in fake.requests[1].headers


class TestTheTokensAreBounded:
    def test_the_newest_revision_per_owner_and_model_is_kept(self) -> None:
        tokens = ConsistencyTokens()
        tokens.remember(token(CARD, 12))
        tokens.remember(token(CARD, 10))  # an answer that came late changes nothing
        assert tokens.of_model(CARD) == [token(CARD, 12)]

    def test_past_its_capacity_the_least_recently_written_model_is_forgotten(self) -> None:
        tokens = ConsistencyTokens(capacity=2)
        tokens.remember(token(CARD, 1))
        tokens.remember(token(OTHER, 2))
        tokens.remember(token(CARD, 3))  # written again: now the most recent
        tokens.remember(token(model_id("fraud", "third"), 4))
        assert len(tokens) == 2 and tokens.of_model(OTHER) == [] and tokens.of_model(CARD) == [token(CARD, 3)]

    @pytest.mark.parametrize(
        "header",
        [
            "garbage",
            f"x.{CARD}.1",
            f"r.{CARD}.-1",
            f"r.{CARD}.1.2",
            "r.mdl_short.1",
            f"r.{CARD}." + "9" * 21,
            f"r.{CARD}.1\r\nSet-Cookie: a=b",
        ],
    )
    def test_a_malformed_header_is_ignored(self, header: str) -> None:
        fake = registry(header)
        with sync_client(fake, **URLS) as client:
            client.register_version("fraud", "card", "1.0.0", framework="onnx", artifact_uri="s3://b/k")
            client.get_model("fraud", "card")
        assert HEADER not in fake.requests[1].headers and client.last_consistency_token is None

    def test_only_the_well_formed_tokens_of_a_header_are_kept(self) -> None:
        tokens = ConsistencyTokens()
        assert tokens.remember(f"junk, {token(CARD, 5)} ,r.{OTHER}.x") == [token(CARD, 5)]


class TestTokensHandedOver:
    def test_a_consistent_block_sends_them_on_every_query_read(self) -> None:
        fake = Recorder(httpx.Response(200, json=version_json()))
        with sync_client(fake, **URLS) as client:
            with consistent(f"{token(OTHER, 5)},{token(CARD, 3, owner='d')}"):
                client.get_model("fraud", "card")
            client.get_model("fraud", "card")
        assert sent(fake.requests[0]) == [token(OTHER, 5), token(CARD, 3, owner="d")]
        assert HEADER not in fake.requests[1].headers

    def test_a_malformed_token_is_refused_at_once(self) -> None:
        with pytest.raises(ValueError, match="not a consistency token"), consistent("r.mdl_x.1"):
            pass

    def test_registry_consistency_in_the_environment_is_sent_on_every_read(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("REGISTRY_CONSISTENCY", token(CARD, 9))
        fake = Recorder(httpx.Response(200, json={"items": [], "next_cursor": None}))
        with sync_client(fake, **URLS) as client:
            client.models_page()
        assert sent(fake.requests[0]) == [token(CARD, 9)]


class TestWaitUsesTheToken:
    @staticmethod
    def registry(*reads: httpx.Response) -> Recorder:
        answers = list(reads)

        def answer(request: httpx.Request) -> httpx.Response:
            if request.url.host == "registration.test":
                return written(token(CARD, 42), version="1.4.0")
            return answers.pop(0) if len(answers) > 1 else answers[0]

        return Recorder(answer)

    def test_one_read_with_the_token_is_enough(self) -> None:
        fake = self.registry(httpx.Response(200, json=version_json(version="1.4.0")))
        with sync_client(fake, **URLS) as client:
            client.register_version("fraud", "card", "1.4.0", framework="onnx", artifact_uri="s3://b/k", wait=True)
        assert len(fake.requests) == 2 and sent(fake.requests[1]) == [token(CARD, 42)]

    def test_a_503_is_read_again_after_its_retry_after(self) -> None:
        behind = problem(503, "unavailable", "the read model has not yet reached this write")
        behind.headers["Retry-After"] = "1"
        fake = self.registry(behind, httpx.Response(200, json=version_json(version="1.4.0")))
        sleeps: list[float] = []
        with sync_client(fake, sleeps, **URLS) as client:
            client.register_version("fraud", "card", "1.4.0", framework="onnx", artifact_uri="s3://b/k", wait=True)
        assert len(fake.requests) == 3 and sleeps and sleeps[0] >= 1
        assert sent(fake.requests[2]) == [token(CARD, 42)]

    def test_a_read_model_that_never_catches_up_times_out_saying_it_was_registered(self) -> None:
        behind = problem(503, "unavailable", "the read model has not yet reached this write")
        behind.headers["Retry-After"] = "1"
        fake = self.registry(behind)
        with sync_client(fake, **URLS) as client, pytest.raises(WaitTimedOut) as raised:
            client.register_version(
                "fraud", "card", "1.4.0", framework="onnx", artifact_uri="s3://b/k", wait=True, wait_timeout=0.5
            )
        assert len(fake.requests) == 2 and getattr(raised.value.result, "version", None) == "1.4.0"

    def test_another_refusal_of_the_read_is_raised(self) -> None:
        fake = self.registry(problem(400, "invalid", "malformed consistency token"))
        with sync_client(fake, **URLS) as client, pytest.raises(Exception, match="malformed consistency token"):
            client.register_version("fraud", "card", "1.4.0", framework="onnx", artifact_uri="s3://b/k", wait=True)
