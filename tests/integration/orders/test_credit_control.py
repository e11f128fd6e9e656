"""Credit control and the overdue sweep against real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text

from orders.adapters.ledger import PostgresCreditLedger
from orders.application.commands import CancelOrder, PlaceOrder, ReceivePayment
from orders.application.credit_terms import CreditTermsProjector
from orders.application.handlers import OrderHandlers
from orders.application.overdue import OverdueSweep
from orders.domain.errors import CustomerDeactivated, UnknownCustomer
from orders.domain.order import Order, OrderLine
from shared.events import customers
from shared.events.envelope import Envelope, Money
from shared.events.registry import parse_envelope
from shared.runtime import Container

pytestmark = pytest.mark.integration


def registered(customer_id: str) -> customers.CustomerRegistered:
    return customers.CustomerRegistered(customer_id=customer_id, company_name="Acme Trading", region="East")


def terms(limit: str, days: int = 45, currency: str = "CNY") -> customers.CustomerCreditTermsSet:
    return customers.CustomerCreditTermsSet(
        credit_limit=Money(amount=Decimal(limit), currency=currency), payment_days=days, rating="B"
    )


def order_of(customer_id: str, order_id: str, amount: str) -> PlaceOrder:
    line = OrderLine(sku="SKU-1", description="goods", quantity=1, unit_price=Decimal(amount))
    return PlaceOrder(customer_id, [line], "CNY", order_id)


async def outbox_events(container: Container) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    async with container.engine.connect() as conn:
        values = (
            await conn.execute(
                text("SELECT value FROM outbox WHERE topic = :t ORDER BY id"), {"t": container.topics.orders}
            )
        ).scalars()
        envelopes = [parse_envelope(bytes(v)) for v in values]
    return [(e.event_type, e.aggregate_id, e.data.model_dump(mode="json")) for e in envelopes]


async def test_terms_consumed_from_kafka_hold_the_order_that_goes_over_the_limit(
    orders_container, credit_consumer, feed_customer, eventually
) -> None:  # type: ignore[no-untyped-def]
    handlers: OrderHandlers = orders_container.parts["handlers"]
    ledger: PostgresCreditLedger = orders_container.parts["ledger"]
    set_terms = terms("1000", days=45)
    await feed_customer("c-1", registered("c-1"), set_terms)

    async def terms_known() -> bool:
        customer, _ = await ledger.position("c-1", "CNY")
        return customer is not None and customer.terms is not None

    await eventually(terms_known)
    first = await handlers.place_order(order_of("c-1", "o-1", "600"), "corr-1")
    second = await handlers.place_order(order_of("c-1", "o-2", "500"), "corr-2")

    assert first.status == "placed" and first.due_date == date(2026, 4, 15)  # 45 days from the terms
    assert second.status == "credit_held"
    published = await outbox_events(orders_container)
    assert [(t, a) for t, a, _ in published] == [
        ("OrderPlaced", "o-1"),
        ("OrderPlaced", "o-2"),
        ("OrderCreditHeld", "o-2"),
    ]
    assert published[1][2]["status"] == "credit_held"
    assert published[2][2] == {
        "order_id": "o-2",
        "reasons": ["over_credit_limit"],
        "exposure": {"amount": "1100.00", "currency": "CNY"},
        "credit_limit": {"amount": "1000.00", "currency": "CNY"},
    }
    async with orders_container.engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT order_id, outstanding, status FROM receivables ORDER BY order_id"))
        ).all()
        version = await conn.scalar(text("SELECT credit_version FROM customer_credit WHERE customer_id = 'c-1'"))
    assert [tuple(r) for r in rows] == [
        ("o-1", Decimal("600.0000"), "placed"),
        ("o-2", Decimal("500.0000"), "credit_held"),
    ]
    assert version == 2 + 2  # two customer events + two orders placed

    # a redelivered terms event changes nothing (inbox); a raised limit lets the next order through
    await feed_customer("c-1", terms("5000", days=10))

    async def limit_raised() -> bool:
        customer, _ = await ledger.position("c-1", "CNY")
        return customer is not None and customer.terms is not None and customer.terms.credit_limit == 5000

    await eventually(limit_raised)
    third = await handlers.place_order(order_of("c-1", "o-3", "500"), "corr-3")
    assert third.status == "placed" and third.due_date == date(2026, 3, 11)


async def test_orders_for_unknown_or_deactivated_customers_are_refused(
    orders_container, credit_consumer, feed_customer, eventually
) -> None:  # type: ignore[no-untyped-def]
    handlers: OrderHandlers = orders_container.parts["handlers"]
    ledger: PostgresCreditLedger = orders_container.parts["ledger"]
    with pytest.raises(UnknownCustomer):
        await handlers.place_order(order_of("c-2", "o-1", "1"), "corr")
    await feed_customer("c-2", registered("c-2"), customers.CustomerDeactivated(reason="closed"))

    async def deactivated() -> bool:
        customer, _ = await ledger.position("c-2", "CNY")
        return customer is not None and not customer.active

    await eventually(deactivated)
    with pytest.raises(CustomerDeactivated):
        await handlers.place_order(order_of("c-2", "o-1", "1"), "corr")
    await feed_customer("c-2", customers.CustomerReactivated(reason="reopened"))

    async def reactivated() -> bool:
        customer, _ = await ledger.position("c-2", "CNY")
        return customer is not None and customer.active

    await eventually(reactivated)
    assert (await handlers.place_order(order_of("c-2", "o-1", "1"), "corr")).status == "placed"


async def seed_customer(container: Container, customer_id: str, limit: str, days: int = 30) -> None:
    """Apply customer events through the projector directly (no broker needed for this test)."""
    envelopes = [
        Envelope.wrap(
            payload,
            producer="customers",
            aggregate_type="customer",
            aggregate_id=customer_id,
            aggregate_version=n,
            customer_id=customer_id,
            correlation_id="seed",
        )
        for n, payload in enumerate([registered(customer_id), terms(limit, days)], start=1)
    ]
    async with container.engine.begin() as conn:
        await CreditTermsProjector().apply(conn, envelopes)


async def test_concurrent_orders_of_one_customer_never_both_pass_a_limit_only_one_fits(orders_container) -> None:  # type: ignore[no-untyped-def]
    handlers: OrderHandlers = orders_container.parts["handlers"]
    await seed_customer(orders_container, "c-3", limit="500")

    placed = await asyncio.gather(
        *(handlers.place_order(order_of("c-3", f"o-{n}", "100"), f"corr-{n}") for n in range(10))
    )

    statuses = sorted(o.status for o in placed)
    assert statuses == ["credit_held"] * 5 + ["placed"] * 5
    async with orders_container.engine.connect() as conn:
        accepted = await conn.scalar(
            text("SELECT sum(total) FROM receivables WHERE customer_id = 'c-3' AND status = 'placed'")
        )
    assert accepted == Decimal("500")


async def test_the_overdue_sweep_reports_each_bucket_once_against_postgresql(orders_container, clock) -> None:  # type: ignore[no-untyped-def]
    handlers: OrderHandlers = orders_container.parts["handlers"]
    sweep: OverdueSweep = orders_container.parts["overdue_sweep"]
    await seed_customer(orders_container, "c-4", limit="100000", days=30)
    for n in range(4):
        await handlers.place_order(order_of("c-4", f"o-{n}", "250"), "corr")  # due 2026-03-31
    await handlers.receive_payment(ReceivePayment("o-1", Decimal("250")), "corr")
    await handlers.receive_payment(ReceivePayment("o-2", Decimal("100")), "corr")
    await handlers.cancel_order(CancelOrder("o-3", "not needed"), "corr")

    clock.advance(30)  # due date: not overdue yet
    assert (await sweep.run_once()).reported == 0
    clock.advance(1)  # day 1
    assert (await sweep.run_once()).reported == 2
    assert (await sweep.run_once()).reported == 0
    clock.advance(70)  # day 71: 31-60 skipped
    assert (await sweep.run_once()).reported == 2
    clock.advance(30)  # day 101
    assert (await sweep.run_once()).reported == 2
    assert (await sweep.run_once()).reported == 0

    overdue = [
        (a, d["bucket"], d["days_overdue"], d["amount"]["amount"])
        for t, a, d in await outbox_events(orders_container)
        if t == "PaymentOverdue"
    ]
    assert overdue == [
        ("o-0", "1-30", 1, "250"),
        ("o-2", "1-30", 1, "150"),
        ("o-0", "61-90", 71, "250"),
        ("o-2", "61-90", 71, "150"),
        ("o-0", "90+", 101, "250"),
        ("o-2", "90+", 101, "150"),
    ]
    async with orders_container.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT order_id, overdue_bucket FROM receivables ORDER BY order_id"))).all()
    assert [tuple(r) for r in rows] == [("o-0", "90+"), ("o-1", None), ("o-2", "90+"), ("o-3", None)]
    # the aggregate remembers: replaying o-0 and sweeping again reports nothing
    order = await orders_container.parts["orders"].get("o-0")
    assert isinstance(order, Order) and order.overdue_bucket == "90+" and not order.report_overdue(clock().date())

    # a customer with receivables more than 60 days overdue gets its next order held
    held = await handlers.place_order(order_of("c-4", "o-9", "1"), "corr")
    assert held.status == "credit_held" and held.hold is not None
    assert [str(r) for r in held.hold.reasons] == ["receivables_overdue_60"]
