"""Every FastAPI dependency and endpoint of every service is a coroutine function.

FastAPI runs a plain ``def`` dependency in a worker thread, per request: one that only reads
``request.app.state`` cost each write a thread hop and a turn of the GIL for nothing. (Built from
the apps themselves, as the OpenAPI tests are: no lifespan, no Kafka or MongoDB.)
"""

import inspect
from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from tests.routes import APPS

pytestmark = pytest.mark.integration


def calls(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from calls(sub)


@pytest.mark.parametrize("service", sorted(APPS))
def test_no_route_runs_a_dependency_or_endpoint_in_a_worker_thread(service: str) -> None:
    app = APPS[service]()
    sync = set()
    routes = 0
    for route in iter_route_contexts(app.routes):  # each route as included, with its router's dependencies
        dependant = getattr(route, "dependant", None)
        if not isinstance(dependant, Dependant):
            continue  # not a FastAPI route (a mounted app, a websocket)
        routes += 1
        for call in [dependant.call, *calls(dependant)]:
            if call is not None and not inspect.iscoroutinefunction(call):
                sync.add(f"{route.path}: {getattr(call, '__qualname__', call)}")
    assert routes > 5 and not sync, sorted(sync)
