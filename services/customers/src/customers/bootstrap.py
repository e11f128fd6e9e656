"""Composition root of the customers service."""

from __future__ import annotations

from customers.adapters.codec import PersonalDataCodec
from customers.adapters.directory import CustomerDirectory
from customers.adapters.keys import CustomerKeys
from customers.application.handlers import CustomerHandlers
from customers.application.public_events import to_public
from customers.config import CustomersSettings
from customers.domain.customer import Customer
from shared.events import customers as contract
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import EventStore, PostgresEventStore
from shared.runtime import Container


def wire(container: Container[CustomersSettings], store: EventStore | None = None) -> None:
    store = store or PostgresEventStore(container.engine)
    codec = PersonalDataCodec(CustomerKeys(container.engine), Customer.event_registry)
    repository = AggregateRepository(
        store,
        Customer,
        producer=contract.PRODUCER,
        topic=container.topics.name(contract.TOPIC),
        to_public=to_public,
        codec=codec,
    )
    container.parts["handlers"] = CustomerHandlers(repository, codec, CustomerDirectory(container.engine))
