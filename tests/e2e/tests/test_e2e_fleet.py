"""The running fleet, seen only through the API gateway (nginx) with real clients.

Covers what exists today: the operational routes of every service, the gateway's own answers
(404 problems, private ``/metrics``, request ids) and the Socket.IO handshake of the two
realtime gateway instances (token checks, revocation, both transports, sticky polling).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt
import pytest
import redis.asyncio as redis

from devstack.waiting import until_equal
from e2e.clients import (
    connected_socket,
    mint_token,
    refusal_message,
    refused_connect,
)
from e2e.fleet import RunningFleet
from servicekit.redis_store import KeySpace
from servicekit.tokens import RevocationList

SERVICES = ("auth", "chat", "gateway", "workers")
PROBLEM = "application/problem+json"
NGINX_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"]}


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


# --- HTTP through the gateway ---------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
async def test_health_and_readiness_answer_through_the_gateway(
    http: aiohttp.ClientSession, service: str
) -> None:
    for route, status in (("healthz", "ok"), ("readyz", "ready")):
        async with http.get(f"/api/{service}/{route}") as response:
            assert response.status == 200, await response.text()
            assert response.content_type == "application/json"
            assert await response.json() == {"status": status, "service": service}


@pytest.mark.parametrize(
    "path",
    [
        "/package.json",  # beside the web client nginx serves at /, and not served
        "/no-such-path",
        "/api",
        "/api/no-such-service/x",
        "/api/auth/healthz/extra",
        "/metrics",
        "/api/auth/metrics",
        "/api/chat/metrics",
        "/api/gateway/metrics",
        "/api/workers/metrics",
    ],
)
async def test_unrouted_paths_and_metrics_answer_404_problems(
    http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(path) as response:
        body = await response.read()
        assert response.status == 404, body
        assert response.content_type == PROBLEM
    problem = json.loads(body)
    assert problem["status"] == 404
    assert problem["title"] == "Not Found"
    assert problem["type"] == "about:blank"
    assert b"# HELP" not in body  # no Prometheus text leaks under any name


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/auth/healthz", 200),
        ("/api/gateway/readyz", 200),
        ("/api/chat/no-such-route", 404),  # answered by the chat service
        ("/no-such-path", 404),  # answered by nginx itself
    ],
)
async def test_client_request_id_comes_back(
    http: aiohttp.ClientSession, path: str, status: int
) -> None:
    request_id = f"e2e-{uuid.uuid4().hex}"
    async with http.get(path, headers={"X-Request-Id": request_id}) as response:
        assert response.status == status
        assert response.headers.getall("X-Request-Id") == [request_id]
        body = await response.json(content_type=None)
    if path.startswith("/api/chat/"):
        assert body["requestId"] == request_id  # the service's problem names it too


async def test_request_id_is_generated_when_absent_or_malformed(
    http: aiohttp.ClientSession,
) -> None:
    seen = []
    for sent in (None, "has spaces and !", "x" * 200):
        headers = {} if sent is None else {"X-Request-Id": sent}
        async with http.get("/api/auth/healthz", headers=headers) as response:
            assert response.status == 200
            ids = response.headers.getall("X-Request-Id")
        assert len(ids) == 1
        assert NGINX_REQUEST_ID.match(ids[0]), ids[0]
        seen.append(ids[0])
    assert len(set(seen)) == len(seen)


# --- Socket.IO handshake ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth", [None, {}, {"token": ""}, {"token": 42}], ids=["none", "empty", "blank", "not-str"]
)
async def test_socket_without_token_is_refused(
    fleet: RunningFleet, transport: str, auth: dict[str, Any] | None
) -> None:
    error, data = await refused_connect(
        fleet.public_url, auth=auth, transports=TRANSPORTS[transport]
    )
    assert refusal_message(data) == "authentication required", (error, data)


def _garbage(fleet: RunningFleet) -> str:
    return "not-a-jwt"


def _expired(fleet: RunningFleet) -> str:
    issued = datetime.now(UTC) - timedelta(hours=2)
    return mint_token(fleet.plan, now=issued, expiration_seconds=3600).token


def _wrong_secret(fleet: RunningFleet) -> str:
    return mint_token(fleet.plan, secret="another-secret-" + "x" * 40).token


def _wrong_audience(fleet: RunningFleet) -> str:
    return mint_token(fleet.plan, audience="someone-else").token


def _wrong_issuer(fleet: RunningFleet) -> str:
    return mint_token(fleet.plan, issuer="not-chat-auth").token


def _unsigned(fleet: RunningFleet) -> str:
    claims = jwt.decode(
        mint_token(fleet.plan).token,
        fleet.plan.jwt_secret,
        algorithms=["HS256"],
        audience="chat-api",
    )
    return jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]


BAD_TOKENS: dict[str, tuple[Callable[[RunningFleet], str], str]] = {
    "garbage": (_garbage, ""),
    "expired": (_expired, "expired"),
    "wrong-secret": (_wrong_secret, "signature"),
    "wrong-audience": (_wrong_audience, "audience"),
    "wrong-issuer": (_wrong_issuer, "issuer"),
    "alg-none": (_unsigned, "alg"),
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_socket_with_bad_token_is_refused(
    fleet: RunningFleet, transport: str, kind: str
) -> None:
    make, hint = BAD_TOKENS[kind]
    error, data = await refused_connect(
        fleet.public_url, auth={"token": make(fleet)}, transports=TRANSPORTS[transport]
    )
    message = refusal_message(data)
    assert message is not None, (error, data)
    assert message.startswith("invalid token: "), message
    assert hint in message.lower(), message


async def test_socket_with_valid_token_connects(fleet: RunningFleet, transport: str) -> None:
    token = mint_token(fleet.plan).token
    async with connected_socket(
        fleet.public_url, auth={"token": token}, transports=TRANSPORTS[transport]
    ) as client:
        assert client.connected
        assert client.transport() == transport
        assert client.get_sid()


async def test_socket_token_in_authorization_header_connects(fleet: RunningFleet) -> None:
    token = mint_token(fleet.plan).token
    async with connected_socket(
        fleet.public_url,
        headers={"Authorization": f"Bearer {token}"},
        transports=["websocket"],
    ) as client:
        assert client.connected


async def test_default_client_upgrades_from_polling_to_websocket(fleet: RunningFleet) -> None:
    token = mint_token(fleet.plan).token
    async with connected_socket(fleet.public_url, auth={"token": token}) as client:
        await until_equal(client.transport, "websocket", timeout=5)
        assert client.connected


@pytest.mark.parametrize("what", ["session", "token"])
async def test_revoked_token_is_refused(
    fleet: RunningFleet, fleet_redis: redis.Redis, transport: str, what: str
) -> None:
    issued = mint_token(fleet.plan)
    auth = {"token": issued.token}
    async with connected_socket(
        fleet.public_url, auth=auth, transports=TRANSPORTS[transport]
    ) as client:
        assert client.connected  # the same token works until it is revoked

    revocations = RevocationList(fleet_redis, KeySpace(fleet.plan.redis_prefix))
    if what == "session":
        await revocations.revoke_session(issued.claims.session_id, 60)
    else:
        await revocations.revoke_token(issued.claims.token_id, 60)

    error, data = await refused_connect(
        fleet.public_url, auth=auth, transports=TRANSPORTS[transport]
    )
    assert refusal_message(data) == "invalid token: token has been revoked", (error, data)

    # Another session of the same user is untouched.
    other = mint_token(fleet.plan, user_id=issued.claims.user_id)
    async with connected_socket(
        fleet.public_url, auth={"token": other.token}, transports=TRANSPORTS[transport]
    ) as client:
        assert client.connected


async def test_polling_clients_stick_to_one_gateway_instance_and_use_both(
    fleet: RunningFleet,
) -> None:
    """nginx hashes the client address: every poll of a session reaches the same instance.

    Clients bind distinct loopback source addresses so the hash spreads them over both
    instances; each connects over long-polling (a handshake GET, the CONNECT POST and polls,
    which fail with "Invalid session" on the wrong instance). This holds only while nginx has
    not counted a failed connect to a gateway (see ``RunningFleet._ready_phases``).
    """
    token = mint_token(fleet.plan).token
    addresses = [f"127.0.0.{host}" for host in range(2, 22)]

    def session_from(address: str) -> Callable[[], aiohttp.ClientSession]:
        def make() -> aiohttp.ClientSession:
            return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))

        return make

    async def one(address: str) -> None:
        async with connected_socket(
            fleet.public_url,
            auth={"token": token},
            transports=["polling"],
            http_session=session_from(address),
        ) as client:
            assert client.connected
            assert client.transport() == "polling"

    await asyncio.gather(*(one(address) for address in addresses))

    upstreams: dict[str, set[str]] = {}
    for entry in fleet.access_log():
        address = str(entry["remoteAddr"])
        if address in addresses and str(entry["uri"]).startswith("/socket.io/"):
            upstreams.setdefault(address, set()).add(str(entry["upstream"]))
    assert set(upstreams) == set(addresses)
    for address, used in upstreams.items():
        assert len(used) == 1, f"{address} was served by {sorted(used)}"
        assert "," not in next(iter(used)), f"{address}: nginx retried on another instance"
    gateway_ports = fleet.plan.service_ports["gateway"]
    assert {upstream for used in upstreams.values() for upstream in used} == {
        f"127.0.0.1:{port}" for port in gateway_ports
    }
