"""Partitions added to the input topics while events wait on them (real Kafka + PostgreSQL): a customer's
older events stay on the partition they were written to and the newer ones go to another, so the consumer
applies some customers' later events first — within one stream too. The projection equals the one of the
same events read in stream order, because the facts do not depend on the order of arrival."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from segmentation_support import (
    KINDS,
    T0,
    Stream,
    consume_in_process,
    container,
    diff,
    group_of,
    publish,
    snapshot,
    sweep_at,
    wait_consumed,
)
from structlog.testing import capture_logs

from segmentation.bootstrap import build_projection
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, EventPayload, Money
from shared.events.topics import Topics
from shared.events.vocabulary import OverdueBucket
from shared.messaging.consumer import ProjectionConsumer
from shared.messaging.kafka import ensure_topics
from shared.testing.events import complaint_filed

pytestmark = pytest.mark.fault


def money(amount: int) -> Money:
    return Money(amount=Decimal(amount))


def customer_streams(rng: random.Random, cid: str) -> dict[str, list[Envelope]]:
    """One customer's streams — the customer file, an order, a complaint — in stream order, full of state
    that later events overwrite: region and name changes, deactivations, a credit hold and its release,
    partial payments between overdue notices, resolutions and reopenings."""
    start = T0 - timedelta(days=rng.randint(40, 300))
    out: dict[str, list[Envelope]] = {kind: [] for kind in KINDS}

    def add(kind: str, aggregate: tuple[str, str], payloads: list[EventPayload]) -> None:
        for version, payload in enumerate(payloads, start=1):
            envelope = Envelope.wrap(
                payload,
                producer=f"{aggregate[0]}s",
                aggregate_type=aggregate[0],
                aggregate_id=aggregate[1],
                aggregate_version=version,
                customer_id=cid,
                correlation_id="corr",
                occurred_at=start + timedelta(hours=version),
                event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            )
            out[kind].append(envelope)

    profile: list[EventPayload] = [customers.CustomerRegistered(customer_id=cid, company_name="Co", region="East")]
    active = True
    for n in range(rng.randint(2, 6)):
        roll = rng.random()
        if roll < 0.4:
            profile.append(customers.CustomerProfileUpdated(changed_fields=["region"], region=rng.choice("NSW")))
        elif roll < 0.7:
            profile.append(customers.CustomerProfileUpdated(changed_fields=["company_name"], company_name=f"Co {n}"))
        else:
            profile.append(
                customers.CustomerDeactivated(reason="x") if active else customers.CustomerReactivated(reason="x")
            )
            active = not active
    add("customers", ("customer", cid), profile)

    order_id, total = f"{cid}-o", 1_000
    due = (start + timedelta(days=30)).date()
    held = rng.random() < 0.5
    line = orders.OrderLine(sku="S", quantity=1, unit_price=money(total))
    placed = orders.OrderPlaced(
        order_id=order_id,
        customer_id=cid,
        lines=[line],
        total=money(total),
        placed_at=start,
        due_date=due,
        payment_days=30,
        status="credit_held" if held else "placed",
    )
    order: list[EventPayload] = [placed]
    if held:
        order.append(
            orders.OrderCreditHeld(
                order_id=order_id, reasons=["over_credit_limit"], exposure=money(total), credit_limit=money(10)
            )
        )
        if rng.random() < 0.7:
            order.append(orders.OrderCreditReleased(order_id=order_id, released_by="ops"))
    outstanding = total
    for days in (5, 35, 65):
        if rng.random() < 0.5:
            order.append(
                orders.PaymentOverdue(
                    order_id=order_id,
                    days_overdue=days,
                    bucket=OverdueBucket.for_days(days),
                    amount=money(outstanding),
                    due_date=due,
                )
            )
        paid = rng.choice((0, 100, 250))
        if paid:
            outstanding -= paid
            order.append(
                orders.PaymentReceived(
                    order_id=order_id,
                    payment_id=f"{order_id}-p{days}",
                    amount=money(paid),
                    outstanding=money(outstanding),
                    paid_in_full=False,
                )
            )
    add("orders", ("order", order_id), order)

    complaint_id = f"{cid}-k"
    complaint: list[EventPayload] = [complaint_filed(cid, complaint_id, start)]
    for _ in range(rng.randint(0, 3)):
        complaint.append(feedback.ComplaintResolved(complaint_id=complaint_id, resolution="refund"))
        if rng.random() < 0.3:
            complaint.append(feedback.ComplaintConfirmed(complaint_id=complaint_id))
            break
        complaint.append(feedback.ComplaintReopened(complaint_id=complaint_id, reason="not fixed"))
    add("feedback", ("complaint", complaint_id), complaint)
    return out


def halves(streams: list[dict[str, list[Envelope]]]) -> tuple[Stream, Stream]:
    """Every stream cut in two: the first halves (written before the partitions are added), the rest."""
    first: Stream = {kind: [] for kind in KINDS}
    rest: Stream = {kind: [] for kind in KINDS}
    for s in streams:
        for kind, envelopes in s.items():
            cut = (len(envelopes) + 1) // 2
            for i, e in enumerate(envelopes):
                (first if i < cut else rest)[kind].append((e.customer_id.encode(), e.to_json()))
    return first, rest


async def add_partitions(bootstrap: str, names: list[str], total: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-admin")
    await admin.start()
    try:
        await admin.create_partitions({name: NewPartitions(total_count=total) for name in names})
    finally:
        await admin.close()


async def test_partitions_added_while_events_wait_give_the_projection_of_stream_order(
    database_factory, kafka_bootstrap: str, namespace: str
) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(61)
    streams = [customer_streams(rng, f"c-{n:03d}") for n in range(60)]
    first, rest = halves(streams)
    total = sum(len(v) for part in (first, rest) for v in part.values())

    # the reference: one partition per topic, every event in stream order
    once = Topics(namespace + "once.")
    await ensure_topics(kafka_bootstrap, once.all(), partitions=1)
    reference = container(await database_factory("segmentation"), kafka_bootstrap, once.namespace)
    live_names = Topics(namespace)
    await ensure_topics(kafka_bootstrap, live_names.all(), partitions=1)
    live = container(await database_factory("segmentation"), kafka_bootstrap, live_names.namespace)
    inputs = [live_names.customers, live_names.orders, live_names.feedback]
    try:
        for part in (first, rest):
            await publish(kafka_bootstrap, once, part)
        await consume_in_process(reference, once, group_of(once.namespace), total)

        # live: the first halves on partition 0, then 4 partitions, the rest spread by key over them
        await publish(kafka_bootstrap, live_names, first)
        await add_partitions(kafka_bootstrap, inputs, 4)
        await asyncio.sleep(1)  # the producer's first metadata request sees the new partitions
        await publish(kafka_bootstrap, live_names, rest)
        group = group_of(live_names.namespace)
        consumer = ProjectionConsumer(
            live.engine,
            build_projection(live),
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            topics=inputs,
            deadletter_topic=live_names.deadletter,
            batch_size=25,  # small polls: partitions interleave
        )
        stop = asyncio.Event()
        with capture_logs() as logs:
            task = asyncio.create_task(consumer.run(stop))
            try:
                await wait_consumed(live, group, total, timeout_s=60)
            finally:
                stop.set()
                await task

        for c in (live, reference):
            await sweep_at(c)
        difference = diff(await snapshot(live), await snapshot(reference))
        superseded = [e for e in logs if e["event"] == "facts.stale_event_superseded"]
        moved = {e["customer_id"] for e in superseded}
    finally:
        await live.close()
        await reference.close()

    assert difference == {}, difference
    # the test means something only if later events did come first: older ones found their state kept
    assert len(moved) >= 5, f"only {len(moved)} customers had an event applied after a later one"
