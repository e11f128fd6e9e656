"""``rebuild``: replaying every topic from the earliest offset, with the recorded calibration applied at
the offsets it saw, reproduces the live projection table for table — however the live polls were batched —
and the standing of every churn alert; a live alert that differs is reported with its customer."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from engine_harness import placed
from sqlalchemy import text

from segmentation.__main__ import DEFINITION
from segmentation.application.alerts import AlertAction, handle_alert_command
from segmentation.application.rebuild import ALERT_STANDING, RebuildReport, rebuild
from segmentation.application.recalibration import recalibrate
from segmentation.application.sweep import sweep
from segmentation.bootstrap import FixedClock, build_projection, wire
from segmentation.config import SegmentationSettings
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, EventPayload, Money
from shared.events.topics import Topics
from shared.messaging.consumer import ProjectionConsumer
from shared.runtime import Container
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


@dataclass
class Live:
    """A live projection consumed from real topics (two consumers, a calibration between them), swept."""

    container: Container[SegmentationSettings]
    url: str
    clock: FixedClock
    topics: Topics
    group: str
    kafka_bootstrap: str
    total: int

    def consumer(self) -> ProjectionConsumer:
        """A consumer of the live group: the service's projection, at its clock."""
        return ProjectionConsumer(
            self.container.engine,
            build_projection(self.container),
            bootstrap_servers=self.kafka_bootstrap,
            group_id=self.group,
            topics=[self.topics.customers, self.topics.orders, self.topics.feedback],
            deadletter_topic=self.topics.deadletter,
        )

    async def rebuild(self, schema: str, *, keep: bool = True) -> RebuildReport:
        return await rebuild(
            self.container.engine,
            self.url,
            self.container.parts["assessor"],
            clock=self.clock(),
            bootstrap_servers=self.kafka_bootstrap,
            group_id=self.group,
            topics=[self.topics.customers, self.topics.orders, self.topics.feedback],
            deadletter_topic=self.topics.deadletter,
            schema=schema,
            keep=keep,
        )


@pytest.fixture
async def live(database_factory, topics: Topics, kafka_bootstrap: str) -> AsyncIterator[Live]:  # type: ignore[no-untyped-def]
    url = await database_factory("segmentation")
    settings = SegmentationSettings(
        database_url=url, TIERSTREAM_TOPIC_NAMESPACE=topics.namespace, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap
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
        yield Live(container, url, clock, topics, group, kafka_bootstrap, total)
    finally:
        await container.close()


def differences(report: RebuildReport) -> list[tuple[str, int, int, list[str]]]:
    return [(t.table, t.live_rows, t.rebuilt_rows, t.differing_keys) for t in report.tables if not t.equal]


async def live_alerts(live: Live) -> list[tuple[str, str, int]]:
    async with live.container.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT a.alert_id, a.customer_id, a.last_score FROM churn_alerts a "
                "WHERE a.state <> 'closed' ORDER BY a.customer_id"
            )
        )
        return [tuple(r) for r in rows]


async def test_a_rebuild_reproduces_the_live_tables_and_alerts_with_the_recorded_calibration_applied_in_place(
    live: Live,
) -> None:
    alerts = await live_alerts(live)
    assert len(alerts) >= 2, "the history must raise churn alerts for their comparison to mean something"

    first = await live.rebuild("rebuild_a")
    assert first.events_replayed == live.total and first.calibrations_applied == 1
    assert first.identical, differences(first)
    assert [t.table for t in first.tables] == [
        "customer_orders",
        "customer_complaints",
        "customer_surveys",
        "customer_segments",
        ALERT_STANDING,
    ]
    standing = first.tables[-1]
    customers = first.tables[3].live_rows
    assert first.alerts_not_compared == {
        "in_hysteresis_band": customers - standing.live_rows,
        "with_an_operator_action_not_replayed": 0,
    }
    assert first.operator_actions_replayed == 0
    assert standing.live_rows >= len(alerts)  # every live alert is high-band here, so compared

    second = await live.rebuild("rebuild_b", keep=False)
    assert second.identical, differences(second)
    assert [t.rebuilt_checksum for t in second.tables] == [t.rebuilt_checksum for t in first.tables]


async def act(live: Live, alert_id: str, action: AlertAction, **options: object) -> None:
    await handle_alert_command(
        live.container.engine,
        topic=live.topics.segmentation,
        bands=live.container.parts["policy"].churn.bands,
        alert_id=alert_id,
        action=action,
        now=live.clock(),
        actor="tester",
        correlation_id="corr-test",
        **options,  # type: ignore[arg-type]
    )


async def test_a_corrupted_live_alert_is_reported_with_its_customer_and_an_acknowledged_one_is_compared(
    live: Live,
) -> None:
    (handled_id, handled_customer, _), (corrupted_id, corrupted_customer, score) = (await live_alerts(live))[:2]
    await act(live, handled_id, AlertAction.ACKNOWLEDGE)
    async with live.container.engine.begin() as conn:
        await conn.execute(
            text("UPDATE churn_alerts SET last_score = :s WHERE alert_id = :a"), {"s": score - 1, "a": corrupted_id}
        )

    report = await live.rebuild("rebuild_c", keep=False)
    assert not report.identical
    assert differences(report) == [
        (ALERT_STANDING, report.tables[-1].live_rows, report.tables[-1].live_rows, [corrupted_customer])
    ]
    assert report.operator_actions_replayed == 1
    assert report.alerts_not_compared["with_an_operator_action_not_replayed"] == 0
    assert handled_customer != corrupted_customer


async def test_operator_actions_are_replayed_at_their_offsets_and_those_that_cannot_be_are_counted(
    live: Live,
) -> None:
    """Acknowledge, snooze and close (after which no alert is raised until the score recovers) are applied
    again where they were taken, so the alert standing is compared for their customers too: a rebuilt
    alert left open where the live one is snoozed is a difference. An action recorded without offsets
    (before migration 0006), or whose point precedes the customer's alert, is not applied; that customer is
    counted and left out."""
    alerts = await live_alerts(live)
    assert len(alerts) >= 3, "the history must raise enough churn alerts"
    (snoozed, snoozed_customer, _), (closed, closed_customer, _), (unplaced, _, _) = alerts[:3]
    await act(live, snoozed, AlertAction.ACKNOWLEDGE)
    await act(live, snoozed, AlertAction.SNOOZE, until=live.clock() + timedelta(days=30))
    await act(live, closed, AlertAction.ACKNOWLEDGE)
    await act(live, closed, AlertAction.CLOSE, reason="called the buyer")
    await act(live, unplaced, AlertAction.ACKNOWLEDGE)
    await act(live, unplaced, AlertAction.SNOOZE, until=live.clock() + timedelta(days=30))
    async with live.container.engine.begin() as conn:
        # as recorded before migration 0006, and one placed before any of the customer's events
        await conn.execute(
            text("UPDATE alert_log SET consumer_offsets = NULL WHERE alert_id = :a AND action = 'acknowledged'"),
            {"a": unplaced},
        )
        await conn.execute(
            text("UPDATE alert_log SET consumer_offsets = '[]' WHERE alert_id = :a AND action = 'snoozed'"),
            {"a": unplaced},
        )
        states = dict((await conn.execute(text("SELECT alert_id, state FROM churn_alerts"))).all())
    assert [states[a] for a in (snoozed, closed, unplaced)] == ["snoozed", "closed", "snoozed"]

    report = await live.rebuild("rebuild_d")
    assert report.identical, differences(report)
    assert report.operator_actions_replayed == 4  # not the two of `unplaced`
    assert report.alerts_not_compared["with_an_operator_action_not_replayed"] == 1
    async with live.container.engine.connect() as conn:
        rebuilt = dict(
            (
                await conn.execute(
                    text("SELECT customer_id, state FROM rebuild_d.churn_alerts WHERE customer_id = ANY(:c)"),
                    {"c": [snoozed_customer, closed_customer]},
                )
            ).all()
        )
        logged = await conn.scalar(text("SELECT count(*) FROM rebuild_d.alert_log WHERE actor = 'tester'"))
    assert rebuilt == {snoozed_customer: "snoozed", closed_customer: "closed"}
    assert logged == 4

    # The snooze undone on the live side only: the same rebuild now reports that customer.
    async with live.container.engine.begin() as conn:
        await conn.execute(text("UPDATE churn_alerts SET state = 'open' WHERE alert_id = :a"), {"a": snoozed})
    undone = await live.rebuild("rebuild_e", keep=False)
    assert [t[3] for t in differences(undone)] == [[snoozed_customer]]


async def test_an_operator_action_is_replayed_before_the_events_that_came_after_it(live: Live) -> None:
    """Acknowledged, then the customer recovers (a large order and a promoter's survey): live, the acknowledged
    alert is closed by the recovery. The rebuild must acknowledge at the recorded point, before those
    events; applied later, there would be no alert left to acknowledge."""
    alert_id, customer_id, _ = (await live_alerts(live))[0]
    await act(live, alert_id, AlertAction.ACKNOWLEDGE)
    at = live.clock()
    survey = feedback.SurveyAnswered(survey_id=f"{customer_id}-s2", customer_id=customer_id, nps=10, csat=5)
    recovery = {
        "customers": [],
        "orders": [(customer_id.encode(), placed(customer_id, f"{customer_id}-big", 90_000, at).to_json())],
        "feedback": [(customer_id.encode(), wrap(survey, customer_id, at).to_json())],
    }
    total = live.total + await publish(live.kafka_bootstrap, live.topics, recovery)
    await consume_until(live.consumer(), live.container.engine, total)
    await sweep(live.container.engine, live.container.parts["assessor"], now=live.clock())
    async with live.container.engine.connect() as conn:
        state = await conn.scalar(text("SELECT state FROM churn_alerts WHERE alert_id = :a"), {"a": alert_id})
    assert state == "closed"

    report = await live.rebuild("rebuild_f", keep=False)
    assert report.identical, differences(report)
    assert report.operator_actions_replayed == 1
    assert report.alerts_not_compared["with_an_operator_action_not_replayed"] == 0


async def test_recalibrations_while_the_consumer_runs_record_the_offsets_they_graded_and_replay_exactly(
    database_factory, topics: Topics, kafka_bootstrap: str
) -> None:  # type: ignore[no-untyped-def]
    """Recalibration measures from a snapshot without excluding the consumer, then records and re-grades
    under the exclusive lock: with polls committing all the while, the offsets recorded are those the
    re-grade saw (a rebuild applying the calibrations there reproduces everything), the measured ones lie
    at or before them, and of two scheduled recalibrations racing only one happens."""
    url = await database_factory("segmentation")
    settings = SegmentationSettings(
        database_url=url, TIERSTREAM_TOPIC_NAMESPACE=topics.namespace, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap
    )
    container = DEFINITION.container(settings)
    clock = FixedClock(T0)
    container.parts["clock"] = clock
    wire(container)
    assessor = container.parts["assessor"]
    group = f"{topics.namespace}segmentation.projector"
    names = [topics.customers, topics.orders, topics.feedback]
    consumer = ProjectionConsumer(
        container.engine,
        build_projection(container),
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        topics=names,
        deadletter_topic=topics.deadletter,
        batch_size=5,
    )
    total = await publish(kafka_bootstrap, topics, history(random.Random(5), 0, 300, T0))

    async def consumed() -> int:
        async with container.engine.connect() as conn:
            return int(await conn.scalar(text("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets")))

    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        while await consumed() < total // 4:
            assert not task.done(), task.exception()
            await asyncio.sleep(0.02)
        first = await recalibrate(container.engine, assessor, as_of=T0, trigger="test")
        assert first is not None
        raced = await asyncio.gather(
            *(
                recalibrate(
                    container.engine, assessor, as_of=T0 + timedelta(days=7), trigger="scheduled", only_if_due=True
                )
                for _ in range(2)
            )
        )
        assert sum(r is not None for r in raced) == 1, raced
        while await consumed() < total:
            assert not task.done(), task.exception()
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    try:
        async with container.engine.connect() as conn:
            recorded = (
                await conn.execute(text("SELECT consumer_offsets, measured_offsets FROM calibrations ORDER BY id"))
            ).all()
        assert len(recorded) == 2
        for graded, measured in recorded:
            at = {(o["topic"], o["partition"]): o["next_offset"] for o in graded}
            assert measured is not None
            assert all(o["next_offset"] <= at[(o["topic"], o["partition"])] for o in measured), (measured, graded)
        # the first calibration struck mid-stream: the replay must apply it between polls
        assert 0 < sum(o["next_offset"] for o in recorded[0][0]) < total

        # the consumer graded at T0 throughout: the rebuild replays at that clock too
        await sweep(container.engine, assessor, now=clock())
        report = await rebuild(
            container.engine,
            url,
            assessor,
            clock=clock(),
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            topics=names,
            deadletter_topic=topics.deadletter,
            schema="rebuild_concurrent",
            keep=False,
        )
        assert report.calibrations_applied == 2 and report.events_replayed == total
        assert report.identical, differences(report)
    finally:
        await container.close()


async def test_a_rebuild_compares_the_grades_not_the_instant_they_were_last_assessed(live: Live) -> None:
    # QA: the demo's live sweep ran at 00:03 of its day; `tierstream rebuild --clock <that day>` grades at
    # 00:00 — same grades (nothing in the history turns within those minutes), other assessed_at
    live.clock.advance(timedelta(minutes=3))
    await sweep(live.container.engine, live.container.parts["assessor"], now=live.clock())
    live.clock.advance(timedelta(minutes=-3))

    report = await live.rebuild("rebuild_g", keep=False)

    assert report.identical, differences(report)


async def test_a_rebuild_grades_each_customer_as_of_the_instant_of_its_live_grades(live: Live) -> None:
    """A running service's clock moves on: its sweep graded everyone at one instant, events that came later
    graded their customers at later ones. The rebuild grades each customer as of its live row's instant,
    so its own clock — here two months past every live grade — changes nothing in the comparison."""
    live.clock.advance(timedelta(days=20))
    added = await publish(live.kafka_bootstrap, live.topics, history(random.Random(5), 100, 6, live.clock()))
    await consume_until(live.consumer(), live.container.engine, live.total + added)
    async with live.container.engine.connect() as conn:
        instants = await conn.scalar(text("SELECT count(DISTINCT assessed_at) FROM customer_segments"))
    live.clock.advance(timedelta(days=60))

    report = await live.rebuild("rebuild_h", keep=False)

    assert instants == 2  # the live sweep's, and the later events'
    assert report.clock == live.clock()
    assert report.identical, differences(report)


# -- path-dependent grades: the replay grades at the instants the live service had, not at its own clock --


async def feed(live: Live, kind: str, cid: str, payload: EventPayload, at: datetime) -> None:
    records = {"customers": [], "orders": [], "feedback": []} | {
        kind: [(cid.encode(), wrap(payload, cid, at).to_json())]
    }
    live.total += await publish(live.kafka_bootstrap, live.topics, records)
    await consume_until(live.consumer(), live.container.engine, live.total)


async def test_a_recalibrations_hysteresis_starts_from_the_tier_the_live_service_had_then(live: Live) -> None:
    """A second recalibration holds customers in their tier by the demotion margin, starting from the tier
    graded before it. Replayed at the rebuild's clock — a year and more later, every order out of the
    trailing window — those tiers came out lower, and the hysteresis held the wrong ones."""
    live.clock.advance(timedelta(days=1))
    assert await recalibrate(live.container.engine, live.container.parts["assessor"], as_of=live.clock(), trigger="t")
    live.clock.advance(timedelta(days=1))
    await sweep(live.container.engine, live.container.parts["assessor"], now=live.clock())
    live.clock.advance(timedelta(days=400))  # the service's clock moves on; no event, no sweep since

    report = await live.rebuild("rebuild_i", keep=False)

    assert report.calibrations_applied == 2
    assert report.identical, differences(report)


async def test_an_alert_snoozed_live_stays_snoozed_where_the_rebuilds_clock_is_past_its_snooze(live: Live) -> None:
    alert_id, cid, _ = (await live_alerts(live))[0]
    await act(live, alert_id, AlertAction.SNOOZE, until=live.clock() + timedelta(days=10))
    survey = feedback.SurveyAnswered(survey_id=f"{cid}-late", customer_id=cid, nps=0)
    await feed(live, "feedback", cid, survey, live.clock())  # graded live with the alert snoozed
    live.clock.advance(timedelta(days=11))  # the snooze has run out; the live sweep has not run yet

    report = await live.rebuild("rebuild_j", keep=False)

    assert report.operator_actions_replayed == 1
    assert report.identical, differences(report)


async def test_an_order_dated_ahead_of_the_live_clock_is_graded_as_live_graded_it(live: Live) -> None:
    """Live ignored an order dated days ahead of its clock (a producer's clock ahead): the customer stayed a
    prospect, and the lifecycle only moves forward. Replayed at a clock past that date, it became a customer."""
    placed_ahead = placed("ahead-1", "ahead-1-o", 100, live.clock() + timedelta(days=2))
    live.total += await publish(
        live.kafka_bootstrap,
        live.topics,
        {"customers": [], "feedback": [], "orders": [(b"ahead-1", placed_ahead.to_json())]},
    )
    await consume_until(live.consumer(), live.container.engine, live.total)
    live.clock.advance(timedelta(days=30))

    report = await live.rebuild("rebuild_k", keep=False)

    assert report.identical, differences(report)
