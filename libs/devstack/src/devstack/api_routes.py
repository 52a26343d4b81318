"""The operations an app serves and those its OpenAPI document lists, for each suite's test that
every route of its API is documented (and nothing else is)."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def served_operations(
    app: web.Application, prefix: str, document_path: str
) -> set[tuple[str, str]]:
    """``(method, path)`` of every route ``app`` serves under ``prefix``, the method lower-case
    as OpenAPI writes it; HEAD (aiohttp's twin of each GET) and the document's own URL, which is
    no operation of the API, left out."""
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(prefix)
        and route.resource.canonical != document_path
        and route.method != "HEAD"
    }


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """``(method, path)`` of every operation of an OpenAPI document (a path's shared
    ``parameters`` are no operation)."""
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
