"""Totals in the contract are not bounded like one amount (docs/events.md, changelog 2026-11).

One amount — an order's total, a payment, a return — is at most 14 digits before the point (``Money``,
``DecimalString``: what NUMERIC(18, 4) holds). A sum of amounts is not: segmentation's net contribution,
its cut points and the RFM net amount are totals (``MoneyTotal``, ``DecimalTotal``). Before, a customer
whose net contribution reached 10¹⁴ could not be published at all. The relaxation is compatible: what
was valid stays valid, and the string form is the same.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared.events import InvalidEvent, orders, parse_envelope, segmentation
from shared.events.envelope import (
    DECIMAL_PATTERN,
    DECIMAL_TOTAL_PATTERN,
    DecimalTotal,
    Envelope,
    EventPayload,
    Money,
    MoneyTotal,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
QUADRILLION = "1000000000000000"  # 10¹⁵: sixteen digits before the point


def document(payload: EventPayload) -> dict[str, Any]:
    envelope = Envelope.wrap(
        payload,
        producer="test",
        aggregate_type="thing",
        aggregate_id="c-1",
        aggregate_version=1,
        customer_id="c-1",
        correlation_id="corr-1",
        occurred_at=T0,
        event_id=uuid.UUID(int=7),
    )
    parsed: dict[str, Any] = json.loads(envelope.to_json())
    return parsed


def parse(doc: dict[str, Any]) -> Any:
    return parse_envelope(json.dumps(doc).encode()).data


def tier_changed() -> segmentation.CustomerTierChanged:
    return segmentation.CustomerTierChanged(
        previous_tier="prospect",
        new_tier="vip",
        reason="OrderPlaced: net contribution over 365 days grades vip",
        net_contribution=Money(amount=Decimal("12000.00")),  # a Money is still accepted where a total is
        cut_points={"vip": "50000", "key": "10000", "normal": "500"},
        policy_version="default-v1",
    )


def segment_changed() -> segmentation.CustomerRfmSegmentChanged:
    return segmentation.CustomerRfmSegmentChanged(
        previous_segment=None,
        new_segment="champions",
        recency_score=5,
        frequency_score=5,
        monetary_score=5,
        recency_days=1,
        order_count=3,
        net_amount=Money(amount=Decimal("88000.00")),
        rule_table_version="rfm-grid-v1",
    )


@pytest.mark.parametrize("total", [QUADRILLION, "-" + QUADRILLION, "123456789012345678901234567890.1234"])
def test_a_net_contribution_and_cut_points_beyond_one_amount_travel_in_a_tier_change(total: str) -> None:
    doc = document(tier_changed())
    doc["data"]["net_contribution"]["amount"] = total
    doc["data"]["cut_points"] = {"vip": total, "key": "10000", "normal": "500"}

    data = parse(doc)

    assert data.net_contribution.amount == Decimal(total)
    assert data.cut_points["vip"] == Decimal(total)
    assert json.loads(data.model_dump_json())["net_contribution"]["amount"] == total  # the same string back


def test_an_rfm_net_amount_beyond_one_amount_travels_in_a_segment_change() -> None:
    doc = document(segment_changed())
    doc["data"]["net_amount"]["amount"] = QUADRILLION

    assert parse(doc).net_amount.amount == Decimal(QUADRILLION)


def test_producers_build_totals_beyond_one_amount_from_python() -> None:
    payload = segmentation.CustomerTierChanged(
        previous_tier="vip",
        new_tier="key",
        reason="recalibration: net contribution grades key",
        net_contribution=MoneyTotal(amount=Decimal("180000000000000.0000")),
        cut_points={"vip": Decimal("1E+15"), "key": Decimal(QUADRILLION), "normal": Decimal("500")},
        policy_version="default-v1",
    )

    data = json.loads(payload.model_dump_json())

    assert data["net_contribution"] == {"amount": "180000000000000.0000", "currency": "CNY"}
    assert data["cut_points"]["vip"] == QUADRILLION  # no exponent on the wire


def test_a_single_order_amount_of_the_same_size_is_still_refused() -> None:
    order = orders.OrderCancelled(order_id="o-1", amount=Money(amount=Decimal("5")), reason="duplicate order")
    doc = document(order)
    doc["data"]["amount"]["amount"] = QUADRILLION

    with pytest.raises(InvalidEvent) as caught:
        parse_envelope(json.dumps(doc).encode())

    assert caught.value.reason == "invalid_payload"
    assert caught.value.detail.startswith("amount.amount: should be a decimal string such as")
    assert "at most 14 digits before it" in caught.value.detail
    with pytest.raises(ValidationError):
        Money(amount=Decimal(QUADRILLION))


@pytest.mark.parametrize(
    "total", [5, 5.5, True, "1e15", " 5", "1_000", ".5", "5.", "+5", "1.23456", "NaN", "Infinity", ""], ids=repr
)
def test_a_total_keeps_the_string_form_of_an_amount(total: object) -> None:
    doc = document(tier_changed())
    doc["data"]["net_contribution"]["amount"] = total

    with pytest.raises(InvalidEvent) as caught:
        parse_envelope(json.dumps(doc).encode())

    assert caught.value.detail.startswith("net_contribution.amount: should be a decimal string such as")
    assert "at most 4 digits after it" in caught.value.detail


def test_what_was_valid_stays_valid() -> None:
    """Every amount the bounded pattern accepts, the total's accepts; a Money instance is a MoneyTotal."""

    class Holder(BaseModel):
        total: DecimalTotal

    for amount in ("0", "-0", "5", "40.34", "99999999999999.9999", "00012.3400", "-12.5"):
        assert re.fullmatch(DECIMAL_PATTERN, amount) and re.fullmatch(DECIMAL_TOTAL_PATTERN, amount)
        assert Holder.model_validate({"total": amount}).total == Decimal(amount)
    assert isinstance(Money(amount=Decimal("1")), MoneyTotal)
    assert type(tier_changed().net_contribution) is MoneyTotal  # so the event equals itself parsed back
    assert parse(document(tier_changed())).net_contribution.amount == Decimal("12000.00")
    assert parse(document(segment_changed())).net_amount.amount == Decimal("88000.00")


def test_the_relaxed_fields_publish_the_total_pattern_and_amounts_keep_theirs() -> None:
    tier = segmentation.CustomerTierChanged.model_json_schema()
    money = Money.model_json_schema()

    assert tier["$defs"]["MoneyTotal"]["properties"]["amount"]["pattern"] == DECIMAL_TOTAL_PATTERN
    assert tier["properties"]["cut_points"]["additionalProperties"]["pattern"] == DECIMAL_TOTAL_PATTERN
    assert money["properties"]["amount"]["pattern"] == DECIMAL_PATTERN
