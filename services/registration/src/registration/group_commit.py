"""Group commit of the HTTP write path: what arrives while one transaction runs goes into the next.

The Kafka path handles commands in batches: one MongoDB transaction (one journal sync) for a
whole poll. An HTTP write used to be a batch of one, so eight concurrent clients paid for eight
transactions one after another. Here a request that finds a transaction running queues its
command; when that transaction ends, every queued command is handled in the next one. A lone
request waits for nothing (it starts a transaction at once); a busy service commits as many
commands per sync as arrived meanwhile, up to ``max_commands``.

Each request still gets exactly its own outcome: :func:`~registration.handlers.handle_commands`
returns one per command, in order, and replays a command it already handled (an idempotency key
sent twice at once is handled once, both requests getting that outcome).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable

import structlog

from registration.handlers import Command, Outcome

log = structlog.get_logger(__name__)
HandleBatch = Callable[[list[Command]], Awaitable[list[Outcome]]]


class GroupCommit:
    """Runs one batch at a time; commands submitted meanwhile wait and go in the next batch together."""

    def __init__(self, handle_batch: HandleBatch, *, max_commands: int = 500) -> None:
        self.handle_batch, self.max_commands = handle_batch, max_commands
        self._queue: list[tuple[Command, asyncio.Future[Outcome]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, command: Command) -> Outcome:
        """The outcome of ``command``, handled in the next batch (at once if none is running)."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append((command, future))
        if self._worker is None or self._worker.done():
            # A fresh context: the batch is every request's, not the one that happened to start it
            # (its correlation id and caller are bound in the request's context, for log lines).
            self._worker = asyncio.create_task(self._drain(), name="http-group-commit", context=contextvars.Context())
        # A request that goes away (a client disconnecting) does not cancel the batch its command
        # is in: the others' outcomes depend on it, and the command is handled either way.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_commands], self._queue[self.max_commands :]
            try:
                outcomes = await self.handle_batch([command for command, _ in batch])
                # One outcome per command; a bug that breaks this fails the batch's requests
                # instead of ending the worker with them (and the queue behind them) left waiting.
                answers = list(zip(batch, outcomes, strict=True))
            except Exception as exc:  # each request answers with the failure, as a batch of one would
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), outcome in answers:
                if not future.done():
                    future.set_result(outcome)
