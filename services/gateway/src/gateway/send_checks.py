"""What ``message:send`` asks Redis before it publishes, in one round trip, and the sent record
written after it is acked.

One Lua call (servicekit's ``take_tokens`` composed in) does, atomically and in this order:
take a token from the socket's and the user's send buckets, or from neither (then nothing else
is looked at); look the sender up in the conversation's cached member set; read the sent record
``gw:sent:<user>:<clientMessageId>``, which holds the stored message of a send already acked
once, on any instance. A member set that is not cached is left to ``MembershipDirectory``,
which asks chat and caches it, as it does for every other event.

The record is written in the background once the stored message is known, so the ack does not
wait for it; the records of one loop turn go in one pipeline. The writes are tracked, a failed
one is logged, and a resend that reaches this instance while its record is being written waits
for the write before its check.
"""

from __future__ import annotations

import asyncio
import functools
from uuid import UUID

import msgspec

from contracts.events import MessageView
from gateway.domain import AlreadySent, Cleared, NotAMember, RateLimited, SendCheck
from gateway.memberships import MembershipDirectory
from servicekit.logs import get_logger
from servicekit.redis_store import KeySpace, Redis
from servicekit.token_buckets import TAKE_TOKENS_LUA, Bucket, TokenBuckets, decision_of

_log = get_logger("gateway.send_checks")

SENT_RECORD_SECONDS = 24 * 3600

# KEYS: the socket's bucket, the user's bucket, the member set, the sent record.
# ARGV: now, (capacity, per_second) of each bucket, the user id.
# Replies {tokens}, when refused; else {tokens, cached, member[, record or false]}: the record
# is not read for a user the cached set does not hold.
_SEND_CHECKS = (
    TAKE_TOKENS_LUA
    + """
local tokens = take_tokens({KEYS[1], KEYS[2]}, {ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]})
if tokens[1] == 0 then return {tokens} end
local cached = redis.call('EXISTS', KEYS[3])
local member = 0
if cached == 1 then
    member = redis.call('SISMEMBER', KEYS[3], ARGV[6])
    if member == 0 then return {tokens, cached, member} end
end
return {tokens, cached, member, redis.call('GET', KEYS[4])}
"""
)


class SendChecks:
    def __init__(
        self,
        redis: Redis,
        keys: KeySpace,
        buckets: TokenBuckets,
        memberships: MembershipDirectory,
        limits: tuple[Bucket, Bucket],
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._buckets = buckets
        self._memberships = memberships
        self._limits = limits
        self._check = redis.register_script(_SEND_CHECKS)
        self._unwritten: dict[str, bytes] = {}  # this loop turn's records
        self._writes: set[asyncio.Task[None]] = set()
        self._writing: dict[str, asyncio.Task[None]] = {}

    async def check(
        self,
        *,
        sid: str,
        user_id: UUID,
        token: str,
        conversation_id: UUID,
        client_message_id: str,
    ) -> SendCheck:
        record = self._record_key(user_id, client_message_id)
        if record in self._unwritten:
            self._write_turn()
        if (writing := self._writing.get(record)) is not None:
            await asyncio.wait({writing})  # never raises: the write logs its own failure
        per_socket, per_user = self._limits
        take = self._buckets.prepare([(per_socket, sid), (per_user, str(user_id))])
        reply = await self._check(
            keys=[*take.keys, self._memberships.cache_key(conversation_id), record],
            args=[*take.args, str(user_id)],
        )
        decision = decision_of(reply[0])
        if not decision.allowed:
            return RateLimited(decision.retry_after_seconds)
        cached, member, known = int(reply[1]), int(reply[2]), reply[3] if len(reply) > 3 else None
        if cached and not member:
            return NotAMember()
        if not cached and not await self._memberships.is_member_per_chat(conversation_id, token):
            return NotAMember()
        if known is not None:
            return AlreadySent(msgspec.json.decode(known, type=MessageView))
        return Cleared()

    def remember_sent(self, user_id: UUID, client_message_id: str, message: MessageView) -> None:
        """Writes the sent record in the background: the ack does not wait for it. The records
        of one loop turn go to Redis together, in one pipeline."""
        record = self._record_key(user_id, client_message_id)
        if not self._unwritten:
            asyncio.get_running_loop().call_soon(self._write_turn)
        self._unwritten[record] = msgspec.json.encode(message)

    async def drain(self) -> None:
        """Waits for the records still being written (before Redis is closed)."""
        self._write_turn()
        if self._writes:
            await asyncio.wait(set(self._writes))

    def _write_turn(self) -> None:
        if not self._unwritten:
            return
        records, self._unwritten = self._unwritten, {}
        task = asyncio.get_running_loop().create_task(self._write(records), name="sent-records")
        self._writes.add(task)
        for record in records:
            self._writing[record] = task
        task.add_done_callback(functools.partial(self._written, list(records)))

    async def _write(self, records: dict[str, bytes]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for record, body in records.items():
                    pipe.set(record, body, ex=SENT_RECORD_SECONDS)
                await pipe.execute()
        except Exception:
            # The acks went out; only an instant answer to a resend is lost (chat still
            # stores the message once).
            _log.exception("sent_record_not_written", records=len(records))

    def _written(self, records: list[str], task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        for record in records:
            if self._writing.get(record) is task:
                del self._writing[record]

    def _record_key(self, user_id: UUID, client_message_id: str) -> str:
        return self._keys.key("gw", "sent", str(user_id), client_message_id)
