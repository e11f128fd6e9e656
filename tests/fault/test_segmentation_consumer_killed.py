"""A real ``python -m segmentation consume`` SIGKILLed three times at random moments of a stream of a few
thousand contract events (some produced while it runs) ends with the projection a single uninterrupted
consumer builds from the same topics: facts and grades equal, every event in the inbox once, at most one
live alert per customer, no outgoing event staged twice — and equal to a full ``rebuild`` from the
earliest offsets, churn alerts included (compared by their standing, see ``application/rebuild.py``).
"""

from __future__ import annotations

import asyncio
import random

import pytest
from segmentation_support import (
    KINDS,
    T_COMPARE,
    ConsumerProcess,
    Stream,
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
from sqlalchemy import text

from segmentation.application.rebuild import ALERT_STANDING, rebuild
from shared.events.topics import Topics

pytestmark = pytest.mark.fault

CHUNKS = 4


def chunks(stream: Stream, n: int) -> list[Stream]:
    """Cut each topic's records into ``n`` consecutive slices (per-key order is kept across slices)."""
    out: list[Stream] = [{k: [] for k in KINDS} for _ in range(n)]
    for kind in KINDS:
        records = stream[kind]
        size = -(-len(records) // n)
        for i in range(n):
            out[i][kind] = records[i * size : (i + 1) * size]
    return out


async def test_a_consumer_sigkilled_three_times_mid_stream_ends_equal_to_an_uninterrupted_one(
    database_factory, topics: Topics, kafka_bootstrap: str
) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(20260601)
    stream = merge(build_stream(seed=7, customers_count=200))
    total = count(stream)
    assert total >= 1500
    parts = chunks(stream, CHUNKS)
    group = group_of(topics.namespace)
    faulted = container(await database_factory("segmentation"), kafka_bootstrap, topics.namespace)
    reference = container(await database_factory("segmentation"), kafka_bootstrap, topics.namespace)
    processes: list[ConsumerProcess] = []
    kills: list[tuple[int, int]] = []  # (consumed when killed, produced by then)
    try:
        produced = await publish(kafka_bootstrap, topics, parts[0])
        current = ConsumerProcess(
            faulted.settings.database_url, kafka_bootstrap, topics.namespace, batch_size=10
        ).start()
        processes.append(current)
        floor = 0
        for part in parts[1:]:
            # a random point inside what is produced so far, at least one poll in
            target = floor + max(1, int((produced - floor) * rng.uniform(0.2, 0.8)))
            await wait_consumed(faulted, group, target, timeout_s=25, procs=[current])
            await asyncio.sleep(rng.uniform(0, 0.05))
            current.kill()
            done = await wait_consumed(faulted, group, 0, timeout_s=1)
            kills.append((done, produced))
            produced += await publish(kafka_bootstrap, topics, part)  # more of the stream while it is down
            floor = done
            current = ConsumerProcess(
                faulted.settings.database_url, kafka_bootstrap, topics.namespace, batch_size=10
            ).start()
            processes.append(current)
        assert produced == total
        await wait_consumed(faulted, group, total, timeout_s=40, procs=[current])
        assert await current.terminate() == 0, current.tail()

        # each kill struck mid-stream: some of what was produced then was still unconsumed
        assert len(kills) == 3 and all(0 < done < seen for done, seen in kills), kills

        await consume_in_process(reference, topics, group, total)
        for c in (faulted, reference):
            await sweep_at(c)
        faulted_rows, reference_rows = await snapshot(faulted), await snapshot(reference)
        assert len(reference_rows["customer_segments"]) == 200 and reference_rows["customer_complaints"]
        difference = diff(faulted_rows, reference_rows)
        assert difference == {}, difference
        ids = event_ids(stream)
        await assert_effects_once(faulted, topics, group, ids)
        await assert_effects_once(reference, topics, group, ids)

        report = await rebuild(
            faulted.engine,
            faulted.settings.database_url,
            faulted.parts["assessor"],
            clock=T_COMPARE,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            topics=[topics.customers, topics.orders, topics.feedback],
            deadletter_topic=topics.deadletter,
            schema="rebuild_after_kills",
            keep=False,
        )
        assert report.events_replayed == total
        assert report.identical, [(t.table, t.live_rows, t.rebuilt_rows, t.differing_keys) for t in report.tables]
        alerts = next(t for t in report.tables if t.table == ALERT_STANDING)
        compared = alerts.live_rows
        assert compared + report.alerts_not_compared["in_hysteresis_band"] == 200
        async with faulted.engine.connect() as conn:
            live_alerts = await conn.scalar(text("SELECT count(*) FROM churn_alerts WHERE state <> 'closed'"))
        assert live_alerts, "the stream must raise churn alerts for the comparison to mean something"
    finally:
        for p in processes:
            p.cleanup()
        await faulted.close()
        await reference.close()
