"""Command handlers of the orders service: load → one domain call → save. Nothing else.

Placing an order is the one handler with a loop: the credit check reads the customer's position, and
the append transaction re-checks that position's version (see :class:`~orders.application.ports.CreditLedger`);
if another order of the same customer (or a change of its terms) got in between, the check runs again.
Within one process, placements for one customer also queue behind each other (:class:`KeyedLocks`), so
the re-check only ever fires for races between API instances or with the credit-terms consumer.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from datetime import datetime

from prometheus_client import Counter

from orders.application.commands import CancelOrder, PlaceOrder, ReceivePayment, ReleaseCredit, ReturnGoods
from orders.application.locks import KeyedLocks
from orders.application.ports import CreditLedger
from orders.domain import credit as rules
from orders.domain.errors import CreditCheckStale
from orders.domain.order import Order
from orders.domain.placing import place_order
from shared.api import NotFound
from shared.clock import dated
from shared.events.envelope import utc_now
from shared.events.vocabulary import CreditHoldReason
from shared.eventsourcing.aggregate import DomainError
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import ConcurrencyConflict

CREDIT_HOLDS = Counter("tierstream_orders_credit_holds_total", "Orders placed on credit hold", ["reason"])
for _reason in CreditHoldReason:  # every series exists from start-up, at 0: alerts tell 0 from "not scraped"
    CREDIT_HOLDS.labels(str(_reason))

__all__ = ["CancelOrder", "OrderHandlers", "PlaceOrder", "ReceivePayment", "ReleaseCredit", "ReturnGoods"]


class OrderHandlers:
    def __init__(
        self,
        orders: AggregateRepository[Order],
        ledger: CreditLedger,
        *,
        policy: rules.CreditPolicy,
        clock: Callable[[], datetime] = utc_now,
        place_attempts: int = 8,
    ) -> None:
        self.orders = orders
        self.ledger = ledger
        self.policy = policy
        self.clock = clock
        self.place_attempts = place_attempts
        self._placing = KeyedLocks()

    async def place_order(self, cmd: PlaceOrder, correlation_id: str) -> Order:
        async with self._placing.hold(cmd.customer_id):
            return await self._place_order(cmd, correlation_id)

    async def _place_order(self, cmd: PlaceOrder, correlation_id: str) -> Order:
        order_id = cmd.order_id or str(uuid.uuid4())
        placed_at = dated(cmd.placed_at, self.clock(), field="placed_at")
        for attempt in range(1, self.place_attempts + 1):
            try:
                # One connection: the credit check reads the position, the append (one statement, atomic)
                # re-checks its version. An existing order id needs no read first: its first event
                # collides with the stream's.
                async with self.orders.connection() as tx:
                    customer, exposure = await self.ledger.position(cmd.customer_id, cmd.currency, tx=tx)
                    order = place_order(
                        order_id,
                        cmd.customer_id,
                        cmd.lines,
                        currency=cmd.currency,
                        placed_at=placed_at,
                        customer=customer,
                        exposure=exposure,
                        policy=self.policy,
                    )
                    assert customer is not None  # place_order refuses unknown customers
                    hook = self.ledger.placing(order, customer.version)
                    await self.orders.save(order, correlation_id=correlation_id, hook=hook, tx=tx)
            except CreditCheckStale:
                await asyncio.sleep(random.uniform(0, 0.02 * attempt))
                continue
            except ConcurrencyConflict as exc:
                raise DomainError(f"order {order_id} already exists") from exc
            if order.hold is not None:
                for reason in order.hold.reasons:
                    CREDIT_HOLDS.labels(str(reason)).inc()
            return order
        raise DomainError(
            f"the credit position of customer {cmd.customer_id} kept changing while order {order_id} was checked; retry"
        )

    async def receive_payment(self, cmd: ReceivePayment, correlation_id: str) -> Order:
        payment_id = cmd.payment_id or str(uuid.uuid4())
        return await self._change(
            cmd.order_id,
            correlation_id,
            cmd.expected_version,
            lambda o: o.receive_payment(payment_id, cmd.amount, cmd.currency),
        )

    async def release_credit(self, cmd: ReleaseCredit, correlation_id: str) -> Order:
        return await self._change(
            cmd.order_id, correlation_id, cmd.expected_version, lambda o: o.release_credit(cmd.released_by, cmd.note)
        )

    async def cancel_order(self, cmd: CancelOrder, correlation_id: str) -> Order:
        return await self._change(cmd.order_id, correlation_id, cmd.expected_version, lambda o: o.cancel(cmd.reason))

    async def return_goods(self, cmd: ReturnGoods, correlation_id: str) -> Order:
        return_id = cmd.return_id or str(uuid.uuid4())
        return await self._change(
            cmd.order_id,
            correlation_id,
            cmd.expected_version,
            lambda o: o.return_goods(return_id, cmd.amount, cmd.reason, cmd.lines),
        )

    async def _change(
        self, order_id: str, correlation_id: str, expected_version: int | None, change: Callable[[Order], None]
    ) -> Order:
        """Load the order, apply one domain call, save it with its receivable: one connection, two round trips."""
        async with self.orders.connection() as tx:
            order = await self.orders.get(order_id, tx=tx)
            if order is None:
                raise NotFound("order", order_id)
            change(order)
            await self.orders.save(
                order,
                correlation_id=correlation_id,
                expected_version=expected_version,
                hook=self.ledger.recording(order),
                tx=tx,
            )
        return order
