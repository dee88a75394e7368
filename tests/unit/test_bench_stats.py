"""The benchmarks' one percentile: a percent from 0 to 100, answered with one of the samples."""

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def _load_percentile() -> Callable[[Sequence[float], float], float]:
    # The bench scripts run with bench/ on sys.path and import ``stats`` as a top-level module;
    # loading it by path keeps mypy from seeing the one file under two module names.
    path = Path(__file__).parents[2] / "bench" / "stats.py"
    spec = importlib.util.spec_from_file_location("bench_stats", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: Callable[[Sequence[float], float], float] = module.percentile
    return function


percentile = _load_percentile()


def test_the_ends_are_the_smallest_and_the_largest_sample() -> None:
    samples = [3.0, 1.0, 2.0]
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 3.0


def test_the_median_of_an_odd_count_is_the_middle_sample() -> None:
    assert percentile([5.0, 1.0, 4.0, 2.0, 3.0], 50) == 3.0


def test_a_high_percentile_is_the_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 90) == 90.0


def test_one_sample_is_every_percentile() -> None:
    assert percentile([7.0], 50) == percentile([7.0], 99) == 7.0


@pytest.mark.parametrize("percent", [-1, 101])
def test_a_percent_outside_0_to_100_is_refused(percent: float) -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.100"):
        percentile([1.0, 2.0], percent)


def test_no_samples_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
