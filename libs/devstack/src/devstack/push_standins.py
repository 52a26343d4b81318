"""Local servers that speak the push platforms' protocols and check what the real ones check,
so the workers' real adapters can be tested with no outside world (docs/notifications.md).

- ``WebPushReceiver``: a push service (RFC 8030). Its subscriptions hold real P-256 key pairs
  and auth secrets, like a browser's; it verifies each request's VAPID JWT (RFC 8292) against
  the ``k`` key it carries and the expected one, and decrypts the ``aes128gcm`` body (RFC 8291)
  with the subscription's private key.
- ``ApnsStandin``: APNs over HTTP/2 (cleartext, prior knowledge): verifies the ES256 provider
  token against the team's key, its ``kid`` and ``iss``, the topic, push type and payload.
- ``FcmStandin``: Google's OAuth2 token endpoint (verifying the service account's RS256 JWT
  assertion) and FCM's HTTP v1 send, which checks the bearer token and the message's shape.

Each answers ``410``/``UNREGISTERED`` for a device the test marked gone, and can be told to
answer a device's next requests with 5xx statuses (``fail_with``, each in its platform's error
shape, no ``Retry-After``) or ``429`` with ``Retry-After`` (``throttle``, ``retry_after``)
first. Every accepted push is recorded with its decoded payload, every 429 and 5xx answered
with its time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import http_ece  # type: ignore[import-untyped]
import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypercorn.asyncio import serve
from hypercorn.config import Config

from devstack import waiting
from devstack.isolation import free_port


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def p256_private_pem() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key, pem


@dataclass
class Received:
    """One push a stand-in accepted: who it was for and what it said."""

    device: str
    payload: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


@dataclass
class Answered:
    """A request a stand-in answered with a 429 or a 5xx instead of accepting it."""

    device: str
    status: int
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Behaviour:
    received: list[Received] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    throttle: dict[str, int] = field(default_factory=dict)
    """Device -> how many more requests get ``429`` with ``Retry-After: <retry_after>`` first."""
    retry_after: str = "1"
    """The ``Retry-After`` of each 429: delta-seconds or an HTTP date."""
    fail_with: dict[str, list[int]] = field(default_factory=dict)
    """Device -> the statuses (5xx) its next requests are answered with, one each, in order,
    before throttling or accepting (a service in trouble: no ``Retry-After``)."""
    refused: list[str] = field(default_factory=list)
    """Why each refused request was refused (a test asserts it stays empty)."""
    answered_gone: list[str] = field(default_factory=list)
    """The devices each request answered "gone" was for."""
    answered_errors: list[Answered] = field(default_factory=list)
    """Each request answered 429 (``throttle``) or 5xx (``fail_with``), in order."""

    def is_gone(self, device: str) -> bool:
        if device in self.gone:
            self.answered_gone.append(device)
            return True
        return False

    def failing(self, device: str) -> int | None:
        """The 5xx this request of ``device`` is answered with, if one is still due."""
        statuses = self.fail_with.get(device)
        if not statuses:
            return None
        status = statuses.pop(0)
        self.answered_errors.append(Answered(device, status))
        return status

    def throttled(self, device: str) -> bool:
        left = self.throttle.get(device, 0)
        if left > 0:
            self.throttle[device] = left - 1
            self.answered_errors.append(Answered(device, 429))
            return True
        return False

    async def until(self, count: int, seconds: float = 15) -> list[Received]:
        """Once ``count`` pushes were received (request handlers fill ``received``)."""
        await waiting.until(
            lambda: len(self.received) >= count,
            timeout=seconds,
            what=lambda: f"{count} pushes (received {len(self.received)})",
        )
        return self.received


# --- Web Push --------------------------------------------------------------------------------


@dataclass
class Subscription:
    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    def as_json(self) -> dict[str, Any]:
        """What a browser's ``PushSubscription.toJSON()`` gives the app."""
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth_secret)},
        }


class WebPushReceiver(_Behaviour):
    def __init__(self) -> None:
        super().__init__()
        self.vapid_key, self.vapid_private_pem = p256_private_pem()
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self._subscriptions: dict[str, Subscription] = {}

    @property
    def vapid_public_key(self) -> str:
        raw = self.vapid_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(raw)

    def subscribe(self) -> Subscription:
        sub_id = secrets.token_hex(8)
        subscription = Subscription(
            id=sub_id,
            endpoint=f"{self.origin}/push/{sub_id}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth_secret=secrets.token_bytes(16),
        )
        self._subscriptions[sub_id] = subscription
        return subscription

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/push/{id}", self._push)
        return app

    async def _push(self, request: web.Request) -> web.Response:
        sub_id = request.match_info["id"]
        subscription = self._subscriptions.get(sub_id)
        if subscription is None or self.is_gone(sub_id):
            return web.Response(status=410)
        problem = self._vapid_problem(request.headers.get("Authorization", ""))
        if problem is None and request.headers.get("Content-Encoding") != "aes128gcm":
            problem = "Content-Encoding must be aes128gcm"
        if problem is None and not request.headers.get("TTL", "").isdigit():
            problem = "TTL header missing"
        if problem is not None:
            self.refused.append(problem)
            return web.Response(status=401 if "VAPID" in problem else 400, text=problem)
        if (status := self.failing(sub_id)) is not None:
            return web.Response(status=status, text="push service unavailable")
        if self.throttled(sub_id):
            return web.Response(status=429, headers={"Retry-After": self.retry_after})
        try:
            plain = http_ece.decrypt(
                await request.read(),
                private_key=subscription.private_key,
                auth_secret=subscription.auth_secret,
                version="aes128gcm",
            )
        except Exception as error:  # a wrong key or a corrupt body: what a browser drops
            self.refused.append(f"undecryptable: {error!r}")
            return web.Response(status=400, text="cannot decrypt")
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.received.append(Received(sub_id, json.loads(plain), headers))
        return web.Response(status=201)

    def _vapid_problem(self, authorization: str) -> str | None:
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            return "VAPID authorization missing"
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        if fields.get("k") != self.vapid_public_key:
            return "VAPID key is not the application server's"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
        try:
            claims = jwt.decode(
                fields.get("t", ""), public, algorithms=["ES256"], audience=self.origin
            )
        except jwt.PyJWTError as error:
            return f"VAPID JWT invalid: {error}"
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            return "VAPID sub must be mailto: or https:"
        if int(claims.get("exp", 0)) > time.time() + 24 * 3600:
            return "VAPID exp more than 24 hours ahead"
        return None


# --- APNs ------------------------------------------------------------------------------------


APNS_5XX_REASONS = {500: "InternalServerError", 503: "ServiceUnavailable"}


class ApnsStandin(_Behaviour):
    """``https://api.push.apple.com`` as far as a provider can tell, over HTTP/2."""

    def __init__(self, topic: str = "com.example.chat") -> None:
        super().__init__()
        self.key, self.private_pem = p256_private_pem()
        self.key_id = "ABC123DEFG"
        self.team_id = "TEAM123456"
        self.topic = topic
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, answer = self._answer(scope, body)
        payload = json.dumps(answer).encode() if answer else b""
        headers = [(b"apns-id", secrets.token_hex(16).encode())]
        if status == 429:
            headers.append((b"retry-after", self.retry_after.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _answer(  # noqa: PLR0911 - one answer per check, as APNs gives them
        self, scope: dict[str, Any], body: bytes
    ) -> tuple[int, dict[str, str] | None]:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path: str = scope["path"]
        problem = None
        if scope.get("http_version") != "2":
            problem = "HTTP/2 required"
        elif scope["method"] != "POST" or not path.startswith("/3/device/"):
            return 405, {"reason": "MethodNotAllowed"}
        elif (token_problem := self._token_problem(headers.get("authorization", ""))) is not None:
            self.refused.append(token_problem)
            return 403, {"reason": "InvalidProviderToken"}
        elif headers.get("apns-topic") != self.topic:
            problem = "TopicDisallowed"
        elif headers.get("apns-push-type") not in ("alert", "background"):
            problem = "InvalidPushType"
        if problem is not None:
            self.refused.append(problem)
            return 400, {"reason": problem}
        device = path.removeprefix("/3/device/")
        if self.is_gone(device):
            return 410, {"reason": "Unregistered", "timestamp": str(int(time.time() * 1000))}
        if (status := self.failing(device)) is not None:
            return status, {"reason": APNS_5XX_REASONS.get(status, "InternalServerError")}
        if self.throttled(device):
            return 429, {"reason": "TooManyRequests"}
        try:
            payload = json.loads(body)
            assert isinstance(payload.get("aps"), dict)
        except (ValueError, AssertionError):
            self.refused.append("PayloadEmpty or not an aps dictionary")
            return 400, {"reason": "PayloadEmpty"}
        self.received.append(Received(device, payload, headers))
        return 200, None

    def _token_problem(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return "MissingProviderToken"
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self.key.public_key(),
                algorithms=["ES256"],
                options={"require": ["iss", "iat"], "verify_iat": True},
            )
        except jwt.PyJWTError as error:
            return f"InvalidProviderToken: {error}"
        if header.get("kid") != self.key_id or claims["iss"] != self.team_id:
            return "InvalidProviderToken: kid or iss"
        if time.time() - int(claims["iat"]) > 3600:
            return "ExpiredProviderToken"
        return None


# --- FCM -------------------------------------------------------------------------------------


FCM_5XX_CODES = {500: "INTERNAL", 503: "UNAVAILABLE"}


class FcmStandin(_Behaviour):
    def __init__(self, project: str = "chat-fleet-test") -> None:
        super().__init__()
        self.project = project
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._email = f"push@{project}.iam.gserviceaccount.com"
        self._access_tokens: set[str] = set()

    def service_account(self) -> str:
        """The JSON a Firebase console download holds (fields the adapter reads)."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": self.project,
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": self._email,
                "token_uri": f"{self.url}/token",
            }
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post(f"/v1/projects/{self.project}/messages:send", self._send)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            claims = jwt.decode(
                str(form.get("assertion", "")),
                self._key.public_key(),
                algorithms=["RS256"],
                audience=f"{self.url}/token",
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
            )
        except jwt.PyJWTError as error:
            self.refused.append(f"assertion: {error}")
            return web.json_response({"error": "invalid_grant"}, status=400)
        if claims["iss"] != self._email or "firebase.messaging" not in claims["scope"]:
            self.refused.append("assertion: issuer or scope")
            return web.json_response({"error": "invalid_scope"}, status=400)
        token = secrets.token_urlsafe(24)
        self._access_tokens.add(token)
        return web.json_response(
            {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}
        )

    async def _send(self, request: web.Request) -> web.Response:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self._access_tokens:
            self.refused.append("send: unknown access token")
            return _fcm_error(401, "UNAUTHENTICATED", None)
        body = await request.json()
        message = body.get("message") if isinstance(body, dict) else None
        data = message.get("data") if isinstance(message, dict) else None
        token = message.get("token") if isinstance(message, dict) else None
        if not isinstance(token, str) or not isinstance(data, dict):
            self.refused.append("send: message needs token and data")
            return _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
        if not all(isinstance(v, str) for v in data.values()):
            self.refused.append("send: data values must be strings")
            return _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
        if self.is_gone(token):
            return _fcm_error(404, "NOT_FOUND", "UNREGISTERED")
        if (trouble := self._trouble(token)) is not None:
            return trouble
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.received.append(Received(token, dict(data), headers))
        return web.json_response(
            {"name": f"projects/{self.project}/messages/{secrets.token_hex(8)}"}
        )

    def _trouble(self, token: str) -> web.Response | None:
        """A 5xx or a 429 still due for this token, as FCM words them."""
        if (status := self.failing(token)) is not None:
            code = FCM_5XX_CODES.get(status, "INTERNAL")
            return _fcm_error(status, code, code)
        if self.throttled(token):
            response = _fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")
            response.headers["Retry-After"] = self.retry_after
            return response
        return None


def _fcm_error(status: int, code: str, error_code: str | None) -> web.Response:
    details = (
        [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}]
        if error_code
        else []
    )
    return web.json_response(
        {"error": {"code": status, "message": code, "status": code, "details": details}},
        status=status,
    )


# --- all three, running --------------------------------------------------------------------


@dataclass
class PushStandins:
    web_push: WebPushReceiver
    apns: ApnsStandin
    fcm: FcmStandin

    def env(self) -> dict[str, str]:
        """The workers' settings that point their real adapters here, each on one line (as a
        Procfile or a Kubernetes Secret holds them)."""
        vapid_raw = self.web_push.vapid_key.private_numbers().private_value.to_bytes(32, "big")
        apns_body = "".join(
            line for line in self.apns.private_pem.splitlines() if not line.startswith("-----")
        )
        return {
            "VAPID_PRIVATE_KEY": b64url(vapid_raw),
            "VAPID_SUBJECT": "mailto:ops@example.com",
            "WEB_PUSH_ALLOWED_HOSTS": "127.0.0.1",
            "APNS_PRIVATE_KEY": apns_body,
            "APNS_KEY_ID": self.apns.key_id,
            "APNS_TEAM_ID": self.apns.team_id,
            "APNS_TOPIC": self.apns.topic,
            "APNS_URL": self.apns.url,
            "FCM_SERVICE_ACCOUNT": self.fcm.service_account(),
            "FCM_URL": self.fcm.url,
        }


@contextlib.asynccontextmanager
async def running_push_standins() -> AsyncIterator[PushStandins]:
    """All three stand-ins on free loopback ports, until the block ends."""
    standins = PushStandins(WebPushReceiver(), ApnsStandin(), FcmStandin())
    runners = []
    for standin, app in (
        (standins.web_push, standins.web_push.app()),
        (standins.fcm, standins.fcm.app()),
    ):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", standin.port).start()
        runners.append(runner)
    config = Config()
    config.bind = [f"127.0.0.1:{standins.apns.port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("devstack.apns_standin")
    stop = asyncio.Event()
    apns = asyncio.create_task(serve(standins.apns, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        yield standins
    finally:
        stop.set()
        await apns
        for runner in runners:
            await runner.cleanup()
