"""Every test is of a kind (unit, integration, e2e, deploy): a test of none stops the run, whatever ``-m`` selects."""

from typing import cast

import pytest

from tests.conftest import unmarked_modules

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.unit

MARKERS = """
[pytest]
markers =
    unit: u
    integration: i
    e2e: e
    deploy: d
    slow: s
asyncio_default_fixture_loop_scope = function
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A suite run with the project's own hook, one module marked by module and one by parameter."""
    pytester.makeini(MARKERS)
    pytester.makeconftest("from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n")
    pytester.makepyfile(
        test_marked="import pytest\npytestmark = pytest.mark.unit\ndef test_a(): pass\n",
        test_by_parameter=(
            "import pytest\n"
            "@pytest.mark.parametrize('x', [pytest.param(1, marks=pytest.mark.unit),"
            " pytest.param(2, marks=pytest.mark.integration)])\n"
            "def test_b(x): pass\n"
        ),
    )
    return pytester


def test_a_suite_whose_tests_all_have_a_kind_runs(suite: pytest.Pytester) -> None:
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)


@pytest.mark.parametrize("selection", [[], ["-m", "unit"], ["-m", "integration"]])
def test_a_module_of_no_kind_stops_the_run_and_is_named(suite: pytest.Pytester, selection: list[str]) -> None:
    suite.makepyfile(test_forgotten="import pytest\n@pytest.mark.slow\ndef test_c(): pass\n")
    result = suite.runpytest("-p", "no:cacheprovider", *selection)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*none of the markers unit, integration, e2e, deploy*test_forgotten.py*"])
    assert "test_marked.py" not in result.stderr.str()


class Item:
    """Just enough of a collected test for the check: its id and its markers."""

    def __init__(self, nodeid: str, *kinds: str) -> None:
        self.nodeid, self.kinds = nodeid, kinds

    def get_closest_marker(self, name: str) -> object:
        return name if name in self.kinds else None


def test_the_unmarked_modules_are_named_once_each_in_order() -> None:
    items = [
        Item("tests/unit/test_b.py::test_1"),
        Item("tests/unit/test_a.py::TestX::test_2", "slow"),
        Item("tests/unit/test_b.py::test_3"),
        Item("tests/unit/test_c.py::test_4", "unit"),
        Item("tests/e2e/test_d.py::test_5[x]", "e2e", "slow"),
    ]
    assert unmarked_modules(cast("list[pytest.Item]", items)) == ["tests/unit/test_a.py", "tests/unit/test_b.py"]
