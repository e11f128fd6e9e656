"""Command handlers of the customers service: load → one domain call → save."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from customers.domain.customer import Customer, Profile
from shared.eventsourcing.aggregate import DomainError
from shared.eventsourcing.repository import AggregateRepository


@dataclass(frozen=True)
class RegisterCustomer:
    profile: Profile
    customer_id: str | None = None
    stage: str = "prospect"


class CustomerHandlers:
    def __init__(self, customers: AggregateRepository[Customer]) -> None:
        self.customers = customers

    async def register_customer(self, cmd: RegisterCustomer, correlation_id: str) -> Customer:
        customer_id = cmd.customer_id or str(uuid.uuid4())
        if await self.customers.get(customer_id) is not None:
            raise DomainError(f"customer {customer_id} is already registered")
        customer = Customer.register(customer_id, cmd.profile, cmd.stage)
        await self.customers.save(customer, correlation_id=correlation_id)
        return customer
