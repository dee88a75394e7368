"""The client retries what is safe to retry, waits as the server asks, and never registers twice."""

import httpx
import pytest

from registry_client import NO_RETRY, RateLimited, RegistryError, RetryPolicy
from registry_client.retry import retry_after
from registry_client.steps import Call, Send, Sleep, as_model, exchange
from registry_contract.views import ModelPublic
from tests.client_fakes import REGISTER, Recorder, async_client, model_json, problem, sync_client, version_json

pytestmark = pytest.mark.unit


def rate_limited(seconds: str) -> httpx.Response:
    response = problem(429, "rate_limited", "slow down")
    response.headers["Retry-After"] = seconds
    return response


class TestWhatIsRetried:
    def test_a_429_is_retried_after_its_retry_after(self) -> None:
        sleeps: list[float] = []
        fake = Recorder(rate_limited("2"), httpx.Response(200, json=model_json()))
        with sync_client(fake, sleeps) as client:
            model = client.get_model("fraud", "card")
        assert model.name == "card" and len(fake.requests) == 2
        assert len(sleeps) == 1 and 2 <= sleeps[0] <= 2.01  # at least Retry-After, plus a jitter of the backoff

    def test_a_503_is_retried_with_a_growing_pause(self) -> None:
        sleeps: list[float] = []
        policy = RetryPolicy(attempts=4, backoff=1.0, max_delay=100)
        fake = Recorder(problem(503, "not_ready"), problem(503, "not_ready"), httpx.Response(200, json=model_json()))
        with sync_client(fake, sleeps, retry=policy) as client:
            client.get_model("fraud", "card")
        assert len(fake.requests) == 3
        assert 0 <= sleeps[0] <= 1 and 0 <= sleeps[1] <= 2  # full jitter under a doubling ceiling

    def test_a_connection_failure_of_a_read_is_retried(self) -> None:
        fake = Recorder(httpx.ReadError("reset"), httpx.ConnectError("refused"), httpx.Response(200, json=model_json()))
        with sync_client(fake) as client:
            assert client.get_model("fraud", "card").team == "fraud"
        assert len(fake.requests) == 3

    def test_a_post_without_an_idempotency_key_is_resent_only_if_it_never_left(self) -> None:
        created = {"key_id": "k1", "team": "fraud", "created_at": "2026-11-26T10:00:00Z", "token": "mr_k1_x"}
        unsent = Recorder(httpx.ConnectError("refused"), httpx.Response(201, json=created))
        with sync_client(unsent) as client:
            assert client.create_api_key("fraud", "ci", ["models:read"]).token == "mr_k1_x"
        maybe_sent = Recorder(httpx.ReadError("reset"), httpx.Response(201, json=created))
        with sync_client(maybe_sent) as client, pytest.raises(httpx.ReadError):
            client.create_api_key("fraud", "ci", ["models:read"])
        assert len(unsent.requests) == 2 and len(maybe_sent.requests) == 1

    def test_other_refusals_are_not_retried(self) -> None:
        fake = Recorder(problem(404, "not_found"))
        with sync_client(fake) as client, pytest.raises(RegistryError):
            client.get_model("fraud", "card")
        assert len(fake.requests) == 1


class TestBoundedAttempts:
    def test_the_last_429_is_raised_with_its_retry_after(self) -> None:
        fake = Recorder(rate_limited("1"))
        policy = RetryPolicy(attempts=3, backoff=0.01)
        with sync_client(fake, retry=policy) as client, pytest.raises(RateLimited) as raised:
            client.get_model("fraud", "card")
        assert len(fake.requests) == 3 and raised.value.retry_after == 1 and raised.value.status == 429

    def test_a_retry_after_longer_than_the_longest_pause_is_not_waited_for(self) -> None:
        sleeps: list[float] = []
        fake = Recorder(rate_limited("120"))
        with sync_client(fake, sleeps, retry=RetryPolicy(max_delay=10)) as client, pytest.raises(RateLimited):
            client.get_model("fraud", "card")
        assert len(fake.requests) == 1 and sleeps == []

    def test_no_retry_tries_once(self) -> None:
        fake = Recorder(problem(503, "not_ready"))
        with sync_client(fake, retry=NO_RETRY) as client, pytest.raises(RegistryError) as raised:
            client.get_model("fraud", "card")
        assert len(fake.requests) == 1 and raised.value.status == 503

    def test_connection_failures_end_as_the_transport_error(self) -> None:
        fake = Recorder(httpx.ConnectError("refused"))
        policy = RetryPolicy(attempts=2, backoff=0.01)
        with sync_client(fake, retry=policy) as client, pytest.raises(httpx.ConnectError):
            client.get_model("fraud", "card")
        assert len(fake.requests) == 2


class TestIdempotencyKeys:
    def test_every_try_of_one_registration_carries_the_same_key(self) -> None:
        fake = Recorder(
            httpx.ReadError("reset after the request was sent"),
            problem(503, "not_ready"),
            httpx.Response(201, json=version_json()),
        )
        with sync_client(fake) as client:
            version = client.register_version("fraud", "card", "1.0.0", **REGISTER)
        keys = {request.headers["Idempotency-Key"] for request in fake.requests}
        assert version.version == "1.0.0" and len(fake.requests) == 3 and len(keys) == 1

    def test_each_registration_gets_its_own_key_unless_one_is_given(self) -> None:
        fake = Recorder(httpx.Response(201, json=version_json()))
        with sync_client(fake) as client:
            client.register_version("fraud", "card", "1.0.0", **REGISTER)
            client.register_version("fraud", "card", "1.0.0", **REGISTER)
            client.register_version("fraud", "card", "1.0.0", **REGISTER, idempotency_key="build-8812")
        first, second, given = (request.headers["Idempotency-Key"] for request in fake.requests)
        assert first != second and given == "build-8812"

    @pytest.mark.parametrize(
        ("method", "route"),
        [
            ("update_version", "PATCH /v1/models/fraud/card/versions/1.0.0"),
            ("set_lifecycle", "POST /v1/models/fraud/card/versions/1.0.0/lifecycle"),
            ("set_approval", "PUT /v1/models/fraud/card/versions/1.0.0/approval"),
        ],
    )
    def test_the_other_routes_that_take_a_key_get_one(self, method: str, route: str) -> None:
        fake = Recorder(httpx.Response(200, json=version_json()))
        with sync_client(fake) as client:
            args = {"update_version": (), "set_lifecycle": ("deprecated",), "set_approval": ("approved",)}[method]
            getattr(client, method)("fraud", "card", "1.0.0", *args)
        [request] = fake.requests
        assert f"{request.method} {request.url.path}" == route and request.headers["Idempotency-Key"]

    async def test_the_async_client_retries_a_registration_with_the_same_key(self) -> None:
        sleeps: list[float] = []
        fake = Recorder(rate_limited("0"), httpx.ReadError("reset"), httpx.Response(201, json=version_json()))
        async with async_client(fake, sleeps) as client:
            version = await client.register_version("fraud", "card", "1.0.0", **REGISTER)
        assert version.version == "1.0.0" and len(sleeps) == 2
        assert len({request.headers["Idempotency-Key"] for request in fake.requests}) == 1


class TestTheStepsWithoutADriver:
    """The retry logic is a generator of steps: drivable by hand, with no socket and no clock."""

    def test_exchange_asks_to_send_then_to_sleep_then_to_send_again(self) -> None:
        call = Call("query", "GET", "/v1/models/fraud/card", as_model(ModelPublic))
        steps = exchange(RetryPolicy(attempts=2, backoff=0.5), call)
        assert next(steps) == Send(call)
        pause = steps.send(rate_limited("3"))
        assert isinstance(pause, Sleep) and 3 <= pause.seconds <= 3.5
        assert steps.send(None) == Send(call)
        with pytest.raises(StopIteration) as done:
            steps.send(httpx.Response(200, json=model_json()))
        assert done.value.value == ModelPublic.model_validate(model_json())

    def test_retry_after_may_be_an_http_date(self) -> None:
        response = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
        assert retry_after(response) == 0  # in the past: no wait
        assert retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None

    def test_pauses_never_exceed_the_longest(self) -> None:
        policy = RetryPolicy(attempts=20, backoff=1, max_delay=4)
        assert all(0 <= (policy.pause(attempt) or 0) <= 4 for attempt in range(1, 19))
        assert policy.pause(20) is None
