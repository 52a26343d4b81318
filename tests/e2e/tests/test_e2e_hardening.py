"""Abuse and malformed input, through the API gateway with real clients: each refusal is a clear
error that changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import aiohttp

from devstack import sample_images
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

PROBLEM = "application/problem+json"
NOT_UTF8 = b"\xff\xfe"


def with_invalid_utf8(document: dict[str, Any]) -> bytes:
    """The JSON of ``document`` with ``@@`` inside its strings replaced by bytes that are not
    UTF-8: well-formed JSON around a broken string."""
    raw = json.dumps(document).encode().replace(b"@@", NOT_UTF8)
    assert NOT_UTF8 in raw
    return raw


async def test_invalid_utf8_inside_a_json_string_is_a_400_problem_and_changes_nothing(
    http: aiohttp.ClientSession,
) -> None:
    alice, bob = await register(http, tag="u8"), await register(http, tag="u8")
    conversation = await direct_conversation(http, alice, bob)
    auth = {"Authorization": f"Bearer {alice['token']}", "Content-Type": "application/json"}
    plain = {"Content-Type": "application/json"}
    name = alice["user"]["username"]
    attempts: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
        (
            "POST",
            "/api/auth/register",
            {"email": "u8@@x@example.com", "username": "u8@@x", "password": PASSWORD},
            plain,
        ),
        ("POST", "/api/auth/login", {"username": name, "password": "pass@@word"}, plain),
        ("POST", "/api/auth/refresh", {"refreshToken": "token@@"}, plain),
        ("PATCH", "/api/users/me", {"displayName": "Mallory@@"}, auth),
        ("PATCH", "/api/users/me/profile", {"bio": "bio@@"}, auth),
        ("POST", f"/api/chat/{conversation}/messages", {"content": "hello@@"}, auth),
    ]
    for method, path, document, headers in attempts:
        async with http.request(
            method, path, data=with_invalid_utf8(document), headers=headers
        ) as reply:
            body = await reply.json(content_type=None)
            assert reply.status == 400, (path, reply.status, body)
            assert reply.content_type == PROBLEM, path
            assert body["title"] == "Malformed JSON", (path, body)

    async with http.get("/api/auth/me", headers=auth) as reply:
        me = (await reply.json())["user"]
    assert me["displayName"] == alice["user"]["displayName"]
    assert me["profile"].get("bio") is None
    async with http.get(f"/api/chat/{conversation}/messages", headers=auth) as reply:
        assert (await reply.json())["messages"] == []


async def test_a_client_cannot_run_the_servers_connect_or_disconnect_handlers(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob = await register(http, tag="rsv"), await register(http, tag="rsv")
    conversation = await direct_conversation(http, alice, bob)
    await accept(http, bob, conversation)  # both take part: their presence is shared
    async with (
        connected_socket(fleet.public_url, auth={"token": alice["token"]}) as watcher,
        connected_socket(fleet.public_url, auth={"token": bob["token"]}) as bob_socket,
    ):
        for name, data in (("disconnect", None), ("connect", {"token": alice["token"]})):
            ack = await bob_socket.call(name, data, timeout=5)
            assert (ack["ok"], ack["error"]["code"]) == (False, "invalid"), (name, ack)
        assert bob_socket.connected
        # Bob is still online to who shares a conversation with him, and still Bob.
        seen = await watcher.call("presence:get", {"userIds": [bob["user"]["id"]]}, timeout=5)
        assert seen["presence"][bob["user"]["id"]]["online"] is True
        unknown = await bob_socket.call("become", {"user": alice["user"]["id"]}, timeout=5)
        assert (unknown["ok"], unknown["error"]["code"]) == (False, "invalid")


async def test_malformed_socket_calls_are_refused_at_once_not_timed_out(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    for auth in (["token"], "a-token"):
        _, errors = await refused_connect(fleet.public_url, auth=auth)
        assert refusal_message(errors) == "auth must be an object: {token}", auth

    alice, bob = await register(http, tag="mal"), await register(http, tag="mal")
    conversation = await direct_conversation(http, alice, bob)
    async with connected_socket(fleet.public_url, auth={"token": alice["token"]}) as socket:
        started = time.monotonic()
        for payload in (
            {"conversationId": conversation, "content": "a\x00b", "clientMessageId": "nul-1"},
            {"conversationId": conversation, "content": "fine", "clientMessageId": "nul\x00"},
        ):
            ack = await socket.call("message:send", payload, timeout=5)
            assert (ack["ok"], ack["error"]["code"]) == (False, "invalid"), ack
        ack = await socket.call("sync", {"since": {conversation: 2**63}}, timeout=5)
        assert (ack["ok"], ack["error"]["code"]) == (False, "invalid"), ack
        assert time.monotonic() - started < 3  # answered, not left to the 10 s ack timeout
    headers = {"Authorization": f"Bearer {alice['token']}"}
    async with http.get(f"/api/chat/{conversation}/messages", headers=headers) as reply:
        assert (await reply.json())["messages"] == []


async def test_a_cursor_past_the_calendar_and_a_multipart_without_boundary_are_client_errors(
    http: aiohttp.ClientSession,
) -> None:
    alice = await register(http, tag="cur")
    headers = {"Authorization": f"Bearer {alice['token']}"}
    # Microseconds since 1970: before it, and past what a cursor holds (16 digits, year 2286).
    for at in ("-1", "9" * 17):
        params = {"cursor": f"{at}~00000000-0000-4000-8000-000000000000"}
        async with http.get("/api/notifications", headers=headers, params=params) as reply:
            body = await reply.json(content_type=None)
            assert reply.status == 422, (at, reply.status, body)
            assert reply.content_type == PROBLEM
            assert body["errors"][0]["field"] == "cursor"

    upload = {**headers, "Content-Type": "multipart/form-data"}
    async with http.post("/api/media", data=b"--x\r\n\r\nnot a part", headers=upload) as reply:
        body = await reply.json(content_type=None)
        assert reply.status == 400, (reply.status, body)
        assert reply.content_type == PROBLEM


async def test_a_client_message_id_reused_in_another_conversation_is_a_conflict_both_ways(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob, carol = [await register(http, tag="cid") for _ in range(3)]
    with_bob = await direct_conversation(http, alice, bob)
    with_carol = await direct_conversation(http, alice, carol)
    headers = {"Authorization": f"Bearer {alice['token']}"}
    async with connected_socket(fleet.public_url, auth={"token": alice["token"]}) as socket:
        first = {"conversationId": with_bob, "content": "hi bob", "clientMessageId": "reused-1"}
        assert (await socket.call("message:send", first, timeout=10))["ok"] is True
        again = {**first, "conversationId": with_carol, "content": "hi carol"}
        ack = await socket.call("message:send", again, timeout=10)
        assert (ack["ok"], ack["error"]["code"]) == (False, "conflict"), ack
    body = {"content": "hi carol", "clientMessageId": "reused-1"}
    async with http.post(f"/api/chat/{with_carol}/messages", json=body, headers=headers) as reply:
        assert reply.status == 409, await reply.text()
    async with http.get(f"/api/chat/{with_carol}/messages", headers=headers) as reply:
        assert (await reply.json())["messages"] == []


async def test_rest_sends_new_conversations_and_uploads_are_limited_per_user(
    http: aiohttp.ClientSession,
) -> None:
    alice, bob = await register(http, tag="lim"), await register(http, tag="lim")
    conversation = await direct_conversation(http, alice, bob)
    headers = {"Authorization": f"Bearer {alice['token']}"}

    async def send(n: int) -> int:
        body = {"content": f"m{n}", "clientMessageId": f"flood-{n}"}
        path = f"/api/chat/{conversation}/messages"
        async with http.post(path, json=body, headers=headers) as reply:
            if reply.status == 429:
                assert reply.content_type == PROBLEM
                assert int(reply.headers["Retry-After"]) >= 1
            return reply.status

    statuses = await asyncio.gather(*(send(n) for n in range(300)))
    stored = statuses.count(201)
    assert statuses.count(429) > 0, statuses
    assert stored + statuses.count(429) == 300, statuses
    async with http.get(
        f"/api/chat/{conversation}/messages", params={"limit": "100"}, headers=headers
    ) as reply:
        assert len((await reply.json())["messages"]) == min(stored, 100)

    # New conversations: 10 at once, then one every 5 s (RATE_LIMIT_CONVERSATIONS_PER_USER).
    others = [await register(http, tag="lim") for _ in range(12)]
    created = [await direct_conversation_status(http, alice, other) for other in others]
    assert created.count(429) >= 1, created
    assert set(created) <= {200, 201, 429}

    # Uploads: 10 at once, then one every 2 s (RATE_LIMIT_UPLOADS_PER_USER).
    async def upload() -> int:
        form = aiohttp.FormData()
        form.add_field("file", sample_images.png(4, 4), filename="a.png")
        async with http.post("/api/media", data=form, headers=headers) as reply:
            return reply.status

    uploads = await asyncio.gather(*(upload() for _ in range(14)))
    assert uploads.count(429) >= 1, uploads
    assert set(uploads) <= {202, 429}


async def direct_conversation_status(
    http: aiohttp.ClientSession, creator: dict[str, Any], other: dict[str, Any]
) -> int:
    status, _ = await create_direct(http, creator["token"], other["user"]["id"])
    return status


async def test_a_sync_is_capped_and_charged_by_how_many_conversations_it_reads(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice = await register(http, tag="syn")
    since = {str(uuid.uuid4()): 0 for _ in range(100)}
    async with connected_socket(fleet.public_url, auth={"token": alice["token"]}) as socket:
        too_many = {**since, str(uuid.uuid4()): 0}
        ack = await socket.call("sync", {"since": too_many}, timeout=10)
        assert (ack["ok"], ack["error"]["code"]) == (False, "invalid"), ack
        # 100 conversations cost 11 of the socket's 30 event tokens: of four at once (their
        # tokens are taken before any is answered), two pass.
        answers = await asyncio.gather(
            *(socket.call("sync", {"since": since}, timeout=30) for _ in range(4))
        )
    passed = [a for a in answers if a["ok"]]
    assert len(passed) == 2, answers
    assert sorted(passed[0]["notFound"]) == sorted(since)
    assert [a["error"]["code"] for a in answers if not a["ok"]] == ["rate_limited"] * 2


async def test_only_the_fleets_own_origin_may_open_a_socket_from_a_browser(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    handshake = "/socket.io/?EIO=4&transport=polling"
    async with http.get(handshake, headers={"Origin": "https://evil.example"}) as reply:
        assert reply.status == 400, await reply.text()
        assert "Access-Control-Allow-Origin" not in reply.headers
    async with http.get(handshake, headers={"Origin": fleet.public_url}) as reply:
        assert reply.status == 200, await reply.text()
        assert reply.headers["Access-Control-Allow-Origin"] == fleet.public_url
        opened = json.loads((await reply.text())[1:])  # engine.io OPEN: 0{"sid": ...}
    # Close the engine.io session this opened (a CLOSE packet), as a client leaving does.
    async with http.post(
        f"{handshake}&sid={opened['sid']}", data=b"1", headers={"Origin": fleet.public_url}
    ) as reply:
        assert reply.status == 200, await reply.text()


async def test_an_owner_leaving_hands_the_group_on_instead_of_orphaning_it(
    http: aiohttp.ClientSession,
) -> None:
    owner, bob, carol = [await register(http, tag="own") for _ in range(3)]
    body = {"participantIds": [bob["user"]["id"], carol["user"]["id"]], "type": "group"}
    status, created = await create_conversation(http, owner["token"], body)
    assert status == 201, created
    group = created["conversation"]["id"]
    headers = {"Authorization": f"Bearer {owner['token']}"}
    leave = f"/api/chat/{group}/participants/{owner['user']['id']}"
    async with http.delete(leave, headers=headers) as reply:
        assert reply.status == 204, await reply.text()

    bob_headers = {"Authorization": f"Bearer {bob['token']}"}
    async with http.get(f"/api/chat/{group}", headers=bob_headers) as reply:
        participants = (await reply.json())["conversation"]["participants"]
    roles = {p["userId"]: p["role"] for p in participants}
    assert sorted(roles.values()) == ["member", "owner"], roles
    new_owner = next(user for user, role in roles.items() if role == "owner")
    token = bob["token"] if new_owner == bob["user"]["id"] else carol["token"]
    async with http.patch(
        f"/api/chat/{group}",
        json={"title": "Still managed"},
        headers={"Authorization": f"Bearer {token}"},
    ) as reply:
        assert reply.status == 200, await reply.text()


async def test_wrong_passwords_from_one_address_do_not_lock_the_owner_out_elsewhere(
    fleet: RunningFleet, http: aiohttp.ClientSession
) -> None:
    victim = await register(http, tag="lock")
    name = victim["user"]["username"]

    def from_address(address: str) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            base_url=fleet.public_url,
            connector=aiohttp.TCPConnector(local_addr=(address, 0)),
        )

    async with from_address("127.0.0.51") as attacker, from_address("127.0.0.52") as owner:
        for _ in range(10):  # LOGIN_MAX_FAILURES_PER_ACCOUNT
            body = {"username": name, "password": "guess"}
            async with attacker.post("/api/auth/login", json=body) as reply:
                assert reply.status == 401
        body = {"username": name, "password": PASSWORD}
        async with attacker.post("/api/auth/login", json=body) as reply:
            assert reply.status == 429  # this address has guessed enough
            assert reply.content_type == PROBLEM
        async with owner.post("/api/auth/login", json=body) as reply:
            assert reply.status == 200, await reply.text()


async def test_one_user_may_hold_only_so_many_sockets(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice = await register(http, tag="many")
    auth = {"token": alice["token"]}
    async with contextlib.AsyncExitStack() as sockets:
        for _ in range(20):  # MAX_SOCKETS_PER_USER
            await sockets.enter_async_context(connected_socket(fleet.public_url, auth=auth))
        _, errors = await refused_connect(fleet.public_url, auth=auth)
        assert refusal_message(errors) == "too many connections: at most 20 per user"
    # Once they are gone, a new one is welcome again.
    async with connected_socket(fleet.public_url, auth=auth) as again:
        assert again.connected


async def test_a_send_chat_refuses_is_answered_at_once_with_the_reason(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    alice, bob = await register(http, tag="ref"), await register(http, tag="ref")
    conversation = await direct_conversation(http, alice, bob)
    unknown_media = str(uuid.uuid4())
    payload = {
        "conversationId": conversation,
        "content": "see attached",
        "clientMessageId": "with-unknown-media",
        "attachments": [unknown_media],
    }
    async with connected_socket(fleet.public_url, auth={"token": alice["token"]}) as socket:
        started = time.monotonic()
        ack = await socket.call("message:send", payload, timeout=10)
        assert time.monotonic() - started < 3, "answered by chat's refusal, not the ack timeout"
    assert (ack["ok"], ack["error"]["code"]) == (False, "invalid"), ack
    assert "attachments" in ack["error"]["message"]


async def raw_request(fleet: RunningFleet, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Bytes that no HTTP client library would send, straight to the API gateway's port."""
    host, port = fleet.public_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    header_block, _, body = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in header_block.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


async def test_malformed_http_gets_problem_json_from_the_api_gateway(fleet: RunningFleet) -> None:
    host = fleet.public_url.removeprefix("http://")
    requests = {
        "lower-case method": f"get /api/auth/healthz HTTP/1.1\r\nHost: {host}\r\n\r\n",
        "unknown method": f"BREW /api/auth/login HTTP/1.1\r\nHost: {host}\r\n\r\n",
        "TRACE": f"TRACE /api/auth/login HTTP/1.1\r\nHost: {host}\r\n\r\n",
        "NUL in the path": f"GET /api/chat/%00 HTTP/1.1\r\nHost: {host}\r\n\r\n",
        "URL too long": f"GET /api/{'a' * 20000} HTTP/1.1\r\nHost: {host}\r\n\r\n",
        "header too large": (
            f"GET /api/auth/me HTTP/1.1\r\nHost: {host}\r\nX-Big: {'b' * 20000}\r\n\r\n"
        ),
        "bad request line": f"GET\r\nHost: {host}\r\n\r\n",
    }
    for name, head in requests.items():
        status, headers, body = await raw_request(fleet, head.encode())
        assert 400 <= status < 500, (name, status, body[:200])
        assert headers.get("content-type") == PROBLEM, (name, status, headers, body[:200])
        problem = json.loads(body)
        assert problem["status"] == status, (name, problem)
        assert b"<html" not in body.lower(), name
        assert b"BREW" not in body, name  # nothing of the request is echoed back
        assert b"get /api" not in body, name
        if name in ("unknown method", "TRACE"):  # Allow: what the gateway serves at all
            assert status == 405, (name, status)
            assert "PATCH" in headers.get("allow", ""), (name, headers)


async def test_names_are_normalised_and_invisible_or_reordering_text_is_refused(
    http: aiohttp.ClientSession,
) -> None:
    alice, bob = await register(http, tag="txt"), await register(http, tag="txt")
    conversation = await direct_conversation(http, alice, bob)
    headers = {"Authorization": f"Bearer {alice['token']}"}
    for display_name in ("admin\u202etxt.exe", "Ali\u200bce", "\u3164"):
        body = {"displayName": display_name}
        async with http.patch("/api/users/me", json=body, headers=headers) as reply:
            problem = await reply.json(content_type=None)
            assert reply.status == 422, (display_name, problem)
            assert problem["errors"][0]["field"] == "displayName"
    async with http.patch(
        "/api/users/me", json={"displayName": "\uff26\uff55\uff4c\uff4c Width"}, headers=headers
    ) as reply:
        assert (await reply.json())["user"]["displayName"] == "Full Width"

    path = f"/api/chat/{conversation}/messages"
    for content in ("\u200b\u200b\u200b", "ring\x07"):
        async with http.post(path, json={"content": content}, headers=headers) as reply:
            problem = await reply.json(content_type=None)
            assert reply.status == 422, (content, problem)
            assert problem["errors"][0]["field"] == "content"
    async with http.get(path, headers=headers) as reply:
        assert (await reply.json())["messages"] == []


async def test_an_unanswered_conversation_shares_neither_presence_nor_read_markers(
    http: aiohttp.ClientSession, fleet: RunningFleet
) -> None:
    mallory, victim = await register(http, tag="prv"), await register(http, tag="prv")
    body = {"participantIds": [victim["user"]["id"]], "title": "Prize", "type": "group"}
    status, created = await create_conversation(http, mallory["token"], body)
    assert status == 201, created
    group = created["conversation"]["id"]
    mallory_headers = {"Authorization": f"Bearer {mallory['token']}"}
    async with http.post(
        f"/api/chat/{group}/messages", json={"content": "click me"}, headers=mallory_headers
    ) as reply:
        assert reply.status == 201

    async with (
        connected_socket(fleet.public_url, auth={"token": victim["token"]}) as victims,
        connected_socket(fleet.public_url, auth={"token": mallory["token"]}) as probe,
    ):
        read_receipts: list[Any] = []
        probe.on("conversation:read", read_receipts.append)
        victim_headers = {"Authorization": f"Bearer {victim['token']}"}
        async with http.post(
            f"/api/chat/{group}/read", json={"seq": 1}, headers=victim_headers
        ) as reply:
            assert reply.status == 200
        ask = {"userIds": [victim["user"]["id"]]}
        hidden = await probe.call("presence:get", ask, timeout=5)
        assert hidden["notFound"] == [victim["user"]["id"]]
        await asyncio.sleep(0.5)  # a read receipt, were one sent to mallory, arrives by now
        assert read_receipts == []
        async with http.get(f"/api/chat/{group}", headers=mallory_headers) as reply:
            participants = (await reply.json())["conversation"]["participants"]
        assert {p["userId"]: p["lastReadSeq"] for p in participants}[victim["user"]["id"]] == 0

        # The victim answers: from now on both took part, and presence is shared.
        await victims.call(
            "message:send",
            {"conversationId": group, "content": "who are you?", "clientMessageId": "a-1"},
            timeout=10,
        )

        async def presence_shown() -> dict[str, Any] | None:
            answer: dict[str, Any] = await probe.call("presence:get", ask, timeout=5)
            return answer if answer["presence"] else None

        shown = await until(presence_shown, timeout=10, interval=0.1)
        assert shown["presence"][victim["user"]["id"]]["online"] is True
