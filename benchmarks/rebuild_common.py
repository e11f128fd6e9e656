"""Shared pieces of the segmentation rebuild / memory benchmarks (not a benchmark itself).

* :func:`produce` — batch-produce ``(topic kind, customer id, value)`` records to a namespaced topic set
  (aiokafka, linger, futures gathered per chunk: no per-message round trip);
* :func:`timed_rebuild` — a fresh, migrated segmentation database whose ``consumer_offsets`` say the live
  consumer has reached the end of the topics, then ``segmentation.application.rebuild.rebuild`` (the code
  behind ``python -m segmentation rebuild``) timed from the earliest offsets; the database is dropped;
* :func:`delete_topics`, :func:`drop_database` — clean-up.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text

from segmentation.__main__ import DEFINITION
from segmentation.application.rebuild import rebuild
from segmentation.config import SegmentationSettings
from shared.db.engine import ensure_database, to_asyncpg_url, to_libpq_url
from shared.db.migrations import upgrade
from shared.events.topics import Topics
from shared.messaging.kafka import ensure_topics

DEFAULT_PG = "postgresql://tierstream:tierstream@127.0.0.1:35432/postgres"
DEFAULT_KAFKA = "127.0.0.1:39092"


def new_namespace(prefix: str = "bench") -> Topics:
    return Topics(f"{prefix}{uuid.uuid4().hex[:8]}.")


def database_url(server_url: str, prefix: str) -> str:
    return to_asyncpg_url(server_url).rsplit("/", 1)[0] + f"/{prefix}_{uuid.uuid4().hex[:8]}"


async def produce(
    bootstrap: str, names: Topics, records: Iterable[tuple[str, str, bytes]], partitions: int, chunk: int = 20_000
) -> int:
    """Send every record (key = customer id); returns how many were acknowledged."""
    await ensure_topics(bootstrap, names.all(), partitions=partitions)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=50, max_batch_size=512 * 1024
    )
    topic = {"customers": names.customers, "orders": names.orders, "feedback": names.feedback}
    sent = 0
    await producer.start()
    try:
        futures: list[asyncio.Future[object]] = []
        for kind, customer_id, value in records:
            futures.append(await producer.send(topic[kind], value=value, key=customer_id.encode()))
            if len(futures) >= chunk:
                await asyncio.gather(*futures)
                sent += len(futures)
                futures = []
        await asyncio.gather(*futures)
        sent += len(futures)
    finally:
        await producer.stop()
    return sent


async def end_offsets(bootstrap: str, names: Topics) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p)
            for t in (names.customers, names.orders, names.feedback)
            for p in sorted(consumer.partitions_for_topic(t) or await _partitions(consumer, t))
        ]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no partitions for {topic}")


@dataclass
class RebuildTiming:
    events: int
    seconds: float
    identical: bool

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def timed_rebuild(bootstrap: str, server_url: str, names: Topics, clock: datetime) -> RebuildTiming:
    """Replay the namespace's three input topics into fresh tables with the service's rebuild code.

    The "live" database is fresh and empty except for ``consumer_offsets`` (set to the topics' end
    offsets, as if the live consumer had caught up), so the comparison step reports differences; it is
    included in the time (one checksum pass over the rebuilt facts and segments) like the final sweep.
    """
    url = database_url(server_url, "bench_rebuild")
    await ensure_database(url)
    try:
        await upgrade(DEFINITION.migrations, url)
        # Settings by field name (they take effect: shared.settings maps them to their variables), and the
        # rebuild's arguments derived from them exactly as ``python -m segmentation rebuild`` derives them.
        settings = SegmentationSettings(
            database_url=url, topic_namespace=names.namespace, kafka_bootstrap_servers=bootstrap
        )
        container = DEFINITION.container(settings)
        assert DEFINITION.consumer is not None
        group = f"{settings.topic_namespace}{DEFINITION.consumer.group_id}"
        try:
            ends = await end_offsets(bootstrap, names)
            async with container.engine.begin() as conn:
                for tp, offset in ends.items():
                    await conn.execute(
                        text(
                            "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset) "
                            "VALUES (:g, :t, :p, :o)"
                        ),
                        {"g": group, "t": tp.topic, "p": tp.partition, "o": offset},
                    )
            started = time.perf_counter()
            report = await rebuild(
                container.engine,
                settings.database_url,
                container.parts["assessor"],
                clock=clock,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                group_id=group,
                topics=[container.topics.name(t) for t in DEFINITION.consumer.topics],
                deadletter_topic=container.topics.deadletter,
                keep=False,
            )
            seconds = time.perf_counter() - started
        finally:
            await container.close()
    finally:
        await drop_database(server_url, url)
    return RebuildTiming(report.events_replayed, seconds, report.identical)


async def drop_database(server_url: str, url: str) -> None:
    admin = await asyncpg.connect(to_libpq_url(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: Topics) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in existing if t.startswith(names.namespace)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
