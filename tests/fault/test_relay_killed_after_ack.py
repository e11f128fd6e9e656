"""A relay killed after Kafka acknowledged a batch, before it marked the rows sent.

A real ``python -m orders relay`` process dies at that exact point (fault injection
``TIERSTREAM_FAULT_INJECT=relay_exit_after_ack`` → ``os._exit(137)``, see :mod:`shared.faults`). The rows
stay unsent, a second relay republishes them — the topic now holds every event twice — and the
segmentation consumer applies each event once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentation.application.projector import SegmentProjector
from segmentation.projections.read_model import get_view
from shared.db.engine import create_engine
from shared.events import customers, orders
from shared.events.envelope import Envelope, EventPayload, Money
from shared.events.registry import parse_envelope
from shared.events.topics import Topics
from shared.faults import KILLED_EXIT_CODE
from shared.messaging.consumer import ProjectionConsumer
from shared.messaging.kafka import make_producer
from shared.messaging.outbox import OutboxMessage, write_outbox
from shared.messaging.relay import OutboxRelay
from shared.settings import FAULT_INJECT_ENV
from shared.testing.kafka import read_topic

pytestmark = pytest.mark.fault

CUSTOMERS = [f"c-{n}" for n in range(3)]
ORDERS_PER_CUSTOMER = 2


def envelope(payload: EventPayload, customer_id: str, aggregate: tuple[str, str], version: int = 1) -> Envelope:
    return Envelope.wrap(
        payload,
        producer=aggregate[0] + "s",
        aggregate_type=aggregate[0],
        aggregate_id=aggregate[1],
        aggregate_version=version,
        customer_id=customer_id,
        correlation_id=f"corr-{aggregate[1]}",
    )


def history(topics: Topics) -> list[OutboxMessage]:
    messages = []
    for customer_id in CUSTOMERS:
        registered = customers.CustomerRegistered(customer_id=customer_id, company_name="Acme", region="East")
        messages.append(
            OutboxMessage.from_envelope(envelope(registered, customer_id, ("customer", customer_id)), topics.customers)
        )
        for n in range(ORDERS_PER_CUSTOMER):
            order_id = f"{customer_id}-o{n}"
            money = Money(amount=Decimal("250.00"), currency="CNY")
            placed = orders.OrderPlaced(
                order_id=order_id,
                customer_id=customer_id,
                lines=[orders.OrderLine(sku="S", description="d", quantity=1, unit_price=money)],
                total=money,
                placed_at=datetime(2026, 3, 1 + n, tzinfo=UTC),
                due_date=date(2026, 4, 1),
                payment_days=30,
                status="placed",
            )
            messages.append(
                OutboxMessage.from_envelope(envelope(placed, customer_id, ("order", order_id)), topics.orders)
            )
    return messages


@pytest.fixture
async def orders_db(database_factory) -> AsyncIterator[tuple[str, AsyncEngine]]:  # type: ignore[no-untyped-def]
    url = await database_factory("orders")
    engine = create_engine(url)
    yield url, engine
    await engine.dispose()


@pytest.fixture
async def segmentation_engine(database_factory) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    engine = create_engine(await database_factory("segmentation"))
    yield engine
    await engine.dispose()


def run_relay_process(database_url: str, kafka_bootstrap: str, topics: Topics) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ORDERS_DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TIERSTREAM_TOPIC_NAMESPACE": topics.namespace,
        "TIERSTREAM_ENV": "test",
        FAULT_INJECT_ENV: "relay_exit_after_ack",
        "LOG_FORMAT": "console",
    }
    return subprocess.run(
        [sys.executable, "-m", "orders", "relay"], env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def unsent(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")) or 0)


async def test_a_relay_killed_between_ack_and_mark_republishes_and_the_consumer_applies_each_event_once(
    orders_db: tuple[str, AsyncEngine], segmentation_engine: AsyncEngine, topics: Topics, kafka_bootstrap: str
) -> None:
    url, engine = orders_db
    messages = history(topics)
    async with engine.begin() as conn:
        await write_outbox(conn, messages)
    total = len(messages)
    order_count = len(CUSTOMERS) * ORDERS_PER_CUSTOMER

    killed = await asyncio.to_thread(run_relay_process, url, kafka_bootstrap, topics)
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-3000:]
    assert await unsent(engine) == total, "the batch transaction must not have committed"
    published_once = await read_topic(kafka_bootstrap, topics.orders, expect=order_count)
    assert len(published_once) == order_count, "Kafka acknowledged the batch before the relay died"

    producer = make_producer(kafka_bootstrap, client_id="second-relay")
    await producer.start()
    try:
        assert await OutboxRelay(engine, producer, service="orders").publish_batch() == total
    finally:
        await producer.stop()
    assert await unsent(engine) == 0

    on_orders = await read_topic(kafka_bootstrap, topics.orders, expect=2 * order_count)
    on_customers = await read_topic(kafka_bootstrap, topics.customers, expect=2 * len(CUSTOMERS))
    ids = [parse_envelope(r.value).event_id for r in on_orders + on_customers]
    assert len(ids) == 2 * total and len(set(ids)) == total, "every event is on the bus exactly twice"

    consumer = ProjectionConsumer(
        segmentation_engine,
        SegmentProjector(topic=topics.segmentation),
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topics.namespace}segmentation",
        topics=[topics.customers, topics.orders, topics.feedback],
        deadletter_topic=topics.deadletter,
    )

    async def consumed_everything() -> bool:
        async with segmentation_engine.connect() as conn:
            stored = await conn.scalar(text("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets"))
        return stored == 2 * total

    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while not await consumed_everything():
            assert asyncio.get_running_loop().time() < deadline, "the consumer did not read both copies"
            assert not task.done(), task.exception() if task.done() else ""
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task

    async with segmentation_engine.connect() as conn:
        applied = await conn.scalar(
            text("SELECT count(*) FROM inbox WHERE consumer_group = :g"), {"g": f"{topics.namespace}segmentation"}
        )
        views = {c: await get_view(conn, c) for c in CUSTOMERS}
    assert applied == total
    for customer_id, view in views.items():
        assert view is not None and view["registered"], customer_id
        assert view["orders_count"] == ORDERS_PER_CUSTOMER, (customer_id, view["orders_count"])
        assert Decimal(view["net_revenue"]) == Decimal("500.00"), customer_id
