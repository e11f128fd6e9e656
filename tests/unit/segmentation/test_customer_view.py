"""The per-customer projection: figures, first tier, and tolerance of cross-topic order."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from segmentation.domain.customer_view import CustomerView, apply
from segmentation.domain.tiers import AbsoluteTierPolicy, value_tier
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, EventPayload, Money

pytestmark = pytest.mark.unit

POLICY = AbsoluteTierPolicy()
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def wrap(payload: EventPayload, minutes: int = 0) -> Envelope:
    return Envelope.wrap(
        payload,
        producer="test",
        aggregate_type="x",
        aggregate_id="x",
        aggregate_version=1,
        customer_id="c-1",
        correlation_id="corr",
        occurred_at=T0 + timedelta(minutes=minutes),
    )


def order_placed(order_id: str, amount: str, day: int) -> orders.OrderPlaced:
    placed_at = T0 + timedelta(days=day)
    return orders.OrderPlaced(
        order_id=order_id,
        customer_id="c-1",
        lines=[orders.OrderLine(sku="S", description="d", quantity=1, unit_price=Money(amount=Decimal(amount)))],
        total=Money(amount=Decimal(amount)),
        placed_at=placed_at,
        due_date=date(2026, 12, 31),
        payment_days=30,
        status="placed",
    )


def history() -> list[Envelope]:
    return [
        wrap(customers.CustomerRegistered(customer_id="c-1", company_name="Acme", region="East")),
        wrap(order_placed("o-1", "400.00", 0), 1),
        wrap(order_placed("o-2", "300.00", 10), 2),
        wrap(order_placed("o-3", "900.00", 20), 3),
        wrap(orders.OrderReturned(order_id="o-3", return_id="r-1", amount=Money(amount=Decimal("100")), reason="x"), 4),
        wrap(orders.OrderCancelled(order_id="o-2", amount=Money(amount=Decimal("300.00")), reason="x"), 5),
        wrap(
            feedback.ComplaintFiled(
                complaint_id="k-1",
                customer_id="c-1",
                category="delivery",
                severity="high",
                summary="late",
                filed_at=T0,
                acknowledge_by=T0 + timedelta(hours=4),
                resolve_by=T0 + timedelta(days=3),
            ),
            6,
        ),
    ]


def fold(events: list[Envelope]) -> CustomerView:
    view = CustomerView(customer_id="c-1")
    for envelope in events:
        view = apply(view, envelope, POLICY)
    return view


def test_figures_follow_orders_cancellations_returns_and_complaints() -> None:
    view = fold(history())
    assert view.registered and view.company_name == "Acme"
    assert (view.orders_count, view.cancelled_orders, view.live_orders) == (3, 1, 2)
    assert view.net_revenue == Decimal("1200.00")  # 1600 − 300 cancelled − 100 returned
    assert view.last_order_at == T0 + timedelta(days=20) and view.first_order_at == T0
    assert (view.open_complaints, view.complaints_total) == (1, 1)
    assert view.value_tier == "normal"


def test_an_order_before_the_registration_creates_a_placeholder() -> None:
    view = apply(CustomerView(customer_id="c-1"), wrap(order_placed("o-1", "10", 0)), POLICY)
    assert not view.registered and view.orders_count == 1 and view.value_tier == "small"


@pytest.mark.parametrize("permutation", list(itertools.permutations(range(3))))
def test_interleaving_across_topics_gives_the_same_view(permutation: tuple[int, ...]) -> None:
    """Customers, orders and feedback topics may arrive in any interleaving; within a topic, in order."""
    events = history()
    by_topic = [[events[0]], events[1:6], [events[6]]]
    interleaved = [e for i in permutation for e in by_topic[i]]
    reference = fold(events)
    view = fold(interleaved)
    assert (view.net_revenue, view.orders_count, view.open_complaints, view.value_tier, view.last_order_at) == (
        reference.net_revenue,
        reference.orders_count,
        reference.open_complaints,
        reference.value_tier,
        reference.last_order_at,
    )


@pytest.mark.parametrize(
    ("net", "live_orders", "tier"),
    [
        ("0", 0, "prospect"),
        ("999999", 0, "prospect"),
        ("0", 1, "small"),
        ("499.99", 1, "small"),
        ("500", 1, "normal"),
        ("9999.99", 3, "normal"),
        ("10000", 3, "key"),
        ("49999.99", 3, "key"),
        ("50000", 9, "vip"),
    ],
)
def test_first_value_tier_in_absolute_mode(net: str, live_orders: int, tier: str) -> None:
    assert value_tier(Decimal(net), live_orders, POLICY) == tier
