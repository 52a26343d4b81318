"""The aiohttp app factory every service starts from.

It owns what no service should write again: request ids bound to logs, RFC 9457 answers for
every error (404, 405, 413, 422, 500 included), body size limits, Prometheus metrics, and the
``/healthz`` (alive), ``/readyz`` (each dependency really probed) and ``/metrics`` routes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from servicekit.logs import bound_context, get_logger
from servicekit.metrics import ServiceMetrics
from servicekit.problems import Problem, ProblemError, problem_for, problem_response
from servicekit.readiness import DependencyCheck, Probe, failing_dependencies
from servicekit.refusals import Refusal
from servicekit.settings import HttpSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SERVICE_NAME = web.AppKey("service_name", str)
METRICS = web.AppKey("metrics", ServiceMetrics)
READINESS_CHECKS = web.AppKey("readiness_checks", list[DependencyCheck])
REQUEST_ID = web.RequestKey("request_id", str)

_OPERATIONAL_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_encode = msgspec.json.Encoder().encode
_log = get_logger("servicekit.http")


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_encode(body), status=status, content_type="application/json", headers=headers
    )


def add_readiness_check(app: web.Application, name: str, probe: Probe) -> None:
    app[READINESS_CHECKS].append(DependencyCheck(name, probe))


@web.middleware
async def _request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    with bound_context(request_id=request_id, trace_id=request_id):
        response = await handler(request)
    response.headers["X-Request-Id"] = request_id
    return response


@web.middleware
async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProblemError as error:
        return problem_response(
            error.to_problem(request.path, request.get(REQUEST_ID)), error.headers
        )
    except Refusal as refusal:
        answer = problem_for(refusal)
        return problem_response(
            answer.to_problem(request.path, request.get(REQUEST_ID)), answer.headers
        )
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {k: v for k, v in error.headers.items() if k in ("Allow", "Retry-After")}
        detail = (
            error.text if error.text and not error.text.startswith(f"{error.status}:") else None
        )
        problem = Problem(
            type="about:blank",
            title=error.reason,
            status=error.status,
            detail=detail,
            instance=request.path,
            request_id=request.get(REQUEST_ID),
        )
        return problem_response(problem, headers)
    except Exception:
        _log.exception("unhandled_error", method=request.method, path=request.path)
        problem = Problem(
            type="about:blank",
            title="Internal Server Error",
            status=500,
            detail="An unexpected error occurred; the request id identifies it in the logs",
            instance=request.path,
            request_id=request.get(REQUEST_ID),
        )
        return problem_response(problem)


@web.middleware
async def _measured(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    response = await handler(request)
    elapsed = time.perf_counter() - started
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    metrics = request.app[METRICS]
    metrics.http_requests.labels(request.method, route, str(response.status)).inc()
    metrics.http_latency.labels(request.method, route).observe(elapsed)
    # Debug, not info: nginx already writes the access log with the same request id, and a
    # line per request here costs more throughput than the choice of event loop (bench/).
    if request.path not in _OPERATIONAL_PATHS:
        _log.debug(
            "http_request",
            method=request.method,
            route=route,
            status=response.status,
            ms=round(elapsed * 1000, 2),
        )
    return response


async def _healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "service": request.app[SERVICE_NAME]})


async def _readyz(request: web.Request) -> web.Response:
    down = await failing_dependencies(request.app[READINESS_CHECKS])
    if down:
        raise ProblemError(
            503,
            f"Not ready: {', '.join(down)} unavailable",
            title="Service Unavailable",
            headers={"Retry-After": "5"},
        )
    return json_response({"status": "ready", "service": request.app[SERVICE_NAME]})


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_service_app(service: str, http: HttpSettings) -> web.Application:
    """An app with the operational routes and middlewares; the service adds its own routes."""
    app = web.Application(
        client_max_size=http.max_body_bytes,
        middlewares=[_request_context, _measured, _problems],
    )
    app[SERVICE_NAME] = service
    app[METRICS] = ServiceMetrics()
    app[READINESS_CHECKS] = []
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    return app
