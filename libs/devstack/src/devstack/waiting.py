"""Waiting on a condition instead of sleeping: the tests' one polling helper.

``await until(condition)`` asks ``condition()`` (a plain or an async function) every ``interval``
seconds until it answers something true, and returns that answer. When ``timeout`` seconds pass
first it raises :class:`ConditionTimeoutError` (a ``TimeoutError``), naming what was awaited:
``what`` if given (a string, or a function called then, to describe the state reached), else the
condition's name or the source line of a lambda. ``until_equal(read, expected)`` waits for a
reading to equal a value and names the last reading when it never did.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import overload

DEFAULT_TIMEOUT = 15.0
DEFAULT_INTERVAL = 0.05

type Description = str | Callable[[], str] | None


class ConditionTimeoutError(TimeoutError):
    """The awaited condition did not hold in time."""


@overload
async def until[T](
    condition: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: Description = ...,
) -> T: ...
@overload
async def until[T](
    condition: Callable[[], T | None],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: Description = ...,
) -> T: ...
async def until(
    condition: Callable[[], object],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    what: Description = None,
) -> object:
    """The first true answer of ``condition()``, asked every ``interval`` seconds (typed without
    ``None``: a condition may answer ``None`` for "not yet")."""
    try:
        async with asyncio.timeout(timeout) as deadline:
            while True:
                answer = condition()
                if inspect.isawaitable(answer):
                    answer = await answer
                if answer:
                    return answer
                await asyncio.sleep(interval)
    except TimeoutError as error:
        if not deadline.expired():
            raise  # the condition's own timeout, not ours
        raise ConditionTimeoutError(
            f"waited {timeout:g} s for {_describe(what, condition)}; it never held"
        ) from error


async def until_equal(
    read: Callable[[], Awaitable[object]] | Callable[[], object],
    expected: object,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    what: Description = None,
) -> None:
    """Until ``read()`` answers ``expected``; the failure names the last answer read."""
    readings: list[object] = []

    async def equal() -> bool:
        reading = read()
        if inspect.isawaitable(reading):
            reading = await reading
        readings[:] = [reading]
        return bool(reading == expected)

    def state() -> str:
        last = repr(readings[0]) if readings else "nothing (no reading finished)"
        return f"{_describe(what, read)} to be {expected!r} (last read {last})"

    await until(equal, timeout=timeout, interval=interval, what=state)


def _describe(what: Description, condition: Callable[..., object]) -> str:
    if callable(what):
        return what()
    if what is not None:
        return what
    name = getattr(condition, "__qualname__", None)
    if name and "<lambda>" not in name:
        return f"{name}()"
    try:
        source = inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return repr(condition)
    return f"`{source}`"
