"""``tierstream_events_appended_total``: counted per service and event type once the append committed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from orders.domain.order import Order, OrderLine
from shared.db.engine import create_engine
from shared.events import orders as contract
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import ConcurrencyConflict, PostgresEventStore

pytestmark = pytest.mark.integration

LINES = [OrderLine(sku="S", description="d", quantity=1, unit_price=Decimal("10"))]


@pytest.fixture
async def engine(database_factory) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    engine = create_engine(await database_factory("orders"))
    yield engine
    await engine.dispose()


def appended(event_type: str) -> float:
    labels = {"service": contract.PRODUCER, "event_type": event_type}
    return REGISTRY.get_sample_value("tierstream_events_appended_total", labels) or 0.0


def new_order(order_id: str) -> Order:
    return Order.place(order_id, "c-1", LINES, currency="CNY", placed_at=datetime.now(UTC), payment_days=30)


async def test_appends_are_counted_after_they_commit_and_never_when_they_roll_back(engine: AsyncEngine) -> None:
    repo = AggregateRepository(PostgresEventStore(engine), Order, producer=contract.PRODUCER, topic="t.orders")
    placed = new_order("o-1").pending_events[0].event_type  # type: ignore[attr-defined]
    before = appended(placed)

    await repo.save(new_order("o-1"), correlation_id="c")  # its own statement
    assert appended(placed) == before + 1

    with pytest.raises(ConcurrencyConflict):  # refused: nothing appended, nothing counted
        await repo.save(new_order("o-1"), correlation_id="c")
    assert appended(placed) == before + 1

    with pytest.raises(RuntimeError):
        async with repo.transaction() as tx:
            await repo.save(new_order("o-2"), correlation_id="c", tx=tx)
            assert appended(placed) == before + 1, "counted before the transaction committed"
            raise RuntimeError("rolled back after the append")
    assert appended(placed) == before + 1

    async with repo.transaction() as tx:
        await repo.save(new_order("o-3"), correlation_id="c", tx=tx)
        assert appended(placed) == before + 1
    assert appended(placed) == before + 2

    async with repo.connection() as tx:  # no transaction: the append statement commits on its own
        await repo.save(new_order("o-4"), correlation_id="c", tx=tx)
        assert appended(placed) == before + 3
