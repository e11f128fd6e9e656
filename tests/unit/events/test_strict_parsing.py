"""The parser holds the wire to the documented schema: amounts, instants, integers, UTF-8 and one customer.

Each of these inputs used to be accepted although docs/events.md documents a stricter form, and some
crashed consumers later (a 40-digit amount in a NUMERIC(18, 4) column, an order of 0001-01-01 in
segmentation's rebuild). A producer that follows the documented contract is not affected.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

import shared.clock
from shared.events import InvalidEvent, Money, customers, orders, parse_envelope
from shared.events.envelope import EARLIEST, Envelope, EventPayload
from shared.testing.events import customer_registered

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def envelope(payload: EventPayload, customer_id: str = "c-1") -> Envelope:
    return Envelope.wrap(
        payload,
        producer="test",
        aggregate_type="thing",
        aggregate_id="thing-1",
        aggregate_version=2,
        customer_id=customer_id,
        correlation_id="corr-1",
        occurred_at=T0,
        event_id=uuid.UUID(int=9),
    )


def cancelled(amount: str = "40.34") -> dict[str, Any]:
    payload = orders.OrderCancelled(order_id="o-1", amount=Money(amount=Decimal(amount)), reason="duplicate order")
    return json.loads(envelope(payload).to_json())


def refused(document: dict[str, Any] | bytes) -> InvalidEvent:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    with pytest.raises(InvalidEvent) as caught:
        parse_envelope(raw)
    return caught.value


# -- money ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [5, 5.5, True, "1e3", " 5 ", "5 ", "1_000", ".5", "5.", "+5", "٥", "1" * 15, "1" * 40, "1.23456", "0x10", "NaN"],
    ids=repr,
)
def test_an_amount_that_is_not_a_bounded_decimal_string_is_refused_naming_the_field(amount: object) -> None:
    document = cancelled()
    document["data"]["amount"]["amount"] = amount

    problem = refused(document)

    assert problem.reason == "invalid_payload"
    assert problem.detail.startswith("amount.amount: should be a decimal string such as")


@pytest.mark.parametrize("amount", ["0", "-0", "5", "40.34", "99999999999999.9999", "00012.3400"])
def test_an_amount_within_the_documented_pattern_and_bounds_is_accepted(amount: str) -> None:
    document = cancelled()
    document["data"]["amount"]["amount"] = amount

    assert parse_envelope(json.dumps(document)).data.amount.amount == Decimal(amount)  # type: ignore[attr-defined]


def test_amounts_built_in_python_are_bounded_like_those_on_the_wire() -> None:
    assert Money(amount=Decimal("12.3400000")).amount == Decimal("12.34")  # trailing zeros do not count
    assert Money.model_validate({"amount": "-12.5"}).amount == Decimal("-12.5")
    with pytest.raises(ValidationError, match="at most 14 digits before it and 4 after"):
        Money(amount=Decimal("1" * 15))
    with pytest.raises(ValidationError, match="at most 14 digits before it and 4 after"):
        Money(amount=Decimal("0.00001"))
    with pytest.raises(ValidationError, match="never a JSON number"):
        Money(amount=Decimal("Infinity"))
    with pytest.raises(ValidationError, match="never a JSON number"):
        Money.model_validate({"amount": 5})


def test_the_published_pattern_is_the_one_validated() -> None:
    assert Money.model_json_schema()["properties"]["amount"]["pattern"] == r"^-?[0-9]{1,14}(\.[0-9]{1,4})?$"


# -- instants -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("occurred_at", "message"),
    [
        (1_772_357_400, "should be an RFC 3339 date-time string"),
        (1_772_357_400.0, "should be an RFC 3339 date-time string"),
        ("1772357400", "should be an RFC 3339 date-time string"),
        ("0001-01-01T00:00:00Z", "greater than or equal to 1970-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59Z", "greater than or equal to 1970-01-01T00:00:00Z"),
        ("1970-01-01T07:59:59+08:00", "greater than or equal to 1970-01-01T00:00:00Z"),
        ("9999-12-31T23:00:00-05:00", "less than 9999-12-31T00:00:00Z"),
        ("2026-03-01T09:30:00", "timezone"),
    ],
)
def test_an_occurred_at_that_is_a_number_before_1970_or_naive_is_refused(occurred_at: object, message: str) -> None:
    document = cancelled()
    document["occurred_at"] = occurred_at

    problem = refused(document)

    assert problem.reason == "malformed_envelope" and problem.detail.startswith("occurred_at: ")
    assert message in problem.detail


def test_payload_instants_are_refused_before_1970_too() -> None:
    document = json.loads(envelope(customers.CustomerDeactivated(reason="closed")).to_json())
    placed = orders.OrderPlaced(
        order_id="o-1",
        customer_id="c-1",
        lines=[orders.OrderLine(sku="A1", quantity=1, unit_price=Money(amount=Decimal("5")))],
        total=Money(amount=Decimal("5")),
        placed_at=T0,
        due_date=T0.date(),
        payment_days=0,
    )
    document = json.loads(envelope(placed).to_json())
    document["data"]["placed_at"] = "0001-01-01T00:00:00+00:00"

    problem = refused(document)

    assert problem.reason == "invalid_payload"
    assert problem.detail == "placed_at: Input should be greater than or equal to 1970-01-01T00:00:00Z"


def test_the_earliest_instant_is_the_one_the_apis_accept() -> None:
    assert EARLIEST == shared.clock.EARLIEST
    assert (
        parse_envelope(json.dumps({**cancelled(), "occurred_at": "1970-01-01T08:00:00+08:00"})).occurred_at == EARLIEST
    )


# -- integers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["schema_version", "aggregate_version"])
@pytest.mark.parametrize("value", ["1", True, 1.0], ids=repr)
def test_envelope_integers_must_be_json_integers(field: str, value: object) -> None:
    problem = refused({**cancelled(), field: value})

    assert problem.reason == "malformed_envelope"
    assert f"{field}: Input should be a valid integer" in problem.detail


# -- UTF-8 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "latin-1"])
def test_a_value_that_is_not_utf8_is_refused_as_such(encoding: str) -> None:
    document = cancelled()
    document["data"]["reason"] = "doppelt bestellt, Kühlschrank"

    problem = refused(json.dumps(document, ensure_ascii=False).encode(encoding))

    assert problem.reason == "malformed_json"
    assert problem.detail.startswith("not UTF-8: ")


def test_utf8_text_beyond_ascii_is_accepted() -> None:
    document = cancelled()
    document["data"]["reason"] = "重复下单 – doppelt"

    assert parse_envelope(json.dumps(document, ensure_ascii=False).encode()).data.reason == "重复下单 – doppelt"  # type: ignore[attr-defined]


# -- one customer per event -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        customer_registered("c-1").data,
        orders.OrderPlaced(
            order_id="o-1",
            customer_id="c-1",
            lines=[orders.OrderLine(sku="A1", quantity=1, unit_price=Money(amount=Decimal("5")))],
            total=Money(amount=Decimal("5")),
            placed_at=T0,
            due_date=T0.date(),
            payment_days=0,
        ),
    ],
    ids=lambda p: p.event_type,
)
def test_an_envelope_whose_customer_differs_from_its_payloads_is_refused(payload: EventPayload) -> None:
    document = json.loads(envelope(payload).to_json())
    document["customer_id"] = "c-2"

    problem = refused(document)

    assert problem.reason == "malformed_envelope"
    assert "customer_id 'c-2' differs from data.customer_id 'c-1'" in problem.detail
    assert problem.event_id == str(uuid.UUID(int=9))


def test_a_producer_cannot_wrap_a_payload_under_another_customer() -> None:
    with pytest.raises(ValueError, match=r"differs from data\.customer_id"):
        envelope(customer_registered("c-1").data, customer_id="c-2")


def test_events_without_customer_id_in_their_payload_take_the_envelopes() -> None:
    parsed = parse_envelope(envelope(customers.CustomerDeactivated(reason="closed"), customer_id="c-9").to_json())

    assert parsed.customer_id == "c-9"
