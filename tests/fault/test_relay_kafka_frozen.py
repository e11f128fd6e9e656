"""Kafka away under a running relay.

Frozen: the broker process is stopped with SIGSTOP, so it keeps its connections and answers nothing (a
hung broker, or a network that drops everything).

An idempotent producer never gives up on a batch it has sent: it retries it until the broker answers.
The relay used to wait for that inside its batch transaction, so PostgreSQL held a transaction open for
the whole outage (holding back vacuum), and the relay could not stop. Now it waits ``ack_timeout_s``,
commits, and settles the batch outside any transaction once Kafka answers — each event on the topic once.

Leader lost: a batch for a partition whose leader is unknown made aiokafka's sender ask for metadata
again the moment a refresh ended, thousands of times a second, until the batch expired; the producers
pace those refreshes now (``pace_metadata_refreshes``).

Runs its OWN broker (``PrivateKafka``: kafka-local.sh, private run directory and port, no topic
auto-creation, so a deleted topic stays deleted); the shared test broker is never touched.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import create_engine
from shared.events.registry import parse_envelope
from shared.events.topics import Topics
from shared.messaging.kafka import METADATA_REFRESH_MIN_INTERVAL_S, ensure_topics, make_producer
from shared.messaging.outbox import OutboxMessage, write_outbox
from shared.messaging.relay import OutboxRelay
from shared.testing.events import customer_registered
from shared.testing.infra import PrivateKafka, unique_name
from shared.testing.kafka import read_topic

pytestmark = pytest.mark.fault

SERVICE = "relay-frozen-kafka-test"
ACK_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def private_kafka() -> Iterator[PrivateKafka]:
    broker = PrivateKafka(auto_create_topics=False)
    try:
        broker.start()
        yield broker
    finally:
        broker.remove()


@pytest.fixture
async def engine(database_factory) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    engine = create_engine(await database_factory("customers"))
    yield engine
    await engine.dispose()


async def write(engine: AsyncEngine, topics: Topics, first: int, count: int) -> None:
    async with engine.begin() as conn:
        await write_outbox(
            conn,
            [
                OutboxMessage.from_envelope(customer_registered(f"c-{n}"), topics.customers)
                for n in range(first, first + count)
            ],
        )


async def scalar(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(sql)) or 0)


UNSENT = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
#: sessions of this database inside a transaction that began more than two ack timeouts ago
LONG_TRANSACTIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
    f"AND xact_start < now() - interval '{2 * ACK_TIMEOUT_S} seconds'"
)


async def wait_until_sent(engine: AsyncEngine, relay_task: asyncio.Task[None], timeout_s: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while await scalar(engine, UNSENT):
        assert not relay_task.done(), relay_task
        assert asyncio.get_running_loop().time() < deadline, "the relay did not publish the outbox"
        await asyncio.sleep(0.2)


async def test_a_frozen_broker_holds_no_transaction_open_and_every_event_is_published_once(
    private_kafka: PrivateKafka, engine: AsyncEngine
) -> None:
    bootstrap = private_kafka.bootstrap
    topics = Topics(unique_name("frozen") + ".")
    await ensure_topics(bootstrap, [topics.customers], partitions=3)

    def new_producer():  # type: ignore[no-untyped-def]
        return make_producer(bootstrap, client_id="frozen-test-relay")

    producer = new_producer()
    await producer.start()
    relay = OutboxRelay(engine, producer, service=SERVICE, new_producer=new_producer, ack_timeout_s=ACK_TIMEOUT_S)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        await write(engine, topics, 0, 10)
        await wait_until_sent(engine, running)

        os.kill(private_kafka.pid, signal.SIGSTOP)
        try:
            await write(engine, topics, 10, 10)
            await asyncio.sleep(4 * ACK_TIMEOUT_S)  # the relay claimed them, sent them, and nothing answers
            assert await scalar(engine, LONG_TRANSACTIONS) == 0, "a transaction is held open while Kafka is away"
            assert await scalar(engine, UNSENT) == 10
            assert REGISTRY.get_sample_value("tierstream_outbox_unacknowledged", {"service": SERVICE}) == 10
        finally:
            os.kill(private_kafka.pid, signal.SIGCONT)

        await write(engine, topics, 20, 10)
        await wait_until_sent(engine, running)
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)  # a guard against hanging, not a speed check
        await relay.close()

    records = await read_topic(bootstrap, topics.customers, expect=30, timeout_s=30)
    copies = Counter(parse_envelope(r.value).customer_id for r in records)
    assert sorted(copies) == sorted(f"c-{n}" for n in range(30))
    assert set(copies.values()) == {1}, f"published more than once: {[c for c, n in copies.items() if n > 1]}"


async def test_a_batch_whose_partition_lost_its_leader_asks_for_metadata_at_a_bounded_pace(
    private_kafka: PrivateKafka,
) -> None:
    bootstrap = private_kafka.bootstrap
    topic = unique_name("leaderless")
    await ensure_topics(bootstrap, [topic], partitions=1)
    request_timeout_s = 3
    producer = make_producer(bootstrap, client_id="leaderless-test", request_timeout_ms=request_timeout_s * 1000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"first")  # the partition's leader is known
        refreshes = 0
        update = producer.client._metadata_update  # what every refresh runs (instrumentation only)

        async def counting(*args: object) -> bool:
            nonlocal refreshes
            refreshes += 1
            return bool(await update(*args))

        producer.client._metadata_update = counting
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()
        sent = await producer.send(topic, b"second")  # a batch for a partition that lost its leader
        with pytest.raises(KafkaError):  # it expires after the request timeout
            await sent
    finally:
        await producer.stop()
    # Unpaced: ~12,800 refreshes in these 3 s. Paced: one per 0.1 s at most, and some slack.
    assert 0 < refreshes <= 2 * request_timeout_s / METADATA_REFRESH_MIN_INTERVAL_S, refreshes
