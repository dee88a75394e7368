"""A first page without conditions is still a range on its sort key (the stand-in scans an empty filter)."""

import pytest

from query.api.pagination import SortSpec, paged
from query.api.reads import MODEL_SORTS

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("sort", ["-created_at", "name", "-updated_at"])
def test_an_unfiltered_first_page_is_a_range_on_the_sort_key(sort: str) -> None:
    spec = SortSpec.parse(sort, MODEL_SORTS)
    assert paged(spec, {}, None, "scope") == {spec.key_field: {"$gt": ""}}


def test_a_filtered_first_page_is_left_alone() -> None:
    spec = SortSpec.parse("-created_at", MODEL_SORTS)
    assert paged(spec, {"team": "fraud"}, None, "scope") == {"team": "fraud"}


def test_a_sort_on_a_number_gets_no_string_range() -> None:
    assert paged(SortSpec("position", "position", descending=False), {}, None, "scope") == {}
