"""``sync``: what a client missed while away, per conversation, read from chat as the user."""

from __future__ import annotations

import uuid

import msgspec

from contracts.chat_api import ChangePage, MessagePage
from contracts.sockets import SyncChange, SyncConversation, Synced, SyncPayload
from gateway.domain import SocketUser
from gateway.ports import ChatReads

SYNC_PAGE = 100


def sync_cost(payload: SyncPayload) -> int:
    """A ``sync`` asks chat once per conversation and position kind: one token, and one more
    per ten asks."""
    return 1 + (len(payload.since) + len(payload.changes_since)) // 10


class CatchUp:
    def __init__(self, chat: ChatReads, page: int = SYNC_PAGE) -> None:
        self._chat = chat
        self._page = page

    async def sync(self, user: SocketUser, payload: SyncPayload) -> Synced:
        """Every message after the client's last seq and every change after its last
        changeSeq, per conversation, a page of each; a conversation the user may not see (or
        no longer) is named in ``notFound`` and nothing of it is returned."""
        messages: dict[uuid.UUID, MessagePage] = {}
        changes: dict[uuid.UUID, ChangePage] = {}
        missing: set[uuid.UUID] = set()
        for conversation_id, last_seq in payload.since.items():
            page = await self._chat.messages_after(
                user.token, conversation_id, last_seq, self._page
            )
            if page is None:
                missing.add(conversation_id)
            else:
                messages[conversation_id] = page
        for conversation_id, last_change in payload.changes_since.items():
            if conversation_id in missing:
                continue
            changed = await self._chat.changes_after(
                user.token, conversation_id, last_change, self._page
            )
            if changed is None:
                missing.add(conversation_id)
                messages.pop(conversation_id, None)
            else:
                changes[conversation_id] = changed
        return Synced(
            conversations={
                conversation_id: _missed(
                    messages.get(conversation_id), changes.get(conversation_id)
                )
                for conversation_id in {**messages, **changes}
            },
            not_found=sorted(missing),
        )


def _missed(messages: MessagePage | None, changes: ChangePage | None) -> SyncConversation:
    """One conversation's part of the ``sync`` ack: what was asked of it, nothing else."""
    return SyncConversation(
        messages=messages.messages if messages is not None else msgspec.UNSET,
        has_more=messages.has_more if messages is not None else msgspec.UNSET,
        changes=[
            SyncChange(
                change_seq=c.change_seq, event=c.event, data=msgspec.json.decode(c.data), at=c.at
            )
            for c in changes.changes
        ]
        if changes is not None
        else msgspec.UNSET,
        last_change_seq=changes.last_change_seq if changes is not None else msgspec.UNSET,
        has_more_changes=changes.has_more if changes is not None else msgspec.UNSET,
    )
