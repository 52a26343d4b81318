"""bcrypt off the event loop, with a bound on queued work."""

from __future__ import annotations

import asyncio

import pytest

from auth.passwords import HasherBusyError, PasswordHasher


async def test_hash_verifies_and_wrong_password_does_not() -> None:
    hasher = PasswordHasher(rounds=4)
    hashed = await hasher.hash("correct horse")
    assert await hasher.verify("correct horse", hashed)
    assert not await hasher.verify("wrong horse", hashed)


async def test_unknown_account_and_overlong_password_fail_like_a_wrong_one() -> None:
    hasher = PasswordHasher(rounds=4)
    hashed = await hasher.hash("correct horse")
    assert not await hasher.verify("correct horse", None)
    assert not await hasher.verify("x" * 73, hashed)


async def test_work_beyond_the_queue_bound_is_refused_at_once_with_503() -> None:
    hasher = PasswordHasher(rounds=12, max_pending=2)
    hashed = await hasher.hash("correct horse")
    first = asyncio.create_task(hasher.verify("correct horse", hashed))
    second = asyncio.create_task(hasher.verify("correct horse", hashed))
    await asyncio.sleep(0)  # both admitted, both hashing in threads
    with pytest.raises(HasherBusyError) as refused:
        await hasher.verify("correct horse", hashed)
    assert refused.value.status == 503
    assert refused.value.headers == {"Retry-After": "1"}
    assert await first
    assert await second
    assert await hasher.verify("correct horse", hashed)  # admitted again once they finished
