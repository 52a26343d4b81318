"""HTTP replies of a service under test: one request to an in-process app, read in full, and the
assertions the integration suites make on what it answered (JSON, RFC 9457 problems, the fields
a validation problem names, the pages of a cursor-paged list).

Each suite keeps its own ``Api`` (how it authenticates, where its requests come from); they all
send through ``fetch_reply`` and check with ``Reply``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDictProxy

Client = TestClient[web.Request, web.Application]


@dataclass(frozen=True)
class Reply:
    """A response, read in full before its connection went back to the pool."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def ok(self, status: int = 200) -> Any:
        """The JSON body, after checking the status."""
        assert self.status == status, (self.status, self.body)
        assert self.headers["Content-Type"].startswith("application/json"), self.headers
        return self.json()

    def problem(self, status: int) -> dict[str, Any]:
        """The body, after checking it is an RFC 9457 problem with this status."""
        assert self.status == status, (self.status, self.body)
        assert self.headers["Content-Type"].startswith("application/problem+json"), self.headers
        body: dict[str, Any] = self.json()
        assert body["status"] == status
        assert isinstance(body["title"], str)
        return body

    def field_errors(self, status: int = 422) -> set[str]:
        """The fields a 422 (or 409) problem names."""
        body = self.problem(status)
        return {error["field"] for error in body["errors"]}


async def fetch_reply(
    client: Client,
    method: str,
    path: str,
    *,
    json: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> Reply:
    """Send one request through ``client`` and read its whole reply."""
    async with client.request(
        method, path, json=json, data=data, headers=headers or {}, params=params
    ) as response:
        return Reply(response.status, response.headers, await response.read())


async def every_page(
    fetch: Callable[[dict[str, str]], Awaitable[Reply]],
    items: str,
    limit: int,
    params: dict[str, str] | None = None,
) -> list[Any]:
    """Every item of a cursor-paged list (``{items: [...], "nextCursor": ...}``), fetched page by
    page with ``fetch(params)``, checking each page holds at most ``limit`` and only a full page
    has a next one."""
    found: list[Any] = []
    asked = {**(params or {}), "limit": str(limit)}
    for _ in range(100):
        page = (await fetch(dict(asked))).ok()
        assert set(page) == {items, "nextCursor"}
        assert len(page[items]) <= limit
        found += page[items]
        if page["nextCursor"] is None:
            return found
        assert len(page[items]) == limit  # only a full page has a next one
        asked["cursor"] = page["nextCursor"]
    raise AssertionError("the pages never ended")
