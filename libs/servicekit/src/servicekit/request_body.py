"""Decode request bodies and query strings into contract types, or answer 422 naming the field."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web

from servicekit.problems import FieldError, ProblemError, not_found, validation_problem

_LOCATION = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"(?:missing required|contains unknown) field `(?P<name>[^`]+)`")
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


class Body(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """Base of a public JSON body: camelCase on the wire, unknown fields refused."""


class Query(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of a query string model: unknown parameters refused."""


def field_error_from(error: msgspec.ValidationError) -> FieldError:
    """msgspec says ``Expected `str`, got `int` - at `$.email` ``; clients want the field."""
    message = str(error)
    match = _LOCATION.search(message)
    path = match.group("path").lstrip(".") if match else ""
    text = message[: match.start()] if match else message
    missing = _NAMED_FIELD.search(text)
    if missing:
        path = f"{path}.{missing.group('name')}" if path else missing.group("name")
    return FieldError(field=path, message=text)


def decode_json[T](raw: bytes, model: type[T]) -> T:
    decoder = _decoders.get(model)
    if decoder is None:
        decoder = _decoders[model] = msgspec.json.Decoder(model)
    try:
        result: T = decoder.decode(raw)
    except msgspec.ValidationError as error:
        # JSON Schema counts 3.0 as an integer, so a client may send it: retry with such numbers
        # as ints (an int is still accepted where a float is wanted).
        try:
            retried: T = msgspec.convert(_integral_as_int(msgspec.json.decode(raw)), model)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            # Not that, or malformed past the point the typed decoder stopped: the first error.
            raise validation_problem([field_error_from(error)]) from None
        return retried
    except msgspec.DecodeError:
        raise ProblemError(400, "The body is not valid JSON", title="Malformed JSON") from None
    except UnicodeDecodeError:
        # msgspec checks UTF-8 only when it builds a string, so this comes from inside one.
        raise ProblemError(
            400, "The body is not valid UTF-8 JSON", title="Malformed JSON"
        ) from None
    return result


def _integral_as_int(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_as_int(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_as_int(item) for item in value]
    return value


async def read_json[T](request: web.Request, model: type[T]) -> T:
    """The body as ``model``; size is already bounded by the app's ``client_max_size``."""
    # aiohttp reports a missing Content-Type as application/octet-stream; a bare body is JSON.
    if "Content-Type" in request.headers and request.content_type != "application/json":
        raise ProblemError(415, "Send the body as application/json")
    return decode_json(await request.read(), model)


def read_query[T](query: Mapping[str, str], model: type[T]) -> T:
    try:
        return msgspec.convert(dict(query), model, strict=False)
    except msgspec.ValidationError as error:
        raise validation_problem([field_error_from(error)]) from None


def path_id(request: web.Request, name: str, missing: str) -> uuid.UUID:
    """The UUID in the path parameter ``name``; a malformed one is as unknown as a missing one:
    404 with ``missing`` as the detail, never a 500."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise not_found(missing) from None
