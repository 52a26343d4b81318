"""Logging: one JSON object per line, request context bound per request, secrets redacted."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from servicekit.logs import bound_context, configure_logging, get_logger
from servicekit.settings import LogSettings

JSON_INFO = LogSettings(level="info", format="json")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging is process-global: give the next test back what this one found."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    access_level = logging.getLogger("aiohttp.access").level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(access_level)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_line_carries_the_bound_request_id_and_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(JSON_INFO, "chat")
    log = get_logger("test.logs")
    with bound_context(request_id="req-1", trace_id="trace-1"):
        log.info("message_sent", conversation="c-1")
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = json_lines(captured.err)
    assert line["event"] == "message_sent"
    assert line["request_id"] == "req-1"
    assert line["trace_id"] == "trace-1"
    assert line["service"] == "chat"
    assert line["conversation"] == "c-1"
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")


def test_bound_context_ends_with_the_block(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(JSON_INFO, "chat")
    log = get_logger("test.logs")
    with bound_context(request_id="outer"):
        with bound_context(request_id="inner"):
            log.info("nested")
        log.info("back_outside")
    log.info("unbound")
    nested, outside, unbound = json_lines(capsys.readouterr().err)
    assert nested["request_id"] == "inner"
    assert outside["request_id"] == "outer"
    assert "request_id" not in unbound


def test_bound_context_is_unbound_after_an_exception(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(JSON_INFO, "chat")
    log = get_logger("test.logs")
    with pytest.raises(RuntimeError), bound_context(request_id="failing"):
        raise RuntimeError("handler failed")
    log.info("after")
    [line] = json_lines(capsys.readouterr().err)
    assert "request_id" not in line


@pytest.mark.parametrize("key", ["password", "token", "secret", "authorization", "refresh_token"])
def test_secret_keys_are_redacted(capsys: pytest.CaptureFixture[str], key: str) -> None:
    configure_logging(JSON_INFO, "auth")
    get_logger("test.logs").info("login_attempt", user="alice", **{key: "hunter2"})
    raw = capsys.readouterr().err
    assert "hunter2" not in raw
    [line] = json_lines(raw)
    assert line[key] == "***"
    assert line["user"] == "alice"


def test_secrets_bound_in_context_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(JSON_INFO, "auth")
    with bound_context(request_id="req-2", token="eyJ.secret.sig"):
        get_logger("test.logs").info("verifying")
    raw = capsys.readouterr().err
    assert "eyJ.secret.sig" not in raw
    [line] = json_lines(raw)
    assert line["token"] == "***"
    assert line["request_id"] == "req-2"


def test_level_filters_lower_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(level="warning", format="json"), "chat")
    log = get_logger("test.logs")
    log.info("chatty")
    log.warning("worth_reading")
    [line] = json_lines(capsys.readouterr().err)
    assert line["event"] == "worth_reading"
    assert line["level"] == "warning"


def test_exception_is_rendered_into_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(JSON_INFO, "chat")
    log = get_logger("test.logs")
    try:
        raise ValueError("bad seq")
    except ValueError:
        log.exception("handler_failed")
    [line] = json_lines(capsys.readouterr().err)
    assert line["level"] == "error"
    assert "ValueError: bad seq" in line["exception"]


def test_standard_library_logs_use_the_same_json_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(JSON_INFO, "chat")
    with bound_context(request_id="req-3"):
        logging.getLogger("aiohttp.server").warning("peer reset %s", "conn-1")
    [line] = json_lines(capsys.readouterr().err)
    assert line["event"] == "peer reset conn-1"
    assert line["logger"] == "aiohttp.server"
    assert line["level"] == "warning"
    assert line["request_id"] == "req-3"
    assert line["service"] == "chat"


def test_access_log_is_quiet_below_warning(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(level="debug", format="json"), "chat")
    logging.getLogger("aiohttp.access").info("GET /healthz 200")
    assert capsys.readouterr().err == ""


def test_console_format_is_readable_text(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(level="info", format="console"), "chat")
    with bound_context(request_id="req-4"):
        get_logger("test.logs").info("started", password="hunter2")
    raw = capsys.readouterr().err
    assert "started" in raw
    assert "req-4" in raw
    assert "hunter2" not in raw
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
