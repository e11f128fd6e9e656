"""The Order aggregate: placing, cancelling and returning goods.

Totals are computed here from the lines, never taken from the caller. Its stored events are the
public contract payloads themselves (they carry no personal data), so the public mapping is identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel

from shared.events import orders as contract
from shared.events.envelope import Money
from shared.events.registry import REGISTRY
from shared.eventsourcing.aggregate import Aggregate, DomainError

CENT = Decimal("0.01")


def money(amount: Decimal, currency: str) -> Money:
    return Money(amount=amount.quantize(CENT, rounding=ROUND_HALF_UP), currency=currency)


@dataclass(frozen=True)
class OrderLine:
    sku: str
    description: str
    quantity: int
    unit_price: Decimal
    category: str | None = None

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity


class Order(Aggregate):
    aggregate_type = "order"
    event_registry = REGISTRY

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self._customer_id = ""
        self.currency = "CNY"
        self.total = Decimal(0)
        self.returned = Decimal(0)
        self.status = "new"
        self.placed_at: datetime | None = None
        self.return_ids: set[str] = set()

    @property
    def customer_id(self) -> str:
        return self._customer_id

    @property
    def returnable(self) -> Decimal:
        return self.total - self.returned

    # -- commands -------------------------------------------------------------------------------
    @classmethod
    def place(
        cls,
        order_id: str,
        customer_id: str,
        lines: list[OrderLine],
        *,
        currency: str,
        placed_at: datetime,
        payment_days: int,
    ) -> Order:
        if not lines:
            raise DomainError("an order needs at least one line")
        order = cls(order_id)
        total = sum((line.amount for line in lines), Decimal(0))
        order._record(
            contract.OrderPlaced(
                order_id=order_id,
                customer_id=customer_id,
                lines=[
                    contract.OrderLine(
                        sku=line.sku,
                        description=line.description,
                        category=line.category,
                        quantity=line.quantity,
                        unit_price=Money(amount=line.unit_price, currency=currency),
                    )
                    for line in lines
                ],
                total=Money(amount=total, currency=currency),
                placed_at=placed_at,
                due_date=(placed_at + timedelta(days=payment_days)).date(),
                payment_days=payment_days,
                status="placed",
            )
        )
        return order

    def cancel(self, reason: str) -> None:
        if self.status == "cancelled":
            raise DomainError(f"order {self.id} is already cancelled")
        if self.returned > 0:
            raise DomainError(f"order {self.id} has returns; return the rest instead of cancelling")
        self._record(
            contract.OrderCancelled(
                order_id=self.id, amount=Money(amount=self.total, currency=self.currency), reason=reason
            )
        )

    def return_goods(self, return_id: str, amount: Decimal, reason: str) -> None:
        if self.status == "cancelled":
            raise DomainError(f"order {self.id} is cancelled; nothing to return")
        if return_id in self.return_ids:
            raise DomainError(f"return {return_id} of order {self.id} is already recorded")
        if amount <= 0:
            raise DomainError("a return amount must be positive")
        if amount > self.returnable:
            raise DomainError(f"return of {amount} exceeds the returnable {self.returnable} of order {self.id}")
        self._record(
            contract.OrderReturned(
                order_id=self.id,
                return_id=return_id,
                amount=Money(amount=amount, currency=self.currency),
                reason=reason,
            )
        )

    # -- state ----------------------------------------------------------------------------------
    def _apply(self, event: BaseModel) -> None:
        match event:
            case contract.OrderPlaced():
                self._customer_id = event.customer_id
                self.currency = event.total.currency
                self.total = event.total.amount
                self.status = event.status
                self.placed_at = event.placed_at
            case contract.OrderCancelled():
                self.status = "cancelled"
            case contract.OrderReturned():
                self.returned += event.amount.amount
                self.return_ids.add(event.return_id)
                if self.returned >= self.total:
                    self.status = "returned"
            case _:
                pass
