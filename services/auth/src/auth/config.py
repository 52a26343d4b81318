"""Auth settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from servicekit.settings import (
    Environment,
    ExtendsServiceSettings,
    ServiceSettings,
    read_service_settings,
)

SERVICE = "auth"
DEFAULT_PORT = 8001


@dataclass(frozen=True, slots=True)
class LoginLimits:
    account_failures: int
    """Failed logins per account from one address."""
    account_failures_all_addresses: int
    """Failed logins per account from every address together."""
    ip_attempts: int
    ip_registrations: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class AuthSettings(ExtendsServiceSettings):
    service: ServiceSettings
    bcrypt_rounds: int
    bcrypt_max_pending: int
    refresh_token_seconds: int
    limits: LoginLimits
    chat_url: str
    """Chat's REST API: an avatar is checked there, with the user's own token."""


def load_settings(environ: Mapping[str, str] | None = None) -> AuthSettings:
    env = Environment(environ)
    return AuthSettings(
        service=read_service_settings(env, SERVICE, DEFAULT_PORT, postgres=True, mongo=True),
        bcrypt_rounds=env.integer("BCRYPT_ROUNDS", 12, minimum=4, maximum=16),
        bcrypt_max_pending=env.integer("BCRYPT_MAX_PENDING", 32, minimum=1),
        refresh_token_seconds=env.duration("REFRESH_TOKEN_EXPIRATION", "30d"),
        limits=LoginLimits(
            account_failures=env.integer("LOGIN_MAX_FAILURES_PER_ACCOUNT", 10, minimum=1),
            account_failures_all_addresses=env.integer(
                "LOGIN_MAX_FAILURES_PER_ACCOUNT_ALL_ADDRESSES", 100, minimum=1
            ),
            ip_attempts=env.integer("LOGIN_MAX_ATTEMPTS_PER_IP", 100, minimum=1),
            ip_registrations=env.integer("REGISTER_MAX_PER_IP", 20, minimum=1),
            window_seconds=env.duration("LOGIN_LIMIT_WINDOW", "15m"),
        ),
        chat_url=env.url("CHAT_URL", ("http", "https"), "http://127.0.0.1:8002"),
    )
