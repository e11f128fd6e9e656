"""Order aggregate: given events, when a command, then new events (or a refusal)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from orders.domain.order import Order, OrderLine
from shared.events import orders as contract
from shared.eventsourcing.aggregate import DomainError

pytestmark = pytest.mark.unit

PLACED_AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def lines() -> list[OrderLine]:
    return [
        OrderLine(sku="A1", description="lantern", quantity=6, unit_price=Decimal("3.39")),
        OrderLine(sku="B2", description="cushion", quantity=2, unit_price=Decimal("10.00"), category="home"),
    ]


def placed() -> Order:
    order = Order.place("o-1", "c-1", lines(), currency="GBP", placed_at=PLACED_AT, payment_days=30)
    order.mark_saved()
    return order


def test_placing_an_order_computes_the_total_and_due_date_from_the_lines() -> None:
    order = Order.place("o-1", "c-1", lines(), currency="GBP", placed_at=PLACED_AT, payment_days=30)

    [event] = order.pending_events
    assert isinstance(event, contract.OrderPlaced)
    assert event.total.amount == Decimal("40.34") and event.total.currency == "GBP"
    assert event.due_date == date(2026, 3, 31)
    assert [ln.sku for ln in event.lines] == ["A1", "B2"]
    assert order.version == 1 and order.stored_version == 0


def test_an_order_without_lines_is_refused() -> None:
    with pytest.raises(DomainError, match="at least one line"):
        Order.place("o-1", "c-1", [], currency="GBP", placed_at=PLACED_AT, payment_days=30)


def test_cancelling_records_the_order_amount_so_consumers_need_no_lookup() -> None:
    order = placed()
    order.cancel("customer changed their mind")
    [event] = order.pending_events
    assert isinstance(event, contract.OrderCancelled)
    assert event.amount.amount == Decimal("40.34")
    assert order.status == "cancelled" and order.stored_version == 1


def test_cancelling_twice_is_refused() -> None:
    order = placed()
    order.cancel("first")
    with pytest.raises(DomainError, match="already cancelled"):
        order.cancel("second")


def test_returns_accumulate_up_to_the_order_total_and_not_beyond() -> None:
    order = placed()
    order.return_goods("r-1", Decimal("30.34"), "damaged")
    order.return_goods("r-2", Decimal("10.00"), "damaged")
    assert order.status == "returned" and order.returnable == 0
    with pytest.raises(DomainError, match="exceeds the returnable"):
        order.return_goods("r-3", Decimal("0.01"), "too much")


def test_the_same_return_is_not_recorded_twice() -> None:
    order = placed()
    order.return_goods("r-1", Decimal("1"), "damaged")
    with pytest.raises(DomainError, match="already recorded"):
        order.return_goods("r-1", Decimal("1"), "damaged")


def test_replaying_the_stream_rebuilds_the_same_state() -> None:
    order = placed()
    order.return_goods("r-1", Decimal("5"), "damaged")
    events = [
        Order.place("o-1", "c-1", lines(), currency="GBP", placed_at=PLACED_AT, payment_days=30).pending_events[0],
        *order.pending_events,
    ]
    replayed = Order.replay("o-1", events)
    assert (replayed.total, replayed.returned, replayed.version) == (Decimal("40.34"), Decimal("5"), 2)
