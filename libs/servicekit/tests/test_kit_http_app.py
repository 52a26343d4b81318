"""The app factory: operational routes, request ids and an RFC 9457 problem for every error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from servicekit.http_app import add_readiness_check, create_service_app, json_response
from servicekit.problems import PROBLEM_CONTENT_TYPE, ProblemError
from servicekit.refusals import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    Refusal,
    TooLarge,
    TooMany,
    Unavailable,
    UnsupportedType,
)
from servicekit.request_body import read_json, read_query
from servicekit.settings import HttpSettings

SETTINGS = HttpSettings(
    host="127.0.0.1", port=0, max_body_bytes=1024, shutdown_timeout=1, use_uvloop=False
)
LEAKED_TEXT = "connection to db-primary:5432 refused for user app"

Client = TestClient[web.Request, web.Application]


class Signup(msgspec.Struct, forbid_unknown_fields=True):
    email: str
    age: int


class Page(msgspec.Struct, forbid_unknown_fields=True):
    limit: int = 50


async def echo_size(request: web.Request) -> web.Response:
    return json_response({"size": len(await request.read())})


async def signup(request: web.Request) -> web.Response:
    body = await read_json(request, Signup)
    return json_response({"email": body.email, "age": body.age}, status=201)


async def list_page(request: web.Request) -> web.Response:
    page = read_query(request.query, Page)
    return json_response({"limit": page.limit})


async def conflict(_: web.Request) -> web.Response:
    raise ProblemError(409, "That email is already registered", title="Conflict")


async def crash(_: web.Request) -> web.Response:
    raise RuntimeError(LEAKED_TEXT)


# Each refusal, the status and title it is answered with, and its Retry-After if any.
REFUSALS: dict[str, tuple[Refusal, int, str, str | None]] = {
    "invalid": (
        InvalidInput([FieldError("age", "must be a number")]),
        422,
        "Validation failed",
        None,
    ),
    "unauthenticated": (NotAuthenticated("Who are you?"), 401, "Unauthorized", None),
    "forbidden": (Forbidden("Over quota", title="Quota Exceeded"), 403, "Quota Exceeded", None),
    "not found": (NotFound("No such thing"), 404, "Not Found", None),
    "conflict": (Conflict("Taken"), 409, "Conflict", None),
    "too large": (TooLarge("Too big", title="Content Too Large"), 413, "Content Too Large", None),
    "unsupported": (UnsupportedType("No image"), 415, "Unsupported Media Type", None),
    "too many": (TooMany("Slow down", 0), 429, "Too Many Requests", "1"),
    "unavailable": (Unavailable("Later", 5), 503, "Service Unavailable", "5"),
}


async def refuse(request: web.Request) -> web.Response:
    raise REFUSALS[request.match_info["kind"]][0]


def service_app() -> web.Application:
    app = create_service_app("svc", SETTINGS)
    app.router.add_post("/echo", echo_size)
    app.router.add_post("/signup", signup)
    app.router.add_get("/page", list_page)
    app.router.add_get("/conflict", conflict)
    app.router.add_get("/crash", crash)
    app.router.add_get("/refused/{kind}", refuse)
    return app


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[Client]:
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with serving(service_app()) as started:
        yield started


async def problem_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status
    assert response.content_type == PROBLEM_CONTENT_TYPE
    body: dict[str, Any] = msgspec.json.decode(await response.read())
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    return body


async def test_healthz_answers_ok_json(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {"status": "ok", "service": "svc"}


async def test_readyz_with_no_checks_is_ready(client: Client) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready", "service": "svc"}


async def test_readyz_with_passing_checks_is_ready() -> None:
    app = service_app()

    async def answers() -> bool:
        return True

    add_readiness_check(app, "postgres", answers)
    async with serving(app) as client:
        response = await client.get("/readyz")
        assert response.status == 200


async def test_readyz_names_failing_and_hanging_dependencies() -> None:
    app = service_app()

    async def answers() -> bool:
        return True

    async def refuses() -> None:
        raise ConnectionRefusedError("nobody home")

    async def hangs() -> None:
        await asyncio.sleep(30)

    add_readiness_check(app, "postgres", answers)
    add_readiness_check(app, "redis", refuses)
    add_readiness_check(app, "rabbitmq", hangs)
    async with serving(app) as client:
        started = time.monotonic()
        response = await client.get("/readyz")
        elapsed = time.monotonic() - started
        body = await problem_of(response, 503)
    assert response.headers["Retry-After"] == "5"
    assert "redis" in body["detail"]
    assert "rabbitmq" in body["detail"]
    assert "postgres" not in body["detail"]
    assert body["instance"] == "/readyz"
    assert elapsed < 5, "the hanging probe must be cut off by the readiness timeout"


async def test_metrics_counts_requests_by_route_and_status(client: Client) -> None:
    await client.get("/healthz")
    await client.get("/conflict")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert 'http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'http_requests_total{method="GET",route="/conflict",status="409"} 1.0' in text
    assert "http_request_duration_seconds_bucket" in text


async def test_unknown_path_is_a_404_problem(client: Client) -> None:
    response = await client.get("/nowhere")
    body = await problem_of(response, 404)
    assert body["title"] == "Not Found"
    assert body["instance"] == "/nowhere"
    assert "detail" not in body


async def test_unknown_path_is_counted_as_unmatched(client: Client) -> None:
    await client.get("/nowhere/1")
    text = await (await client.get("/metrics")).text()
    assert 'route="unmatched",status="404"' in text
    assert "/nowhere/1" not in text


async def test_wrong_method_is_a_405_problem_with_allow(client: Client) -> None:
    response = await client.delete("/signup")
    body = await problem_of(response, 405)
    assert body["title"] == "Method Not Allowed"
    assert body["instance"] == "/signup"
    assert response.headers["Allow"] == "POST"


async def test_body_within_the_limit_is_read(client: Client) -> None:
    response = await client.post("/echo", data=b"x" * 1000)
    assert response.status == 200
    assert await response.json() == {"size": 1000}


async def test_body_over_the_limit_is_a_413_problem(client: Client) -> None:
    response = await client.post("/echo", data=b"x" * 4096)
    body = await problem_of(response, 413)
    assert body["instance"] == "/echo"
    assert "1024" in body["detail"]


async def test_json_body_over_the_limit_is_a_413_problem(client: Client) -> None:
    big = msgspec.json.encode({"email": "a@example.com" + "x" * 2048, "age": 3})
    response = await client.post("/signup", data=big, headers={"Content-Type": "application/json"})
    await problem_of(response, 413)


async def test_problem_error_becomes_its_problem(client: Client) -> None:
    response = await client.get("/conflict", headers={"X-Request-Id": "req-409"})
    body = await problem_of(response, 409)
    assert body == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "That email is already registered",
        "instance": "/conflict",
        "requestId": "req-409",
    }


@pytest.mark.parametrize("kind", REFUSALS)
async def test_a_refusal_is_answered_with_the_problem_of_its_kind(
    client: Client, kind: str
) -> None:
    refusal, status, title, retry_after = REFUSALS[kind]
    response = await client.get(f"/refused/{kind}")
    body = await problem_of(response, status)
    assert (body["title"], body["detail"]) == (title, refusal.detail)
    assert body.get("errors") == msgspec.to_builtins(refusal.errors)
    assert response.headers.get("Retry-After") == retry_after


async def test_unhandled_exception_is_a_500_problem_that_leaks_nothing(client: Client) -> None:
    response = await client.get("/crash")
    raw = await response.text()
    body = await problem_of(response, 500)
    assert LEAKED_TEXT not in raw
    assert "RuntimeError" not in raw
    assert body["title"] == "Internal Server Error"
    assert body["instance"] == "/crash"
    assert body["requestId"] == response.headers["X-Request-Id"]


async def test_sent_request_id_is_echoed_and_used_in_problems(client: Client) -> None:
    response = await client.get("/nowhere", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    body = await problem_of(response, 404)
    assert body["requestId"] == "abc-123"


async def test_request_id_is_generated_when_none_is_sent(client: Client) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert len(first.headers["X-Request-Id"]) == 32
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


async def test_read_json_decodes_a_valid_body(client: Client) -> None:
    response = await client.post("/signup", json={"email": "a@example.com", "age": 30})
    assert response.status == 201
    assert await response.json() == {"email": "a@example.com", "age": 30}


async def test_read_json_accepts_a_charset_parameter(client: Client) -> None:
    response = await client.post(
        "/signup",
        data=b'{"email":"a@example.com","age":30}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status == 201


async def test_read_json_accepts_a_body_without_content_type(client: Client) -> None:
    response = await client.post(
        "/signup", data=b'{"email":"a@example.com","age":30}', skip_auto_headers={"Content-Type"}
    )
    assert response.status == 201


async def test_read_json_malformed_is_400(client: Client) -> None:
    response = await client.post(
        "/signup", data=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    body = await problem_of(response, 400)
    assert body["title"] == "Malformed JSON"
    assert body["instance"] == "/signup"


async def test_read_json_wrong_type_is_422_naming_the_field(client: Client) -> None:
    response = await client.post("/signup", json={"email": 42, "age": 30})
    body = await problem_of(response, 422)
    assert body["title"] == "Validation failed"
    assert body["errors"] == [{"field": "email", "message": "Expected `str`, got `int`"}]
    assert body["requestId"] == response.headers["X-Request-Id"]


async def test_read_json_unknown_field_is_422_naming_it(client: Client) -> None:
    response = await client.post(
        "/signup", json={"email": "a@example.com", "age": 30, "isAdmin": True}
    )
    body = await problem_of(response, 422)
    assert [error["field"] for error in body["errors"]] == ["isAdmin"]


async def test_read_json_missing_field_is_422_naming_it(client: Client) -> None:
    response = await client.post("/signup", json={"email": "a@example.com"})
    body = await problem_of(response, 422)
    assert [error["field"] for error in body["errors"]] == ["age"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/octet-stream", "application/x-www-form-urlencoded"]
)
async def test_read_json_wrong_content_type_is_415(client: Client, content_type: str) -> None:
    response = await client.post(
        "/signup",
        data=b'{"email":"a@example.com","age":30}',
        headers={"Content-Type": content_type},
    )
    body = await problem_of(response, 415)
    assert body["title"] == "Unsupported Media Type"


async def test_read_query_bad_integer_is_422_naming_the_parameter(client: Client) -> None:
    assert await (await client.get("/page", params={"limit": "5"})).json() == {"limit": 5}
    response = await client.get("/page", params={"limit": "five"})
    body = await problem_of(response, 422)
    assert body["errors"] == [{"field": "limit", "message": "Expected `int`, got `str`"}]
