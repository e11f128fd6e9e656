"""ORDERS_CLOCK_START: the business clock (orders placed without placed_at, the overdue sweep) for demos of historical data (never in production)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from orders.bootstrap import wire
from orders.config import OrdersSettings
from shared.db.engine import create_engine
from shared.events.topics import Topics
from shared.runtime import Container

pytestmark = pytest.mark.unit

HISTORY_ENDS = datetime(2011, 12, 10, tzinfo=UTC)


def container_for(settings: OrdersSettings) -> Container[OrdersSettings]:
    # never connected to: wiring builds adapters without touching the database
    engine = create_engine("postgresql://nobody:nothing@127.0.0.1:9/none")
    return Container(settings=settings, engine=engine, topics=Topics("t."))


def test_the_business_clock_starts_at_the_configured_instant_and_events_keep_the_real_clock() -> None:
    container = container_for(OrdersSettings(clock_start=HISTORY_ENDS, TIERSTREAM_ENV="test"))
    wire(container)

    swept_at = container.parts["overdue_sweep"].clock()
    placing_at = container.parts["handlers"].clock()  # an order placed without placed_at is dated by it
    recorded_at = container.parts["orders"].clock()

    assert HISTORY_ENDS <= swept_at < HISTORY_ENDS + timedelta(days=1)
    assert HISTORY_ENDS <= placing_at < HISTORY_ENDS + timedelta(days=1)
    assert recorded_at.year > 2020


def test_without_a_clock_start_the_sweep_uses_the_real_clock() -> None:
    container = container_for(OrdersSettings(TIERSTREAM_ENV="test"))
    wire(container)

    assert container.parts["overdue_sweep"].clock().year > 2020


def test_an_injected_clock_wins_over_the_clock_start() -> None:
    container = container_for(OrdersSettings(clock_start=HISTORY_ENDS, TIERSTREAM_ENV="test"))
    fixed = datetime(2026, 3, 1, tzinfo=UTC)
    container.parts["clock"] = lambda: fixed
    wire(container)

    assert container.parts["overdue_sweep"].clock() == fixed


def test_a_clock_start_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="ORDERS_CLOCK_START"):
        OrdersSettings(
            clock_start=HISTORY_ENDS,
            database_url="postgresql://orders:a-real-secret@db/orders",
            TIERSTREAM_ENV="production",
            TIERSTREAM_API_TOKENS={"a-real-token-123": ["orders:write"]},
        )
