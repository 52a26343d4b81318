"""``LostStateRestore`` on the real Redis: once Redis has lost what an instance wrote for its
sockets, the instance notices at its next check and writes it again (presence entries, the
presence audience and block pairs, asked of chat as a connect does)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from devstack.infra import delete_prefix
from devstack.isolation import REDIS_URL
from gateway.audience import PresenceAudience
from gateway.chat_client import ChatClient
from gateway.lost_state import LostStateRestore
from gateway.presence import Presence

if TYPE_CHECKING:
    from services.gateway.tests.integration.gateway_rig import ChatStandin, Store

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Held:
    user_id: uuid.UUID
    token: str


async def test_state_lost_with_redis_is_noticed_once_and_written_again(
    store: Store, chat_standin: ChatStandin
) -> None:
    alice, bob = Held(uuid.uuid4(), "token-alice"), Held(uuid.uuid4(), "token-bob")
    conversation = uuid.uuid4()
    chat_standin.listed = {alice.token: [conversation], bob.token: [conversation]}
    presence = Presence(store.redis, store.keys)
    audience = PresenceAudience(store.redis, store.keys)
    async with (
        TestServer(chat_standin.app(), host="127.0.0.1") as server,
        aiohttp.ClientSession() as http,
    ):
        restore = LostStateRestore(
            redis=store.redis,
            keys=store.keys,
            instance_id="gateway-lost-state",
            presence=presence,
            audience=audience,
            chat=ChatClient(http, str(server.make_url("")).rstrip("/")),
        )
        sockets = [("sid-a", alice), ("sid-b", bob)]
        assert await restore.lost() is False  # the first check writes the marker
        for sid, held in sockets:
            await presence.connected(held.user_id, sid)
            await audience.remember(held.user_id, [conversation])
        assert await audience.visible_to(bob.user_id, [alice.user_id]) == {alice.user_id}
        assert await restore.lost() is False

        await delete_prefix(REDIS_URL, store.prefix)  # Redis restarted empty
        assert await audience.visible_to(bob.user_id, [alice.user_id]) == set()
        assert await restore.lost() is True
        assert await restore.lost() is False  # noticed once
        await restore.restore(sockets)

    assert await audience.visible_to(bob.user_id, [alice.user_id]) == {alice.user_id}
    online = await presence.online([alice.user_id, bob.user_id])
    assert all(seen is None for seen in online.values()), online  # online: no last-seen time
    assert set(online) == {alice.user_id, bob.user_id}
