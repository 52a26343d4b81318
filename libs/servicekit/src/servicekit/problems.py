"""RFC 9457 problem documents: the one error shape of every HTTP answer."""

from __future__ import annotations

from http import HTTPStatus

import msgspec
from aiohttp import web

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

__all__ = ["FieldError", "Problem", "ProblemError", "problem_for"]

PROBLEM_CONTENT_TYPE = "application/problem+json"


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
    request_id: str | None = msgspec.field(default=None, name="requestId")


_encode = msgspec.json.Encoder().encode


class ProblemError(Exception):
    """Raised anywhere under a handler; the problem middleware turns it into the response."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        type: str = "about:blank",
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title or HTTPStatus(status).phrase)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type
        self.errors = errors
        self.headers = headers or {}

    def to_problem(self, instance: str | None = None, request_id: str | None = None) -> Problem:
        return Problem(
            type=self.type,
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            errors=self.errors,
            request_id=request_id,
        )


def validation_problem(
    errors: list[FieldError], detail: str = "The request is invalid"
) -> ProblemError:
    return ProblemError(422, detail, title="Validation failed", errors=errors)


def not_found(detail: str = "Not found") -> ProblemError:
    return ProblemError(404, detail)


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=problem.status,
        body=_encode(problem),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


_STATUS_OF: dict[type[Refusal], int] = {
    InvalidInput: 422,
    NotAuthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    UnsupportedType: 415,
    TooMany: 429,
    Unavailable: 503,
}


def problem_for(refusal: Refusal) -> ProblemError:
    """The HTTP answer to a use case's refusal: its kind's status, ``Retry-After`` when it
    says when to retry."""
    status = next(s for kind, s in _STATUS_OF.items() if isinstance(refusal, kind))
    headers = {}
    if isinstance(refusal, TooMany | Unavailable):
        headers["Retry-After"] = str(refusal.retry_after_seconds)
    return ProblemError(
        status, refusal.detail, title=refusal.title, errors=refusal.errors, headers=headers
    )
