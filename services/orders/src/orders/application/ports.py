"""What the application layer needs from the outside world (implemented in ``orders.adapters``)."""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from orders.domain.credit import Exposure
from orders.domain.customer_credit import CustomerCredit
from orders.domain.order import Order
from shared.eventsourcing.store import TransactionHook


class CreditLedger(Protocol):
    """The customer credit projection and the receivables view, as the handlers and the sweep use them."""

    async def position(
        self, customer_id: str, currency: str, *, tx: Any = None
    ) -> tuple[CustomerCredit | None, Exposure]:
        """The customer (None if unknown to orders) and its unpaid exposure in ``currency``; read in ``tx``
        (a transaction of the event store) when given, so the check and the append share one transaction."""
        ...

    def placing(self, order: Order, checked_version: int) -> TransactionHook:
        """Hook for the placing transaction: refuse (CreditCheckStale) if the customer's credit version
        moved past ``checked_version``, else take the next version and record the receivable."""
        ...

    def recording(self, order: Order) -> TransactionHook:
        """Hook that records the order's receivable as of its new state."""
        ...

    async def overdue_candidates(
        self, today: date, *, limit: int, after: tuple[date, str] | None = None
    ) -> list[tuple[date, str]]:
        """(due date, order id) of unpaid orders in a bucket not reported yet, ordered, after ``after``."""
        ...
