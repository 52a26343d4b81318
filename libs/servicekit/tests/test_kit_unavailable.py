"""Which errors count as a store being unreachable (retried without spending retries)."""

from __future__ import annotations

import asyncpg
import pymongo.errors
import pytest
import redis.exceptions

from servicekit.unavailable import is_unavailable


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),
        asyncpg.exceptions.CannotConnectNowError("the database system is in recovery mode"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        pymongo.errors.ServerSelectionTimeoutError("no servers"),
        pymongo.errors.AutoReconnect("connection closed"),
        redis.exceptions.ConnectionError("Connection refused"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_unreachable_store_is_unavailable(error: Exception) -> None:
    assert is_unavailable(error)


def test_a_failure_raised_from_an_unreachable_store_is_unavailable() -> None:
    with pytest.raises(RuntimeError) as caught:
        try:
            raise pymongo.errors.AutoReconnect("closed")
        except pymongo.errors.AutoReconnect as cause:
            raise RuntimeError("could not store the body") from cause
    assert is_unavailable(caught.value)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("seq 666 cannot be applied"),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        pymongo.errors.DuplicateKeyError("E11000"),
        TimeoutError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_failure_of_the_work_itself_is_not(error: Exception) -> None:
    assert not is_unavailable(error)
