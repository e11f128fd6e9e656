"""Composition root of the orders service: the one place parts are wired together.

Tests inject fakes through the keyword arguments (an in-memory store and ledger) or a fixed clock
through ``container.parts["clock"]`` before calling :func:`wire`. ``ORDERS_CLOCK_START`` (demos of
historical data) sets the service's business clock — the date of an order placed without ``placed_at``,
the "not in the future" check, the overdue sweep's today — so an order placed during a demo of 2011 data
is dated in 2011 and falls due then; events keep their real recording times (``occurred_at``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from orders.adapters.ledger import PostgresCreditLedger
from orders.application.handlers import OrderHandlers
from orders.application.overdue import OverdueSweep
from orders.application.ports import CreditLedger
from orders.config import OrdersSettings
from orders.domain.order import Order
from shared.clock import running_from
from shared.events import orders as contract
from shared.events.envelope import utc_now
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import EventStore, PostgresEventStore
from shared.runtime import Container


def wire(
    container: Container[OrdersSettings], store: EventStore | None = None, ledger: CreditLedger | None = None
) -> None:
    settings = container.settings
    clock: Callable[[], datetime] = container.parts.get("clock", utc_now)
    store = store or PostgresEventStore(container.engine)
    postgres_ledger = PostgresCreditLedger(container.engine)
    ledger = ledger or postgres_ledger
    repository = AggregateRepository(
        store, Order, producer=contract.PRODUCER, topic=container.topics.name(contract.TOPIC), clock=clock
    )
    container.parts["orders"] = repository
    container.parts["ledger"] = postgres_ledger  # the read side of the API
    business = clock
    if "clock" not in container.parts and settings.clock_start is not None:
        business = running_from(settings.clock_start, settings.clock_anchor)
    container.parts["handlers"] = OrderHandlers(repository, ledger, policy=settings.credit_policy(), clock=business)
    container.parts["overdue_sweep"] = OverdueSweep(
        repository, ledger, clock=business, batch_size=settings.overdue_sweep_batch_size
    )
