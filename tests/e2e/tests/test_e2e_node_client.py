"""The official JavaScript ``socket.io-client`` (npm) through the API gateway: the seed events.

``tests/e2e/node/seed_events.mjs`` connects two users (A twice: WebSocket-only, and with the
client's default transports, polling then the upgrade), exchanges the seed events and prints
one JSON line of what it observed; this test prepares the users and the conversation through
the REST API and asserts on every observation.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devstack.waiting import until
from e2e.accounts import direct_conversation, register
from e2e.fleet import RunningFleet

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_DIR / "seed_events.mjs"
INSTALL_HINT = "cd tests/e2e/node && npm ci"
SCRIPT_TIMEOUT_SECONDS = 30.0  # the script gives up by itself after 20 s
# auth limits registrations per client address (20 an hour): this test registers from an
# address of its own, so it takes nothing from the budget of the suite's other tests
# (127.0.0.1; test_e2e_fleet uses .2-.21, test_e2e_realtime .30-.41).
REGISTER_ADDRESS = "127.0.0.50"


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js 20 or newer", pytrace=False)
    if not (NODE_DIR / "node_modules" / "socket.io-client" / "package.json").is_file():
        pytest.fail(
            f"socket.io-client is not installed in {NODE_DIR / 'node_modules'}: "
            f"run `{INSTALL_HINT}` (or `make bootstrap`)",
            pytrace=False,
        )
    return node


async def run_seed_events(
    node: str, public_url: str, token_a: str, token_b: str, conversation_id: str
) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        public_url,
        "--token-a",
        token_a,
        "--token-b",
        token_b,
        "--conversation",
        conversation_id,
        cwd=NODE_DIR,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(SCRIPT_TIMEOUT_SECONDS):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        stdout, stderr = await process.communicate()
        pytest.fail(
            f"seed_events.mjs still ran after {SCRIPT_TIMEOUT_SECONDS:.0f} s\n"
            f"stdout: {stdout.decode(errors='replace')}\nstderr: {stderr.decode(errors='replace')}",
            pytrace=False,
        )
    report = f"stdout: {stdout.decode(errors='replace')}\nstderr: {stderr.decode(errors='replace')}"
    if process.returncode != 0:
        pytest.fail(f"seed_events.mjs exited with {process.returncode}\n{report}", pytrace=False)
    lines = stdout.decode().splitlines()
    assert len(lines) == 1, report
    observed: dict[str, Any] = json.loads(lines[0])
    return observed


async def assert_routed_through_the_api_gateway(fleet: RunningFleet, seed_run: str) -> None:
    """nginx logged the run's requests: A's polling session and its upgrade on one instance."""

    def requests() -> list[dict[str, object]]:
        return [e for e in fleet.access_log() if f"seedRun={seed_run}" in str(e["uri"])]

    def websockets() -> list[dict[str, object]]:
        return [e for e in requests() if "transport=websocket" in str(e["uri"])]

    # nginx logs a WebSocket once it is closed.
    await until(lambda: len(websockets()) >= 3, timeout=5, what=lambda: f"3 of {requests()}")
    polling = [e for e in requests() if "transport=polling" in str(e["uri"])]
    assert polling, requests()
    assert {e["status"] for e in polling} == {200}, polling
    assert [e["status"] for e in websockets()] == [101, 101, 101], websockets()
    upgrade = [e for e in websockets() if "sid=" in str(e["uri"])]
    assert len(upgrade) == 1, websockets()
    assert {str(e["upstream"]) for e in polling + upgrade} == {str(upgrade[0]["upstream"])}


async def test_the_official_js_client_exchanges_the_seed_events(fleet: RunningFleet) -> None:
    node = node_executable()
    async with aiohttp.ClientSession(
        base_url=fleet.public_url,
        connector=aiohttp.TCPConnector(local_addr=(REGISTER_ADDRESS, 0)),
        timeout=aiohttp.ClientTimeout(total=10),
    ) as http:
        alice, bob = await asyncio.gather(register(http, tag="js"), register(http, tag="js"))
        conversation_id = await direct_conversation(http, alice, bob)
    alice_id, bob_id = alice["user"]["id"], bob["user"]["id"]

    observed = await run_seed_events(
        node, fleet.public_url, alice["token"], bob["token"], conversation_id
    )

    assert observed["clientVersion"].startswith("4.8."), observed["clientVersion"]
    assert observed["transports"] == {
        "a": ["websocket"],
        "b": ["websocket"],
        "a2": ["polling", "websocket"],  # the client's defaults: long-polling, then the upgrade
    }
    await assert_routed_through_the_api_gateway(fleet, observed["seedRun"])

    # message:send is acked with the stored message; every socket of the room receives it once.
    sent = observed["sent"]
    ack = observed["ack"]
    assert ack["ok"] is True, ack
    message = ack["message"]
    assert message["conversationId"] == conversation_id
    assert message["senderId"] == alice_id
    assert (message["seq"], message["content"]) == (1, sent["content"])
    assert message["clientMessageId"] == sent["clientMessageId"]
    assert message["deletedAt"] is None
    events = observed["events"]
    for name in ("a", "b", "a2"):
        assert events[name]["message:received"] == [message], name

    # Room activity reaches the room's other sockets (the other participant's, and the
    # actor's other device), never the socket that caused it.
    by_alice = {"conversationId": conversation_id, "userId": alice_id}
    by_bob = {"conversationId": conversation_id, "userId": bob_id}
    assert observed["acks"] == {
        "typingStart": {"ok": True},
        "typingStop": {"ok": True},
        "join": {"ok": True},
        "leave": {"ok": True},
    }
    assert events["b"]["user:typing"] == [by_alice]
    assert events["b"]["user:stopped-typing"] == [by_alice]
    assert events["a2"]["user:typing"] == [by_alice]
    assert events["a2"]["user:stopped-typing"] == [by_alice]
    assert events["a"]["user:typing"] == events["a"]["user:stopped-typing"] == []
    for name in ("a", "a2"):
        assert events[name]["user:joined"] == [by_bob], name
        assert events[name]["user:left"] == [by_bob], name
    assert events["b"]["user:joined"] == events["b"]["user:left"] == []

    invalid = observed["invalid"]
    assert (invalid["ok"], invalid["error"]["code"]) == (False, "invalid"), invalid
    assert isinstance(invalid["error"]["message"], str)
    assert invalid["error"]["message"]

    assert observed["sync"] == {
        "ok": True,
        "conversations": {conversation_id: {"messages": [message], "hasMore": False}},
        "notFound": [],
    }
