"""Contract events of orders and receivables, published by ``orders`` on ``crm.orders.v1``.

Every amount is :class:`~shared.events.envelope.Money` (decimal string + currency). Events that change
what a customer owes or has bought carry the amount itself (a cancellation carries the order amount),
so a consumer can keep its figures from the events alone, without looking anything up.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events import topics
from shared.events.envelope import EventPayload
from shared.events.registry import event
from shared.events.vocabulary import (
    ActorId,
    CreditHoldReason,
    Identifier,
    Instant,
    NonNegativeMoney,
    OrderStatus,
    OverdueBucket,
    PositiveMoney,
    ProductText,
    Reason,
)

TOPIC = topics.ORDERS
PRODUCER = "orders"


class OrderLine(BaseModel):
    """One line of an order."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: str = Field(min_length=1, max_length=64, description="stock-keeping unit")
    description: ProductText = Field(default="", description="product description, without personal data")
    category: str | None = Field(default=None, min_length=1, max_length=64, description="product category")
    quantity: int = Field(gt=0, description="units ordered")
    unit_price: NonNegativeMoney = Field(description="price per unit (≥ 0)")

    @property
    def amount(self) -> Decimal:
        return self.unit_price.amount * self.quantity


class ReturnedLine(BaseModel):
    """A product and quantity being returned."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: str = Field(min_length=1, max_length=64, description="stock-keeping unit")
    quantity: int = Field(gt=0, description="units returned")


@event
class OrderPlaced(EventPayload):
    """A customer placed an order. ``total`` is exactly the sum of quantity × unit price over the lines.

    An order that fails the credit check is placed with status ``credit_held`` and followed by
    OrderCreditHeld; it counts as placed either way.
    """

    event_type: ClassVar[str] = "OrderPlaced"
    schema_version: ClassVar[int] = 1

    order_id: Identifier = Field(description="id of the order")
    customer_id: Identifier = Field(description="the ordering customer (equals the envelope's customer_id)")
    lines: list[OrderLine] = Field(min_length=1, description="the order lines")
    total: NonNegativeMoney = Field(description="order amount: the sum of the lines, same currency")
    placed_at: Instant = Field(description="when the order was placed")
    due_date: date = Field(description="payment due date: placed date + payment days")
    payment_days: int = Field(ge=0, le=365, description="payment days applied from the customer's terms")
    status: OrderStatus = Field(default=OrderStatus.PLACED, description="placed, or credit_held")

    @model_validator(mode="after")
    def _total_is_the_sum_of_the_lines(self) -> Self:
        currencies = {line.unit_price.currency for line in self.lines} | {self.total.currency}
        if len(currencies) > 1:
            raise ValueError(f"lines and total must share one currency, got {sorted(currencies)}")
        expected = sum((line.amount for line in self.lines), Decimal(0))
        if self.total.amount != expected:
            raise ValueError(f"total {self.total.amount} does not equal the sum of the lines {expected}")
        return self


@event
class OrderCreditHeld(EventPayload):
    """The credit check put the order on hold until someone releases it.

    An order is held when the customer's exposure (unpaid order amounts plus this order) exceeds the
    credit limit, or when the customer has receivables more than 60 days overdue.
    """

    event_type: ClassVar[str] = "OrderCreditHeld"
    schema_version: ClassVar[int] = 1

    order_id: Identifier = Field(description="the held order")
    reasons: list[CreditHoldReason] = Field(min_length=1, description="why it was held")
    exposure: NonNegativeMoney = Field(description="unpaid order amounts of the customer including this order")
    credit_limit: NonNegativeMoney | None = Field(default=None, description="the customer's limit, if one is set")

    @model_validator(mode="after")
    def _distinct_reasons(self) -> Self:
        if len(set(self.reasons)) != len(self.reasons):
            raise ValueError("reasons must not repeat")
        return self


@event
class OrderCreditReleased(EventPayload):
    """A credit hold was released; the order proceeds."""

    event_type: ClassVar[str] = "OrderCreditReleased"
    schema_version: ClassVar[int] = 1

    order_id: Identifier = Field(description="the released order")
    released_by: ActorId = Field(description="operator who released it")
    note: Reason | None = Field(default=None, description="justification")


@event
class PaymentReceived(EventPayload):
    """A payment against an order was received."""

    event_type: ClassVar[str] = "PaymentReceived"
    schema_version: ClassVar[int] = 1

    order_id: Identifier = Field(description="the order paid for")
    payment_id: Identifier = Field(description="id of the payment (unique per order)")
    amount: PositiveMoney = Field(description="amount received (> 0)")
    outstanding: NonNegativeMoney = Field(description="what is still owed on the order after this payment")
    paid_in_full: bool = Field(description="true exactly when outstanding is zero")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.amount.currency != self.outstanding.currency:
            raise ValueError("amount and outstanding must share one currency")
        if self.paid_in_full != (self.outstanding.amount == 0):
            raise ValueError("paid_in_full must be true exactly when outstanding is zero")
        return self


@event
class OrderCancelled(EventPayload):
    """An order was cancelled. ``amount`` is the order amount taken out of the customer's figures."""

    event_type: ClassVar[str] = "OrderCancelled"
    schema_version: ClassVar[int] = 1

    order_id: Identifier = Field(description="the cancelled order")
    amount: NonNegativeMoney = Field(description="the order amount being cancelled")
    reason: Reason = Field(description="why")


@event
class OrderReturned(EventPayload):
    """Goods of an order were returned (part or all); ``amount`` is the value credited back."""

    event_type: ClassVar[str] = "OrderReturned"
    schema_version: ClassVar[int] = 1

    order_id: Identifier = Field(description="the order the goods came from")
    return_id: Identifier = Field(description="id of the return (unique per order)")
    amount: PositiveMoney = Field(description="value returned (> 0)")
    reason: Reason = Field(description="why")
    lines: list[ReturnedLine] | None = Field(default=None, description="what came back, when known")


@event
class PaymentOverdue(EventPayload):
    """An order's receivable is past its due date (found by the orders service's overdue sweep)."""

    event_type: ClassVar[str] = "PaymentOverdue"
    schema_version: ClassVar[int] = 1

    order_id: Identifier = Field(description="the unpaid order")
    days_overdue: int = Field(ge=1, description="days past the due date")
    bucket: OverdueBucket = Field(description="age bucket of days_overdue")
    amount: PositiveMoney = Field(description="amount outstanding")
    due_date: date = Field(description="the missed due date")

    @model_validator(mode="after")
    def _bucket_matches_days(self) -> Self:
        expected = OverdueBucket.for_days(self.days_overdue)
        if self.bucket != expected:
            raise ValueError(f"{self.days_overdue} days overdue fall in bucket {expected}, not {self.bucket}")
        return self
