"""Auth under test, in-process: the server and its stores (``AuthServer``), one test's HTTP
view of it from an address of its own (``Api``), the accounts it registers, and the stand-in for
chat's media lookup. The fixtures that make them are in ``conftest.py``."""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from auth.config import AuthSettings
from devstack.fleet import FleetPlan
from devstack.http_replies import Client, Reply, fetch_reply
from devstack.waiting import until_equal
from servicekit.resources import POSTGRES
from servicekit.settings import JwtSettings

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

    async def outbox_drained(self) -> None:
        """Until the relay has published every event committed so far."""
        await until_equal(
            lambda: self.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 0
        )


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
