"""Fixtures of the orders integration tests: a wired orders container on a fresh database, a fake
clock, the credit-terms consumer running against the test's own topics, and customer events to feed it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from orders.__main__ import DEFINITION
from orders.bootstrap import wire
from orders.config import OrdersSettings
from shared.db.engine import create_engine
from shared.events.envelope import EventPayload
from shared.events.topics import Topics
from shared.runtime import Container, run_consumer
from shared.testing.events import customer_event
from shared.testing.kafka import produce

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: int) -> None:
        self.now += timedelta(days=days)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def orders_container(
    database_factory, topics: Topics, kafka_bootstrap: str, clock: FakeClock
) -> AsyncIterator[Container[OrdersSettings]]:  # type: ignore[no-untyped-def]
    settings = OrdersSettings(
        database_url=await database_factory("orders"),
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        TIERSTREAM_TOPIC_NAMESPACE=topics.namespace,
        consumer_batch_size=100,
    )
    container = Container(settings=settings, engine=create_engine(settings.database_url), topics=topics)
    container.parts["clock"] = clock
    wire(container)
    yield container
    await container.close()


@pytest.fixture
async def credit_consumer(orders_container: Container[OrdersSettings]) -> AsyncIterator[None]:
    """The orders.credit-terms consumer, exactly as ``python -m orders consume`` runs it."""
    assert DEFINITION.consumer is not None
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumer(orders_container, DEFINITION.consumer, stop))
    yield
    stop.set()
    await asyncio.wait_for(task, 30)


CustomerFeed = Callable[..., Awaitable[None]]


@pytest.fixture
def feed_customer(kafka_bootstrap: str, topics: Topics) -> CustomerFeed:
    """``await feed_customer("c-1", CustomerRegistered(...), CustomerCreditTermsSet(...))`` → crm.customers.v1."""
    versions: dict[str, int] = {}

    async def feed(customer_id: str, *payloads: EventPayload) -> None:
        messages = []
        for payload in payloads:
            versions[customer_id] = versions.get(customer_id, 0) + 1
            envelope = customer_event(customer_id, payload, versions[customer_id])
            messages.append((customer_id.encode(), envelope.to_json()))
        await produce(kafka_bootstrap, topics.customers, messages)

    return feed


Eventually = Callable[[Callable[[], Awaitable[bool]]], Awaitable[None]]


@pytest.fixture
def eventually() -> Eventually:
    """``await eventually(condition)``: poll an async condition until true (30 s at most)."""

    async def wait(condition: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not await condition():
            assert asyncio.get_running_loop().time() < deadline, "the expected state was never reached"
            await asyncio.sleep(0.1)

    return wait
