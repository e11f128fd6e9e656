"""HTTP API of the orders service (thin: validate, call a handler, shape the answer)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, FastAPI, status
from pydantic import AwareDatetime, BaseModel, Field

from orders.application.handlers import CancelOrder, OrderHandlers, PlaceOrder, ReturnGoods
from orders.domain.order import Order, OrderLine
from shared.api import (
    CorrelationId,
    ExpectedVersion,
    Identifier,
    NotFound,
    StoredEventOut,
    create_app,
    database_check,
    kafka_check,
)
from shared.events.envelope import DecimalString
from shared.runtime import Container

Amount = Annotated[DecimalString, Field(ge=0, max_digits=18, decimal_places=4)]


class OrderLineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=300)
    category: str | None = Field(default=None, max_length=64)
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price: Amount


class PlaceOrderIn(BaseModel):
    customer_id: Identifier
    order_id: Identifier | None = Field(default=None, description="caller-chosen id (e.g. an invoice number)")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    placed_at: AwareDatetime | None = Field(default=None, description="defaults to now")
    payment_days: int | None = Field(default=None, ge=0, le=365)
    lines: list[OrderLineIn] = Field(min_length=1, max_length=1000)


class CancelOrderIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class ReturnGoodsIn(BaseModel):
    amount: Annotated[DecimalString, Field(gt=0, max_digits=18, decimal_places=4)]
    reason: str = Field(min_length=1, max_length=500)
    return_id: Identifier | None = None


class OrderOut(BaseModel):
    order_id: str
    customer_id: str
    status: str
    currency: str
    total: DecimalString
    returned: DecimalString
    placed_at: datetime | None
    version: int

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        return cls(
            order_id=order.id,
            customer_id=order.customer_id,
            status=order.status,
            currency=order.currency,
            total=order.total,
            returned=order.returned,
            placed_at=order.placed_at,
            version=order.version,
        )


def build_api(container: Container) -> FastAPI:
    handlers: OrderHandlers = container.parts["handlers"]
    router = APIRouter(prefix="/orders", tags=["orders"])

    @router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderOut, summary="Place an order")
    async def place_order(body: PlaceOrderIn, cid: CorrelationId) -> OrderOut:
        lines = [
            OrderLine(
                sku=line.sku,
                description=line.description,
                quantity=line.quantity,
                unit_price=Decimal(line.unit_price),
                category=line.category,
            )
            for line in body.lines
        ]
        cmd = PlaceOrder(
            customer_id=body.customer_id,
            lines=lines,
            currency=body.currency,
            order_id=body.order_id,
            placed_at=body.placed_at,
            payment_days=body.payment_days,
        )
        return OrderOut.of(await handlers.place_order(cmd, cid))

    @router.get("/{order_id}", response_model=OrderOut, summary="Current state of an order")
    async def get_order(order_id: str) -> OrderOut:
        order = await handlers.orders.get(order_id)
        if order is None:
            raise NotFound("order", order_id)
        return OrderOut.of(order)

    @router.get("/{order_id}/events", response_model=list[StoredEventOut], summary="The order's event stream")
    async def order_events(order_id: str) -> list[StoredEventOut]:
        history = await handlers.orders.history(order_id)
        if not history:
            raise NotFound("order", order_id)
        return [StoredEventOut.from_stored(e) for e in history]

    @router.post("/{order_id}/cancellation", response_model=OrderOut, summary="Cancel an order")
    async def cancel_order(
        order_id: str, body: CancelOrderIn, cid: CorrelationId, expected: ExpectedVersion
    ) -> OrderOut:
        return OrderOut.of(await handlers.cancel_order(CancelOrder(order_id, body.reason, expected), cid))

    @router.post("/{order_id}/returns", response_model=OrderOut, summary="Return goods (part or all)")
    async def return_goods(
        order_id: str, body: ReturnGoodsIn, cid: CorrelationId, expected: ExpectedVersion
    ) -> OrderOut:
        cmd = ReturnGoods(order_id, Decimal(body.amount), body.reason, body.return_id, expected)
        return OrderOut.of(await handlers.return_goods(cmd, cid))

    settings = container.settings
    return create_app(
        service="orders",
        title="Tierstream orders",
        description="Orders, payments, cancellations and returns of wholesale customers.",
        routers=[router],
        ready_checks={
            "database": database_check(container.engine),
            "kafka": kafka_check(settings.kafka_bootstrap_servers),
        },
    )
