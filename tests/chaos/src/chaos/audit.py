"""The audit that ends every scenario: what was acknowledged is stored once, in seq order with
no gap, and every device that stayed connected or synced after reconnecting holds all of it."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.load import Device, Load, Send

DELIVERY_WAIT_SECONDS = 30.0


@dataclass
class Audit:
    sends: int = 0
    acked: int = 0
    unacked: int = 0
    refused: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    undelivered: int = 0
    max_ack_wait: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not (
            self.unacked
            or self.refused
            or self.lost
            or self.duplicated
            or self.out_of_order
            or self.undelivered
        )


async def stored_messages(load: Load, conversation_id: str, token: str) -> list[dict[str, Any]]:
    """Every message of a conversation, in seq order, through the public REST API."""
    found: list[dict[str, Any]] = []
    after = 0
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        path = f"/api/chat/{conversation_id}/messages"
        params = {"after": str(after), "limit": "100"}
        async with load.http.get(path, params=params, headers=headers) as response:
            page = await response.json(content_type=None)
            if response.status != 200:
                raise RuntimeError(f"history of {conversation_id}: {response.status} {page}")
        found.extend(page["messages"])
        if not page["hasMore"] or not page["messages"]:
            return found
        after = int(page["messages"][-1]["seq"])


async def audit(load: Load) -> Audit:
    """Read every conversation back through the API, wait for deliveries to settle, judge."""
    member = {c: u for u in load.users for c in u.conversations}
    stored = {c: await stored_messages(load, c, u.token) for c, u in member.items()}
    expected = {c: {int(m["seq"]) for m in msgs} for c, msgs in stored.items()}
    await _wait_for_delivery(load, expected)
    return judge(load.sends, stored, load.devices)


def judge(
    sends: Sequence[Send], stored: Mapping[str, list[dict[str, Any]]], devices: Sequence[Device]
) -> Audit:
    """The verdict on what was sent, what is stored and what each device holds."""
    result = Audit(sends=len(sends))
    acked = [s for s in sends if s.acked_at is not None]
    result.acked = len(acked)
    result.refused = sum(1 for s in sends if s.refused is not None)
    result.unacked = result.sends - result.acked - result.refused
    result.max_ack_wait = max((s.acked_at - s.first_at for s in acked if s.acked_at), default=0.0)
    result.problems += [f"refused {s.client_message_id}: {s.refused}" for s in sends if s.refused]
    for conversation, messages in stored.items():
        result.stored += len(messages)
        seqs = [int(m["seq"]) for m in messages]
        if seqs != list(range(1, len(seqs) + 1)):
            result.out_of_order += 1
            result.problems.append(f"{conversation}: seqs are not 1..{len(seqs)} in order")
        ids = Counter((m["senderId"], m["clientMessageId"]) for m in messages)
        for (sender, client_id), count in ids.items():
            if count > 1:
                result.duplicated += count - 1
                result.problems.append(f"{sender} {client_id} stored {count} times")
    by_client_id = {
        (m["senderId"], m["clientMessageId"]): m for msgs in stored.values() for m in msgs
    }
    for send in acked:
        kept = by_client_id.get((send.sender_id, send.client_message_id))
        if kept is None or str(kept["id"]) != send.message_id or int(kept["seq"]) != send.seq:
            result.lost += 1
            result.problems.append(f"acked {send.client_message_id} not stored as acked: {kept}")
    for device in devices:
        for conversation in device.user.conversations:
            expected = {int(m["seq"]) for m in stored.get(conversation, [])}
            gap = expected - device.held.get(conversation, set())
            if gap:
                result.undelivered += len(gap)
                result.problems.append(
                    f"device {device.name} lacks {sorted(gap)[:10]} of {conversation}"
                )
        result.duplicated += device.duplicates
        result.problems += [
            f"device {device.name} got seq {seq} of {conversation} twice on one connection"
            for conversation, seq in device.duplicate_seqs[:3]
        ]
    return result


async def _wait_for_delivery(load: Load, expected: dict[str, set[int]]) -> None:
    """Until every device holds every stored message, or the wait runs out."""
    deadline = time.monotonic() + DELIVERY_WAIT_SECONDS
    while time.monotonic() < deadline and any(
        expected[conversation] - device.held.get(conversation, set())
        for device in load.devices
        for conversation in device.user.conversations
    ):
        await asyncio.sleep(0.2)
