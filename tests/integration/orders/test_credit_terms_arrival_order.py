"""The orders.credit-terms consumer against real Kafka and PostgreSQL when a customer's older event arrives
after a newer one — as a dead letter re-driven with ``tierstream deadletters redrive`` does: the older
event is consumed (inbox, offsets) but changes nothing, so live agrees with a replay in stream order."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from orders.adapters.ledger import PostgresCreditLedger
from orders.application import credit_terms as credit_terms_module
from orders.application.commands import PlaceOrder
from orders.application.handlers import OrderHandlers
from orders.domain.order import OrderLine
from shared.events import customers
from shared.events.envelope import Envelope, EventPayload, Money
from shared.runtime import Container
from shared.testing.events import customer_event
from shared.testing.kafka import produce

pytestmark = pytest.mark.integration


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


@pytest.fixture
def projector_log(monkeypatch: pytest.MonkeyPatch) -> RecordingLog:
    log = RecordingLog()
    monkeypatch.setattr(credit_terms_module, "log", log)
    return log


def registered(customer_id: str) -> customers.CustomerRegistered:
    return customers.CustomerRegistered(customer_id=customer_id, company_name="Acme Trading", region="East")


def terms(limit: str, days: int) -> customers.CustomerCreditTermsSet:
    return customers.CustomerCreditTermsSet(
        credit_limit=Money(amount=Decimal(limit), currency="CNY"), payment_days=days, rating="B"
    )


def order_of(customer_id: str, order_id: str, amount: str) -> PlaceOrder:
    line = OrderLine(sku="SKU-1", description="goods", quantity=1, unit_price=Decimal(amount))
    return PlaceOrder(customer_id, [line], "CNY", order_id)


async def publish(
    kafka_bootstrap: str, container: Container, customer_id: str, *versioned: tuple[int, EventPayload]
) -> list[Envelope]:
    """Publish the customer's events with the given stream versions, in the given order."""
    envelopes = [customer_event(customer_id, payload, version) for version, payload in versioned]
    messages = [(customer_id.encode(), e.to_json()) for e in envelopes]
    await produce(kafka_bootstrap, container.topics.customers, messages)
    return envelopes


async def row_of(container: Container, customer_id: str) -> dict[str, Any]:
    async with container.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT active, credit_limit, payment_days, credit_version, terms_stream_version, "
                    "status_stream_version FROM customer_credit WHERE customer_id = :c"
                ),
                {"c": customer_id},
            )
        ).one()
    return dict(row._mapping)


def consumed(container: Container, event_id: uuid.UUID) -> Callable[[], Awaitable[bool]]:
    """A condition: the consumer committed ``event_id`` (its inbox row, written with the offsets)."""

    async def condition() -> bool:
        async with container.engine.connect() as conn:
            found = await conn.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :e"), {"e": event_id})
        return bool(found)

    return condition


async def test_older_terms_arriving_after_newer_terms_leave_the_newer_terms(
    orders_container, credit_consumer, kafka_bootstrap, eventually, projector_log
) -> None:  # type: ignore[no-untyped-def]
    handlers: OrderHandlers = orders_container.parts["handlers"]
    ledger: PostgresCreditLedger = orders_container.parts["ledger"]
    applied = await publish(
        kafka_bootstrap, orders_container, "c-1", (1, registered("c-1")), (4, terms("5000", days=10))
    )
    await eventually(consumed(orders_container, applied[-1].event_id))
    before = await row_of(orders_container, "c-1")

    [stale] = await publish(kafka_bootstrap, orders_container, "c-1", (2, terms("1000", days=45)))
    await eventually(consumed(orders_container, stale.event_id))

    after = await row_of(orders_container, "c-1")
    assert (after["credit_limit"], after["payment_days"], after["terms_stream_version"]) == (Decimal("5000"), 10, 4)
    assert after["credit_version"] == before["credit_version"] == 2  # ignored: not a change of the credit position
    assert projector_log.lines == [
        (
            "credit_terms.stale_event_ignored",
            {
                "customer_id": "c-1",
                "event_type": "CustomerCreditTermsSet",
                "event_id": str(stale.event_id),
                "stream_version": 2,
                "applied_stream_version": 4,
            },
        )
    ]
    # the credit check uses the newer terms, and placing still takes the next credit version
    order = await handlers.place_order(order_of("c-1", "o-1", "3000"), "corr-1")
    assert order.status == "placed" and order.due_date == date(2026, 3, 11)  # 10 days, not 45
    customer, _ = await ledger.position("c-1", "CNY")
    assert customer is not None and customer.version == 3


async def test_a_stale_deactivation_after_a_reactivation_leaves_the_customer_able_to_order(
    orders_container, credit_consumer, kafka_bootstrap, eventually, projector_log
) -> None:  # type: ignore[no-untyped-def]
    handlers: OrderHandlers = orders_container.parts["handlers"]
    applied = await publish(
        kafka_bootstrap,
        orders_container,
        "c-2",
        (1, registered("c-2")),
        (2, customers.CustomerDeactivated(reason="closed")),
        (4, customers.CustomerReactivated(reason="reopened")),
    )
    await eventually(consumed(orders_container, applied[-1].event_id))

    [stale] = await publish(
        kafka_bootstrap, orders_container, "c-2", (3, customers.CustomerDeactivated(reason="blocked"))
    )
    await eventually(consumed(orders_container, stale.event_id))

    row = await row_of(orders_container, "c-2")
    assert (row["active"], row["status_stream_version"]) == (True, 4)
    assert [
        (event, fields["stream_version"], fields["applied_stream_version"]) for event, fields in projector_log.lines
    ] == [("credit_terms.stale_event_ignored", 3, 4)]
    assert (await handlers.place_order(order_of("c-2", "o-1", "1"), "corr")).status == "placed"
