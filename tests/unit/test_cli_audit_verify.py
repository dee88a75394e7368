"""``registry audit verify`` says so when legacy entries' contents went unchecked (issue 22 review, finding 4)."""

import pytest

from audit.chain import Verdict
from registry_cli.admin import unchecked_warning

pytestmark = pytest.mark.unit


class TestUncheckedLegacyEntries:
    def test_an_ok_verdict_over_unchecked_legacy_entries_is_warned_of_with_their_count(self) -> None:
        warning = unchecked_warning(Verdict(True, 10, 2, legacy_unchecked=4))
        assert warning is not None and "4 legacy audit entries" in warning and "NOT checked" in warning
        assert "--chain-key" in warning and "--strict" in warning

    def test_a_verdict_that_checked_everything_has_no_warning(self) -> None:
        assert unchecked_warning(Verdict(True, 10, 2)) is None
