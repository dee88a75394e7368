"""HTTP writes arriving together are handled in one batch; each request gets its own outcome or failure."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from registration.group_commit import GroupCommit
from registration.handlers import Command, Outcome

pytestmark = pytest.mark.unit


def command(n: int) -> Command:
    return cast(Command, n)  # the batcher only passes commands through


def said(outcome: Outcome) -> str:
    return cast(str, outcome)


class Handler:
    """A handle_batch that records its batches, answers ``outcome-<n>`` and takes a while."""

    def __init__(self, *, fail_on: int | None = None) -> None:
        self.batches: list[list[Any]] = []
        self.fail_on = fail_on

    async def __call__(self, commands: list[Command]) -> list[Outcome]:
        self.batches.append(list(commands))
        await asyncio.sleep(0.01)  # a transaction
        if self.fail_on is not None and command(self.fail_on) in commands:
            raise RuntimeError("the database went away")
        return [cast(Outcome, f"outcome-{c}") for c in commands]


async def test_a_lone_write_is_handled_at_once_alone() -> None:
    handler = Handler()
    assert said(await GroupCommit(handler).submit(command(1))) == "outcome-1"
    assert handler.batches == [[1]]


async def test_writes_arriving_during_a_transaction_share_the_next_one() -> None:
    handler = Handler()
    group = GroupCommit(handler)
    first = asyncio.ensure_future(group.submit(command(0)))
    await asyncio.sleep(0)  # its transaction starts: the next ones arrive while it runs
    outcomes = await asyncio.gather(*(group.submit(command(n)) for n in range(1, 10)))
    assert said(await first) == "outcome-0"
    assert [said(o) for o in outcomes] == [f"outcome-{n}" for n in range(1, 10)]  # each its own, in order
    assert handler.batches == [[0], list(range(1, 10))]


async def test_writes_arriving_at_once_go_in_one_transaction() -> None:
    handler = Handler()
    group = GroupCommit(handler)
    outcomes = await asyncio.gather(*(group.submit(command(n)) for n in range(5)))
    assert [said(o) for o in outcomes] == [f"outcome-{n}" for n in range(5)]
    assert handler.batches == [list(range(5))]


async def test_batches_are_bounded() -> None:
    handler = Handler()
    group = GroupCommit(handler, max_commands=4)
    await asyncio.gather(*(group.submit(command(n)) for n in range(10)))
    assert [len(batch) for batch in handler.batches] == [4, 4, 2]


async def test_a_failed_batch_fails_its_requests_only() -> None:
    handler = Handler(fail_on=1)
    group = GroupCommit(handler)
    first = asyncio.ensure_future(group.submit(command(0)))
    await asyncio.sleep(0)  # the first batch starts with command 0 alone
    failing = [asyncio.ensure_future(group.submit(command(n))) for n in (1, 2)]
    assert said(await first) == "outcome-0"
    for request in failing:
        with pytest.raises(RuntimeError, match="went away"):
            await request
    assert said(await group.submit(command(3))) == "outcome-3"  # the next request is served


async def test_a_request_that_goes_away_does_not_cancel_the_others() -> None:
    handler = Handler()
    group = GroupCommit(handler)
    first = asyncio.ensure_future(group.submit(command(0)))
    await asyncio.sleep(0)
    leaving, staying = asyncio.ensure_future(group.submit(command(1))), asyncio.ensure_future(group.submit(command(2)))
    await asyncio.sleep(0)
    leaving.cancel()
    assert said(await first) == "outcome-0" and said(await staying) == "outcome-2"
    assert handler.batches == [[0], [1, 2]]  # the departed request's command was still handled


async def test_a_batch_answered_with_the_wrong_number_of_outcomes_fails_its_requests_and_the_worker_goes_on() -> None:
    # Were the worker to die on the mismatch, the batch's requests and every one queued behind them
    # would wait for ever.
    answers: list[list[Outcome]] = [[], [cast(Outcome, "outcome-2")]]

    async def short(commands: list[Command]) -> list[Outcome]:
        await asyncio.sleep(0.01)
        return answers.pop(0)

    group = GroupCommit(short)
    first = asyncio.ensure_future(group.submit(command(1)))
    await asyncio.sleep(0)  # its batch starts; the next request queues behind it
    queued = asyncio.ensure_future(group.submit(command(2)))
    with pytest.raises(ValueError, match="zip"):
        await asyncio.wait_for(first, 5)
    assert said(await asyncio.wait_for(queued, 5)) == "outcome-2"
