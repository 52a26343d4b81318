"""Token buckets on the real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from devstack.infra import delete_prefix
from devstack.isolation import REDIS_URL, IsolatedInfra
from servicekit.redis_store import KeySpace, Redis, create_redis
from servicekit.settings import RedisSettings
from servicekit.token_buckets import TAKE_TOKENS_LUA, Bucket, TokenBuckets, decision_of

pytestmark = pytest.mark.integration


@pytest.fixture
async def space(isolated_infra: IsolatedInfra) -> AsyncIterator[tuple[Redis, KeySpace]]:
    prefix = f"{isolated_infra.redis_prefix}tb{uuid.uuid4().hex[:6]}:"
    redis: Redis = create_redis(RedisSettings(REDIS_URL, prefix))
    yield redis, KeySpace(prefix)
    await redis.aclose()
    await delete_prefix(REDIS_URL, prefix)


@pytest.fixture
def buckets(space: tuple[Redis, KeySpace]) -> TokenBuckets:
    return TokenBuckets(*space)


async def test_a_burst_up_to_capacity_passes_then_it_is_refused(buckets: TokenBuckets) -> None:
    bucket = Bucket("burst", capacity=5, per_second=0.5)
    decisions = [await buckets.take([(bucket, "s")]) for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert decisions[-1].retry_after_seconds == 2  # one token at 0.5/s


async def test_it_refills_at_its_rate(buckets: TokenBuckets) -> None:
    bucket = Bucket("refill", capacity=2, per_second=10)
    for _ in range(2):
        assert (await buckets.take([(bucket, "s")])).allowed
    assert not (await buckets.take([(bucket, "s")])).allowed
    await asyncio.sleep(0.25)  # 2.5 tokens' worth, capped at 2
    assert [(await buckets.take([(bucket, "s")])).allowed for _ in range(3)] == [True, True, False]


async def test_a_costly_event_takes_its_cost_and_one_above_the_capacity_never_passes(
    buckets: TokenBuckets,
) -> None:
    bucket = Bucket("costly", capacity=10, per_second=0.001)
    first = await buckets.take([(bucket, "s")], cost=6)
    assert (first.allowed, first.remaining) == (True, 4)
    refused = await buckets.take([(bucket, "s")], cost=5)
    assert not refused.allowed
    assert refused.retry_after_seconds >= 1
    left = await buckets.take([(bucket, "s")], cost=4)  # the refusal took nothing
    assert (left.allowed, left.remaining) == (True, 0)
    assert not (await buckets.take([(bucket, "other")], cost=11)).allowed


async def test_all_buckets_pay_or_none_does(buckets: TokenBuckets) -> None:
    socket = Bucket("socket", capacity=2, per_second=0.1)
    user = Bucket("user", capacity=3, per_second=0.1)
    one = [(socket, "sock-1"), (user, "alice")]
    two = [(socket, "sock-2"), (user, "alice")]
    assert (await buckets.take(one)).allowed
    assert (await buckets.take(one)).allowed
    assert not (await buckets.take(one)).allowed  # socket empty: the user's bucket is not charged
    assert (await buckets.take(two)).allowed  # the user's third token
    assert not (await buckets.take(two)).allowed  # now the user's bucket is empty


async def test_concurrent_takes_never_exceed_the_capacity(buckets: TokenBuckets) -> None:
    bucket = Bucket("race", capacity=10, per_second=0.01)
    decisions = await asyncio.gather(*(buckets.take([(bucket, "s")]) for _ in range(40)))
    assert sum(d.allowed for d in decisions) == 10


# A script of another module's: the buckets' keys and arguments first, then a key of its own
# that it reads only when the tokens were taken.
_TAKE_THEN_GET = (
    TAKE_TOKENS_LUA
    + """
local taken = take_tokens({KEYS[1], KEYS[2]}, {ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]})
if taken[1] == 0 then return {taken} end
return {taken, redis.call('GET', KEYS[3])}
"""
)


async def test_take_tokens_composes_into_another_script_on_the_same_buckets(
    space: tuple[Redis, KeySpace],
) -> None:
    redis, keys = space
    buckets = TokenBuckets(redis, keys)
    composed = redis.register_script(_TAKE_THEN_GET)
    socket = Bucket("socket", capacity=2, per_second=0.1)
    user = Bucket("user", capacity=3, per_second=0.1)
    checks = [(socket, "sock-1"), (user, "alice")]
    own = keys.key("note")
    await redis.set(own, b"kept")

    async def take_then_get() -> tuple[bool, int, object]:
        take = buckets.prepare(checks)
        reply = await composed(keys=[*take.keys, own], args=take.args)
        decision = decision_of(reply[0])
        return decision.allowed, decision.remaining, reply[1] if len(reply) > 1 else None

    assert await take_then_get() == (True, 1, b"kept")
    assert (await buckets.take(checks)).allowed  # the same buckets: the socket's last token
    assert await take_then_get() == (False, 0, None)  # refused: its own key is not read
    # The refusal took nothing from the user's bucket: it has one token left.
    assert (await buckets.take([(user, "alice")])).allowed
    assert not (await buckets.take([(user, "alice")])).allowed
