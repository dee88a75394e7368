from datetime import UTC, datetime, timedelta

import pytest

from deploy_tracker.transitions import approval_status, decide, needs_approval, overall, skips_deploying

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)


def env(status: str, at: datetime = T0) -> dict[str, object]:
    return {"status": status, "occurred_at": at}


@pytest.mark.parametrize(
    ("current", "status"),
    [
        (None, "deploying"),
        (None, "deployed"),  # pipelines that report only the end state
        (None, "failed"),
        ("deploying", "deployed"),
        ("deploying", "failed"),
        ("deployed", "rolled_back"),
        ("deployed", "retired"),
        ("deployed", "deploying"),
        ("failed", "deploying"),
        ("rolled_back", "deploying"),  # redeploy
        ("retired", "deploying"),
    ],
)
def test_documented_transitions_apply(current: str | None, status: str) -> None:
    assert decide(env(current) if current else None, status, T0 + timedelta(seconds=1)) == "applied"


@pytest.mark.parametrize(
    ("current", "status"),
    [
        (None, "rolled_back"),
        (None, "retired"),
        ("deploying", "deploying"),
        ("failed", "deployed"),
        ("rolled_back", "deployed"),
        ("rolled_back", "rolled_back"),
        ("retired", "deployed"),
        ("deployed", "failed"),
    ],
)
def test_other_transitions_are_illegal(current: str | None, status: str) -> None:
    assert decide(env(current) if current else None, status, T0 + timedelta(seconds=1)) == "illegal_transition"


def test_an_older_report_is_out_of_order_whatever_its_status() -> None:
    assert decide(env("deployed"), "rolled_back", T0 - timedelta(seconds=1)) == "out_of_order"


def test_only_a_first_report_of_an_end_state_skips_deploying() -> None:
    assert skips_deploying(None, "deployed") and skips_deploying(None, "failed")
    assert not skips_deploying(None, "deploying")
    assert not skips_deploying("deploying", "deployed")


@pytest.mark.parametrize("status", ["deploying", "deployed"])
def test_going_to_work_in_a_gated_environment_needs_approval(status: str) -> None:
    assert needs_approval("prod", status, {"prod"})
    assert not needs_approval("staging", status, {"prod"})
    assert not needs_approval("prod", status, ())


@pytest.mark.parametrize("status", ["failed", "rolled_back", "retired"])
def test_reporting_that_something_stopped_never_needs_approval(status: str) -> None:
    assert not needs_approval("prod", status, {"prod"})


def test_a_version_nobody_decided_on_is_pending() -> None:
    assert approval_status({}) == "pending"
    assert approval_status({"approval": None}) == "pending"
    assert approval_status({"approval": {"status": "rejected", "by": "k1"}}) == "rejected"
    assert approval_status({"approval": {"status": "approved", "by": "k1"}}) == "approved"


def test_overall_status_is_the_most_advanced_environment() -> None:
    assert overall({}) == "registered"
    assert overall({"prod": env("failed"), "staging": env("deployed")}) == "deployed"
    assert overall({"prod": env("rolled_back"), "staging": env("deploying")}) == "deploying"
