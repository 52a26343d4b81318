"""Blocking a user and deleting an account, through the API gateway with real clients."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from devstack.waiting import until
from e2e.accounts import (
    PASSWORD,
    accept,
    create_conversation,
    create_direct,
    direct_conversation,
    register,
)
from e2e.clients import connected_socket, refusal_message, refused_connect
from e2e.fleet import RunningFleet


def bearer(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


async def presence_of(socket: Any, user: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = await socket.call(
        "presence:get", {"userIds": [user["user"]["id"]]}, timeout=5
    )
    assert answer["ok"] is True, answer
    return answer


async def send(http: aiohttp.ClientSession, user: dict[str, Any], conversation: str) -> int:
    async with http.post(
        f"/api/chat/{conversation}/messages", json={"content": "hi"}, headers=bearer(user)
    ) as reply:
        await reply.read()
        return reply.status


async def test_a_block_bars_the_direct_conversation_and_hides_presence_both_ways(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob, carol = [await register(http, tag="blk") for _ in range(3)]
    direct = await direct_conversation(http, alice, bob)
    await accept(http, bob, direct)
    # Carol shares a conversation with Alice too: the control that presence still flows.
    with_carol = await direct_conversation(http, alice, carol)
    await accept(http, carol, with_carol)

    async with (
        connected_socket(fleet.public_url, auth={"token": bob["token"]}) as bobs,
        connected_socket(fleet.public_url, auth={"token": carol["token"]}) as carols,
    ):
        async with connected_socket(fleet.public_url, auth={"token": alice["token"]}) as alices:
            shown = await presence_of(bobs, alice)
            assert shown["presence"][alice["user"]["id"]]["online"] is True

            async with http.put(
                f"/api/chat/blocks/{bob['user']['id']}", headers=bearer(alice)
            ) as reply:
                assert reply.status == 204
            async with http.get("/api/chat/blocks", headers=bearer(alice)) as reply:
                listed = (await reply.json())["blocks"]
            assert [b["userId"] for b in listed] == [bob["user"]["id"]]

            async def hidden_from_bob() -> bool:
                hidden: list[str] = (await presence_of(bobs, alice))["notFound"]
                return hidden == [alice["user"]["id"]]

            await until(hidden_from_bob)
            assert (await presence_of(alices, bob))["notFound"] == [bob["user"]["id"]]

            # Neither writes in the direct conversation, over REST or a socket.
            assert await send(http, bob, direct) == 403
            assert await send(http, alice, direct) == 403
            ack = await bobs.call(
                "message:send",
                {"conversationId": direct, "content": "hey?", "clientMessageId": "b-1"},
                timeout=10,
            )
            assert (ack["ok"], ack["error"]["code"]) == (False, "forbidden"), ack

            # Bob cannot reach Alice anew; to him she reads as unknown.
            status, problem = await create_direct(http, bob["token"], alice["user"]["id"])
            assert status == 422, problem
            assert "unknown users" in str(problem), problem
            group = {"participantIds": [alice["user"]["id"]], "title": "Hi", "type": "group"}
            status, problem = await create_conversation(http, bob["token"], group)
            assert status == 422, problem
            assert "unknown users" in str(problem), problem
            # Alice, who blocked him, is told why.
            group = {"participantIds": [bob["user"]["id"]], "title": "Hi", "type": "group"}
            status, problem = await create_conversation(http, alice["token"], group)
            assert status == 422, problem
            assert "unblock first" in str(problem), problem

            bob_saw: list[Any] = []
            carol_saw: list[Any] = []
            for name in ("user:online", "user:offline"):
                bobs.on(name, lambda data, name=name: bob_saw.append((name, data)))
                carols.on(name, lambda data, name=name: carol_saw.append((name, data)))
        # Alice's only socket closed: Carol learns she went offline, Bob does not.
        await until(lambda: carol_saw)
        await asyncio.sleep(0.5)  # Bob would be told by now, were he told
        assert [name for name, _ in carol_saw] == ["user:offline"]
        assert bob_saw == []

        async with http.delete(
            f"/api/chat/blocks/{bob['user']['id']}", headers=bearer(alice)
        ) as reply:
            assert reply.status == 204
        assert await send(http, bob, direct) == 201

        async def bob_sees_alice_again() -> bool:
            hidden: list[str] = (await presence_of(bobs, alice))["notFound"]
            return hidden == []

        await until(bob_sees_alice_again)


async def test_blocking_refuses_oneself_unknown_users_and_lifting_what_was_not_blocked(
    http: aiohttp.ClientSession,
) -> None:
    alice, bob = await register(http, tag="blk"), await register(http, tag="blk")
    headers = bearer(alice)
    async with http.put(f"/api/chat/blocks/{alice['user']['id']}", headers=headers) as reply:
        assert reply.status == 422
    unknown = "00000000-0000-4000-8000-000000000000"
    async with http.put(f"/api/chat/blocks/{unknown}", headers=headers) as reply:
        assert reply.status == 404
    async with http.delete(f"/api/chat/blocks/{bob['user']['id']}", headers=headers) as reply:
        assert reply.status == 404
    async with http.get("/api/chat/blocks", headers=headers) as reply:
        assert (await reply.json())["blocks"] == []


async def test_a_deleted_account_is_refused_everywhere_and_leaves_its_groups(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob, carol = [await register(http, tag="del") for _ in range(3)]
    direct = await direct_conversation(http, alice, bob)
    assert await send(http, alice, direct) == 201
    body = {"participantIds": [bob["user"]["id"], carol["user"]["id"]], "title": "Trip"}
    status, created = await create_conversation(http, alice["token"], body)
    assert status == 201, created
    group = created["conversation"]["id"]
    login = {"username": alice["user"]["username"], "password": PASSWORD}
    async with http.post("/api/auth/login", json=login) as reply:
        second = await reply.json()  # another device of Alice's
        assert reply.status == 200

    async with connected_socket(fleet.public_url, auth={"token": alice["token"]}) as alices:
        gone = asyncio.Event()
        alices.on("disconnect", lambda *_: gone.set())
        async with http.delete(
            "/api/users/me", json={"password": "not-it-at-all"}, headers=bearer(alice)
        ) as reply:
            assert reply.status == 403
        async with http.get("/api/auth/me", headers=bearer(alice)) as reply:
            assert reply.status == 200  # a wrong password deletes nothing

        async with http.delete(
            "/api/users/me", json={"password": PASSWORD}, headers=bearer(alice)
        ) as reply:
            assert reply.status == 204
        async with asyncio.timeout(10):
            await gone.wait()

    for token in (alice["token"], second["token"]):
        for path in ("/api/auth/me", "/api/chat", "/api/notifications"):
            async with http.get(path, headers={"Authorization": f"Bearer {token}"}) as reply:
                assert reply.status == 401, (path, reply.status)
        _, errors = await refused_connect(fleet.public_url, auth={"token": token})
        assert "invalid token" in (refusal_message(errors) or "")
    async with http.post(
        "/api/auth/refresh", json={"refreshToken": second["refreshToken"]}
    ) as reply:
        assert reply.status == 401
    async with http.post("/api/auth/login", json=login) as reply:
        assert reply.status == 401

    # The others keep the history; the account leaves the group, which keeps an owner.
    async def alice_left_the_group() -> bool:
        async with http.get(f"/api/chat/{group}", headers=bearer(bob)) as reply:
            participants = (await reply.json())["conversation"]["participants"]
        return alice["user"]["id"] not in {p["userId"] for p in participants}

    await until(alice_left_the_group)
    async with http.get(f"/api/chat/{group}", headers=bearer(bob)) as reply:
        roles = [p["role"] for p in (await reply.json())["conversation"]["participants"]]
    assert sorted(roles) == ["member", "owner"]
    async with http.get(f"/api/chat/{direct}/messages", headers=bearer(bob)) as reply:
        history = (await reply.json())["messages"]
    assert [m["senderId"] for m in history] == [alice["user"]["id"]]
    async with http.get(f"/api/chat/{direct}", headers=bearer(bob)) as reply:
        people = {p["userId"]: p for p in (await reply.json())["conversation"]["participants"]}
    assert people[alice["user"]["id"]]["displayName"] == "Deleted account"
    assert await send(http, bob, direct) == 403
    status, problem = await create_direct(http, bob["token"], alice["user"]["id"])
    assert status == 422, problem
    assert "unknown users" in str(problem), problem
