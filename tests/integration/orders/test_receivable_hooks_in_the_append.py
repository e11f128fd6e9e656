"""The ledger's hooks run inside the append statement: a receivable row is written with its order's
events or not at all, and never goes back to an older version of the order."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from orders.adapters.ledger import PostgresCreditLedger, receivable_row
from orders.adapters.tables import receivables
from orders.domain.errors import CreditCheckStale
from orders.domain.order import Order, OrderLine
from shared.db.engine import transaction
from shared.eventsourcing.repository import AggregateRepository

pytestmark = pytest.mark.integration

PLACED_AT = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


def place(order_id: str, amount: str) -> Order:
    line = OrderLine(sku="S", description="d", quantity=1, unit_price=Decimal(amount))
    return Order.place(order_id, "c-1", [line], currency="CNY", placed_at=PLACED_AT, payment_days=30)


async def stored_rows(container) -> dict[str, dict[str, object]]:
    async with container.engine.connect() as conn:
        rows = {r.order_id: dict(r._mapping) for r in await conn.execute(select(receivables))}
    for row in rows.values():
        del row["updated_at"]
    return rows


async def test_an_order_saved_with_the_recording_hook_gets_exactly_the_receivable_row(orders_container) -> None:
    repository: AggregateRepository[Order] = orders_container.parts["orders"]
    ledger: PostgresCreditLedger = orders_container.parts["ledger"]
    order = place("o-1", "120.50")
    await repository.save(order, correlation_id="t", hook=ledger.recording(order))
    order.receive_payment("p-1", Decimal("20.25"))
    await repository.save(order, correlation_id="t", hook=ledger.recording(order))

    rows = await stored_rows(orders_container)

    assert rows == {"o-1": receivable_row(order)}
    assert rows["o-1"]["outstanding"] == Decimal("100.25")
    assert rows["o-1"]["order_version"] == 2


async def test_a_receivable_row_never_goes_back_to_an_older_version_of_its_order(orders_container) -> None:
    repository: AggregateRepository[Order] = orders_container.parts["orders"]
    ledger: PostgresCreditLedger = orders_container.parts["ledger"]
    order = place("o-2", "80.00")
    await repository.save(order, correlation_id="t", hook=ledger.recording(order))
    older = copy.deepcopy(order)
    order.receive_payment("p-1", Decimal("80.00"))
    await repository.save(order, correlation_id="t", hook=ledger.recording(order))

    # A late writer of version 1 (the hook run on its own, as a plain transaction hook).
    async with transaction(orders_container.engine) as tx:
        await ledger.recording(older)(tx.conn)

    row = (await stored_rows(orders_container))["o-2"]
    assert (row["order_version"], row["status"], row["outstanding"]) == (2, "paid", Decimal("0"))


async def test_a_stale_credit_check_writes_neither_the_order_nor_its_receivable(orders_container) -> None:
    repository: AggregateRepository[Order] = orders_container.parts["orders"]
    ledger: PostgresCreditLedger = orders_container.parts["ledger"]
    order = place("o-3", "10.00")

    # No customer_credit row at version 7: the gate refuses and the whole append writes nothing.
    with pytest.raises(CreditCheckStale):
        await repository.save(order, correlation_id="t", hook=ledger.placing(order, checked_version=7))

    assert await stored_rows(orders_container) == {}
    async with orders_container.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(receivables)) == 0
    assert await repository.get("o-3") is None
