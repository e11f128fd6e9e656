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
from shared.messaging.relay import OutboxRelay, PublishFailed
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


class RefusingProducer:
    """Kafka acknowledging every send except, from the ``refuse_from``-th send on, those of ``refused_key``
    (as a broker that went away answers some partitions and not others)."""

    def __init__(self, refused_key: bytes, refuse_from: int) -> None:
        self.refused_key, self.refuse_from = refused_key, refuse_from
        self.sent: list[tuple[bytes | None, bytes]] = []

    async def send(self, topic: str, *, value: bytes, key: bytes | None, headers: object) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if key == self.refused_key and len(self.sent) >= self.refuse_from:
            future.set_exception(ConnectionError("the broker went away"))
        else:
            self.sent.append((key, value))
            future.set_result(object())
        return future


async def test_a_partly_failed_batch_marks_what_kafka_acknowledged_and_retries_only_the_rest(
    orders_engine,  # type: ignore[no-untyped-def]
    topics: Topics,
) -> None:
    await place_orders(orders_engine, topics, customers=2, per_customer=2)  # ids 1-8: c-0, c-1, c-0, c-1 pairs
    async with orders_engine.connect() as conn:
        keys = (await conn.execute(text("SELECT key FROM outbox ORDER BY id"))).scalars().all()
    refusing = RefusingProducer(b"c-1", refuse_from=3)  # c-1's events from the 4th send on fail
    relay = OutboxRelay(orders_engine, refusing, service="orders-test")  # type: ignore[arg-type]

    with pytest.raises(PublishFailed, match="of 8 outbox messages not acknowledged"):
        await relay.publish_batch()

    async with orders_engine.connect() as conn:
        unsent = (await conn.execute(text("SELECT key FROM outbox WHERE sent_at IS NULL ORDER BY id"))).scalars().all()
    sent_keys = [k.decode() for k, _ in refusing.sent]
    assert sent_keys.count("c-0") == keys.count("c-0")  # every c-0 event acknowledged and marked
    assert unsent and set(unsent) == {"c-1"}  # c-1 from its first refused event on, and only that
    assert len(unsent) == keys.count("c-1") - sent_keys.count("c-1")
    assert relay._replace_producer  # the next batch gets a new producer

    working = RefusingProducer(b"nobody", refuse_from=0)
    assert await OutboxRelay(orders_engine, working, service="orders-test").publish_batch() == len(unsent)  # type: ignore[arg-type]
    assert [k.decode() for k, _ in working.sent] == unsent  # the acknowledged part is not sent again
