"""What the segmentation integration tests share: the fixed start T0, events built at a time, and the
in-process service handle (:class:`Segmentation`) the ``segmentation`` fixture (conftest.py) yields.

A module of its own, not conftest.py: tests import these names, and ``from conftest import …`` resolves
to whichever conftest module pytest loaded first when several test directories run in one session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text

from segmentation.bootstrap import FixedClock, build_projection
from segmentation.config import SegmentationSettings
from shared.events import customers, orders
from shared.events.envelope import Envelope, EventPayload, Money
from shared.events.registry import parse_envelope
from shared.messaging.outbox import write_outbox
from shared.runtime import Container

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AUTH = {"Authorization": "Bearer dev-admin"}


def wrap(payload: EventPayload, customer_id: str, at: datetime = T0) -> Envelope:
    """``payload`` as a contract event of ``customer_id`` that occurred at ``at``."""
    return Envelope.wrap(
        payload,
        producer="test",
        aggregate_type="x",
        aggregate_id=customer_id,
        aggregate_version=1,
        customer_id=customer_id,
        correlation_id=f"corr-{customer_id}",
        occurred_at=at,
    )


@dataclass
class Segmentation:
    container: Container[SegmentationSettings]
    clock: FixedClock
    http: httpx.AsyncClient

    async def feed(self, *events: Envelope) -> None:
        """Apply events as one consumer poll would: one transaction, outgoing events to the outbox."""
        projector = build_projection(self.container)
        async with self.container.engine.begin() as conn:
            await write_outbox(conn, await projector.apply(conn, list(events)))

    async def published(self, event_type: str | None = None) -> list[Envelope]:
        async with self.container.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT value FROM outbox WHERE topic = :t ORDER BY id"), {"t": self.container.topics.segmentation}
            )
            envelopes = [parse_envelope(bytes(v)) for (v,) in rows]
        return [e for e in envelopes if event_type is None or e.event_type == event_type]

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.container.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(text(sql), params)]


def placed(customer_id: str, order_id: str, amount: int | str, at: datetime) -> Envelope:
    money = Money(amount=Decimal(amount))
    return wrap(
        orders.OrderPlaced(
            order_id=order_id,
            customer_id=customer_id,
            lines=[orders.OrderLine(sku="S", quantity=1, unit_price=money)],
            total=money,
            placed_at=at,
            due_date=(at + timedelta(days=30)).date(),
            payment_days=30,
        ),
        customer_id,
        at,
    )


def registered(customer_id: str, region: str = "East") -> Envelope:
    return wrap(
        customers.CustomerRegistered(customer_id=customer_id, company_name=f"Co {customer_id}", region=region),
        customer_id,
    )
