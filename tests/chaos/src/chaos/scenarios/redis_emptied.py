"""Scenario 3: Redis SIGKILLed and started empty (it keeps nothing on disk). What the fleet
kept in it must come back: revocations from PostgreSQL, presence from the gateways, and rate
limits as they are counted anew."""

from __future__ import annotations

import asyncio
import contextlib
import time

import socketio

from chaos.load import ACK_WAIT_SECONDS, Device, Load, User
from chaos.scenarios.measure import handshake_accepted
from chaos.scenarios.scenario import Faults, Timing, start_again
from chaos.stack import ChaosStack
from e2e.accounts import register


async def redis_restarted_empty(
    stack: ChaosStack, load: Load, timing: Timing, faults: Faults
) -> None:
    watcher, watched = _engaged_pair(load)
    revoked = await _revoked_token(load)
    await asyncio.to_thread(stack.redis.kill)
    faults.note("Redis SIGKILLed and started empty")
    await start_again(stack, stack.redis.start, faults)
    await asyncio.sleep(timing.settle)
    # Revocations come back from Postgres: the signed-out token stays refused.
    for where, status in (await _token_answers(load, revoked)).items():
        if status != 401:
            faults.problems.append(f"a revoked token got {status} from {where} after the restart")
    if await handshake_accepted(load.url, revoked):
        faults.problems.append("a revoked token opened a socket after the restart")
    # Presence comes back: a connected user is shown online to who shares a conversation.
    if not await _shown_online(watcher, watched):
        faults.problems.append("presence of a connected user was not shown after the restart")
    # Rate limits come back: a flood from one socket is still cut short.
    if not await _flood_is_limited(watcher):
        faults.problems.append("a flood of events was not rate limited after the restart")


def _engaged_pair(load: Load) -> tuple[Device, User]:
    first = load.users[0]
    other = next(u for u in load.users[1:] if set(u.conversations) & set(first.conversations))
    return first.devices[0], other


async def _revoked_token(load: Load) -> str:
    registered = await register(load.http, tag="chaosrevoked")
    token = str(registered["token"])
    headers = {"Authorization": f"Bearer {token}"}
    async with load.http.post("/api/auth/logout", headers=headers) as response:
        if response.status != 204:
            raise RuntimeError(f"logout answered {response.status}")
    return token


async def _token_answers(load: Load, token: str) -> dict[str, int]:
    headers = {"Authorization": f"Bearer {token}"}
    answers = {}
    for path in ("/api/auth/me", "/api/chat", "/api/notifications"):
        async with load.http.get(path, headers=headers) as response:
            answers[path] = response.status
    return answers


async def _shown_online(watcher: Device, watched: User, wait: float = 45.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError, socketio.exceptions.SocketIOError):
            ack = await watcher.client.call(
                "presence:get", {"userIds": [watched.id]}, timeout=ACK_WAIT_SECONDS
            )
            if ack.get("ok") and ack["presence"].get(watched.id, {}).get("online"):
                return True
        await asyncio.sleep(0.5)
    return False


async def _flood_is_limited(device: Device, events: int = 80) -> bool:
    acks = await asyncio.gather(
        *(
            device.client.call("presence:get", {"userIds": []}, timeout=ACK_WAIT_SECONDS)
            for _ in range(events)
        ),
        return_exceptions=True,
    )
    return any(
        isinstance(ack, dict) and not ack.get("ok") and ack["error"]["code"] == "rate_limited"
        for ack in acks
    )
