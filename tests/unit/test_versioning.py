import itertools
import random

import pytest
import semver

from registry_contract.versioning import parse_range, precedence_key

pytestmark = pytest.mark.unit

SPEC_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.2.0",
    "1.10.0",
    "2.0.0-0",
    "2.0.0",
    "10.0.0",
]


class TestPrecedenceKey:
    def test_orders_the_semver_spec_examples_like_semver(self) -> None:
        keys = [precedence_key(v) for v in SPEC_ORDER]
        assert keys == sorted(keys)

    def test_agrees_with_semver_compare_on_random_pairs(self) -> None:
        rng = random.Random(7)
        identifiers = ["alpha", "beta", "rc", "0", "1", "2", "11", "a-b", "a", "x9"]

        def make() -> str:
            core = ".".join(str(rng.choice([0, 1, 2, 9, 10, 99, 100])) for _ in range(3))
            if rng.random() < 0.6:
                core += "-" + ".".join(rng.choice(identifiers) for _ in range(rng.randint(1, 3)))
            return core

        versions = [make() for _ in range(300)]
        for a, b in itertools.combinations(versions[:120], 2):
            expected = semver.Version.parse(a).compare(b)
            got = (precedence_key(a) > precedence_key(b)) - (precedence_key(a) < precedence_key(b))
            assert got == expected, (a, b)

    def test_ignores_build_metadata(self) -> None:
        assert precedence_key("1.0.0+build.1") == precedence_key("1.0.0+build.2") == precedence_key("1.0.0")

    def test_ranks_a_release_above_all_its_prereleases(self) -> None:
        assert precedence_key("1.0.0") > precedence_key("1.0.0-zzz.999")

    def test_rejects_what_is_not_semver(self) -> None:
        for bad in ["1.0", "v1.0.0", "01.0.0", "1.0.0-", "latest"]:
            with pytest.raises(ValueError):
                precedence_key(bad)


class TestRanges:
    def test_builds_bounds_from_comparators(self) -> None:
        bounds = parse_range(">=1.2.0,<2.0.0").to_filter()
        assert bounds == {"$gte": precedence_key("1.2.0"), "$lt": precedence_key("2.0.0")}

    def test_a_bare_version_means_equality(self) -> None:
        assert parse_range("1.2.3").to_filter() == {"$eq": precedence_key("1.2.3")}

    @pytest.mark.parametrize("bad", ["", ">=", "~1.2", ">=1.2", ">=1.0.0,>=2.0.0", "1.0.0 2.0.0"])
    def test_rejects_malformed_ranges(self, bad: str) -> None:
        with pytest.raises(ValueError):
            parse_range(bad)
