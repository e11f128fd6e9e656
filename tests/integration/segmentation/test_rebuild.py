"""``rebuild``: replaying every topic from the earliest offset, with the recorded calibration applied at
the offsets it saw, reproduces the live projection table for table — however the live polls were batched."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from segmentation.__main__ import DEFINITION
from segmentation.application.rebuild import rebuild
from segmentation.application.recalibration import recalibrate
from segmentation.application.sweep import sweep
from segmentation.bootstrap import FixedClock, build_projection, wire
from segmentation.config import SegmentationSettings
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, EventPayload, Money
from shared.events.topics import Topics
from shared.messaging.consumer import ProjectionConsumer
from shared.testing.kafka import produce

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def wrap(payload: EventPayload, cid: str, at: datetime) -> Envelope:
    return Envelope.wrap(
        payload,
        producer="test",
        aggregate_type="x",
        aggregate_id=cid,
        aggregate_version=1,
        customer_id=cid,
        correlation_id="c",
        occurred_at=at,
    )


def history(rng: random.Random, first: int, count: int, start: datetime) -> dict[str, list[tuple[bytes, bytes]]]:
    """Per topic, (key, value) records of ``count`` customers' registrations, orders, returns and feedback."""
    out: dict[str, list[tuple[bytes, bytes]]] = {"customers": [], "orders": [], "feedback": []}
    for n in range(first, first + count):
        cid = f"r-{n:03d}"
        key = cid.encode()
        if n % 5:  # some customers are never registered: placeholders
            reg = customers.CustomerRegistered(customer_id=cid, company_name=f"Co {n}", region="East")
            out["customers"].append((key, wrap(reg, cid, start).to_json()))
        for k in range(rng.randint(1, 6)):
            at = start - timedelta(days=rng.randint(0, 400))
            amount = Money(amount=Decimal(rng.randint(10, 5000)))
            placed = orders.OrderPlaced(
                order_id=f"{cid}-{k}",
                customer_id=cid,
                lines=[orders.OrderLine(sku="S", quantity=1, unit_price=amount)],
                total=amount,
                placed_at=at,
                due_date=(at + timedelta(days=30)).date(),
                payment_days=30,
            )
            out["orders"].append((key, wrap(placed, cid, at).to_json()))
            if rng.random() < 0.3:
                ret = orders.OrderReturned(
                    order_id=f"{cid}-{k}", return_id=f"{cid}-{k}-r", amount=Money(amount=Decimal(5)), reason="x"
                )
                out["orders"].append((key, wrap(ret, cid, at).to_json()))
        if rng.random() < 0.4:
            survey = feedback.SurveyAnswered(survey_id=f"{cid}-s", customer_id=cid, nps=rng.randint(0, 10))
            out["feedback"].append((key, wrap(survey, cid, start).to_json()))
    return out


async def publish(bootstrap: str, names: Topics, records: dict[str, list[tuple[bytes, bytes]]]) -> int:
    for kind, topic in (("customers", names.customers), ("orders", names.orders), ("feedback", names.feedback)):
        await produce(bootstrap, topic, records[kind])
    return sum(len(v) for v in records.values())


async def consume_until(consumer: ProjectionConsumer, engine, total: int) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        for _ in range(600):
            async with engine.connect() as conn:
                done = await conn.scalar(text("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets"))
            if done >= total:
                return
            assert not task.done(), task.exception()
            await asyncio.sleep(0.1)
        raise AssertionError("the live consumer did not catch up")
    finally:
        stop.set()
        await task


async def test_a_rebuild_reproduces_the_live_tables_with_the_recorded_calibration_applied_in_place(
    database_factory, topics: Topics, kafka_bootstrap: str
) -> None:  # type: ignore[no-untyped-def]
    url = await database_factory("segmentation")
    settings = SegmentationSettings(
        database_url=url, topic_namespace=topics.namespace, kafka_bootstrap_servers=kafka_bootstrap
    )
    container = DEFINITION.container(settings)
    clock = FixedClock(T0)
    container.parts["clock"] = clock
    wire(container)
    group = f"{topics.namespace}segmentation.projector"
    names = [topics.customers, topics.orders, topics.feedback]

    def live_consumer(batch: int) -> ProjectionConsumer:
        return ProjectionConsumer(
            container.engine,
            build_projection(container),
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            topics=names,
            deadletter_topic=topics.deadletter,
            batch_size=batch,
        )

    rng = random.Random(11)
    try:
        total = await publish(kafka_bootstrap, topics, history(rng, 0, 40, T0))
        await consume_until(live_consumer(7), container.engine, total)  # small polls: many batches
        calibration = await recalibrate(container.engine, container.parts["assessor"], as_of=T0, trigger="test")
        assert calibration is not None and calibration.population > 0
        clock.advance(timedelta(days=3))
        total += await publish(kafka_bootstrap, topics, history(rng, 30, 25, clock()))  # 10 known, 15 new
        await consume_until(live_consumer(13), container.engine, total)
        await sweep(container.engine, container.parts["assessor"], now=clock())

        first = await rebuild(
            container.engine,
            url,
            container.parts["assessor"],
            clock=clock(),
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            topics=names,
            deadletter_topic=topics.deadletter,
            schema="rebuild_a",
        )
        assert first.events_replayed == total and first.calibrations_applied == 1
        assert first.identical, [(t.table, t.live_rows, t.rebuilt_rows, t.differing_keys) for t in first.tables]
        assert {t.table for t in first.tables} == {
            "customer_orders",
            "customer_complaints",
            "customer_surveys",
            "customer_segments",
        }
        second = await rebuild(
            container.engine,
            url,
            container.parts["assessor"],
            clock=clock(),
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            topics=names,
            deadletter_topic=topics.deadletter,
            schema="rebuild_b",
            keep=False,
        )
        assert second.identical
        assert [t.rebuilt_checksum for t in second.tables] == [t.rebuilt_checksum for t in first.tables]
    finally:
        await container.close()
