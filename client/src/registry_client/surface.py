"""How one definition of an operation becomes a method of both clients, typed for each.

An operation is defined once, in a mixin, as a function of the client returning a
:class:`~registry_client.steps.Call` (:func:`endpoint`), a flow of steps (:func:`operation`) or
a flow that emits items (:func:`iterator`). These decorators are descriptors: read on a
:class:`~registry_client.drivers.SyncDriver` the method returns the result (or an ``Iterator``),
on an :class:`~registry_client.drivers.AsyncDriver` an awaitable (or an ``AsyncIterator``).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from registry_client.config import ApiBase
from registry_client.drivers import AsyncDriver, SyncDriver
from registry_client.steps import Call, Flow, Items, exchange

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class Operation(Generic[P, R]):
    """A method that runs a flow and returns its result (awaitable on the async client)."""

    def __init__(self, flow: Callable[Concatenate[Any, P], Flow[R]]) -> None:
        self._flow = flow
        self.__doc__ = flow.__doc__

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, client: SyncDriver, owner: type[Any]) -> Callable[P, R]: ...
    @overload
    def __get__(self, client: AsyncDriver, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(self, client: Any, owner: type[Any]) -> Any:
        if client is None:
            return self
        flow = self._flow

        @functools.wraps(flow)
        def method(*args: Any, **kwargs: Any) -> Any:
            return client._run(flow(client, *args, **kwargs))

        return method


class Iteration(Generic[P, T]):
    """A method that returns the items a flow emits: an ``Iterator`` (an ``AsyncIterator`` on the async client)."""

    def __init__(self, flow: Callable[Concatenate[Any, P], Items[T]]) -> None:
        self._flow = flow
        self.__doc__ = flow.__doc__

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, client: SyncDriver, owner: type[Any]) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(self, client: AsyncDriver, owner: type[Any]) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, client: Any, owner: type[Any]) -> Any:
        if client is None:
            return self
        flow = self._flow

        @functools.wraps(flow)
        def method(*args: Any, **kwargs: Any) -> Any:
            return client._iterate(flow(client, *args, **kwargs))

        return method


def operation(flow: Callable[Concatenate[Any, P], Flow[R]]) -> Operation[P, R]:
    """Make ``flow`` (a generator of steps returning the result) a method of both clients."""
    return Operation(flow)


def iterator(flow: Callable[Concatenate[Any, P], Items[T]]) -> Iteration[P, T]:
    """Make ``flow`` (a generator of steps emitting items) an iterating method of both clients."""
    return Iteration(flow)


def endpoint(build: Callable[Concatenate[Any, P], Call[R]]) -> Operation[P, R]:
    """Make ``build`` (which describes one request) a method of both clients: sent with retries, answer parsed."""

    @functools.wraps(build)
    def flow(client: ApiBase, /, *args: P.args, **kwargs: P.kwargs) -> Flow[R]:
        return exchange(client.config.retry, build(client, *args, **kwargs))

    return Operation(flow)
