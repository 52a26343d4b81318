"""Which errors mean "a store this service depends on is unreachable right now", as opposed to
"this piece of work fails": the first kind says nothing about the work, so retrying it must not
spend its retry budget (an outage longer than the budget would otherwise dead-letter good
messages), the second kind does."""

from __future__ import annotations

import asyncpg
import pymongo.errors
import redis.exceptions

UNAVAILABLE: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted (OSError's connection family)
    asyncpg.exceptions.PostgresConnectionError,  # includes a connection closed mid-query
    asyncpg.exceptions.CannotConnectNowError,  # starting up, or in crash recovery
    asyncpg.exceptions.AdminShutdownError,  # the server was stopped (immediate)
    asyncpg.exceptions.CrashShutdownError,
    pymongo.errors.ConnectionFailure,  # AutoReconnect, NetworkTimeout, ServerSelectionTimeout
    redis.exceptions.ConnectionError,
)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or what it was raised from) is a dependency being unreachable."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, UNAVAILABLE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
