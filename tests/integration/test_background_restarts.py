"""Every background task of every service is restarted when it dies, counted, and named by /readyz while down.

Each service runs in-process (its lifespan starts its tasks) over the session's broker and
database, on topics and a database of the test's own, with quick restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from faststream.kafka.subscriber.usecase import BatchSubscriber

from registration.app import build_app as build_registration
from shared.chassis.kafka import ensure_topics
from shared.chassis.supervision import Background, TaskSupervisor
from tests.factories import ADMIN_KEY, binary_record, register_event
from tests.infra import Infra
from tests.integration.restarting import (
    BUILD,
    TASKS,
    Outage,
    registration_with_admin,
    restarts,
    running,
    service_settings,
    task_up,
    tasks_down,
    wait_down,
    wait_ready,
)
from tests.kafka_tools import Collector, caused_by, publish_raw
from tests.waiting import until

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", list(TASKS))
async def test_every_background_task_of_the_service_is_restarted_while_it_dies_and_ready_once_it_runs(
    service: str, infra: Infra, db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = service_settings(service, infra, db_name)
    await ensure_topics(settings, partitions=1)
    outage = Outage()
    start = TaskSupervisor.start

    def start_breaking(self: TaskSupervisor, tasks: Mapping[str, Background]) -> list[Any]:
        return start(self, {name: outage.breaking(run) for name, run in tasks.items()})

    monkeypatch.setattr(TaskSupervisor, "start", start_breaking)
    before = {name: restarts(name) for name in TASKS[service]}
    outage.on = True  # every task dies at its start until the outage ends
    async with running(BUILD[service](settings), f"http://{service}") as http:
        await wait_down(http, TASKS[service])

        async def restarted_each() -> bool:
            return all(restarts(name) > before[name] for name in TASKS[service])

        await until(restarted_each, what="every task restarted at least once")
        assert all(task_up(name) == 0 for name in TASKS[service])
        assert (await http.get("/healthz")).status_code == 200  # alive: the process needs no restart

        outage.on = False
        await wait_ready(http)
        assert all(task_up(name) == 1 for name in TASKS[service])
        assert await tasks_down(http) == set()


async def test_a_consumer_whose_fetch_loop_dies_is_restarted_and_handles_commands_again(
    infra: Infra, db_name: str, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    # The consumers' fetch loops are FastStream's tasks, restarted by FastStream itself (handler
    # errors never reach them: consuming.BatchRunner). This pins that a loop that dies comes back.
    settings = await registration_with_admin(infra, db_name)
    broken: list[str] = []
    get_msg = BatchSubscriber.get_msg

    async def failing_get_msg(self: BatchSubscriber, consumer: AIOKafkaConsumer) -> Any:
        if not broken:
            broken.append("fetch")
            raise RuntimeError("the fetch loop broke (injected)")
        return await get_msg(self, consumer)

    monkeypatch.setattr(BatchSubscriber, "get_msg", failing_get_msg)
    command = register_event(f"c-{unique}", "model", token=ADMIN_KEY.token)
    async with (
        running(build_registration(settings), "http://registration"),
        Collector(infra.kafka_bootstrap, settings.topic_events) as events,
    ):
        await publish_raw(
            infra.kafka_bootstrap, settings.topic_commands, [(*binary_record(command), f"c-{unique}/model".encode())]
        )
        await events.wait_for(caused_by(command.id))  # its outcome, whatever it is: the command was consumed
    assert broken == ["fetch"]
