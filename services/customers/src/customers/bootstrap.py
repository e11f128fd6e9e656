"""Composition root of the customers service."""

from __future__ import annotations

from customers.application.handlers import CustomerHandlers
from customers.config import CustomersSettings
from customers.domain.customer import Customer
from shared.events import customers as contract
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import EventStore, PostgresEventStore
from shared.runtime import Container


def wire(container: Container[CustomersSettings], store: EventStore | None = None) -> None:
    store = store or PostgresEventStore(container.engine)
    repository = AggregateRepository(
        store, Customer, producer=contract.PRODUCER, topic=container.topics.name(contract.TOPIC)
    )
    container.parts["handlers"] = CustomerHandlers(repository)
