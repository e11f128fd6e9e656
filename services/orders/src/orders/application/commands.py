"""Commands of the orders service: what a caller asks for, already validated for shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from orders.domain.order import OrderLine, ReturnedUnits


@dataclass(frozen=True)
class PlaceOrder:
    customer_id: str
    lines: list[OrderLine]
    currency: str
    order_id: str | None = None
    placed_at: datetime | None = None


@dataclass(frozen=True)
class ReceivePayment:
    order_id: str
    amount: Decimal
    payment_id: str | None = None
    currency: str | None = None
    expected_version: int | None = None


@dataclass(frozen=True)
class ReleaseCredit:
    order_id: str
    released_by: str
    note: str | None = None
    expected_version: int | None = None


@dataclass(frozen=True)
class CancelOrder:
    order_id: str
    reason: str
    expected_version: int | None = None


@dataclass(frozen=True)
class ReturnGoods:
    order_id: str
    amount: Decimal | None
    reason: str
    return_id: str | None = None
    expected_version: int | None = None
    lines: list[ReturnedUnits] | None = None
