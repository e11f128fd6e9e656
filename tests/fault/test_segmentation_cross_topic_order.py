"""Kafka orders a customer's events within one topic only. The same events, consumed with the three
topics arriving in different orders (orders before registrations, complaints and surveys before orders,
…), each into its own namespace and database, give identical projections."""

from __future__ import annotations

import asyncio

import pytest
from segmentation_support import (
    assert_effects_once,
    build_stream,
    container,
    count,
    diff,
    event_ids,
    group_of,
    merge,
    publish,
    snapshot,
    sweep_at,
    wait_consumed,
)

from segmentation.bootstrap import build_projection
from shared.events.topics import Topics
from shared.messaging.consumer import ProjectionConsumer
from shared.messaging.kafka import ensure_topics

pytestmark = pytest.mark.fault

ORDERINGS = (
    ("customers", "orders", "feedback"),
    ("orders", "feedback", "customers"),
    ("feedback", "orders", "customers"),
    ("orders", "customers", "feedback"),
)


async def consume_in_order(database_url: str, kafka_bootstrap: str, namespace: str, stream, order) -> dict:  # type: ignore[no-untyped-def]
    names = Topics(namespace)
    await ensure_topics(kafka_bootstrap, names.all(), partitions=3)
    c = container(database_url, kafka_bootstrap, namespace)
    group = group_of(namespace)
    consumer = ProjectionConsumer(
        c.engine,
        build_projection(c),
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        topics=[names.customers, names.orders, names.feedback],
        deadletter_topic=names.deadletter,
        batch_size=60,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        produced = 0
        for kind in order:  # the next topic is produced only once the previous one is applied
            produced += await publish(kafka_bootstrap, names, stream, kinds=[kind])
            await wait_consumed(c, group, produced, timeout_s=20)
            assert not task.done(), task.exception() if task.done() else ""
        stop.set()
        await task
        await sweep_at(c)
        await assert_effects_once(c, names, group, event_ids(stream))
        return await snapshot(c)
    finally:
        stop.set()
        if not task.done():
            await task
        await c.close()


async def test_any_interleaving_of_the_three_topics_gives_the_same_projection(
    database_factory, kafka_bootstrap: str, namespace: str
) -> None:  # type: ignore[no-untyped-def]
    stream = merge(build_stream(seed=44, customers_count=80))
    assert count(stream) > 500 and all(stream[k] for k in ("customers", "orders", "feedback"))
    urls = [await database_factory("segmentation") for _ in ORDERINGS]
    results = await asyncio.gather(
        *(
            consume_in_order(url, kafka_bootstrap, f"{namespace}o{i}.", stream, order)
            for i, (url, order) in enumerate(zip(urls, ORDERINGS, strict=True))
        )
    )
    assert len(results[0]["customer_segments"]) == 80
    for order, result in zip(ORDERINGS[1:], results[1:], strict=True):
        difference = diff(results[0], result)
        assert difference == {}, (order, difference)
