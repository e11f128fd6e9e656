"""Data keys and the directory row commit with the events that need them, or not at all."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest
from sqlalchemy import text

from customers.application.handlers import CustomerHandlers
from customers.domain import commands as cmd
from customers.domain.commands import Profile
from customers.domain.events import PersonalData
from shared.events.vocabulary import ContactRole, SalesStage
from shared.eventsourcing.store import ConcurrencyConflict
from shared.runtime import Container

pytestmark = pytest.mark.integration

PERSON = PersonalData(name="Wu Fang", phone="+86-21-5555-0199", email="wu.fang@example.com", birthday=date(1979, 1, 2))


async def registered(handlers: CustomerHandlers) -> str:
    customer_id = f"cust-{uuid.uuid4().hex[:8]}"
    await handlers.register_customer(cmd.RegisterCustomer(Profile("Acme", "East"), customer_id), "corr")
    return customer_id


async def scalar(customers: Container, sql: str, customer_id: str) -> object:
    async with customers.engine.connect() as conn:
        return await conn.scalar(text(sql), {"c": customer_id})


async def test_a_refused_append_leaves_no_key_and_no_directory_change(
    customers: Container, handlers: CustomerHandlers
) -> None:
    customer_id = await registered(handlers)
    stale = await handlers.customers.get(customer_id)
    assert stale is not None
    await handlers.handle(cmd.AdvanceStage(customer_id, SalesStage.LEAD), "corr")
    stale.add_contact("k1", ContactRole.USER, PERSON)
    with pytest.raises(ConcurrencyConflict):
        await handlers.customers.save(stale, correlation_id="corr", hook=handlers.directory.record(stale))
    assert await scalar(customers, "SELECT count(*) FROM customer_keys WHERE customer_id = :c", customer_id) == 0
    assert await scalar(customers, "SELECT contacts FROM customer_directory WHERE customer_id = :c", customer_id) == 0
    assert await scalar(customers, "SELECT version FROM customer_directory WHERE customer_id = :c", customer_id) == 2


async def test_a_refused_erasure_keeps_the_key_and_the_data_readable(
    customers: Container, handlers: CustomerHandlers
) -> None:
    customer_id = await registered(handlers)
    await handlers.handle(cmd.AddContact(customer_id, "k1", ContactRole.USER, "Wu Fang"), "corr")
    stale = await handlers.customers.get(customer_id)
    assert stale is not None
    await handlers.handle(cmd.AdvanceStage(customer_id, SalesStage.LEAD), "corr")
    stale.erase_personal_data()
    with pytest.raises(ConcurrencyConflict):
        await handlers.customers.save(stale, correlation_id="corr")
    assert await scalar(customers, "SELECT count(*) FROM customer_keys WHERE customer_id = :c", customer_id) == 1
    customer = await handlers.customer(customer_id)
    assert customer.contacts["k1"].personal_data is not None
    assert customer.contacts["k1"].personal_data.name == "Wu Fang"


async def test_concurrent_first_contacts_share_one_key(customers: Container, handlers: CustomerHandlers) -> None:
    customer_id = await registered(handlers)

    async def add(n: int) -> bool:
        try:
            await handlers.handle(cmd.AddContact(customer_id, f"k{n}", ContactRole.USER, f"Person {n}"), "corr")
            return True
        except ConcurrencyConflict:
            return False

    results = await asyncio.gather(*(add(n) for n in range(6)))
    assert any(results)
    assert await scalar(customers, "SELECT count(*) FROM customer_keys WHERE customer_id = :c", customer_id) == 1
    customer = await handlers.customer(customer_id)
    assert len(customer.contacts) == sum(results)
    assert all(
        c.personal_data is not None and c.personal_data.name.startswith("Person") for c in customer.contacts.values()
    )
