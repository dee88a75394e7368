from datetime import UTC, datetime, timedelta

import pytest

from deploy_tracker.transitions import decide, overall

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)


def env(status: str, at: datetime = T0) -> dict[str, object]:
    return {"status": status, "occurred_at": at}


@pytest.mark.parametrize(
    ("current", "status"),
    [
        (None, "deploying"),
        ("deploying", "deployed"),
        ("deploying", "failed"),
        ("deployed", "rolled_back"),
        ("deployed", "retired"),
        ("deployed", "deploying"),
        ("failed", "deploying"),
    ],
)
def test_documented_transitions_apply(current: str | None, status: str) -> None:
    assert decide(env(current) if current else None, status, T0 + timedelta(seconds=1)) == "applied"


@pytest.mark.parametrize(
    ("current", "status"),
    [
        (None, "deployed"),
        ("deploying", "deploying"),
        ("failed", "deployed"),
        ("rolled_back", "deploying"),
        ("retired", "deployed"),
        ("deployed", "failed"),
    ],
)
def test_other_transitions_are_illegal(current: str | None, status: str) -> None:
    assert decide(env(current) if current else None, status, T0 + timedelta(seconds=1)) == "illegal_transition"


def test_an_older_report_is_out_of_order_whatever_its_status() -> None:
    assert decide(env("deployed"), "rolled_back", T0 - timedelta(seconds=1)) == "out_of_order"


def test_overall_status_is_the_most_advanced_environment() -> None:
    assert overall({}) == "registered"
    assert overall({"prod": env("failed"), "staging": env("deployed")}) == "deployed"
    assert overall({"prod": env("rolled_back"), "staging": env("deploying")}) == "deploying"
