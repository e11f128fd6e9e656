"""Two ``python -m segmentation consume`` processes of one group share 4-partition topics; one is stopped
(SIGTERM) mid-stream, the survivor takes its partitions over from the offsets stored in PostgreSQL, and
the projection equals the one a single uninterrupted consumer builds from the same topics."""

from __future__ import annotations

import asyncio

import pytest
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
    snapshot,
    sweep_at,
    wait_consumed,
)

from shared.events.topics import Topics
from shared.messaging.kafka import ensure_topics

pytestmark = pytest.mark.fault


async def wait_assigned(process: ConsumerProcess, times: int, timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while process.tail(1_000_000).count("consumer.assigned") < times:
        assert process.alive, process.tail()
        assert loop.time() < deadline, f"no partition assignment in {timeout_s}s:\n{process.tail()}"
        await asyncio.sleep(0.1)


async def test_one_of_two_consumers_stopped_mid_stream_leaves_the_single_consumer_result(
    database_factory, namespace: str, kafka_bootstrap: str
) -> None:  # type: ignore[no-untyped-def]
    names = Topics(namespace)
    await ensure_topics(kafka_bootstrap, names.all(), partitions=4)
    streams = build_stream(seed=21, customers_count=200)
    first, second = merge(streams[:120]), merge(streams[120:])
    whole = merge(streams)
    total = count(whole)
    group = group_of(namespace)
    live = container(await database_factory("segmentation"), kafka_bootstrap, namespace)
    reference = container(await database_factory("segmentation"), kafka_bootstrap, namespace)
    a = ConsumerProcess(live.settings.database_url, kafka_bootstrap, namespace, batch_size=40)
    b = ConsumerProcess(live.settings.database_url, kafka_bootstrap, namespace, batch_size=40)
    try:
        a.start()
        await wait_assigned(a, 1, 20)
        b.start()
        await wait_assigned(b, 1, 20)  # the group has rebalanced: each holds some of the 12 partitions
        produced = await publish(kafka_bootstrap, names, first)
        await wait_consumed(live, group, produced // 3, timeout_s=20, procs=[a, b])
        stopped_at = await wait_consumed(live, group, 0, timeout_s=1)
        assert await a.terminate() == 0, a.tail()  # graceful: finishes its poll, leaves the group
        assert stopped_at < total, "the stop must land mid-stream"
        produced += await publish(kafka_bootstrap, names, second)
        assert produced == total
        await wait_consumed(live, group, total, timeout_s=40, procs=[b])
        assert await b.terminate() == 0, b.tail()
        assert b.tail(1_000_000).count("consumer.assigned") >= 2, "the survivor was reassigned a's partitions"

        await consume_in_process(reference, names, group, total)
        for c in (live, reference):
            await sweep_at(c)
        live_rows, reference_rows = await snapshot(live), await snapshot(reference)
        assert len(reference_rows["customer_segments"]) == 200
        difference = diff(live_rows, reference_rows)
        assert difference == {}, difference
        ids = event_ids(whole)
        await assert_effects_once(live, names, group, ids)
    finally:
        a.cleanup()
        b.cleanup()
        await live.close()
        await reference.close()
