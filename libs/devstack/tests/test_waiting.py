"""``until`` and ``until_equal``: polling a plain or async condition, and failing by name."""

from __future__ import annotations

import asyncio

import pytest

from devstack.waiting import ConditionTimeoutError, until, until_equal


async def test_until_returns_the_first_true_answer_of_a_plain_condition() -> None:
    answers = iter([None, 0, "", "ready"])
    assert await until(lambda: next(answers), interval=0) == "ready"


async def test_until_awaits_an_async_condition() -> None:
    asked: list[int] = []

    async def third_time() -> bool:
        asked.append(1)
        return len(asked) == 3

    assert await until(third_time, interval=0) is True
    assert len(asked) == 3


async def test_a_timeout_names_a_named_condition() -> None:
    def never() -> bool:
        return False

    with pytest.raises(ConditionTimeoutError, match=r"waited 0.1 s for .*never\(\); it never"):
        await until(never, timeout=0.1)


async def test_a_timeout_quotes_a_lambdas_source_and_is_a_timeout_error() -> None:
    items: list[int] = []
    with pytest.raises(TimeoutError, match=r"`.*len\(items\) == 2.*`"):
        await until(lambda: len(items) == 2, timeout=0.1)


async def test_what_describes_the_wait_when_given_as_text_or_as_a_function() -> None:
    with pytest.raises(ConditionTimeoutError, match="the relay to listen"):
        await until(lambda: False, timeout=0.05, what="the relay to listen")
    seen = ["a"]
    with pytest.raises(ConditionTimeoutError, match=r"b among \['a'\]"):
        await until(lambda: "b" in seen, timeout=0.05, what=lambda: f"b among {seen}")


async def test_a_timeout_raised_by_the_condition_itself_is_not_relabelled() -> None:
    async def times_out() -> bool:
        raise TimeoutError("the socket call timed out")

    with pytest.raises(TimeoutError, match="the socket call timed out") as raised:
        await until(times_out, timeout=5)
    assert not isinstance(raised.value, ConditionTimeoutError)


async def test_a_slow_condition_is_cut_off_at_the_timeout() -> None:
    async def slow() -> bool:
        await asyncio.sleep(10)
        return True

    with pytest.raises(ConditionTimeoutError):
        await until(slow, timeout=0.05)


async def test_until_equal_waits_for_the_reading_and_names_the_last_one() -> None:
    readings = iter(["pending", "pending", "sent"])
    await until_equal(lambda: next(readings), "sent", interval=0)

    async def status() -> str:
        return "pending"

    with pytest.raises(ConditionTimeoutError, match=r"status\(\) to be 'sent' \(last read 'pend"):
        await until_equal(status, "sent", timeout=0.1)
