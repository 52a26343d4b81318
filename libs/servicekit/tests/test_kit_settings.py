"""Settings: every bad or missing variable fails at start with a message naming it."""

from __future__ import annotations

import pytest

from servicekit.settings import (
    Environment,
    JwtSettings,
    Profile,
    SettingsError,
    parse_duration,
    read_jwt,
    read_platform,
)

GOOD_SECRET = "s" * 32
PROFILES: tuple[Profile, ...] = ("development", "test", "production")


def env(**values: str) -> Environment:
    return Environment(values)


def test_missing_required_text_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="JWT_SECRET is required"):
        env().text("JWT_SECRET")


def test_blank_value_counts_as_missing() -> None:
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        env(JWT_SECRET="   ").text("JWT_SECRET")
    assert env(HOST="  ").text("HOST", "localhost") == "localhost"


def test_text_strips_and_returns_the_value() -> None:
    assert env(HOST=" 127.0.0.1 ").text("HOST", "localhost") == "127.0.0.1"


def test_bad_integer_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="PORT must be an integer, got 'eighty'"):
        env(PORT="eighty").integer("PORT", 8080)


@pytest.mark.parametrize("value", ["0", "65536", "-1"])
def test_integer_out_of_range_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match=r"PORT must be at least 1 and at most 65535"):
        env(PORT=value).integer("PORT", 8080, minimum=1, maximum=65535)


def test_integer_default_and_value() -> None:
    assert env().integer("PORT", 8080) == 8080
    assert env(PORT="9000").integer("PORT", 8080, minimum=1, maximum=65535) == 9000


def test_bad_number_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="SHUTDOWN_TIMEOUT must be a number"):
        env(SHUTDOWN_TIMEOUT="soon").number("SHUTDOWN_TIMEOUT", 10.0)
    with pytest.raises(SettingsError, match=r"SHUTDOWN_TIMEOUT must be at least 0\.0"):
        env(SHUTDOWN_TIMEOUT="-1").number("SHUTDOWN_TIMEOUT", 10.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_flag_reads_true_and_false_words(value: str, expected: bool) -> None:
    assert env(USE_UVLOOP=value).flag("USE_UVLOOP", not expected) is expected


def test_bad_flag_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="USE_UVLOOP must be true or false, got 'maybe'"):
        env(USE_UVLOOP="maybe").flag("USE_UVLOOP", True)


def test_url_with_wrong_scheme_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="REDIS_URL must be a redis or rediss URL"):
        env(REDIS_URL="http://localhost:6379").url("REDIS_URL", ("redis", "rediss"))


def test_url_without_scheme_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="REDIS_URL"):
        env(REDIS_URL="localhost:6379").url("REDIS_URL", ("redis",))


def test_url_missing_without_default_is_required() -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL is required"):
        env().url("DATABASE_URL", ("postgresql",))


def test_url_accepts_listed_scheme() -> None:
    url = "rediss://cache:6380/1"
    assert env(REDIS_URL=url).url("REDIS_URL", ("redis", "rediss")) == url


def test_bad_choice_names_the_variable_and_the_choices() -> None:
    with pytest.raises(SettingsError, match="LOG_LEVEL must be one of debug, info, got 'loud'"):
        env(LOG_LEVEL="loud").choice("LOG_LEVEL", ("debug", "info"), "info")


@pytest.mark.parametrize("value", ["soon", "7x", "-5m", "1.5h"])
def test_bad_duration_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="JWT_EXPIRATION"):
        env(JWT_EXPIRATION=value).duration("JWT_EXPIRATION", "7d")


def test_zero_duration_is_refused() -> None:
    with pytest.raises(SettingsError, match="JWT_EXPIRATION must be longer than zero"):
        env(JWT_EXPIRATION="0s").duration("JWT_EXPIRATION", "7d")


def test_csv_splits_and_drops_blanks() -> None:
    assert env(SOCKET_IO_CORS=" a.test, ,b.test ").csv("SOCKET_IO_CORS", "*") == (
        "a.test",
        "b.test",
    )


def test_burst_and_rate_reads_burst_then_rate_and_has_a_default() -> None:
    env = Environment({"LIMIT": " 12:2.5 "})
    assert env.burst_and_rate("LIMIT", "1:1") == (12, 2.5)
    assert env.burst_and_rate("OTHER", "10:5") == (10, 5.0)


@pytest.mark.parametrize("value", ["12", "12:", ":5", "a:b", "0:5", "3:0", "3:-1", "1.5:2"])
def test_bad_burst_and_rate_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="LIMIT"):
        Environment({"LIMIT": value}).burst_and_rate("LIMIT", "1:1")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 604800), ("15m", 900), ("1h", 3600), ("30s", 30), ("3600", 3600), ("2w", 1209600)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "7 days", "1h30m", "abc", "-1s", "1.5h", "7D"])
def test_parse_duration_rejects_junk(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("profile", PROFILES)
def test_jwt_secret_missing_fails_in_every_profile(profile: Profile) -> None:
    with pytest.raises(SettingsError, match="JWT_SECRET is required"):
        read_jwt(env(), profile)


@pytest.mark.parametrize("profile", ["test", "production"])
def test_short_jwt_secret_is_refused_outside_development(profile: Profile) -> None:
    with pytest.raises(SettingsError, match="JWT_SECRET must be at least 32 bytes"):
        read_jwt(env(JWT_SECRET="s" * 31), profile)


def test_short_jwt_secret_is_allowed_in_development() -> None:
    assert read_jwt(env(JWT_SECRET="dev"), "development").secret == "dev"


def test_jwt_defaults() -> None:
    settings = read_jwt(env(JWT_SECRET=GOOD_SECRET), "production")
    assert settings.expiration_seconds == 604800
    assert settings.issuer == "chat-auth"
    assert settings.audience == "chat-api"


def test_jwt_expiration_is_read_as_a_duration() -> None:
    settings = read_jwt(env(JWT_SECRET=GOOD_SECRET, JWT_EXPIRATION="15m"), "test")
    assert settings.expiration_seconds == 900


def test_jwt_settings_repr_hides_the_secret() -> None:
    settings = JwtSettings(
        secret="do-not-print-me", expiration_seconds=60, issuer="i", audience="a"
    )
    assert "do-not-print-me" not in repr(settings)
    assert "do-not-print-me" not in str(settings)
    assert "***" in repr(settings)


def test_platform_defaults() -> None:
    platform = read_platform(env(JWT_SECRET=GOOD_SECRET), "chat", 3002)
    assert platform.service == "chat"
    assert platform.profile == "development"
    assert platform.http.port == 3002
    assert platform.http.use_uvloop is True
    assert platform.http.max_body_bytes == 1024 * 1024
    assert platform.logs.level == "info"
    assert platform.logs.format == "json"
    assert platform.redis.url.startswith("redis://")
    assert platform.redis.key_prefix == ""
    assert platform.amqp.url.startswith("amqp://")
    assert platform.jwt.expiration_seconds == 604800


def test_platform_reads_overrides() -> None:
    platform = read_platform(
        env(
            JWT_SECRET=GOOD_SECRET,
            APP_ENV="production",
            PORT="8081",
            USE_UVLOOP="false",
            LOG_FORMAT="console",
            REDIS_KEY_PREFIX="x:",
            INSTANCE_ID="chat-1",
        ),
        "chat",
        3002,
    )
    assert platform.profile == "production"
    assert platform.http.port == 8081
    assert platform.http.use_uvloop is False
    assert platform.logs.format == "console"
    assert platform.redis.key_prefix == "x:"
    assert platform.instance_id == "chat-1"


def test_platform_bad_profile_names_app_env() -> None:
    with pytest.raises(SettingsError, match="APP_ENV must be one of"):
        read_platform(env(JWT_SECRET=GOOD_SECRET, APP_ENV="staging"), "chat", 3002)


def test_platform_bad_port_names_port() -> None:
    with pytest.raises(SettingsError, match="PORT must be at least 1"):
        read_platform(env(JWT_SECRET=GOOD_SECRET, PORT="70000"), "chat", 3002)
