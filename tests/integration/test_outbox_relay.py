"""The outbox relay against real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from orders.domain.order import Order, OrderLine
from shared.db.engine import create_engine
from shared.events import orders as contract
from shared.events.registry import parse_envelope
from shared.events.topics import Topics
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import PostgresEventStore
from shared.messaging.kafka import make_producer
from shared.messaging.relay import AwaitingAcknowledgement, OutboxRelay, PublishFailed
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


class SilentProducer:
    """Kafka away: sends are accepted and never answered, until ``answer()`` (the broker is back and the
    producer's retries get through). ``stop`` waits for that too, as aiokafka's does."""

    def __init__(self) -> None:
        self.sends: list[tuple[bytes | None, asyncio.Future[object]]] = []
        self.sent_some = asyncio.Event()
        self.answered = asyncio.Event()

    async def send(self, topic: str, *, value: bytes, key: bytes | None, headers: object) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.sends.append((key, future))
        self.sent_some.set()
        return future

    def answer(self, *, refuse: bytes | None = None, after: int = 0) -> None:
        """Acknowledge every waiting send; with ``refuse``, fail that key's sends from the ``after``-th on (the
        producer gave up on them)."""
        for n, (key, future) in enumerate(self.sends):
            if future.done():
                continue
            if key == refuse and n >= after:
                future.set_exception(ConnectionError("the producer gave up"))
            else:
                future.set_result(object())
        self.answered.set()

    async def stop(self) -> None:
        await self.answered.wait()


async def transactions_open(engine) -> list[str]:  # type: ignore[no-untyped-def]
    """The states of the other sessions on this database that are inside a transaction."""
    async with engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    text(
                        "SELECT state FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                    )
                )
            ).scalars()
        )


async def unsent(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")) or 0)


async def silent_relay(engine, topics: Topics, customers: int, per_customer: int, **options: float):  # type: ignore[no-untyped-def]
    """Orders placed (two events each), and a relay whose Kafka does not answer until ``answer()``."""
    await place_orders(engine, topics, customers=customers, per_customer=per_customer)
    silent = SilentProducer()
    return silent, OutboxRelay(engine, silent, service="orders-silent-test", **options)  # type: ignore[arg-type]


async def test_a_batch_kafka_does_not_answer_ends_its_transaction_and_is_marked_once_kafka_answers(
    orders_engine,  # type: ignore[no-untyped-def]
    topics: Topics,
) -> None:
    silent, relay = await silent_relay(orders_engine, topics, 2, 2, ack_timeout_s=0.2)  # 8 events

    with pytest.raises(AwaitingAcknowledgement, match="8 of 8 outbox messages still wait"):
        await asyncio.wait_for(relay.publish_batch(), 10)  # a guard: it used to wait for Kafka for ever
    assert await transactions_open(orders_engine) == []  # nothing held open while Kafka is away
    assert await unsent(orders_engine) == 8
    assert REGISTRY.get_sample_value("tierstream_outbox_unacknowledged", {"service": "orders-silent-test"}) == 8

    with pytest.raises(AwaitingAcknowledgement):  # still away: nothing marked, nothing sent again
        await relay.confirm_in_flight()
    assert len(silent.sends) == 8 and await unsent(orders_engine) == 8

    silent.answer()
    assert await relay.confirm_in_flight() == 8
    assert await unsent(orders_engine) == 0
    assert len(silent.sends) == 8  # each event handed to Kafka once for the whole outage
    assert REGISTRY.get_sample_value("tierstream_outbox_unacknowledged", {"service": "orders-silent-test"}) == 0
    assert await relay.publish_batch() == 0


async def test_in_flight_rows_another_relay_took_over_are_left_to_it(
    orders_engine,  # type: ignore[no-untyped-def]
    topics: Topics,
) -> None:
    silent, relay = await silent_relay(orders_engine, topics, 1, 1, ack_timeout_s=0.1)  # 2 events
    with pytest.raises(AwaitingAcknowledgement):
        await relay.publish_batch()
    silent.answer(refuse=b"c-0", after=1)  # the producer gave up on the second in the end
    async with orders_engine.begin() as conn:  # another relay is active (holds the lock)
        assert await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": relay.lock_key})
        assert await relay.confirm_in_flight() is None
    assert await unsent(orders_engine) == 2  # the active relay publishes them (again): at least once
    assert relay._in_flight is None
    assert relay._replace_producer  # its producer failed: the next batch, if any, gets a new one


async def test_a_relay_stops_promptly_while_kafka_does_not_answer(
    orders_engine,  # type: ignore[no-untyped-def]
    topics: Topics,
) -> None:
    silent, relay = await silent_relay(orders_engine, topics, 1, 1, ack_timeout_s=30)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    await asyncio.wait_for(silent.sent_some.wait(), 10)
    stop.set()
    # Guards against hanging, not speed checks: before, run waited for Kafka inside the batch's transaction,
    # and stopping the producer waited for it too.
    await asyncio.wait_for(running, 5)
    await asyncio.wait_for(relay.close(), 10)
    assert await transactions_open(orders_engine) == []
    assert await unsent(orders_engine) == 2  # left for the next relay


async def test_a_relay_asked_to_stop_marks_what_kafka_acknowledges_just_after(
    orders_engine,  # type: ignore[no-untyped-def]
    topics: Topics,
) -> None:
    """A deploy stops a busy relay while its batch is out; the acknowledgements arrive a moment later. They
    are marked, so the next relay does not publish the batch again."""
    silent, relay = await silent_relay(orders_engine, topics, 2, 2)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    await asyncio.wait_for(silent.sent_some.wait(), 10)
    stop.set()
    asyncio.get_running_loop().call_later(0.2, silent.answer)
    await asyncio.wait_for(running, 10)  # a guard against hanging
    assert await unsent(orders_engine) == 0


async def test_in_flight_rows_survive_a_database_failure_while_they_are_marked(
    orders_engine,  # type: ignore[no-untyped-def]
    topics: Topics,
) -> None:
    silent, relay = await silent_relay(
        orders_engine, topics, 2, 2, ack_timeout_s=0.1
    )  # ids 1-8: c-0, c-1, c-0, c-1 pairs
    with pytest.raises(AwaitingAcknowledgement):
        await relay.publish_batch()
    silent.answer(refuse=b"c-1", after=3)  # Kafka took c-1's first event; the producer gave up on the other
    unreachable = create_engine("postgresql+asyncpg://nobody:nothing@127.0.0.1:9/none")
    relay.engine = unreachable
    try:
        with pytest.raises(OSError):
            await relay.confirm_in_flight()
    finally:
        await unreachable.dispose()
        relay.engine = orders_engine
    assert relay._in_flight is not None and relay._replace_producer  # kept for the next attempt

    with pytest.raises(PublishFailed, match="3 of 8 outbox messages not acknowledged"):
        await relay.confirm_in_flight()
    async with orders_engine.connect() as conn:
        left = (await conn.execute(text("SELECT key FROM outbox WHERE sent_at IS NULL ORDER BY id"))).scalars().all()
    assert left == ["c-1"] * 3  # c-1 from its first refused event on; everything else marked
    assert relay._in_flight is None and relay._replace_producer
