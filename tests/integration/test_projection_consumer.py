"""The exactly-once consumer against real Kafka and PostgreSQL, feeding the segmentation projection."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from sqlalchemy import text

from segmentation.application.projector import SegmentProjector
from segmentation.projections.read_model import get_view
from shared.db.engine import create_engine
from shared.events import customers, orders
from shared.events.envelope import Envelope, EventPayload, Money
from shared.events.registry import parse_envelope
from shared.events.topics import Topics
from shared.messaging.consumer import ProjectionConsumer
from shared.messaging.kafka import make_producer
from shared.messaging.positions import StoredOffset, fingerprint
from shared.messaging.relay import OutboxRelay
from shared.testing.kafka import produce, read_topic

pytestmark = pytest.mark.integration


def envelope(payload: EventPayload, customer_id: str, version: int = 1) -> Envelope:
    return Envelope.wrap(
        payload,
        producer="test",
        aggregate_type="thing",
        aggregate_id=customer_id,
        aggregate_version=version,
        customer_id=customer_id,
        correlation_id="corr-1",
    )


def placed(customer_id: str, order_id: str, amount: str) -> Envelope:
    money = Money(amount=Decimal(amount), currency="GBP")
    return envelope(
        orders.OrderPlaced(
            order_id=order_id,
            customer_id=customer_id,
            lines=[orders.OrderLine(sku="S", description="d", quantity=1, unit_price=money)],
            total=money,
            placed_at=datetime(2026, 1, 2, tzinfo=UTC),
            due_date=date(2026, 2, 1),
            payment_days=30,
            status="placed",
        ),
        customer_id,
    )


@pytest.fixture
async def segmentation_engine(database_factory):  # type: ignore[no-untyped-def]
    engine = create_engine(await database_factory("segmentation"))
    yield engine
    await engine.dispose()


async def run_consumer_until(consumer: ProjectionConsumer, condition, timeout_s: float = 45) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not await condition():
            assert asyncio.get_running_loop().time() < deadline, "consumer did not reach the expected state"
            assert not task.done(), f"consumer stopped: {task.exception() if task.done() else ''}"
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task


def make_consumer(engine, topics: Topics, kafka_bootstrap: str) -> ProjectionConsumer:  # type: ignore[no-untyped-def]
    return ProjectionConsumer(
        engine,
        SegmentProjector(topic=topics.segmentation),
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topics.namespace}segmentation",
        topics=[topics.customers, topics.orders, topics.feedback],
        deadletter_topic=topics.deadletter,
    )


async def segment(engine, customer_id: str) -> dict | None:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return await get_view(conn, customer_id)


async def test_duplicates_change_nothing_and_bad_events_are_dead_lettered_while_the_consumer_goes_on(
    segmentation_engine,
    topics: Topics,
    kafka_bootstrap: str,  # type: ignore[no-untyped-def]
) -> None:
    registered = envelope(customers.CustomerRegistered(customer_id="c-1", company_name="Acme", region="East"), "c-1")
    first, second = placed("c-1", "o-1", "400.00"), placed("c-1", "o-2", "700.00")
    unknown = json.dumps({**json.loads(first.to_json()), "event_type": "OrderTeleported"}).encode()
    await produce(kafka_bootstrap, topics.customers, [(b"c-1", registered.to_json())])
    await produce(
        kafka_bootstrap,
        topics.orders,
        [
            (b"c-1", first.to_json()),
            (b"c-1", first.to_json()),  # redelivery
            (b"c-1", b"{not json"),
            (b"c-1", unknown),
            (b"c-1", second.to_json()),  # after the bad ones: must still be applied
        ],
    )
    consumer = make_consumer(segmentation_engine, topics, kafka_bootstrap)

    async def caught_up() -> bool:
        row = await segment(segmentation_engine, "c-1")
        return bool(row) and row["orders_count"] >= 2 and row["registered"]

    await run_consumer_until(consumer, caught_up)
    await asyncio.sleep(0.5)  # a duplicate arriving late would show up now

    row = await segment(segmentation_engine, "c-1")
    assert row is not None
    assert (row["orders_count"], row["net_revenue"], row["events_applied"]) == (2, Decimal("1100.0000"), 3)
    assert row["value_tier"] == "normal"

    async with segmentation_engine.connect() as conn:
        offsets = {
            (r.topic, r.partition): r.next_offset
            for r in await conn.execute(text("SELECT topic, partition, next_offset FROM consumer_offsets"))
        }
        dead = (
            (
                await conn.execute(
                    text("SELECT value FROM outbox WHERE topic = :t ORDER BY id"), {"t": topics.deadletter}
                )
            )
            .scalars()
            .all()
        )
        tier_events = (
            (
                await conn.execute(
                    text("SELECT value FROM outbox WHERE topic = :t ORDER BY id"), {"t": topics.segmentation}
                )
            )
            .scalars()
            .all()
        )
    assert sum(o for (t, _), o in offsets.items() if t == topics.orders) == 5
    letters = [json.loads(bytes(v)) for v in dead]
    assert [d["reason"] for d in letters] == ["malformed_json", "unknown_event_type"]
    assert all(d["original"]["topic"] == topics.orders and d["original"]["key"]["data"] == "c-1" for d in letters)
    assert [d["original"]["offset"] for d in letters] == [2, 3]
    assert "OrderTeleported" in letters[1]["detail"]
    published = [parse_envelope(bytes(v)) for v in tier_events]
    changes = [e.data for e in published if e.event_type == "CustomerTierChanged"]
    # how polls batch the events decides whether "small" is passed through; the chain must be consistent
    assert changes[0].previous_tier is None and changes[-1].new_tier == "normal"
    assert all(a.new_tier == b.previous_tier for a, b in itertools.pairwise(changes))

    # the relay carries dead letters and tier changes to Kafka like any outbox row
    producer = make_producer(kafka_bootstrap, client_id="seg-relay")
    await producer.start()
    try:
        await OutboxRelay(segmentation_engine, producer, service="seg-test").publish_batch()
    finally:
        await producer.stop()
    records = await read_topic(kafka_bootstrap, topics.deadletter, expect=2)
    assert [dict(r.headers)["dlq_reason"] for r in records] == [b"malformed_json", b"unknown_event_type"]


async def test_a_dead_letter_withholds_personal_data_all_the_way_to_the_topic(
    segmentation_engine,
    topics: Topics,
    kafka_bootstrap: str,  # type: ignore[no-untyped-def]
) -> None:
    phone = "+86-138-0000-7732"
    registered = envelope(customers.CustomerRegistered(customer_id="c-1", company_name="Acme", region="East"), "c-1")
    document = json.loads(envelope(customers.CustomerDeactivated(reason="closed down"), "c-1", version=2).to_json())
    document["data"]["reason"] = f"closed down; Li Wei now on {phone}"
    await produce(
        kafka_bootstrap, topics.customers, [(b"c-1", registered.to_json()), (b"c-1", json.dumps(document).encode())]
    )
    consumer = make_consumer(segmentation_engine, topics, kafka_bootstrap)

    async def both_read() -> bool:
        async with segmentation_engine.connect() as conn:
            stored = await conn.scalar(
                text("SELECT sum(next_offset) FROM consumer_offsets WHERE topic = :t"), {"t": topics.customers}
            )
        return stored == 2

    await run_consumer_until(consumer, both_read)
    producer = make_producer(kafka_bootstrap, client_id="seg-relay")
    await producer.start()
    try:
        await OutboxRelay(segmentation_engine, producer, service="seg-test").publish_batch()
    finally:
        await producer.stop()

    [record] = await read_topic(kafka_bootstrap, topics.deadletter, expect=1)
    letter = json.loads(record.value)
    assert (letter["reason"], letter["withheld"]) == ("invalid_payload", ["/data/reason"])
    assert json.loads(letter["value"]["data"])["event_id"] == document["event_id"]
    everything = record.value + (record.key or b"") + b"".join(v or b"" for _, v in record.headers)
    # The number in any spelling; not its short fragments, which a random event id or timestamp may hold.
    for spelling in (phone, "138-0000-7732", "13800007732", "0000-7732"):
        assert spelling.encode() not in everything, spelling
    row = await segment(segmentation_engine, "c-1")
    assert row is not None and row["registered"] and row["events_applied"] == 1  # the refused event is not applied


async def test_a_restarted_consumer_resumes_from_the_offsets_stored_in_postgresql(
    segmentation_engine,
    topics: Topics,
    kafka_bootstrap: str,  # type: ignore[no-untyped-def]
) -> None:
    await produce(kafka_bootstrap, topics.orders, [(b"c-2", placed("c-2", f"o-{i}", "10").to_json()) for i in range(3)])

    async def count_is(n: int):  # type: ignore[no-untyped-def]
        async def check() -> bool:
            row = await segment(segmentation_engine, "c-2")
            return bool(row) and row["orders_count"] >= n

        return check

    await run_consumer_until(make_consumer(segmentation_engine, topics, kafka_bootstrap), await count_is(3))
    # Make re-reading visible: rewind Kafka's committed offsets to 0 and forget the inbox. Only a seek to
    # the offsets stored in PostgreSQL keeps the first three orders from being counted twice.
    await rewind_kafka_commits(kafka_bootstrap, f"{topics.namespace}segmentation", topics)
    async with segmentation_engine.begin() as conn:
        await conn.execute(text("DELETE FROM inbox"))
    await produce(
        kafka_bootstrap, topics.orders, [(b"c-2", placed("c-2", f"o-{i}", "10").to_json()) for i in range(3, 5)]
    )
    await run_consumer_until(make_consumer(segmentation_engine, topics, kafka_bootstrap), await count_is(5))
    await asyncio.sleep(0.5)
    row = await segment(segmentation_engine, "c-2")
    assert row is not None and (row["orders_count"], row["events_applied"]) == (5, 5)
    async with segmentation_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM inbox")) == 2


async def test_a_topic_created_again_is_read_from_its_beginning_not_dropped_below_the_stored_offset(
    segmentation_engine,
    topics: Topics,
    kafka_bootstrap: str,  # type: ignore[no-untyped-def]
) -> None:
    """The orders topic is deleted and created again (a disaster recovery, a mistaken clean-up): the group's
    stored offset now lies beyond the new log's end, and every new record below it would be dropped."""
    await produce(kafka_bootstrap, topics.orders, [(b"c-3", placed("c-3", f"o-{i}", "10").to_json()) for i in range(3)])

    def orders_count_is(n: int):  # type: ignore[no-untyped-def]
        async def check() -> bool:
            row = await segment(segmentation_engine, "c-3")
            return bool(row) and row["orders_count"] >= n

        return check

    await run_consumer_until(make_consumer(segmentation_engine, topics, kafka_bootstrap), orders_count_is(3))
    await create_again(kafka_bootstrap, topics.orders)
    await produce(kafka_bootstrap, topics.orders, [(b"c-3", placed("c-3", "o-3", "10").to_json())])  # offset 0
    await run_consumer_until(make_consumer(segmentation_engine, topics, kafka_bootstrap), orders_count_is(4))
    row = await segment(segmentation_engine, "c-3")
    assert row is not None and (row["orders_count"], row["events_applied"]) == (4, 4)
    # the stored offset follows the new log (else a later start would seek past its records up to 3)
    async with segmentation_engine.connect() as conn:
        stored = await conn.execute(
            text("SELECT next_offset FROM consumer_offsets WHERE topic = :t"), {"t": topics.orders}
        )
        assert [r.next_offset for r in stored] == [1]


async def test_a_topic_created_again_and_already_longer_than_the_stored_offset_is_read_from_its_beginning(
    segmentation_engine,
    topics: Topics,
    kafka_bootstrap: str,  # type: ignore[no-untyped-def]
) -> None:
    """As above, but the new log already holds more records than the group had stored before the consumer
    starts again: offsets alone cannot tell it apart, the record before the stored offset can."""
    await produce(kafka_bootstrap, topics.orders, [(b"c-4", placed("c-4", f"o-{i}", "10").to_json()) for i in range(3)])

    def orders_count_is(n: int):  # type: ignore[no-untyped-def]
        async def check() -> bool:
            row = await segment(segmentation_engine, "c-4")
            return bool(row) and row["orders_count"] >= n

        return check

    await run_consumer_until(make_consumer(segmentation_engine, topics, kafka_bootstrap), orders_count_is(3))
    await create_again(kafka_bootstrap, topics.orders)
    new_log = [(b"c-4", placed("c-4", f"o-{i}", "10").to_json()) for i in range(3, 8)]  # offsets 0..4 > 3
    await produce(kafka_bootstrap, topics.orders, new_log)
    await run_consumer_until(make_consumer(segmentation_engine, topics, kafka_bootstrap), orders_count_is(8))
    row = await segment(segmentation_engine, "c-4")
    assert row is not None and (row["orders_count"], row["events_applied"]) == (8, 8)
    # the stored row follows the new log: its offset, and the fingerprint of its last record
    last = (await read_topic(kafka_bootstrap, topics.orders, expect=5))[-1]
    async with segmentation_engine.connect() as conn:
        stored = await conn.execute(
            text("SELECT next_offset, last_record_fingerprint FROM consumer_offsets WHERE topic = :t"),
            {"t": topics.orders},
        )
        assert [tuple(r) for r in stored] == [(5, fingerprint(last))]
    consumer = make_consumer(segmentation_engine, topics, kafka_bootstrap)
    loaded = await consumer.load_offsets()
    assert [v for tp, v in loaded.items() if tp.topic == topics.orders] == [StoredOffset(5, fingerprint(last))]
    # a replica on code from before the fingerprint moves the offset without it: no stale fingerprint loads
    async with segmentation_engine.begin() as conn:
        await conn.execute(text("UPDATE consumer_offsets SET next_offset = 6 WHERE topic = :t"), {"t": topics.orders})
    loaded = await consumer.load_offsets()
    assert [v for tp, v in loaded.items() if tp.topic == topics.orders] == [StoredOffset(6, None)]
    await consumer.consumer.stop()  # created by the constructor, never started


async def create_again(bootstrap: str, topic: str) -> None:
    """Delete ``topic`` and create it anew (deletion completes asynchronously on the broker)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-admin")
    await admin.start()
    try:
        await admin.delete_topics([topic], timeout_ms=30_000)
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            try:
                await admin.create_topics([NewTopic(topic, 3, 1)], timeout_ms=30_000)
                return
            except TopicAlreadyExistsError:  # still being deleted
                assert asyncio.get_running_loop().time() < deadline, f"{topic} was never deleted"
                await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def rewind_kafka_commits(bootstrap: str, group_id: str, topics: Topics) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(t, p) for t in (topics.customers, topics.orders, topics.feedback) for p in range(3)
        ]
        consumer.assign(partitions)
        await consumer.commit(dict.fromkeys(partitions, 0))
    finally:
        await consumer.stop()
