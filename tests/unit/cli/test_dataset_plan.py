"""Online Retail rows → API commands: what becomes an order, a return, or a counted rejection."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tierstream.dataset import contract_events, customer_id_of, payments_for, plan

pytestmark = pytest.mark.unit


def row(
    invoice: str,
    qty: int,
    price: str,
    customer: str = "17850.0",
    when: str = "2010-12-01 08:26:00",
    sku: str = "85123A",
) -> dict[str, str]:
    return {
        "InvoiceNo": invoice,
        "StockCode": sku,
        "Description": "THING",
        "Quantity": str(qty),
        "InvoiceDate": when,
        "UnitPrice": price,
        "CustomerID": customer,
        "Country": "United Kingdom",
    }


def test_invoice_lines_group_into_one_order_per_invoice() -> None:
    result = plan([row("536365", 6, "2.55"), row("536365", 6, "3.39", sku="71053"), row("536366", 1, "1")])
    assert [o.order_id for o in result.orders] == ["INV-536365", "INV-536366"]
    assert result.orders[0].total == Decimal("35.64")
    assert [c.customer_id for c in result.customers] == ["C17850"]
    assert result.orders[0].placed_at.utcoffset() is not None


def test_rows_without_a_customer_and_adjustments_are_counted_not_loaded() -> None:
    result = plan([row("536365", 6, "2.55", customer=""), row("536367", -3, "1"), row("A563185", 1, "-11062.06")])
    assert result.orders == []
    assert sum(result.rejected.values()) == 3
    assert result.rows_read == 3


def test_a_cancellation_returns_goods_from_the_latest_earlier_orders() -> None:
    result = plan(
        [
            row("536365", 10, "1.00", when="2010-12-01 08:00:00"),
            row("536366", 5, "1.00", when="2010-12-02 08:00:00"),
            row("C536400", -8, "1.00", when="2010-12-03 08:00:00"),
        ]
    )
    assert [(r.order_id, r.amount) for r in result.returns] == [
        ("INV-536366", Decimal("5.00")),
        ("INV-536365", Decimal("3.00")),
    ]
    assert len({r.return_id for r in result.returns}) == 2


def test_a_cancellation_without_an_earlier_order_is_reported() -> None:
    result = plan([row("C536400", -8, "1.00"), row("536500", 1, "1", when="2010-12-05 08:00:00")])
    assert result.returns == []
    assert any("larger than" in reason for reason in result.rejected)


def test_customer_ids_look_like_floats_in_the_file() -> None:
    assert customer_id_of("17850.0") == "C17850"
    assert customer_id_of("") is None
    assert customer_id_of("n/a") is None


def test_sampling_keeps_only_the_first_customers() -> None:
    result = plan([row("1", 1, "1", customer="1.0"), row("2", 1, "1", customer="2.0")], max_customers=1)
    assert [c.customer_id for c in result.customers] == ["C1"]
    assert result.rejected["outside the requested sample of customers"] == 1


def test_assumed_payments_settle_what_is_left_after_returns() -> None:
    result = plan(
        [
            row("536365", 10, "1.00", when="2010-12-01 08:00:00"),
            row("536366", 5, "1.00", when="2010-12-02 08:00:00"),
            row("C536400", -5, "1.00", when="2010-12-03 08:00:00"),
        ]
    )
    payments = payments_for(result)
    assert [(p.order_id, p.amount) for p in payments] == [("INV-536365", Decimal("10.00"))]
    assert payments[0].payment_id == "PAY-INV-536365"


def test_the_contract_events_number_each_aggregates_stream_as_its_service_would() -> None:
    result = plan(
        [
            row("536365", 10, "1.00", when="2010-12-01 08:00:00"),
            row("536366", 5, "1.00", when="2010-12-02 08:00:00"),
            row("C536400", -8, "1.00", when="2010-12-03 08:00:00"),  # returns from both orders
        ]
    )
    events = [e for _, e in contract_events(result, with_payments=True)]
    streams = [(e.aggregate_type, e.aggregate_id, e.aggregate_version, e.event_type) for e in events]
    assert sorted(streams) == [
        ("customer", "C17850", 1, "CustomerRegistered"),
        ("order", "INV-536365", 1, "OrderPlaced"),
        ("order", "INV-536365", 2, "OrderReturned"),
        ("order", "INV-536365", 3, "PaymentReceived"),
        ("order", "INV-536366", 1, "OrderPlaced"),
        ("order", "INV-536366", 2, "OrderReturned"),
    ]  # INV-536366 is returned in full: nothing left to pay
    assert {e.customer_id for e in events} == {"C17850"}
