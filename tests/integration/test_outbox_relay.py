"""The outbox relay against real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text

from orders.domain.order import Order, OrderLine
from shared.db.engine import create_engine
from shared.events import orders as contract
from shared.events.registry import parse_envelope
from shared.events.topics import Topics
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import PostgresEventStore
from shared.messaging.kafka import make_producer
from shared.messaging.relay import OutboxRelay
from shared.testing.kafka import read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def orders_engine(database_factory):  # type: ignore[no-untyped-def]
    engine = create_engine(await database_factory("orders"))
    yield engine
    await engine.dispose()


async def place_orders(engine, topics: Topics, customers: int, per_customer: int) -> None:  # type: ignore[no-untyped-def]
    repo = AggregateRepository(PostgresEventStore(engine), Order, producer=contract.PRODUCER, topic=topics.orders)
    line = [OrderLine(sku="S", description="d", quantity=1, unit_price=Decimal("10"))]
    for n in range(per_customer):
        for c in range(customers):
            order = Order.place(
                f"o-{c}-{n}", f"c-{c}", line, currency="CNY", placed_at=datetime.now(UTC), payment_days=30
            )
            await repo.save(order, correlation_id=f"corr-{c}-{n}")
            order.return_goods(f"r-{c}-{n}", Decimal("1"), "damaged")
            await repo.save(order, correlation_id=f"corr-{c}-{n}")


async def test_relay_publishes_envelopes_keyed_by_customer_with_headers(
    orders_engine,
    topics: Topics,
    kafka_bootstrap: str,  # type: ignore[no-untyped-def]
) -> None:
    await place_orders(orders_engine, topics, customers=2, per_customer=1)
    producer = make_producer(kafka_bootstrap, client_id="test-relay")
    await producer.start()
    try:
        assert await OutboxRelay(orders_engine, producer, service="orders-test").publish_batch() == 4
        assert await OutboxRelay(orders_engine, producer, service="orders-test").publish_batch() == 0
    finally:
        await producer.stop()

    records = await read_topic(kafka_bootstrap, topics.orders, expect=4)
    assert len(records) == 4
    for record in records:
        envelope = parse_envelope(record.value)
        headers = {k: v.decode() for k, v in record.headers}
        assert record.key.decode() == envelope.customer_id
        assert headers == {
            "event_id": str(envelope.event_id),
            "event_type": envelope.event_type,
            "schema_version": str(envelope.schema_version),
            "correlation_id": envelope.correlation_id,
        }
        assert envelope.producer == "orders" and envelope.aggregate_type == "order"
    async with orders_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")) == 0


async def test_two_relays_publish_each_message_once_in_per_key_order(
    orders_engine,
    topics: Topics,
    kafka_bootstrap: str,  # type: ignore[no-untyped-def]
) -> None:
    await place_orders(orders_engine, topics, customers=5, per_customer=20)  # 200 events
    stop = asyncio.Event()
    producers = [make_producer(kafka_bootstrap, client_id=f"relay-{i}") for i in range(2)]
    for p in producers:
        await p.start()
    relays = [
        OutboxRelay(orders_engine, p, service="orders-test", batch_size=7, idle_interval_s=0.01) for p in producers
    ]
    tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    try:
        records = await read_topic(kafka_bootstrap, topics.orders, expect=200, timeout_s=60)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for p in producers:
            await p.stop()

    envelopes = [parse_envelope(r.value) for r in records]
    assert len(envelopes) == 200
    assert len({e.event_id for e in envelopes}) == 200, "a message was published twice"
    by_key: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for record, e in zip(records, envelopes, strict=True):
        by_key[record.key.decode()].append((record.offset, e.aggregate_id, e.aggregate_version))
    for key, seen in by_key.items():
        seen.sort()
        per_order: dict[str, list[int]] = defaultdict(list)
        for _, order_id, version in seen:
            per_order[order_id].append(version)
        assert all(v == [1, 2] for v in per_order.values()), f"out of order for {key}: {per_order}"
        assert len({r.partition for r in records if r.key.decode() == key}) == 1


async def test_sent_rows_are_purged_by_age_and_unsent_rows_never(orders_engine, topics: Topics) -> None:  # type: ignore[no-untyped-def]
    await place_orders(orders_engine, topics, customers=1, per_customer=2)  # 4 rows
    async with orders_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE outbox SET sent_at = now() - interval '5 days' WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT 2)"
            )
        )
        await conn.execute(text("UPDATE outbox SET sent_at = now() WHERE id = (SELECT max(id) FROM outbox)"))
    relay = OutboxRelay(orders_engine, producer=None, service="orders-test")  # type: ignore[arg-type]
    assert await relay.purge() == 2
    async with orders_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT sent_at IS NULL AS unsent FROM outbox ORDER BY id"))).all()
    assert [r.unsent for r in rows] == [True, False]
