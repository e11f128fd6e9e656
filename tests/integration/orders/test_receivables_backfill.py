"""Migration 0003 back-fills ``receivables`` from orders stored before it: the same rows the repository
hook would have written."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from orders.__main__ import DEFINITION
from orders.adapters.ledger import receivable_row
from orders.adapters.tables import receivables
from orders.domain.credit import CreditDecision
from orders.domain.order import Order, OrderLine
from shared.db.engine import create_engine
from shared.db.migrations import upgrade
from shared.events.vocabulary import CreditHoldReason
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import PostgresEventStore

pytestmark = pytest.mark.integration

PLACED_AT = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


def place(order_id: str, amount: str, *, held: bool = False) -> Order:
    decision = None
    if held:
        decision = CreditDecision(
            reasons=(CreditHoldReason.OVER_CREDIT_LIMIT,),
            exposure=Decimal(amount),
            currency="CNY",
            credit_limit=Decimal(1),
        )
    line = OrderLine(sku="S", description="d", quantity=2, unit_price=Decimal(amount) / 2)
    return Order.place(order_id, "c-1", [line], currency="CNY", placed_at=PLACED_AT, payment_days=30, credit=decision)


async def test_orders_stored_before_migration_0003_get_the_rows_the_hook_would_have_written(
    unmigrated_database: str,
) -> None:
    url = unmigrated_database
    await upgrade(DEFINITION.migrations, url, revision="0002")
    engine = create_engine(url)
    try:
        repository = AggregateRepository(PostgresEventStore(engine), Order, producer="orders", topic="crm.orders.v1")
        orders = [
            place("o-open", "100.00"),
            place("o-held", "50.00", held=True),
            place("o-released", "60.00", held=True),
        ]
        orders += [place("o-paid", "80.00"), place("o-part", "90.00"), place("o-cancelled", "70.00")]
        orders += [place("o-returned", "40.00"), place("o-late", "30.00")]
        by_id = {o.id: o for o in orders}
        by_id["o-released"].release_credit("ops")
        by_id["o-paid"].receive_payment("p-1", Decimal("80.00"))
        by_id["o-part"].receive_payment("p-1", Decimal("20.00"))
        by_id["o-part"].return_goods("r-1", Decimal("10.00"), "damaged")
        by_id["o-cancelled"].cancel("no longer needed")
        by_id["o-returned"].return_goods("r-1", Decimal("40.00"), "wrong goods")
        by_id["o-late"].report_overdue(date(2026, 4, 20))
        for order in orders:
            await repository.save(order, correlation_id="before-0003")

        await upgrade(DEFINITION.migrations, url)

        async with engine.connect() as conn:
            rows = {r.order_id: dict(r._mapping) for r in await conn.execute(select(receivables))}
        expected = {o.id: receivable_row(o) for o in orders}
        for row in rows.values():
            del row["updated_at"]
        assert {k: v["status"] for k, v in rows.items()} == {
            "o-open": "placed",
            "o-held": "credit_held",
            "o-released": "placed",
            "o-paid": "paid",
            "o-part": "placed",
            "o-cancelled": "cancelled",
            "o-returned": "returned",
            "o-late": "placed",
        }
        assert rows == expected
    finally:
        await engine.dispose()
