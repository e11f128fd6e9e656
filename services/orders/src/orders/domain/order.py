"""The Order aggregate: placing (with the credit decision), payments, credit release, cancellation,
returns, and overdue reporting.

Totals and return values are computed here from the lines, never taken from the caller. The stored
events are the public contract payloads themselves (they carry no personal data), so the public mapping
is identity. Which overdue bucket was last reported is part of the stream (PaymentOverdue), so a replay
knows it and the sweep never reports a bucket twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel

from orders.domain import credit as rules
from orders.domain.errors import AmountOutOfRange, FieldRuleViolation
from shared.events import orders as contract
from shared.events.envelope import Money
from shared.events.registry import REGISTRY
from shared.events.vocabulary import OrderStatus, OverdueBucket
from shared.eventsourcing.aggregate import Aggregate, DomainError

#: The largest amount an order, a payment or a return may carry: what the receivables' NUMERIC(18, 4) columns
#: and the contract's amounts hold (14 digits before the point, 4 after).
LARGEST_AMOUNT = Decimal("99999999999999.9999")


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


def order_total(lines: Sequence[OrderLine]) -> Decimal:
    """The total of ``lines`` (quantity × unit price each); beyond :data:`LARGEST_AMOUNT` it is refused,
    naming ``lines`` (:class:`AmountOutOfRange`), not left to overflow the receivables."""
    total = sum((line.amount for line in lines), Decimal(0))
    if total > LARGEST_AMOUNT:
        raise AmountOutOfRange("the order's total", total, LARGEST_AMOUNT)
    return total


@dataclass(frozen=True)
class ReturnedUnits:
    sku: str
    quantity: int


class Order(Aggregate):
    aggregate_type = "order"
    event_registry = REGISTRY

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self._customer_id = ""
        self.currency = "CNY"
        self.lines: list[contract.OrderLine] = []
        self.total = Decimal(0)
        self.returned = Decimal(0)
        self.paid = Decimal(0)
        self.placed_at: datetime | None = None
        self.due_date: date | None = None
        self.payment_days = 0
        self.cancelled = False
        self.hold: contract.OrderCreditHeld | None = None
        self.on_hold = False
        self.payment_ids: set[str] = set()
        self.return_ids: set[str] = set()
        self.returned_units: dict[str, int] = {}
        self.overdue_bucket: OverdueBucket | None = None

    @property
    def customer_id(self) -> str:
        return self._customer_id

    @property
    def status(self) -> str:
        """new | credit_held | placed | paid | returned | cancelled."""
        if self.placed_at is None:
            return "new"
        if self.cancelled:
            return "cancelled"
        if self.total > 0 and self.returned >= self.total:
            return "returned"
        if self.on_hold:
            return "credit_held"
        if self.paid > 0 and self.outstanding == 0:
            return "paid"
        return "placed"

    @property
    def returnable(self) -> Decimal:
        return self.total - self.returned

    @property
    def outstanding(self) -> Decimal:
        """What the customer still owes on this order (never negative; nothing once cancelled)."""
        zero = self.total - self.total  # zero at the order's scale: "0.00", not "0"
        remaining = self.total - self.returned - self.paid
        return remaining if remaining > 0 and not self.cancelled else zero

    def _money(self, amount: Decimal) -> Money:
        return Money(amount=amount, currency=self.currency)

    # -- commands -------------------------------------------------------------------------------
    @classmethod
    def place(
        cls,
        order_id: str,
        customer_id: str,
        lines: Sequence[OrderLine],
        *,
        currency: str,
        placed_at: datetime,
        payment_days: int,
        credit: rules.CreditDecision | None = None,
    ) -> Order:
        """Place an order; a credit decision with reasons places it on hold (OrderCreditHeld)."""
        if not lines:
            raise DomainError("an order needs at least one line")
        total = order_total(lines)
        order = cls(order_id)
        held = credit is not None and credit.held
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
                due_date=rules.due_date(placed_at, payment_days),
                payment_days=payment_days,
                status=OrderStatus.CREDIT_HELD if held else OrderStatus.PLACED,
            )
        )
        if credit is not None and credit.held:
            limit = credit.credit_limit
            order._record(
                contract.OrderCreditHeld(
                    order_id=order_id,
                    reasons=list(credit.reasons),
                    exposure=Money(amount=credit.exposure, currency=credit.currency),
                    credit_limit=None
                    if limit is None
                    else Money(amount=limit, currency=credit.limit_currency or currency),
                )
            )
        return order

    def receive_payment(self, payment_id: str, amount: Decimal, currency: str | None = None) -> None:
        if self.cancelled:
            raise DomainError(f"order {self.id} is cancelled; it takes no payments")
        if payment_id in self.payment_ids:
            raise DomainError(f"payment {payment_id} of order {self.id} is already recorded")
        if currency is not None and currency != self.currency:
            raise FieldRuleViolation(
                f"order {self.id} is in {self.currency}, not {currency}",
                field="currency",
                code="currency_mismatch",
                value=currency,
            )
        if amount <= 0:
            raise FieldRuleViolation("a payment must be positive", field="amount", code="not_positive", value=amount)
        if amount > self.outstanding:
            raise FieldRuleViolation(
                f"payment of {amount} exceeds the {self.outstanding} outstanding on order {self.id}",
                field="amount",
                code="overpayment",
                value=amount,
            )
        after = self.outstanding - amount
        self._record(
            contract.PaymentReceived(
                order_id=self.id,
                payment_id=payment_id,
                amount=self._money(amount),
                outstanding=self._money(after),
                paid_in_full=after == 0,
            )
        )

    def release_credit(self, released_by: str, note: str | None = None) -> None:
        if self.cancelled:
            raise DomainError(f"order {self.id} is cancelled")
        if not self.on_hold:
            raise DomainError(f"order {self.id} is not on credit hold")
        self._record(contract.OrderCreditReleased(order_id=self.id, released_by=released_by, note=note))

    def cancel(self, reason: str) -> None:
        if self.cancelled:
            raise DomainError(f"order {self.id} is already cancelled")
        if self.returned > 0:
            raise DomainError(f"order {self.id} has returns; return the rest instead of cancelling")
        if self.paid > 0:
            raise DomainError(f"order {self.id} has payments; return the goods instead of cancelling")
        self._record(contract.OrderCancelled(order_id=self.id, amount=self._money(self.total), reason=reason))

    def return_goods(
        self,
        return_id: str,
        amount: Decimal | None,
        reason: str,
        lines: Sequence[ReturnedUnits] | None = None,
    ) -> None:
        """Return part or all of the goods: by ``amount``, or by ``lines`` (valued at the order's prices)."""
        if self.cancelled:
            raise DomainError(f"order {self.id} is cancelled; nothing to return")
        if self.on_hold:
            raise DomainError(f"order {self.id} is on credit hold, so nothing has shipped; cancel it instead")
        if return_id in self.return_ids:
            raise DomainError(f"return {return_id} of order {self.id} is already recorded")
        if lines:
            value = self._value_of_return(lines)
            if amount is not None and amount != value:
                raise FieldRuleViolation(
                    f"amount {amount} differs from the value {value} of the returned lines",
                    field="amount",
                    code="amount_mismatch",
                    value=amount,
                )
            amount = value
        if amount is None:
            raise FieldRuleViolation("give the amount or the lines returned", field="amount", code="missing")
        if amount <= 0:
            raise FieldRuleViolation("a return amount must be positive", field="amount", code="not_positive")
        if amount > self.returnable:
            raise FieldRuleViolation(
                f"return of {amount} exceeds the returnable {self.returnable} of order {self.id}",
                field="lines" if lines else "amount",  # valued from the lines: they are what the caller gave
                code="exceeds_returnable",
                value=[{"sku": u.sku, "quantity": u.quantity} for u in lines] if lines else amount,
            )
        self._record(
            contract.OrderReturned(
                order_id=self.id,
                return_id=return_id,
                amount=self._money(amount),
                reason=reason,
                lines=[contract.ReturnedLine(sku=u.sku, quantity=u.quantity) for u in lines] if lines else None,
            )
        )

    def report_overdue(self, today: date) -> bool:
        """Record PaymentOverdue when the receivable entered a bucket not reported yet; True if it did."""
        if self.due_date is None or self.outstanding <= 0:
            return False
        bucket = rules.overdue_bucket(self.due_date, today)
        if rules.bucket_rank(bucket) <= rules.bucket_rank(self.overdue_bucket):
            return False
        assert bucket is not None
        self._record(
            contract.PaymentOverdue(
                order_id=self.id,
                days_overdue=rules.days_overdue(self.due_date, today),
                bucket=bucket,
                amount=self._money(self.outstanding),
                due_date=self.due_date,
            )
        )
        return True

    # -- helpers --------------------------------------------------------------------------------
    def _value_of_return(self, units: Sequence[ReturnedUnits]) -> Decimal:
        """Value returned units at the order's prices; a sku's units are taken line by line in order."""
        value = Decimal(0)
        taken: dict[str, int] = {}
        for unit in units:
            prices = [(line.quantity, line.unit_price.amount) for line in self.lines if line.sku == unit.sku]
            if not prices:
                raise FieldRuleViolation(
                    f"sku {unit.sku!r} is not on order {self.id}", field="lines", code="not_on_order", value=unit.sku
                )
            start = self.returned_units.get(unit.sku, 0) + taken.get(unit.sku, 0)
            if start + unit.quantity > sum(q for q, _ in prices):
                raise FieldRuleViolation(
                    f"returning {unit.quantity} of {unit.sku!r} exceeds what was ordered and not yet returned",
                    field="lines",
                    code="exceeds_ordered",
                    value=unit.sku,
                )
            value += _value_of_units(prices, start, unit.quantity)
            taken[unit.sku] = taken.get(unit.sku, 0) + unit.quantity
        return value

    # -- state ----------------------------------------------------------------------------------
    def _apply(self, event: BaseModel) -> None:
        match event:
            case contract.OrderPlaced():
                self._customer_id = event.customer_id
                self.currency = event.total.currency
                self.lines = list(event.lines)
                self.total = event.total.amount
                self.placed_at = event.placed_at
                self.due_date = event.due_date
                self.payment_days = event.payment_days
                self.on_hold = event.status == OrderStatus.CREDIT_HELD
            case contract.OrderCreditHeld():
                self.hold = event
                self.on_hold = True
            case contract.OrderCreditReleased():
                self.on_hold = False
            case contract.PaymentReceived():
                self.paid += event.amount.amount
                self.payment_ids.add(event.payment_id)
            case contract.OrderCancelled():
                self.cancelled = True
            case contract.OrderReturned():
                self.returned += event.amount.amount
                self.return_ids.add(event.return_id)
                for line in event.lines or ():
                    self.returned_units[line.sku] = self.returned_units.get(line.sku, 0) + line.quantity
            case contract.PaymentOverdue():
                self.overdue_bucket = event.bucket
            case _:
                pass


def _value_of_units(lines: list[tuple[int, Decimal]], start: int, count: int) -> Decimal:
    """Value of units ``start … start+count-1`` of a sku whose units are spread over ``lines``."""
    value = Decimal(0)
    offset = 0
    for quantity, price in lines:
        lo, hi = max(start, offset), min(start + count, offset + quantity)
        if hi > lo:
            value += price * (hi - lo)
        offset += quantity
    return value
