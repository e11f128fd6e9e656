"""Command handlers and queries of the customers service: load → one domain call → save.

Every save also rewrites the customer's directory row in the same transaction (a hook), and goes
through the repository's codec, which encrypts personal data and shreds the key on erasure.
"""

from __future__ import annotations

import uuid

from customers.adapters.codec import PersonalDataCodec
from customers.adapters.directory import CustomerDirectory, DirectoryPage
from customers.adapters.keys import KeyCreatedConcurrently
from customers.domain import commands as cmd
from customers.domain.customer import Customer
from shared.api import NotFound
from shared.eventsourcing.aggregate import DomainError
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import ConcurrencyConflict, StoredEvent


class CustomerHandlers:
    def __init__(
        self, customers: AggregateRepository[Customer], codec: PersonalDataCodec, directory: CustomerDirectory
    ) -> None:
        self.customers = customers
        self.codec = codec
        self.directory = directory

    async def register_customer(self, command: cmd.RegisterCustomer, correlation_id: str) -> Customer:
        customer_id = command.customer_id or str(uuid.uuid4())
        customer = Customer.register(customer_id, command.profile, command.stage)
        # No read first: the first event of a taken id collides with the stream's (one round trip).
        try:
            await self.customers.save(customer, correlation_id=correlation_id, hook=self.directory.record(customer))
        except KeyCreatedConcurrently:
            raise
        except ConcurrencyConflict as exc:
            raise DomainError(f"customer {customer_id} is already registered") from exc
        return customer

    async def handle(self, command: cmd.CustomerCommand, correlation_id: str) -> Customer:
        """Any command on an existing customer, loaded and saved on one connection. A command that
        changes nothing records no event."""
        async with self.customers.connection() as tx:
            customer = await self.customers.get(command.customer_id, tx=tx)
            if customer is None:
                raise NotFound("customer", command.customer_id)
            if isinstance(command, cmd.RemoveContact) and command.contact_id not in customer.contacts:
                raise NotFound("contact", command.contact_id)
            customer.execute(command)
            hook = self.directory.record(customer) if customer.pending_events else None
            await self.customers.save(
                customer,
                correlation_id=correlation_id,
                expected_version=command.expected_version,
                hook=hook,
                tx=tx,
            )
        return customer

    # -- queries --------------------------------------------------------------------------------
    async def customer(self, customer_id: str) -> Customer:
        customer = await self.customers.get(customer_id)
        if customer is None:
            raise NotFound("customer", customer_id)
        return customer

    async def events(self, customer_id: str) -> list[StoredEvent]:
        """The stored stream with personal data shown as encrypted / erased, never opened."""
        history = await self.customers.history(customer_id)
        if not history:
            raise NotFound("customer", customer_id)
        return await self.codec.redact(customer_id, history)

    async def search(
        self, *, region: str | None, stage: str | None, active: bool | None, limit: int, offset: int
    ) -> DirectoryPage:
        return await self.directory.search(region=region, stage=stage, active=active, limit=limit, offset=offset)
