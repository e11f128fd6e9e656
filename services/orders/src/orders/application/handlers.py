"""Command handlers of the orders service: load → one domain call → save. Nothing else."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from orders.domain.order import Order, OrderLine
from shared.api import NotFound
from shared.events.envelope import utc_now
from shared.eventsourcing.aggregate import DomainError
from shared.eventsourcing.repository import AggregateRepository


@dataclass(frozen=True)
class PlaceOrder:
    customer_id: str
    lines: list[OrderLine]
    currency: str
    order_id: str | None = None
    placed_at: datetime | None = None
    payment_days: int | None = None


@dataclass(frozen=True)
class CancelOrder:
    order_id: str
    reason: str
    expected_version: int | None = None


@dataclass(frozen=True)
class ReturnGoods:
    order_id: str
    amount: Decimal
    reason: str
    return_id: str | None = None
    expected_version: int | None = None


class OrderHandlers:
    def __init__(self, orders: AggregateRepository[Order], *, default_payment_days: int) -> None:
        self.orders = orders
        self.default_payment_days = default_payment_days

    async def place_order(self, cmd: PlaceOrder, correlation_id: str) -> Order:
        order_id = cmd.order_id or str(uuid.uuid4())
        if await self.orders.get(order_id) is not None:
            raise DomainError(f"order {order_id} already exists")
        order = Order.place(
            order_id,
            cmd.customer_id,
            cmd.lines,
            currency=cmd.currency,
            placed_at=cmd.placed_at or utc_now(),
            payment_days=self.default_payment_days if cmd.payment_days is None else cmd.payment_days,
        )
        await self.orders.save(order, correlation_id=correlation_id)
        return order

    async def cancel_order(self, cmd: CancelOrder, correlation_id: str) -> Order:
        order = await self._load(cmd.order_id)
        order.cancel(cmd.reason)
        await self.orders.save(order, correlation_id=correlation_id, expected_version=cmd.expected_version)
        return order

    async def return_goods(self, cmd: ReturnGoods, correlation_id: str) -> Order:
        order = await self._load(cmd.order_id)
        order.return_goods(cmd.return_id or str(uuid.uuid4()), cmd.amount, cmd.reason)
        await self.orders.save(order, correlation_id=correlation_id, expected_version=cmd.expected_version)
        return order

    async def _load(self, order_id: str) -> Order:
        order = await self.orders.get(order_id)
        if order is None:
            raise NotFound("order", order_id)
        return order
