"""Endpoints declared once: the routes they register and the OpenAPI 3.1 document that describes
them, checked for structure, for resolvable references, and against what the routes answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from servicekit.http_app import create_service_app, json_response
from servicekit.openapi import (
    Endpoint,
    add_endpoints,
    openapi_document,
    openapi_route,
    uuid_segment,
)
from servicekit.problems import PROBLEM_CONTENT_TYPE, not_found
from servicekit.request_body import read_json, read_query
from servicekit.settings import HttpSettings

Client = TestClient[web.Request, web.Application]

HTTP = HttpSettings(
    host="127.0.0.1", port=0, max_body_bytes=4096, shutdown_timeout=1, use_uvloop=False
)
SPEC_PATH = "/api/users/openapi.json"
KNOWN_ID = "0b0e7c1e-6d3c-4c83-9a55-6f1b2c1d4e5f"


class Registration(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    email: str
    display_name: str


class Address(msgspec.Struct, rename="camel"):
    postal_code: str


class UserView(msgspec.Struct, rename="camel"):
    user_id: str
    display_name: str
    address: Address | None = None


class UserPage(msgspec.Struct, rename="camel"):
    items: list[UserView]
    next_cursor: str | None = None


class PageQuery(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    page_size: int = 20
    before_id: str | None = None


async def register(request: web.Request) -> web.Response:
    body = await read_json(request, Registration)
    return json_response(UserView(user_id=KNOWN_ID, display_name=body.display_name), status=201)


async def get_user(request: web.Request) -> web.Response:
    if request.match_info["user_id"] != KNOWN_ID:
        raise not_found("No such user")
    return json_response(
        UserView(user_id=KNOWN_ID, display_name="Ada", address=Address(postal_code="N1"))
    )


async def list_users(request: web.Request) -> web.Response:
    query = read_query(request.query, PageQuery)
    items = [UserView(user_id=KNOWN_ID, display_name="Ada")][: query.page_size]
    return json_response(UserPage(items=items, next_cursor=None))


async def delete_user(_: web.Request) -> web.Response:
    return web.Response(status=204)


async def list_names(_: web.Request) -> web.Response:
    return json_response(["Ada"])


ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/users",
        register,
        "Register a user",
        request=Registration,
        responses={201: UserView},
        errors=(409, 422, 429),
        authenticated=False,
        tags=("users",),
    ),
    Endpoint(
        "GET",
        "/api/users/{user_id}",
        get_user,
        "One user",
        responses={200: UserView},
        errors=(401, 404),
        tags=("users",),
    ),
    Endpoint(
        "GET",
        "/api/users",
        list_users,
        "A page of users",
        query=PageQuery,
        responses={200: UserPage},
        errors=(401, 422),
        tags=("users",),
    ),
    Endpoint(
        "DELETE",
        "/api/users/{user_id:[0-9a-f-]{36}}",
        delete_user,
        "Delete a user",
        responses={204: None},
        errors=(401, 404),
        tags=("admin", "users"),
    ),
    Endpoint(
        "GET",
        "/api/names",
        list_names,
        "Every display name",
        responses={200: list[str]},
    ),
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document(
        title="Users", version="1.2.3", endpoints=ENDPOINTS, server_url="http://localhost:8080"
    )


@pytest.fixture
async def client(document: dict[str, Any]) -> AsyncIterator[Client]:
    app = create_service_app("users", HTTP)
    add_endpoints(app, ENDPOINTS)
    app.router.add_routes([openapi_route(SPEC_PATH, document)])
    async with TestClient(TestServer(app, host="127.0.0.1")) as started:
        yield started


def refs_in(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs_in(item)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def validator_for(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """Validates against a schema of the document, its ``#/components/...`` refs resolved."""
    return Draft202012Validator({**schema, "components": document["components"]})


def test_document_head(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Users", "version": "1.2.3"}
    assert document["servers"] == [{"url": "http://localhost:8080"}]
    assert document["tags"] == [{"name": "admin"}, {"name": "users"}]
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }


def test_every_endpoint_appears_with_its_method(document: dict[str, Any]) -> None:
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert set(operations) == {
        ("POST", "/api/users"),
        ("GET", "/api/users"),
        ("GET", "/api/users/{user_id}"),
        # The aiohttp regex is not OpenAPI: the path keeps only the parameter's name.
        ("DELETE", "/api/users/{user_id}"),
        ("GET", "/api/names"),
    }
    assert operations["POST", "/api/users"]["operationId"] == "register"
    assert operations["POST", "/api/users"]["summary"] == "Register a user"
    assert operations["DELETE", "/api/users/{user_id}"]["tags"] == ["admin", "users"]
    assert "tags" not in operations["GET", "/api/names"]
    ids = [op["operationId"] for op in operations.values()]
    assert len(ids) == len(set(ids))


def test_every_ref_resolves_and_every_schema_is_used(document: dict[str, Any]) -> None:
    refs = set(refs_in(document))
    assert refs
    for ref in refs:
        resolve(document, ref)
    schemas = document["components"]["schemas"]
    assert {ref.rsplit("/", 1)[1] for ref in refs} == set(schemas)
    # The query Struct is spelled out as parameters, not published as a body schema.
    assert set(schemas) == {
        "Address",
        "FieldError",
        "Problem",
        "Registration",
        "UserPage",
        "UserView",
    }
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)


def test_request_and_response_bodies(document: dict[str, Any]) -> None:
    users = document["paths"]["/api/users"]
    assert users["post"]["requestBody"] == {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Registration"}}},
    }
    assert users["post"]["responses"]["201"] == {
        "description": "Created",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UserView"}}},
    }
    assert "requestBody" not in users["get"]
    deleted = document["paths"]["/api/users/{user_id}"]["delete"]["responses"]["204"]
    assert deleted == {"description": "No Content"}
    names = document["paths"]["/api/names"]["get"]["responses"]["200"]
    assert names["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"type": "string"},
    }


def test_renames_show_in_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert set(schemas["Registration"]["properties"]) == {"email", "displayName"}
    assert set(schemas["UserView"]["required"]) == {"userId", "displayName"}
    assert "requestId" in schemas["Problem"]["properties"]


def test_problem_responses(document: dict[str, Any]) -> None:
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    register_responses = document["paths"]["/api/users"]["post"]["responses"]
    assert set(register_responses) == {"201", "409", "422", "429"}
    for status in ("409", "422", "429"):
        assert register_responses[status]["content"] == {
            PROBLEM_CONTENT_TYPE: {"schema": problem_ref}
        }
        assert register_responses[status]["description"]
    assert "Retry-After" in register_responses["429"]["headers"]
    assert "headers" not in register_responses["409"]
    get_responses = document["paths"]["/api/users/{user_id}"]["get"]["responses"]
    assert set(get_responses) == {"200", "401", "404"}


def test_security_only_on_authenticated_endpoints(document: dict[str, Any]) -> None:
    security = {
        (method, path): operation.get("security")
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert security.pop(("post", "/api/users")) is None
    assert all(value == [{"bearerAuth": []}] for value in security.values())
    assert "security" not in document  # no global default that public endpoints must undo


def test_path_and_query_parameters(document: dict[str, Any]) -> None:
    by_id = document["paths"]["/api/users/{user_id}"]
    plain = {"type": "string"}
    regex = {"type": "string", "pattern": "^[0-9a-f-]{36}$"}  # {user_id:[0-9a-f-]{36}}
    for operation, schema in ((by_id["get"], plain), (by_id["delete"], regex)):
        assert operation["parameters"] == [
            {"name": "user_id", "in": "path", "required": True, "schema": schema}
        ]
    listed = document["paths"]["/api/users"]["get"]["parameters"]
    assert listed == [
        {
            "name": "pageSize",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "default": 20},
        },
        {
            "name": "beforeId",
            "in": "query",
            "required": False,
            "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
    ]
    assert "parameters" not in document["paths"]["/api/users"]["post"]


def test_document_is_deterministic_and_independent_of_declaration_order(
    document: dict[str, Any],
) -> None:
    again = openapi_document(
        title="Users",
        version="1.2.3",
        endpoints=tuple(reversed(ENDPOINTS)),
        server_url="http://localhost:8080",
    )
    assert msgspec.json.encode(again) == msgspec.json.encode(document)
    assert list(document["paths"]) == sorted(document["paths"])
    assert list(document["components"]["schemas"]) == sorted(document["components"]["schemas"])


def test_ambiguous_declarations_are_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        openapi_document(
            title="x",
            version="1",
            endpoints=[ENDPOINTS[1], Endpoint("GET", "/api/users/{user_id}", list_names, "Again")],
        )
    with pytest.raises(ValueError, match="operationId 'register'"):
        openapi_document(
            title="x",
            version="1",
            endpoints=[ENDPOINTS[0], Endpoint("PUT", "/api/users", register, "Again")],
        )
    with pytest.raises(ValueError, match="upper-case"):
        Endpoint("get", "/x", list_names, "Lower-case method")
    with pytest.raises(ValueError, match="both responses and errors"):
        Endpoint("GET", "/x", list_names, "Clash", responses={404: None}, errors=(404,))


def test_query_must_be_a_struct() -> None:
    with pytest.raises(TypeError, match="Struct"):
        openapi_document(
            title="x",
            version="1",
            endpoints=[Endpoint("GET", "/x", list_names, "Bad", query=dict)],
        )


def test_validates_with_openapi_spec_validator(document: dict[str, Any]) -> None:
    validate(document)


async def test_served_document_equals_the_generated_one(
    client: Client, document: dict[str, Any]
) -> None:
    response = await client.get(SPEC_PATH)
    assert response.status == 200
    assert response.content_type == "application/json"
    assert msgspec.json.decode(await response.read()) == document


async def answers_as_documented(
    response: Any, document: dict[str, Any], path: str, method: str, status: int
) -> None:
    """The status is one the operation lists, and the body fits that status's schema."""
    assert response.status == status
    documented = document["paths"][path][method]["responses"][str(status)]
    if "content" not in documented:
        assert await response.read() == b""
        return
    [(content_type, media)] = documented["content"].items()
    assert response.content_type == content_type
    validator_for(document, media["schema"]).validate(await response.json())


async def test_routes_answer_as_documented(client: Client, document: dict[str, Any]) -> None:
    registration = {"email": "a@b.c", "displayName": "Ada"}
    request_schema = document["paths"]["/api/users"]["post"]["requestBody"]["content"]
    validator_for(document, request_schema["application/json"]["schema"]).validate(registration)

    created = await client.post("/api/users", json=registration)
    await answers_as_documented(created, document, "/api/users", "post", 201)
    invalid = await client.post("/api/users", json={"email": "a@b.c"})
    await answers_as_documented(invalid, document, "/api/users", "post", 422)

    found = await client.get(f"/api/users/{KNOWN_ID}")
    await answers_as_documented(found, document, "/api/users/{user_id}", "get", 200)
    missing = await client.get("/api/users/00000000-0000-0000-0000-000000000000")
    await answers_as_documented(missing, document, "/api/users/{user_id}", "get", 404)

    page = await client.get("/api/users", params={"pageSize": "1"})
    await answers_as_documented(page, document, "/api/users", "get", 200)
    bad_page = await client.get("/api/users", params={"pageSize": "many"})
    await answers_as_documented(bad_page, document, "/api/users", "get", 422)

    deleted = await client.delete(f"/api/users/{KNOWN_ID}")
    await answers_as_documented(deleted, document, "/api/users/{user_id}", "delete", 204)
    # The aiohttp regex still guards the route the spec lists with a plain {user_id}.
    assert (await client.delete("/api/users/not-a-uuid")).status == 405

    names = await client.get("/api/names")
    await answers_as_documented(names, document, "/api/names", "get", 200)


def test_file_uploads_and_binary_bodies_are_described() -> None:
    async def upload(_: web.Request) -> web.Response:
        return json_response(UserView(user_id=KNOWN_ID, display_name="x"), status=202)

    async def picture(_: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG", content_type="image/png")

    document = openapi_document(
        title="Files",
        version="1",
        endpoints=[
            Endpoint("POST", "/files", upload, "Upload", responses={202: UserView}, file_field="f"),
            Endpoint(
                "GET", "/files/{id}", picture, "Bytes", errors=(404,), binary_content="image/*"
            ),
        ],
    )
    validate(document)
    form = document["paths"]["/files"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert form["schema"] == {
        "type": "object",
        "required": ["f"],
        "properties": {"f": {"type": "string", "format": "binary"}},
        "additionalProperties": False,
    }
    ok = document["paths"]["/files/{id}"]["get"]["responses"]["200"]["content"]
    assert ok == {"image/*": {"schema": {"type": "string", "format": "binary"}}}
    assert (
        PROBLEM_CONTENT_TYPE
        in (document["paths"]["/files/{id}"]["get"]["responses"]["404"]["content"])
    )


def test_a_file_part_names_its_content_types() -> None:
    async def upload(_: web.Request) -> web.Response:
        return web.Response(status=202)

    document = openapi_document(
        title="Files",
        version="1",
        endpoints=[
            Endpoint(
                "POST",
                "/files",
                upload,
                "Upload",
                responses={202: None},
                file_field="f",
                file_types=("image/gif", "image/png"),
            )
        ],
    )
    validate(document)
    form = document["paths"]["/files"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert form["encoding"] == {"f": {"contentType": "image/gif, image/png"}}


def _handler(name: str) -> Any:
    async def handler(_: web.Request) -> web.Response:
        return web.Response()

    handler.__name__ = name
    return handler


def test_uuid_segments_are_documented_as_uuids_and_other_regexes_as_patterns() -> None:
    document = openapi_document(
        title="Ids",
        version="1",
        endpoints=[
            Endpoint("GET", "/things/" + uuid_segment("thing_id"), _handler("one"), "One"),
            Endpoint("GET", "/codes/{code:[A-Z]{3}}", _handler("code"), "Code"),
        ],
    )
    validate(document)
    [thing] = document["paths"]["/things/{thing_id}"]["get"]["parameters"]
    assert thing["schema"] == {"type": "string", "format": "uuid"}
    [code] = document["paths"]["/codes/{code}"]["get"]["parameters"]
    assert code["schema"] == {"type": "string", "pattern": "^[A-Z]{3}$"}


async def test_a_uuid_segment_matches_only_a_uuid() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=request.match_info["thing_id"])

    app = web.Application()
    app.router.add_get("/things/" + uuid_segment("thing_id"), handler)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        async with client.get(f"/things/{KNOWN_ID}") as found:
            assert (found.status, await found.text()) == (200, str(KNOWN_ID))
        async with client.get("/things/me") as other:
            assert other.status == 404


def test_creating_operations_link_to_every_operation_taking_what_they_give() -> None:
    thing = "/things/" + uuid_segment("thing_id")
    document = openapi_document(
        title="Links",
        version="1",
        endpoints=[
            Endpoint(
                "POST",
                "/things",
                _handler("create"),
                "Create",
                responses={201: UserView},
                errors=(422,),
                provides={"thing_id": "$response.body#/userId"},
            ),
            Endpoint("GET", thing, _handler("one"), "One", errors=(404,)),
            Endpoint("DELETE", thing, _handler("remove"), "Remove", responses={204: None}),
            Endpoint("GET", thing + "/parts/" + uuid_segment("part_id"), _handler("part"), "Part"),
        ],
    )
    validate(document)
    responses = document["paths"]["/things"]["post"]["responses"]
    links = responses["201"]["links"]
    assert set(links) == {
        op["operationId"] for op in _operations_on(document, "/things/{thing_id}")
    }
    assert all(
        link["parameters"] == {"thing_id": "$response.body#/userId"} for link in links.values()
    )
    assert "links" not in responses["422"]


def _operations_on(document: dict[str, Any], path: str) -> list[dict[str, Any]]:
    return list(document["paths"][path].values())
