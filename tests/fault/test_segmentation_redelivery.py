"""Duplicated deliveries change nothing: every event produced twice is applied once by a real
``python -m segmentation consume``, and re-consuming the whole topics from the beginning — PostgreSQL's
stored offsets dropped and the group's Kafka-side commits reset to 0 — leaves every table as it was."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from segmentation_support import (
    ConsumerProcess,
    assert_effects_once,
    build_stream,
    consume_in_process,
    container,
    count,
    diff,
    event_ids,
    group_of,
    merge,
    publish,
    raw_tables,
    snapshot,
    sweep_at,
    wait_consumed,
)
from sqlalchemy import text

from shared.events.topics import Topics
from shared.messaging.kafka import ensure_topics

pytestmark = pytest.mark.fault


async def reset_kafka_commits(bootstrap: str, group: str, names: list[str], partitions_per_topic: int = 3) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in names for p in range(partitions_per_topic)]
        consumer.assign(partitions)
        await consumer.commit(dict.fromkeys(partitions, 0))
        assert [await consumer.committed(tp) for tp in partitions] == [0] * len(partitions)
    finally:
        await consumer.stop()


async def test_events_delivered_twice_and_a_full_reconsumption_change_nothing(
    database_factory, topics: Topics, kafka_bootstrap: str, namespace: str
) -> None:  # type: ignore[no-untyped-def]
    stream = merge(build_stream(seed=33, customers_count=120))
    total = count(stream)
    group = group_of(topics.namespace)
    # the reference sees each event once, on topics of its own
    once = Topics(namespace + "once.")
    await ensure_topics(kafka_bootstrap, once.all(), partitions=3)
    live = container(await database_factory("segmentation"), kafka_bootstrap, topics.namespace)
    reference = container(await database_factory("segmentation"), kafka_bootstrap, once.namespace)
    process = ConsumerProcess(live.settings.database_url, kafka_bootstrap, topics.namespace, batch_size=100)
    again = ConsumerProcess(live.settings.database_url, kafka_bootstrap, topics.namespace, batch_size=100)
    try:
        await publish(kafka_bootstrap, topics, stream)
        process.start()
        await wait_consumed(live, group, total // 2, timeout_s=20, procs=[process])
        await publish(kafka_bootstrap, topics, stream)  # the same bytes again (a relay's republish)
        await wait_consumed(live, group, 2 * total, timeout_s=30, procs=[process])
        assert await process.terminate() == 0, process.tail()

        await publish(kafka_bootstrap, once, stream)
        await consume_in_process(reference, once, group_of(once.namespace), total)
        for c in (live, reference):
            await sweep_at(c)
        difference = diff(await snapshot(live), await snapshot(reference))
        assert difference == {}, difference
        ids = event_ids(stream)
        await assert_effects_once(live, topics, group, ids)
        before = await raw_tables(live)

        # forget every position: PostgreSQL's (the truth) and Kafka's (advisory)
        async with live.engine.begin() as conn:
            await conn.execute(text("DELETE FROM consumer_offsets WHERE consumer_group = :g"), {"g": group})
        await reset_kafka_commits(kafka_bootstrap, group, [topics.customers, topics.orders, topics.feedback])
        again.start()
        await wait_consumed(live, group, 2 * total, timeout_s=30, procs=[again])
        assert await again.terminate() == 0, again.tail()

        after = await raw_tables(live)  # every column, history, alerts, outbox and inbox included
        assert diff(before, after) == {}, diff(before, after)
        await assert_effects_once(live, topics, group, ids)
    finally:
        process.cleanup()
        again.cleanup()
        await live.close()
        await reference.close()
