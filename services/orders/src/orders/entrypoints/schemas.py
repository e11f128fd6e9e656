"""Request and response bodies of the orders HTTP API (shapes only; the rules live in the domain)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Self, get_args

from pydantic import BaseModel, Field, model_validator

from orders.domain.order import Order
from shared.api import Identifier, NotBlank, RequestBody
from shared.clock import GivenInstant
from shared.events.envelope import DecimalString, Money
from shared.events.vocabulary import ActorId, ProductText, Reason

# Amounts are DecimalStrings whose bounds come first, so that pydantic-core's decimal validator checks
# them: after DecimalString's own before-validator (``Annotated[DecimalString, Field(...)]``) pydantic
# can only check them in Python, ~2 µs per amount. Same errors, same JSON schema.
_DECIMAL_STRING = get_args(DecimalString)[1:]
Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=4), *_DECIMAL_STRING]
PositiveAmount = Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=4), *_DECIMAL_STRING]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
#: A reason or note that reaches a public event: no personal data (the contract's Reason), not blank.
ReasonText = Annotated[Reason, NotBlank]
Sku = Annotated[str, Field(min_length=1, max_length=64), NotBlank]
#: A count of units: a JSON integer (not ``true``, ``"3"`` or ``3.0``), 1 to 1,000,000.
Quantity = Annotated[int, Field(strict=True, gt=0, le=1_000_000)]


# -- commands -----------------------------------------------------------------------------------------
class OrderLineIn(RequestBody):
    sku: Sku
    description: ProductText = ""
    category: Annotated[str, Field(min_length=1, max_length=64), NotBlank] | None = None
    quantity: Quantity
    unit_price: Amount


class PlaceOrderIn(RequestBody):
    customer_id: Identifier
    order_id: Identifier | None = Field(default=None, description="caller-chosen id (e.g. an invoice number)")
    currency: Currency = "CNY"
    placed_at: GivenInstant | None = Field(
        default=None, description="when it was placed (with its UTC offset; from 1970, not in the future); default now"
    )
    lines: list[OrderLineIn] = Field(min_length=1, max_length=1000)


class PaymentIn(RequestBody):
    amount: PositiveAmount
    currency: Currency | None = Field(default=None, description="must be the order's currency when given")
    payment_id: Identifier | None = Field(default=None, description="caller-chosen id, unique per order")


class CreditReleaseIn(RequestBody):
    released_by: Annotated[ActorId, NotBlank] = Field(description="operator id (never a person's name)")
    note: ReasonText | None = None


class CancelOrderIn(RequestBody):
    reason: ReasonText


class ReturnedLineIn(RequestBody):
    sku: Sku
    quantity: Quantity


class ReturnGoodsIn(RequestBody):
    """Give ``amount``, or ``lines`` (valued at the order's unit prices), or both when they agree."""

    amount: PositiveAmount | None = None
    reason: ReasonText
    return_id: Identifier | None = None
    lines: list[ReturnedLineIn] | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _amount_or_lines(self) -> Self:
        if self.amount is None and not self.lines:
            raise ValueError("give the amount or the lines returned")
        return self


# -- answers ------------------------------------------------------------------------------------------
class OrderLineOut(BaseModel):
    sku: str
    description: str
    category: str | None
    quantity: int
    unit_price: DecimalString
    amount: DecimalString


class CreditHoldOut(BaseModel):
    on_hold: bool = Field(description="false once released")
    reasons: list[str]
    exposure: Money
    credit_limit: Money | None


class OrderOut(BaseModel):
    order_id: str
    customer_id: str
    status: str = Field(description="credit_held | placed | paid | returned | cancelled")
    currency: str
    total: DecimalString
    returned: DecimalString
    paid: DecimalString
    outstanding: DecimalString
    placed_at: datetime | None
    due_date: date | None
    payment_days: int
    overdue_bucket: str | None
    credit_hold: CreditHoldOut | None
    lines: list[OrderLineOut]
    version: int

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        hold = None
        if order.hold is not None:
            hold = CreditHoldOut(
                on_hold=order.on_hold,
                reasons=[str(r) for r in order.hold.reasons],
                exposure=order.hold.exposure,
                credit_limit=order.hold.credit_limit,
            )
        return cls(
            order_id=order.id,
            customer_id=order.customer_id,
            status=order.status,
            currency=order.currency,
            total=order.total,
            returned=order.returned,
            paid=order.paid,
            outstanding=order.outstanding,
            placed_at=order.placed_at,
            due_date=order.due_date,
            payment_days=order.payment_days,
            overdue_bucket=None if order.overdue_bucket is None else str(order.overdue_bucket),
            credit_hold=hold,
            lines=[
                OrderLineOut(
                    sku=line.sku,
                    description=line.description,
                    category=line.category,
                    quantity=line.quantity,
                    unit_price=line.unit_price.amount,
                    amount=line.amount,
                )
                for line in order.lines
            ],
            version=order.version,
        )


class OrderSummaryOut(BaseModel):
    """One row of a customer's order list (the receivables view)."""

    order_id: str
    status: str
    currency: str
    total: DecimalString
    returned: DecimalString
    paid: DecimalString
    outstanding: DecimalString
    placed_at: datetime
    due_date: date
    overdue_bucket: str | None
    version: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> OrderSummaryOut:
        return cls(**row, version=row["order_version"])


class OrderPage(BaseModel):
    items: list[OrderSummaryOut]
    total: int = Field(description="orders of the customer in all pages")
    limit: int
    offset: int


class UnpaidOut(BaseModel):
    amount: Money
    orders: int
    oldest_due_date: date
    days_overdue: int


class CustomerCreditOut(BaseModel):
    """What orders knows of a customer's credit (from crm.customers.v1) and what it owes now."""

    customer_id: str
    registered: bool
    active: bool
    credit_controlled: bool
    credit_limit: Money | None
    payment_days: int
    rating: str | None
    unpaid: list[UnpaidOut]
