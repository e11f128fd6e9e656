"""The orders API's request amounts check their bounds inside pydantic-core, yet accept and refuse exactly
what a DecimalString with the same bounds does, with the same errors and the same JSON schema."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from pydantic import Field, TypeAdapter, ValidationError

from orders.entrypoints.schemas import Amount, PositiveAmount
from shared.events.envelope import DecimalString

pytestmark = pytest.mark.unit

INPUTS: list[Any] = [
    "2.55",
    "0",
    "-1",
    "1.23456",
    "0.00001",
    "1234567890123456789",
    "1e3",
    3,
    2.5,
    "NaN",
    "inf",
    "x",
    None,
]
REFERENCES = [
    (Amount, Annotated[DecimalString, Field(ge=0, max_digits=18, decimal_places=4)]),
    (PositiveAmount, Annotated[DecimalString, Field(gt=0, max_digits=18, decimal_places=4)]),
]


def outcome(adapter: TypeAdapter[Any], value: Any, *, from_json: bool) -> Any:
    try:
        return adapter.validate_json(json.dumps(value)) if from_json else adapter.validate_python(value)
    except ValidationError as exc:
        return [(error["type"], error["msg"]) for error in exc.errors()]


@pytest.mark.parametrize(("ours", "reference"), REFERENCES)
@pytest.mark.parametrize("from_json", [False, True])
def test_an_amount_accepts_and_refuses_what_a_bounded_decimal_string_does(
    ours: Any, reference: Any, from_json: bool
) -> None:
    adapter, expected = TypeAdapter(ours), TypeAdapter(reference)

    for value in INPUTS:
        assert outcome(adapter, value, from_json=from_json) == outcome(expected, value, from_json=from_json), value


@pytest.mark.parametrize(("ours", "reference"), REFERENCES)
def test_an_amount_is_documented_and_written_as_a_decimal_string(ours: Any, reference: Any) -> None:
    adapter, expected = TypeAdapter(ours), TypeAdapter(reference)

    assert adapter.json_schema() == expected.json_schema()
    assert adapter.dump_json(adapter.validate_python("2.50")) == b'"2.50"'


def test_the_bounds_are_checked_by_pydantic_core_not_in_python() -> None:
    schema: Any = TypeAdapter(Amount).core_schema
    while schema.get("type") != "decimal":  # through annotations and chains (the contract's decimal string)
        schema = schema["steps"][-1] if schema.get("type") == "chain" else schema["schema"]

    assert (schema["ge"], schema["max_digits"], schema["decimal_places"]) == (0, 18, 4)
