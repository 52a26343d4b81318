"""A service's HTTP API declared once: the routes it registers and the OpenAPI 3.1 document.

A service lists its :class:`Endpoint` values in one tuple; :func:`add_endpoints` puts them on the
router and :func:`openapi_document` describes the same tuple, so the published spec cannot drift
from the routes. Schemas come from the ``msgspec`` Structs the handlers decode and encode
(renames included), errors are RFC 9457 problems (:class:`servicekit.problems.Problem`).

``authenticated`` and ``errors`` describe what the handler does; they do not enforce it. The
handler still verifies the token and raises the problems it declares.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import msgspec
from aiohttp import web

from servicekit.http_app import Handler
from servicekit.problems import PROBLEM_CONTENT_TYPE, Problem

OPENAPI_VERSION = "3.1.0"
SECURITY_SCHEME = "bearerAuth"

_SCHEMA_REF_PREFIX = "#/components/schemas/"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
# aiohttp writes ``{name}`` or ``{name:regex}`` (the regex may hold one level of ``{m,n}``);
# OpenAPI only knows ``{name}``.
_PATH_PARAMETER = re.compile(r"\{(?P<name>[A-Za-z_]\w*)(?::(?P<regex>(?:[^{}]|\{[^{}]*\})*))?\}")
UUID_REGEX = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Endpoint:
    """One route: what aiohttp calls, and everything the spec says about it."""

    method: str
    path: str
    handler: Handler
    summary: str
    request: type | None = None
    """The type of the JSON body (a msgspec Struct), or ``None`` for no body."""
    query: type | None = None
    """A msgspec Struct decoded from the query string; each field is one parameter."""
    responses: Mapping[int, type | None] = field(default_factory=lambda: {200: None})
    """Success status to body type (a Struct, ``list[Struct]``...); ``None`` for no body."""
    errors: tuple[int, ...] = ()
    """Statuses answered with ``application/problem+json``."""
    authenticated: bool = True
    tags: tuple[str, ...] = ()
    file_field: str | None = None
    """The name of the one file part of a ``multipart/form-data`` body (instead of JSON)."""
    file_types: tuple[str, ...] = ()
    """The content types that file part may have (the service may judge them by its bytes)."""
    binary_content: str | None = None
    """The media range of a success body of raw bytes (``image/*``), for responses ``None``."""
    provides: Mapping[str, str] = field(default_factory=dict)
    """Path parameter name to the runtime expression (``$response.body#/conversation/id``,
    ``$request.path.user_id``) giving its value after a success: the document links this
    operation to every operation whose path parameters it gives all of (OpenAPI links, which
    stateful clients and fuzzers follow)."""

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"{self.method!r} is not an upper-case HTTP method")
        if not self.responses:
            raise ValueError(f"{self.method} {self.path} declares no response")
        overlap = set(self.responses) & set(self.errors)
        if overlap:
            raise ValueError(
                f"{self.method} {self.path}: {sorted(overlap)} are both responses and errors"
            )

    @property
    def operation_id(self) -> str:
        name = getattr(self.handler, "__name__", "")
        if name and name != "<lambda>":
            return name
        slug = re.sub(r"\W+", "_", self.path).strip("_")
        return f"{self.method.lower()}_{slug}"


def add_endpoints(app: web.Application, endpoints: Sequence[Endpoint]) -> None:
    for endpoint in endpoints:
        app.router.add_route(endpoint.method, endpoint.path, endpoint.handler)


def openapi_document(
    *,
    title: str,
    version: str,
    endpoints: Sequence[Endpoint],
    server_url: str | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``endpoints``; equal input gives an equal, key-sorted output.

    Raises ``ValueError`` when two endpoints share a method and path, or an operation id (the
    handler's name), since either would make the document ambiguous.
    """
    _check_unique(endpoints)
    schemas = _Schemas(endpoints)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation = _operation(endpoint, schemas)
        _add_links(operation, endpoint, endpoints)
        paths.setdefault(openapi_path(endpoint.path), {})[endpoint.method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version},
    }
    if server_url is not None:
        document["servers"] = [{"url": server_url}]
    tags = sorted({tag for endpoint in endpoints for tag in endpoint.tags})
    if tags:
        document["tags"] = [{"name": tag} for tag in tags]
    document["paths"] = _sorted_deep(paths)
    document["components"] = {
        "schemas": _sorted_deep(schemas.reachable_from(paths)),
        "securitySchemes": {
            SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        },
    }
    return _sorted_deep(document)


def openapi_route(path: str, document: Mapping[str, Any]) -> web.RouteDef:
    """A GET route serving ``document`` as JSON, encoded once; it asks for no token.

    Add it with ``app.router.add_routes([openapi_route(...)])``.
    """
    body = msgspec.json.encode(document, order="sorted")

    async def openapi_json(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return web.get(path, openapi_json)


class _Schemas:
    """Every type the endpoints mention, turned into JSON Schema in one msgspec call.

    One call, so msgspec names the components consistently and resolves name clashes once.
    """

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        types: list[Any] = [Problem]
        for endpoint in endpoints:
            if endpoint.request is not None:
                types.append(endpoint.request)
            if endpoint.query is not None:
                types.append(endpoint.query)
            types.extend(body for body in endpoint.responses.values() if body is not None)
        unique = list(dict.fromkeys(types))
        found, self._components = msgspec.json.schema_components(
            unique, ref_template=_SCHEMA_REF_PREFIX + "{name}"
        )
        self._by_type = dict(zip(unique, found, strict=True))

    def of(self, model: type) -> dict[str, Any]:
        schema: dict[str, Any] = self._by_type[model]
        return schema

    def problem(self) -> dict[str, Any]:
        return self.of(Problem)

    def query_parameters(self, model: type) -> list[dict[str, Any]]:
        info = msgspec.inspect.type_info(model)
        if not isinstance(info, msgspec.inspect.StructType):
            raise TypeError(f"query must be a msgspec Struct, got {model!r}")
        component = self._components[_component_name(self.of(model))]
        return [
            {
                "name": struct_field.encode_name,
                "in": "query",
                "required": struct_field.required,
                "schema": component["properties"][struct_field.encode_name],
            }
            for struct_field in info.fields
        ]

    def reachable_from(self, root: object) -> dict[str, Any]:
        """The components ``root`` refers to, directly or through other components.

        A query Struct is spelled out as parameters, so its own component is left out unless a
        body uses the same type.
        """
        wanted: dict[str, Any] = {}
        pending = list(_schema_refs(root))
        while pending:
            name = pending.pop()
            if name in wanted:
                continue
            wanted[name] = self._components[name]
            pending.extend(_schema_refs(wanted[name]))
        return wanted


def _operation(endpoint: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
    }
    if endpoint.tags:
        operation["tags"] = list(endpoint.tags)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(regex)}
        for name, regex in _PATH_PARAMETER.findall(endpoint.path)
    ]
    if endpoint.query is not None:
        parameters.extend(schemas.query_parameters(endpoint.query))
    if parameters:
        operation["parameters"] = parameters
    if endpoint.request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.of(endpoint.request)}},
        }
    elif endpoint.file_field is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": _file_form(endpoint.file_field, endpoint.file_types)
            },
        }
    responses: dict[str, Any] = {}
    for status, body in endpoint.responses.items():
        response: dict[str, Any] = {"description": _phrase(status)}
        if body is not None:
            response["content"] = {"application/json": {"schema": schemas.of(body)}}
        elif endpoint.binary_content is not None and status < 300 and status != 204:
            response["content"] = {
                endpoint.binary_content: {"schema": {"type": "string", "format": "binary"}}
            }
        responses[str(status)] = response
    for status in endpoint.errors:
        problem: dict[str, Any] = {
            "description": _phrase(status),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": schemas.problem()}},
        }
        if status in _RETRY_AFTER_STATUSES:
            problem["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before trying again",
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
        responses[str(status)] = problem
    operation["responses"] = responses
    if endpoint.authenticated:
        operation["security"] = [{SECURITY_SCHEME: []}]
    return operation


def _add_links(operation: dict[str, Any], source: Endpoint, endpoints: Sequence[Endpoint]) -> None:
    if not source.provides:
        return
    links = {
        target.operation_id: {
            "operationId": target.operation_id,
            "parameters": {name: source.provides[name] for name in needed},
        }
        for target in endpoints
        if target is not source
        and (needed := [name for name, _ in _PATH_PARAMETER.findall(target.path)])
        and set(needed) <= set(source.provides)
    }
    for status, response in operation["responses"].items():
        if links and status.startswith("2"):
            response["links"] = links


def openapi_path(path: str) -> str:
    """An aiohttp path as OpenAPI writes it: ``{name:regex}`` becomes ``{name}``."""
    return _PATH_PARAMETER.sub(r"{\g<name>}", path)


def fill_path(path: str, **values: str) -> str:
    """An aiohttp path with its parameters replaced by ``values``, by name."""
    return _PATH_PARAMETER.sub(lambda match: values[match.group("name")], path)


def uuid_segment(name: str) -> str:
    """A path segment ``{name}`` that only a UUID matches: anything else is no route (404)."""
    return f"{{{name}:{UUID_REGEX}}}"


def _path_schema(regex: str) -> dict[str, Any]:
    if regex == UUID_REGEX:
        return {"type": "string", "format": "uuid"}
    return {"type": "string", "pattern": f"^{regex}$"} if regex else {"type": "string"}


def _file_form(name: str, types: tuple[str, ...]) -> dict[str, Any]:
    media_type: dict[str, Any] = {
        "schema": {
            "type": "object",
            "required": [name],
            "properties": {name: {"type": "string", "format": "binary"}},
            "additionalProperties": False,
        }
    }
    if types:
        media_type["encoding"] = {name: {"contentType": ", ".join(types)}}
    return media_type


def _check_unique(endpoints: Sequence[Endpoint]) -> None:
    routes: set[tuple[str, str]] = set()
    operation_ids: dict[str, Endpoint] = {}
    for endpoint in endpoints:
        route = (endpoint.method, openapi_path(endpoint.path))
        if route in routes:
            raise ValueError(f"{endpoint.method} {endpoint.path} is declared twice")
        routes.add(route)
        earlier = operation_ids.setdefault(endpoint.operation_id, endpoint)
        if earlier is not endpoint:
            raise ValueError(
                f"operationId {endpoint.operation_id!r} is used by {earlier.method} "
                f"{earlier.path} and {endpoint.method} {endpoint.path}; rename a handler"
            )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Status {status}"


def _component_name(ref_schema: Mapping[str, Any]) -> str:
    ref = ref_schema.get("$ref", "")
    if not isinstance(ref, str) or not ref.startswith(_SCHEMA_REF_PREFIX):
        raise TypeError(f"expected a component reference, got {ref_schema!r}")
    return ref.removeprefix(_SCHEMA_REF_PREFIX)


def _schema_refs(node: object) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            # A property may itself be named "$ref"; only a string value is a reference.
            if key == "$ref" and isinstance(value, str) and value.startswith(_SCHEMA_REF_PREFIX):
                yield value.removeprefix(_SCHEMA_REF_PREFIX)
            else:
                yield from _schema_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _schema_refs(item)


def _sorted_deep[T](node: T) -> T:
    """Dicts rebuilt with sorted keys at every level; list order (it means something) kept."""
    if isinstance(node, dict):
        return {key: _sorted_deep(node[key]) for key in sorted(node)}  # type: ignore[return-value]
    if isinstance(node, list):
        return [_sorted_deep(item) for item in node]  # type: ignore[return-value]
    return node
