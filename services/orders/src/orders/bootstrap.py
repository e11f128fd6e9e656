"""Composition root of the orders service: the one place parts are wired together."""

from __future__ import annotations

from orders.application.handlers import OrderHandlers
from orders.config import OrdersSettings
from orders.domain.order import Order
from shared.events import orders as contract
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import EventStore, PostgresEventStore
from shared.runtime import Container


def wire(container: Container[OrdersSettings], store: EventStore | None = None) -> None:
    store = store or PostgresEventStore(container.engine)
    repository = AggregateRepository(
        store, Order, producer=contract.PRODUCER, topic=container.topics.name(contract.TOPIC)
    )
    container.parts["handlers"] = OrderHandlers(
        repository, default_payment_days=container.settings.default_payment_days
    )
