import pytest

from registry_contract.auth import Principal, generate_api_key, hash_secret, parse_api_key, secret_matches
from shared.chassis.keystore import MongoKeyStore
from shared.chassis.ratelimit import RateLimiter

pytestmark = pytest.mark.unit


class FakeKeys:
    def __init__(self, docs: dict[str, dict[str, object]]) -> None:
        self.docs, self.lookups = docs, 0

    async def find_one(self, query: dict[str, str]) -> dict[str, object] | None:
        self.lookups += 1
        found = self.docs.get(query["_id"])
        return {**found, "_id": query["_id"]} if found else None  # like a database: a fresh document each time


class TestKeyFormat:
    def test_keys_have_the_documented_shape_and_256_bit_secrets(self) -> None:
        key = generate_api_key()
        parsed = parse_api_key(key.token)
        assert parsed is not None and parsed[0] == key.key_id and len(parsed[1]) == 43
        assert key.secret_hash == hash_secret(parsed[1]) and parsed[1] not in key.secret_hash

    @pytest.mark.parametrize("token", ["", "mr_", "mr_short_x", "xx_abcdefgh_" + "a" * 43, "mr_abcdefgh_" + "!" * 43])
    def test_malformed_tokens_do_not_parse(self, token: str) -> None:
        assert parse_api_key(token) is None

    def test_secrets_compare_by_hash(self) -> None:
        assert secret_matches("s3cret", hash_secret("s3cret")) and not secret_matches("other", hash_secret("s3cret"))


class TestKeyStore:
    async def test_unknown_revoked_expired_and_wrong_secret_all_fail_alike(self) -> None:
        good, revoked = generate_api_key(), generate_api_key()
        docs = {
            good.key_id: {"team": "fraud", "scopes": ["models:read"], "secret_hash": good.secret_hash},
            revoked.key_id: {"team": "fraud", "scopes": [], "secret_hash": revoked.secret_hash, "revoked": True},
        }
        store = MongoKeyStore(FakeKeys(docs))  # type: ignore[arg-type]
        principal = await store.authenticate(good.token)
        assert principal == Principal(good.key_id, "fraud", frozenset({"models:read"}))
        wrong_secret = good.token[:-1] + ("a" if good.token[-1] != "a" else "b")
        for token in (None, "garbage", revoked.token, wrong_secret, generate_api_key().token):
            assert await store.authenticate(token) is None

    async def test_a_cached_record_is_trusted_only_for_the_ttl(self) -> None:
        key = generate_api_key()
        keys = FakeKeys({key.key_id: {"team": "fraud", "scopes": [], "secret_hash": key.secret_hash}})
        now = [0.0]
        store = MongoKeyStore(keys, ttl=5, clock=lambda: now[0])  # type: ignore[arg-type]
        assert await store.authenticate(key.token) is not None
        keys.docs[key.key_id]["revoked"] = True
        now[0] = 4.9
        assert await store.authenticate(key.token) is not None and keys.lookups == 1
        now[0] = 5.1
        assert await store.authenticate(key.token) is None and keys.lookups == 2


class TestRateLimiter:
    def test_a_burst_is_allowed_then_refused_until_tokens_refill(self) -> None:
        now = [0.0]
        limiter = RateLimiter(rate=2, burst=3, clock=lambda: now[0])
        assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
        assert limiter.take("k") == pytest.approx(0.5)
        assert limiter.take("other") == 0.0
        now[0] = 0.5
        assert limiter.take("k") == 0.0
