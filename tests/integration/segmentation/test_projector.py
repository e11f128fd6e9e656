"""The projector on real PostgreSQL: its in-memory facts cache never serves stale facts, and two consumers
that meet the same new customer at once do not overwrite each other."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from engine_harness import T0, Segmentation, placed, registered

from segmentation.bootstrap import build_projection

pytestmark = pytest.mark.integration


async def net(seg: Segmentation, customer_id: str) -> tuple[Decimal, int, bool]:
    row = (await seg.http.get(f"/customers/{customer_id}/segment")).json()
    return Decimal(row["net_revenue"]), row["orders_count"], row["registered"]


async def test_facts_changed_by_another_consumer_or_rolled_back_are_reloaded(segmentation: Segmentation) -> None:
    seg = segmentation
    one, two = build_projection(seg.container), build_projection(seg.container)  # two consumer processes
    engine = seg.container.engine
    day = T0 - timedelta(days=5)
    async with engine.begin() as conn:
        await one.apply(conn, [placed("c-1", "o-1", 100, day)])
    async with engine.begin() as conn:
        await two.apply(conn, [placed("c-1", "o-2", 200, day)])  # one's cached facts are now stale
    async with engine.begin() as conn:
        await one.apply(conn, [placed("c-1", "o-3", 300, day)])
    assert await net(seg, "c-1") == (Decimal(600), 3, False)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with engine.begin() as conn:
            await one.apply(conn, [placed("c-1", "o-4", 1000, day)])
            raise Abort  # e.g. the consumer's transaction fails after the projector ran
    async with engine.begin() as conn:
        await one.apply(conn, [placed("c-1", "o-5", 1, day)])
    assert await net(seg, "c-1") == (Decimal(601), 4, False)  # o-4 never happened
    assert one.cache.hits >= 1 and one.cache.misses >= 2


async def test_two_consumers_meeting_a_new_customer_at_once_both_count(segmentation: Segmentation) -> None:
    seg = segmentation
    engine = seg.container.engine
    orders_consumer, customers_consumer = build_projection(seg.container), build_projection(seg.container)
    started = asyncio.Event()

    async def orders_poll() -> None:
        async with engine.begin() as conn:
            await orders_consumer.apply(conn, [placed("c-new", "o-1", 250, T0)])
            started.set()
            await asyncio.sleep(0.3)  # hold the row lock while the other consumer arrives

    async def customers_poll() -> None:
        await started.wait()
        async with engine.begin() as conn:
            await customers_consumer.apply(conn, [registered("c-new")])

    await asyncio.gather(orders_poll(), customers_poll())
    assert await net(seg, "c-new") == (Decimal(250), 1, True)
