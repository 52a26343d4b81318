"""Fixtures of auth's integration tests: the real app in-process on a fresh, migrated Postgres
database, with the session's Redis prefix, Mongo wire server and RabbitMQ vhost.

One app per test module (``auth_server``), one HTTP client view per test (``api``) that sends
its requests from an IP address of its own (``X-Forwarded-For``), so the per-IP limits one test
exhausts never throttle another. The limits are small on purpose: the rate-limit tests reach them
in a few requests.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from auth.app import create_app, migration_sets
from auth.config import AuthSettings, load_settings
from devstack.fleet import FleetPlan
from devstack.http_replies import Client, Reply, fetch_reply
from devstack.isolation import IsolatedInfra, free_port
from servicekit.resources import POSTGRES
from servicekit.service_main import migrate
from servicekit.settings import JwtSettings

# Small limits, reached in a few requests by the rate-limit tests; every other test has an IP
# of its own, and every account its own name, so nothing else comes near them.
LIMITS = {
    "LOGIN_MAX_FAILURES_PER_ACCOUNT": "3",
    "LOGIN_MAX_FAILURES_PER_ACCOUNT_ALL_ADDRESSES": "5",
    "LOGIN_MAX_ATTEMPTS_PER_IP": "6",
    "REGISTER_MAX_PER_IP": "3",
}
PASSWORD = "correct horse battery"


def fresh_ip() -> str:
    """A random private (10/8) address, as the proxy in front of auth would report it."""
    return str(ipaddress.IPv4Address(0x0A000000 + secrets.randbelow(0xFFFFFF)))


def token_payload(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (the test only reads what it was given)."""
    segment = token.split(".")[1]
    payload: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return payload


@dataclass
class Account:
    id: str
    email: str
    username: str
    password: str
    token: str
    refresh_token: str
    body: dict[str, Any]

    @property
    def session_id(self) -> str:
        sid: str = token_payload(self.token)["sid"]
        return sid


def new_identity(tag: str = "u") -> tuple[str, str]:
    """A unique (email, username) pair."""
    name = f"{tag}{uuid.uuid4().hex[:12]}"
    return f"{name}@example.com", name


@dataclass
class ChatMediaStandin:
    """Chat's ``GET /api/media/{id}``, which auth asks to check an avatar. A media id the test
    has not described is a ready image of the caller's (so profile tests need no uploads);
    ``described`` answers others, ``missing`` ids are 404."""

    described: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/media/{media_id}", self._media)
        return app

    async def _media(self, request: web.Request) -> web.Response:
        media_id = request.match_info["media_id"]
        if media_id in self.missing:
            return web.json_response({"title": "Not Found"}, status=404)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        caller = token_payload(token)["sub"]
        media = {
            "id": media_id,
            "ownerId": caller,
            "status": "ready",
            "contentType": "image/png",
            "hasThumbnail": True,
            **self.described.get(media_id, {}),
        }
        return web.json_response({"media": media})


@dataclass
class AuthServer:
    app: web.Application
    client: Client
    plan: FleetPlan
    settings: AuthSettings
    database_url: str
    chat: ChatMediaStandin

    @property
    def jwt(self) -> JwtSettings:
        return self.settings.platform.jwt

    @property
    def redis_prefix(self) -> str:
        return self.settings.platform.redis.key_prefix

    async def fetchval(self, query: str, *args: object) -> Any:
        return await self.app[POSTGRES].fetchval(query, *args)

    async def execute(self, query: str, *args: object) -> str:
        return await self.app[POSTGRES].execute(query, *args)

    async def outbox_drained(self, timeout: float = 15.0) -> None:
        """Until the relay has published every event committed so far."""
        async with asyncio.timeout(timeout):
            while await self.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                await asyncio.sleep(0.05)


@dataclass
class Api:
    """One test's view of the server: its requests come from ``ip`` unless told otherwise."""

    client: Client
    ip: str = field(default_factory=fresh_ip)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        ip: str | None = None,
    ) -> Reply:
        sent = {"X-Forwarded-For": ip or self.ip}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        return await fetch_reply(
            self.client, method, path, json=json, data=data, headers=sent, params=params
        )

    @staticmethod
    def identity(tag: str = "u") -> tuple[str, str]:
        return new_identity(tag)

    async def register(
        self,
        *,
        email: str | None = None,
        username: str | None = None,
        password: str = PASSWORD,
        display_name: str | None = None,
        tag: str = "u",
    ) -> Account:
        """A new account, registered from an address of its own (setup is never throttled)."""
        new_email, new_username = new_identity(tag)
        body: dict[str, Any] = {
            "email": email or new_email,
            "username": username or new_username,
            "password": password,
        }
        if display_name is not None:
            body["displayName"] = display_name
        reply = await self.call("POST", "/api/auth/register", json=body, ip=fresh_ip())
        result = reply.ok(201)
        return Account(
            id=result["user"]["id"],
            email=body["email"],
            username=body["username"],
            password=password,
            token=result["token"],
            refresh_token=result["refreshToken"],
            body=result,
        )

    async def login(self, account: Account) -> Account:
        """A second session of ``account``."""
        reply = await self.call(
            "POST",
            "/api/auth/login",
            json={"username": account.username, "password": account.password},
            ip=fresh_ip(),
        )
        result = reply.ok()
        return Account(
            id=account.id,
            email=account.email,
            username=account.username,
            password=account.password,
            token=result["token"],
            refresh_token=result["refreshToken"],
            body=result,
        )


@pytest.fixture(scope="module")
async def auth_server(
    isolated_infra: IsolatedInfra,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[AuthServer]:
    plan = isolated_infra.fleet_plan(Path(tmp_path_factory.mktemp("auth")))
    env = plan.service_env("auth", free_port())
    database_url = await isolated_infra.create_database(f"auth_{uuid.uuid4().hex[:10]}")
    await migrate(database_url, migration_sets())
    chat = ChatMediaStandin()
    async with TestServer(chat.app(), host="127.0.0.1") as chat_server:
        env.update(
            DATABASE_URL=database_url,
            BCRYPT_ROUNDS="4",
            CHAT_URL=str(chat_server.make_url("")).rstrip("/"),
            **LIMITS,
        )
        settings = load_settings(env)
        app = create_app(settings)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield AuthServer(app, client, plan, settings, database_url, chat)


@pytest.fixture
def api(auth_server: AuthServer) -> Api:
    return Api(auth_server.client)


@pytest.fixture
def probe_settle(auth_server: AuthServer) -> Callable[[], Awaitable[None]]:
    """devstack's ``probe`` binds once the outbox has published every earlier event."""
    return auth_server.outbox_drained
