"""Rate limits on the real Redis: counting, refusing, expiring, and sharing across instances."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from devstack.isolation import REDIS_URL, IsolatedInfra
from servicekit.http_app import create_service_app
from servicekit.problems import PROBLEM_CONTENT_TYPE
from servicekit.rate_limit import Decision, Limit, RateLimiter, too_many_requests
from servicekit.redis_store import KeySpace, Redis, create_redis
from servicekit.settings import HttpSettings, RedisSettings

pytestmark = pytest.mark.integration

LOGIN = Limit("login:account", max_hits=3, window_seconds=60)
HTTP = HttpSettings(
    host="127.0.0.1", port=0, max_body_bytes=1024, shutdown_timeout=1, use_uvloop=False
)
EMAIL = "Ada.Lovelace+test@example.com"


@pytest.fixture
def prefix(isolated_infra: IsolatedInfra) -> str:
    return f"{isolated_infra.redis_prefix}rl-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def redis(prefix: str) -> AsyncIterator[Redis]:
    client = create_redis(RedisSettings(REDIS_URL, prefix))
    yield client
    stale = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if stale:
        await client.delete(*stale)
    await client.aclose()


@pytest.fixture
def limiter(redis: Redis, prefix: str) -> RateLimiter:
    return RateLimiter(redis, KeySpace(prefix))


async def keys_under(redis: Redis, prefix: str) -> list[str]:
    return sorted([key.decode() async for key in redis.scan_iter(match=f"{prefix}*")])


async def test_allows_up_to_max_hits_then_refuses(limiter: RateLimiter) -> None:
    decisions = [await limiter.hit(LOGIN, EMAIL) for _ in range(LOGIN.max_hits)]
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert all(d.retry_after_seconds == 0 for d in decisions)

    refused = await limiter.hit(LOGIN, EMAIL)
    assert not refused.allowed
    assert refused.remaining == 0
    assert 0 < refused.retry_after_seconds <= LOGIN.window_seconds


async def test_counter_resets_when_the_window_ends(limiter: RateLimiter) -> None:
    short = Limit("short", max_hits=2, window_seconds=1)
    await limiter.hit(short, EMAIL)
    await limiter.hit(short, EMAIL)
    refused = await limiter.hit(short, EMAIL)
    assert not refused.allowed
    assert refused.retry_after_seconds == 1

    await asyncio.sleep(1.1)  # the one-second window ends: what is under test is time passing
    again = await limiter.hit(short, EMAIL)
    assert again == Decision(allowed=True, remaining=1, retry_after_seconds=0)


async def test_reset_clears_the_count(limiter: RateLimiter, redis: Redis, prefix: str) -> None:
    for _ in range(LOGIN.max_hits + 1):
        await limiter.hit(LOGIN, EMAIL)
    await limiter.reset(LOGIN, EMAIL)
    assert await keys_under(redis, prefix) == []
    assert (await limiter.hit(LOGIN, EMAIL)).remaining == LOGIN.max_hits - 1


async def test_peek_reports_without_counting(limiter: RateLimiter) -> None:
    fresh = await limiter.peek(LOGIN, EMAIL)
    assert fresh == Decision(allowed=True, remaining=LOGIN.max_hits, retry_after_seconds=0)

    await limiter.hit(LOGIN, EMAIL)
    for _ in range(5):
        assert (await limiter.peek(LOGIN, EMAIL)).remaining == LOGIN.max_hits - 1
    assert (await limiter.hit(LOGIN, EMAIL)).remaining == LOGIN.max_hits - 2

    await limiter.hit(LOGIN, EMAIL)
    # The budget is spent: the next attempt would be refused, so peek says so.
    spent = await limiter.peek(LOGIN, EMAIL)
    assert not spent.allowed
    assert spent.remaining == 0
    assert 0 < spent.retry_after_seconds <= LOGIN.window_seconds


async def test_two_instances_share_the_count(redis: Redis, prefix: str) -> None:
    other_client = create_redis(RedisSettings(REDIS_URL, prefix))
    try:
        first = RateLimiter(redis, KeySpace(prefix))
        second = RateLimiter(other_client, KeySpace(prefix))
        await first.hit(LOGIN, EMAIL)
        await second.hit(LOGIN, EMAIL)
        await first.hit(LOGIN, EMAIL)
        assert not (await second.hit(LOGIN, EMAIL)).allowed
        assert not (await first.peek(LOGIN, EMAIL)).allowed
    finally:
        await other_client.aclose()


async def test_concurrent_hits_are_counted_exactly(limiter: RateLimiter) -> None:
    burst = Limit("burst", max_hits=10, window_seconds=60)
    decisions = await asyncio.gather(*(limiter.hit(burst, EMAIL) for _ in range(25)))
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))


async def test_subjects_and_limits_do_not_interfere(limiter: RateLimiter) -> None:
    for _ in range(LOGIN.max_hits + 1):
        await limiter.hit(LOGIN, EMAIL)
    assert (await limiter.hit(LOGIN, "grace@example.com")).allowed
    signup = Limit("signup:ip", max_hits=1, window_seconds=60)
    assert (await limiter.hit(signup, EMAIL)).allowed


async def test_keys_expire_and_hold_no_raw_subject(
    limiter: RateLimiter, redis: Redis, prefix: str
) -> None:
    hostile = "203.0.113.7:*\r\n" + "x" * 10_000
    await limiter.hit(LOGIN, hostile)
    await limiter.hit(LOGIN, EMAIL)

    keys = await keys_under(redis, prefix)
    assert len(keys) == 2
    for key in keys:
        assert key.startswith(f"{prefix}ratelimit:login:account:")
        digest = key.rsplit(":", 1)[1]
        assert len(digest) == 32
        assert all(c in "0123456789abcdef" for c in digest)
        ttl_ms = await redis.pttl(key)
        assert 0 < ttl_ms <= LOGIN.window_seconds * 1000
    assert not any(EMAIL.lower() in key.lower() for key in keys)


async def test_a_key_left_without_expiry_gets_one(
    limiter: RateLimiter, redis: Redis, prefix: str
) -> None:
    await limiter.hit(LOGIN, EMAIL)
    [key] = await keys_under(redis, prefix)
    await redis.persist(key)
    await limiter.hit(LOGIN, EMAIL)
    assert 0 < await redis.pttl(key) <= LOGIN.window_seconds * 1000


def test_too_many_requests_is_a_429_with_retry_after() -> None:
    error = too_many_requests(
        Decision(allowed=False, remaining=0, retry_after_seconds=42), "Too many login attempts"
    )
    assert error.status == 429
    assert error.headers == {"Retry-After": "42"}
    problem = error.to_problem("/api/auth/login")
    assert problem.status == 429
    assert problem.title == "Too Many Requests"
    assert problem.detail == "Too many login attempts"


async def test_the_app_answers_the_429_problem_with_retry_after() -> None:
    async def login(_: web.Request) -> web.Response:
        raise too_many_requests(
            Decision(allowed=False, remaining=0, retry_after_seconds=7), "Too many attempts"
        )

    app = create_service_app("svc", HTTP)
    app.router.add_post("/login", login)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.post("/login")
        assert response.status == 429
        assert response.content_type == PROBLEM_CONTENT_TYPE
        assert response.headers["Retry-After"] == "7"
        assert (await response.json())["detail"] == "Too many attempts"


def test_retry_after_is_at_least_one_second() -> None:
    error = too_many_requests(Decision(allowed=False, remaining=0, retry_after_seconds=0), "Slow")
    assert error.headers["Retry-After"] == "1"


def test_limits_must_allow_something() -> None:
    with pytest.raises(ValueError, match="max_hits"):
        Limit("broken", max_hits=0, window_seconds=60)
    with pytest.raises(ValueError, match="window_seconds"):
        Limit("broken", max_hits=1, window_seconds=0)
