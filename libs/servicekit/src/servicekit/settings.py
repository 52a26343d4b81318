"""Typed, frozen settings read once from the environment.

Every service builds its settings through :class:`Environment`, so a bad or missing variable
fails at start with a message that names it, and nothing else in a service reads ``os.environ``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_MIN_SECRET_BYTES = 32

Profile = Literal["development", "test", "production"]


class SettingsError(ValueError):
    """A variable is missing or malformed; the message names it."""


def parse_duration(text: str) -> int:
    """Seconds in ``7d``, ``15m``, ``1h``, ``30s`` or a bare number of seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 7d, 15m, 1h or 3600")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class Environment:
    """Typed reads from one environment mapping, each failing with the variable's name."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, name: str, default: str | None = None) -> str:
        value = self._raw(name)
        if value is not None:
            return value
        if default is None:
            raise SettingsError(f"{name} is required but not set")
        return default

    def optional_str(self, name: str) -> str | None:
        return self._raw(name)

    def integer(
        self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {value!r}") from None
        if number < minimum or (maximum is not None and number > maximum):
            upper = "" if maximum is None else f" and at most {maximum}"
            raise SettingsError(f"{name} must be at least {minimum}{upper}, got {number}")
        return number

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {value!r}") from None
        if number < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, got {number}")
        return number

    def flag(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise SettingsError(f"{name} must be true or false, got {value!r}")

    def duration(self, name: str, default: str) -> int:
        value = self._raw(name) or default
        try:
            seconds = parse_duration(value)
        except ValueError as error:
            raise SettingsError(f"{name}: {error}") from None
        if seconds <= 0:
            raise SettingsError(f"{name} must be longer than zero")
        return seconds

    def url(self, name: str, schemes: tuple[str, ...], default: str | None = None) -> str:
        value = self.text(name, default)
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in schemes:
            raise SettingsError(
                f"{name} must be a {' or '.join(schemes)} URL, got {scheme or value!r}"
            )
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def burst_and_rate(self, name: str, default: str) -> tuple[int, float]:
        """``<burst>:<per second>``, e.g. ``10:5``: up to 10 at once, then 5 a second."""
        value = self.text(name, default)
        burst, _, rate = value.partition(":")
        try:
            parsed = int(burst), float(rate)
        except ValueError:
            raise SettingsError(
                f"{name} must be <burst>:<per second> like 10:5, got {value!r}"
            ) from None
        if parsed[0] < 1 or not parsed[1] > 0:
            raise SettingsError(f"{name} needs a burst of at least 1 and a rate above 0")
        return parsed

    def csv(self, name: str, default: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.text(name, default).split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class HttpSettings:
    host: str
    port: int
    max_body_bytes: int
    shutdown_timeout: float
    use_uvloop: bool


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str
    format: Literal["json", "console"]


@dataclass(frozen=True, slots=True)
class JwtSettings:
    secret: str
    expiration_seconds: int
    issuer: str
    audience: str

    def __repr__(self) -> str:  # the secret never reaches a log line or a traceback
        return (
            f"JwtSettings(secret='***', expiration_seconds={self.expiration_seconds}, "
            f"issuer={self.issuer!r}, audience={self.audience!r})"
        )


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str
    key_prefix: str
    # Connections per process: a burst waits for one instead of opening hundreds, each with
    # buffers of its own (memory per connected socket, in the gateway).
    max_connections: int = 16


@dataclass(frozen=True, slots=True)
class MongoSettings:
    url: str
    database: str


@dataclass(frozen=True, slots=True)
class AmqpSettings:
    url: str
    prefetch: int
    max_retries: int
    retry_delay_ms: int


def read_profile(env: Environment) -> Profile:
    match env.choice("APP_ENV", ("development", "test", "production"), "development"):
        case "production":
            return "production"
        case "test":
            return "test"
        case _:
            return "development"


def read_http(env: Environment, default_port: int) -> HttpSettings:
    return HttpSettings(
        host=env.text("HOST", "0.0.0.0"),  # noqa: S104 - services listen on every interface in a container
        port=env.integer("PORT", default_port, minimum=1, maximum=65535),
        max_body_bytes=env.integer("MAX_BODY_BYTES", 1024 * 1024, minimum=1024),
        shutdown_timeout=env.number("SHUTDOWN_TIMEOUT", 10.0),
        use_uvloop=env.flag("USE_UVLOOP", True),
    )


def read_logs(env: Environment) -> LogSettings:
    level = env.choice("LOG_LEVEL", ("debug", "info", "warning", "error"), "info")
    log_format = env.choice("LOG_FORMAT", ("json", "console"), "json")
    return LogSettings(level=level, format="console" if log_format == "console" else "json")


def read_jwt(env: Environment, profile: Profile) -> JwtSettings:
    secret = env.text("JWT_SECRET")
    if profile != "development" and len(secret.encode()) < _MIN_SECRET_BYTES:
        raise SettingsError(f"JWT_SECRET must be at least {_MIN_SECRET_BYTES} bytes")
    return JwtSettings(
        secret=secret,
        expiration_seconds=env.duration("JWT_EXPIRATION", "7d"),
        issuer=env.text("JWT_ISSUER", "chat-auth"),
        audience=env.text("JWT_AUDIENCE", "chat-api"),
    )


def read_redis(env: Environment) -> RedisSettings:
    return RedisSettings(
        url=env.url("REDIS_URL", ("redis", "rediss", "unix"), "redis://127.0.0.1:6379/0"),
        key_prefix=env.optional_str("REDIS_KEY_PREFIX") or "",
        max_connections=env.integer("REDIS_MAX_CONNECTIONS", 16, minimum=1, maximum=10_000),
    )


def read_mongo(env: Environment, default_database: str) -> MongoSettings:
    return MongoSettings(
        url=env.url(
            "MONGODB_URL",
            ("mongodb", "mongodb+srv"),
            "mongodb://127.0.0.1:27018/?directConnection=true",
        ),
        database=env.text("MONGODB_DATABASE", default_database),
    )


def read_amqp(env: Environment) -> AmqpSettings:
    return AmqpSettings(
        url=env.url("RABBITMQ_URL", ("amqp", "amqps"), "amqp://guest:guest@127.0.0.1:5672/"),
        prefetch=env.integer("AMQP_PREFETCH", 32, minimum=1, maximum=65535),
        max_retries=env.integer("AMQP_MAX_RETRIES", 5, minimum=0, maximum=100),
        retry_delay_ms=env.integer("AMQP_RETRY_DELAY_MS", 2000, minimum=10),
    )


def read_database_url(env: Environment, default_database: str) -> str:
    return env.url(
        "DATABASE_URL",
        ("postgres", "postgresql"),
        f"postgresql://postgres@127.0.0.1:5432/{default_database}",
    )


def read_instance_id(env: Environment) -> str:
    return env.text("INSTANCE_ID", f"{socket.gethostname()}-{os.getpid()}")


@dataclass(frozen=True, slots=True)
class PlatformSettings:
    """What every service reads: identity, HTTP, logs, Redis, broker and token verification."""

    service: str
    profile: Profile
    instance_id: str
    http: HttpSettings
    logs: LogSettings
    redis: RedisSettings
    amqp: AmqpSettings
    jwt: JwtSettings


def read_platform(env: Environment, service: str, default_port: int) -> PlatformSettings:
    profile = read_profile(env)
    return PlatformSettings(
        service=service,
        profile=profile,
        instance_id=read_instance_id(env),
        http=read_http(env, default_port),
        logs=read_logs(env),
        redis=read_redis(env),
        amqp=read_amqp(env),
        jwt=read_jwt(env, profile),
    )


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """The platform settings plus the stores this service owns (``None`` where it owns none)."""

    platform: PlatformSettings
    database_url: str | None
    mongo: MongoSettings | None


def read_service_settings(
    env: Environment, service: str, default_port: int, *, postgres: bool, mongo: bool
) -> ServiceSettings:
    return ServiceSettings(
        platform=read_platform(env, service, default_port),
        database_url=read_database_url(env, service) if postgres else None,
        mongo=read_mongo(env, service) if mongo else None,
    )


class ExtendsServiceSettings:
    """For a service's own settings class that holds ``service: ServiceSettings`` plus more:
    exposes what ``run_service`` reads (``platform``, ``database_url``)."""

    service: ServiceSettings

    @property
    def platform(self) -> PlatformSettings:
        return self.service.platform

    @property
    def database_url(self) -> str | None:
        return self.service.database_url
