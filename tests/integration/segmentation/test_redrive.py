"""A segmentation dead letter re-driven after later events of its stream (real Kafka and PostgreSQL): the
handler fails on three events, they are dead-lettered while the events after them are applied, the handler
is fixed, ``tierstream deadletters redrive`` sends them again — and the live facts are those of stream order,
so a rebuild (which replays the originals in place) finds the live tables identical."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
from engine_harness import T0, placed
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from typer.testing import CliRunner

from segmentation.__main__ import DEFINITION
from segmentation.application.projector import SegmentProjector
from segmentation.application.rebuild import rebuild
from segmentation.application.sweep import sweep
from segmentation.bootstrap import FixedClock, build_projection, wire
from segmentation.config import SegmentationSettings
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, EventPayload, Money
from shared.events.topics import Topics
from shared.events.vocabulary import OverdueBucket
from shared.messaging.consumer import ProjectionConsumer
from shared.messaging.kafka import make_producer
from shared.messaging.outbox import OutboxMessage
from shared.messaging.relay import OutboxRelay
from shared.testing.events import complaint_filed
from shared.testing.kafka import produce
from tierstream.cli import app

pytestmark = pytest.mark.integration

CID = "c-late"
START = T0 - timedelta(days=60)


class Broken:
    """The segmentation projector with a handler bug on the event ids in ``broken``, until they are taken out."""

    def __init__(self, projector: SegmentProjector, broken: set[str]) -> None:
        self.projector = projector
        self.broken = broken

    async def apply(self, conn: AsyncConnection, events: Sequence[Envelope]) -> Sequence[OutboxMessage]:
        failing = [str(e.event_id) for e in events if str(e.event_id) in self.broken]
        if failing:
            raise RuntimeError(f"handler bug on {failing}")
        return await self.projector.apply(conn, events)


def money(amount: int) -> Money:
    return Money(amount=Decimal(amount))


def stream(kind: str, aggregate: str, *payloads: EventPayload) -> list[Envelope]:
    """One aggregate's stream of the customer, in stream order (versions 1, 2, …)."""
    return [
        Envelope.wrap(
            p,
            producer=f"{kind}s",
            aggregate_type=kind,
            aggregate_id=aggregate,
            aggregate_version=v,
            customer_id=CID,
            correlation_id="corr",
            occurred_at=START + timedelta(hours=v),
        )
        for v, p in enumerate(payloads, start=1)
    ]


def streams() -> dict[str, list[Envelope]]:
    """Per topic kind, a stream whose second event overwrites state its third event overwrites again."""
    return {
        "customers": stream(
            "customer",
            CID,
            customers.CustomerRegistered(customer_id=CID, company_name="Acme", region="East"),
            customers.CustomerProfileUpdated(changed_fields=["region"], region="North"),
            customers.CustomerProfileUpdated(changed_fields=["region"], region="West"),
        ),
        "orders": stream(
            "order",
            "o-1",
            placed(CID, "o-1", 500, START).data,
            orders.PaymentOverdue(
                order_id="o-1",
                days_overdue=30,
                bucket=OverdueBucket.for_days(30),
                amount=money(500),
                due_date=(START + timedelta(days=30)).date(),
            ),
            orders.PaymentReceived(
                order_id="o-1", payment_id="p-1", amount=money(200), outstanding=money(300), paid_in_full=False
            ),
        ),
        "feedback": stream(
            "complaint",
            "k-1",
            complaint_filed(CID, "k-1", START),
            feedback.ComplaintResolved(complaint_id="k-1", resolution="refund"),
            feedback.ComplaintReopened(complaint_id="k-1", reason="not fixed"),
        ),
    }


async def consume(engine: AsyncEngine, consumer: ProjectionConsumer, group: str, records: int) -> None:
    """Run ``consumer`` until its group's stored offsets have passed ``records`` records."""
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        for _ in range(300):
            async with engine.connect() as conn:
                done = await conn.scalar(
                    text("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE consumer_group = :g"),
                    {"g": group},
                )
            if done >= records:
                return
            assert not task.done(), task.exception()
            await asyncio.sleep(0.1)
        raise AssertionError(f"the consumer did not pass {records} records")
    finally:
        stop.set()
        await task


async def test_dead_letters_redriven_after_later_events_of_their_streams_leave_the_facts_of_stream_order(
    database_factory, topics: Topics, kafka_bootstrap: str
) -> None:  # type: ignore[no-untyped-def]
    url = await database_factory("segmentation")
    settings = SegmentationSettings(
        database_url=url, TIERSTREAM_TOPIC_NAMESPACE=topics.namespace, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap
    )
    container = DEFINITION.container(settings)
    container.parts["clock"] = FixedClock(T0)
    wire(container)
    engine = container.engine
    group = f"{topics.namespace}segmentation.projector"
    names = [topics.customers, topics.orders, topics.feedback]
    events = streams()
    broken = Broken(build_projection(container), {str(s[1].event_id) for s in events.values()})

    def consumer() -> ProjectionConsumer:
        return ProjectionConsumer(
            engine,
            broken,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            topics=names,
            deadletter_topic=topics.deadletter,
            handler_attempts=2,
        )

    try:
        for kind, envelopes in events.items():
            await produce(kafka_bootstrap, getattr(topics, kind), [(CID.encode(), e.to_json()) for e in envelopes])
        await consume(engine, consumer(), group, 9)
        relay = make_producer(kafka_bootstrap, client_id="test-relay")
        await relay.start()
        try:
            await OutboxRelay(engine, relay, service="redrive-test").publish_batch()  # dead letters, own events
        finally:
            await relay.stop()
        async with engine.connect() as conn:
            region = await conn.scalar(text("SELECT region FROM customer_segments WHERE customer_id = :c"), {"c": CID})
            dead = await conn.scalar(text("SELECT count(*) FROM outbox WHERE topic = :t"), {"t": topics.deadletter})
        assert (region, dead) == ("West", 3)  # version 3 applied; each stream's version 2 dead-lettered

        broken.broken.clear()  # the handler bug is fixed
        options = ["--bootstrap", kafka_bootstrap, "--namespace", topics.namespace]
        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["deadletters", "redrive", "--group", "segmentation.projector", "--yes", *options]
        )
        assert result.exit_code == 0, result.output
        assert "sent 3 records" in result.stdout
        await consume(engine, consumer(), group, 12)  # the three copies, after version 3 of their streams

        async with engine.connect() as conn:
            segment = (
                await conn.execute(
                    text(
                        "SELECT region, overdue_amount, open_complaints, complaints_reopened FROM customer_segments "
                        "WHERE customer_id = :c"
                    ),
                    {"c": CID},
                )
            ).one()
            inbox = await conn.scalar(text("SELECT count(*) FROM inbox WHERE consumer_group = :g"), {"g": group})
        assert tuple(segment) == ("West", Decimal(300), 1, 1)
        assert inbox == 9  # each event applied once

        await sweep(engine, container.parts["assessor"], now=T0)
        report = await rebuild(
            engine,
            url,
            container.parts["assessor"],
            clock=T0,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            topics=names,
            deadletter_topic=topics.deadletter,
            schema="rebuild_redrive",
            keep=False,
        )
        assert report.identical, [(t.table, t.differing_keys) for t in report.tables if not t.equal]
    finally:
        await container.close()
