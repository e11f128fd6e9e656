"""In-memory fakes of the orders ports, for unit tests of handlers and the sweep (no database).

:class:`InMemoryCreditLedger` keeps the same rules as :class:`~orders.adapters.ledger.PostgresCreditLedger`
(version check on placing, one receivable per order). The shared :class:`InMemoryEventStore` runs repository
hooks as part of the append and undoes the append when a hook fails, like a rolled-back transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from orders.domain.credit import Exposure, bucket_rank, days_overdue
from orders.domain.customer_credit import CustomerCredit
from orders.domain.errors import CreditCheckStale
from orders.domain.order import Order
from shared.eventsourcing.store import TransactionHook


@dataclass(frozen=True)
class Receivable:
    order_id: str
    customer_id: str
    currency: str
    outstanding: Decimal
    due_date: date
    overdue_rank: int


class InMemoryCreditLedger:
    def __init__(self) -> None:
        self.customers: dict[str, CustomerCredit] = {}
        self.receivables: dict[str, Receivable] = {}

    def put_customer(self, customer: CustomerCredit) -> None:
        self.customers[customer.customer_id] = customer

    async def position(
        self, customer_id: str, currency: str, *, tx: Any = None
    ) -> tuple[CustomerCredit | None, Exposure]:
        customer = self.customers.get(customer_id)
        unpaid = [r for r in self.receivables.values() if r.customer_id == customer_id and r.outstanding > 0]
        exposure = Exposure(
            unpaid=sum((r.outstanding for r in unpaid if r.currency == currency), Decimal(0)),
            oldest_unpaid_due=min((r.due_date for r in unpaid), default=None),
        )
        return customer, exposure

    def placing(self, order: Order, checked_version: int) -> TransactionHook:
        async def hook(_conn: Any) -> None:
            customer = self.customers.get(order.customer_id)
            if customer is None or customer.version != checked_version:
                raise CreditCheckStale(order.customer_id)
            self.customers[order.customer_id] = replace(customer, version=customer.version + 1)
            self._record(order)

        return hook

    def recording(self, order: Order) -> TransactionHook:
        async def hook(_conn: Any) -> None:
            self._record(order)

        return hook

    def _record(self, order: Order) -> None:
        assert order.due_date is not None
        self.receivables[order.id] = Receivable(
            order_id=order.id,
            customer_id=order.customer_id,
            currency=order.currency,
            outstanding=order.outstanding,
            due_date=order.due_date,
            overdue_rank=bucket_rank(order.overdue_bucket),
        )

    async def overdue_candidates(
        self, today: date, *, limit: int, after: tuple[date, str] | None = None
    ) -> list[tuple[date, str]]:
        keys = sorted(
            (r.due_date, r.order_id)
            for r in self.receivables.values()
            if r.outstanding > 0 and r.due_date < today and r.overdue_rank < _rank_on(r.due_date, today)
        )
        return [k for k in keys if after is None or k > after][:limit]


def _rank_on(due: date, today: date) -> int:
    days = days_overdue(due, today)
    return 4 if days > 90 else 3 if days > 60 else 2 if days > 30 else 1
