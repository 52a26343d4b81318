"""Request bodies and query strings: decoded into typed models, or a 422 naming the field."""

from __future__ import annotations

import msgspec
import pytest

from servicekit.problems import FieldError, ProblemError
from servicekit.request_body import decode_json, field_error_from, read_query


class Item(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class Data(msgspec.Struct, forbid_unknown_fields=True):
    items: list[Item]


class Envelope(msgspec.Struct, forbid_unknown_fields=True):
    data: Data


class Page(msgspec.Struct, forbid_unknown_fields=True):
    limit: int = 50
    before: int | None = None


def validation_error(raw: bytes, model: type[object]) -> msgspec.ValidationError:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(raw, type=model)
    return caught.value


def only_error(problem: ProblemError) -> FieldError:
    assert problem.errors is not None
    assert len(problem.errors) == 1
    return problem.errors[0]


def test_wrong_type_in_a_nested_path_names_the_full_path() -> None:
    error = field_error_from(validation_error(b'{"data":{"items":[{"name":1}]}}', Envelope))
    assert error.field == "data.items[0].name"
    assert error.message == "Expected `str`, got `int`"


def test_missing_nested_field_names_the_field_under_its_parent() -> None:
    error = field_error_from(validation_error(b'{"data":{"items":[{}]}}', Envelope))
    assert error.field == "data.items[0].name"
    assert "missing required field" in error.message


def test_unknown_nested_field_names_the_field_under_its_parent() -> None:
    error = field_error_from(
        validation_error(b'{"data":{"items":[{"name":"a","colour":"red"}]}}', Envelope)
    )
    assert error.field == "data.items[0].colour"
    assert "unknown field" in error.message


def test_missing_top_level_field_is_named() -> None:
    error = field_error_from(validation_error(b"{}", Envelope))
    assert error.field == "data"
    assert error.message == "Object missing required field `data`"


def test_unknown_top_level_field_is_named() -> None:
    error = field_error_from(validation_error(b'{"data":{"items":[]},"admin":true}', Envelope))
    assert error.field == "admin"


def test_error_with_no_location_has_an_empty_field() -> None:
    error = field_error_from(validation_error(b"[]", Envelope))
    assert error.field == ""
    assert error.message.startswith("Expected `object`")


def test_decode_json_returns_the_model() -> None:
    decoded = decode_json(b'{"data":{"items":[{"name":"a"}]}}', Envelope)
    assert decoded == Envelope(Data([Item("a")]))


def test_decode_json_malformed_is_400() -> None:
    with pytest.raises(ProblemError) as caught:
        decode_json(b'{"data":', Envelope)
    assert caught.value.status == 400
    assert caught.value.title == "Malformed JSON"


@pytest.mark.parametrize(
    "raw", [b'{"data":{"items":[{"name":"\xff\xfe"}]}}', b'{"data":{"items":[{"name":"a\xc3"}]}}']
)
def test_invalid_utf8_inside_a_string_is_400_not_a_server_error(raw: bytes) -> None:
    with pytest.raises(ProblemError) as caught:
        decode_json(raw, Envelope)
    assert caught.value.status == 400
    assert caught.value.title == "Malformed JSON"


def test_decode_json_invalid_is_422_with_the_field() -> None:
    with pytest.raises(ProblemError) as caught:
        decode_json(b'{"data":{"items":"nope"}}', Envelope)
    assert caught.value.status == 422
    assert caught.value.title == "Validation failed"
    assert only_error(caught.value).field == "data.items"


def test_read_query_converts_strings_to_ints() -> None:
    assert read_query({"limit": "20", "before": "7"}, Page) == Page(limit=20, before=7)
    assert read_query({}, Page) == Page()


def test_read_query_non_integer_is_a_clear_422() -> None:
    with pytest.raises(ProblemError) as caught:
        read_query({"limit": "lots"}, Page)
    assert caught.value.status == 422
    error = only_error(caught.value)
    assert error.field == "limit"
    assert error.message == "Expected `int`, got `str`"


def test_read_query_unknown_parameter_is_named() -> None:
    with pytest.raises(ProblemError) as caught:
        read_query({"limti": "20"}, Page)
    assert only_error(caught.value).field == "limti"


class Measure(msgspec.Struct, forbid_unknown_fields=True):
    count: int
    ratios: list[float]


def test_a_number_with_a_zero_fraction_is_an_integer_as_json_schema_counts_it() -> None:
    decoded = decode_json(b'{"count": 3.0, "ratios": [2.0, 0.5]}', Measure)
    assert decoded == Measure(count=3, ratios=[2.0, 0.5])
    assert type(decoded.count) is int
    assert decode_json(b'{"limit": 1e2}', Page) == Page(limit=100)


@pytest.mark.parametrize("raw", [b'{"count": 3.5, "ratios": []}', b'{"count": "3", "ratios": []}'])
def test_a_fraction_or_a_string_is_still_no_integer(raw: bytes) -> None:
    with pytest.raises(ProblemError) as caught:
        decode_json(raw, Measure)
    assert caught.value.status == 422
    assert only_error(caught.value).field == "count"


def test_a_wrong_type_before_malformed_json_is_still_a_clear_422() -> None:
    with pytest.raises(ProblemError) as caught:
        decode_json(b"1 }", Measure)
    assert caught.value.status == 422
