"""The consumer's Prometheus metrics after real work on PostgreSQL: projection latency per applied event,
and churn alerts raised, counted once their transaction committed (consumer path and sweep path)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

import pytest
from aiokafka.structs import ConsumerRecord
from engine_harness import T0, Segmentation, placed, wrap
from prometheus_client import REGISTRY

from segmentation.application.sweep import sweep
from segmentation.bootstrap import build_projection
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, Money
from shared.events.vocabulary import OverdueBucket
from shared.messaging.consumer import ProjectionConsumer
from shared.testing.events import complaint_filed

pytestmark = pytest.mark.integration


def at_risk_history(cid: str) -> list[Envelope]:
    """Orders every 10 days, a detractor survey, a complaint due T0 + 4 h and the last order overdue:
    churn score 15 as of T0 (the survey), 60 (high: an alert) as of T0 + 45 days."""
    start = T0 - timedelta(days=40)
    events = [wrap(customers.CustomerRegistered(customer_id=cid, company_name="Co", region="East"), cid, start)]
    events += [placed(cid, f"{cid}-o{n}", 500, start + timedelta(days=10 * n)) for n in range(4)]
    events.append(wrap(feedback.SurveyAnswered(survey_id=f"{cid}-s", customer_id=cid, nps=3), cid, start))
    events.append(wrap(complaint_filed(cid, f"{cid}-k", T0), cid, T0))
    overdue = orders.PaymentOverdue(
        order_id=f"{cid}-o3",
        days_overdue=1,
        bucket=OverdueBucket.DAYS_1_30,
        amount=Money(amount=Decimal(500)),
        due_date=date(2026, 3, 22),
    )
    events.append(wrap(overdue, cid, T0))
    return events


def records(events: Sequence[Envelope]) -> list[ConsumerRecord]:
    return [
        ConsumerRecord("t.crm.in", 0, offset, 0, 0, e.customer_id.encode(), e.to_json(), None, 0, 0, ())
        for offset, e in enumerate(events)
    ]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_latency_is_observed_per_applied_event_and_raised_alerts_are_counted_per_path(
    segmentation: Segmentation,
) -> None:
    seg = segmentation
    group = f"{seg.container.topics.namespace}metrics"
    consumer = ProjectionConsumer(
        seg.container.engine,
        build_projection(seg.container),
        bootstrap_servers="127.0.0.1:1",
        group_id=group,
        topics=["t.crm.in"],
        deadletter_topic="t.deadletter",
    )
    latency_count = "tierstream_projection_latency_seconds_count"
    latency_sum = "tierstream_projection_latency_seconds_sum"
    raised = "tierstream_churn_alerts_raised_total"
    by_consumer, by_sweep = sample(raised, path="consumer"), sample(raised, path="sweep")
    try:
        late, early = at_risk_history("c-late"), at_risk_history("c-early")
        # c-early is projected as of T0 (score 15: nothing raised); c-late 45 days on (score 60: raised).
        await consumer.process_records(records(early))
        seg.clock.advance(timedelta(days=45))
        await consumer.process_records(records([*late, early[0]]))  # early[0]: a redelivery, not applied
    finally:
        await consumer.consumer.stop()

    assert sample(latency_count, group=group) == len(early) + len(late)
    # occurred_at lies in 2026 (after today's wall clock is fine too: clamped at 0, never negative)
    assert sample(latency_sum, group=group) >= 0
    assert sample("tierstream_projection_latency_seconds_bucket", group=group, le="+Inf") == len(early) + len(late)
    assert sample(raised, path="consumer") == by_consumer + 1
    assert len(await seg.published("ChurnRiskRaised")) == 1

    # The sweep at T0 + 45 days raises c-early's alert; c-late's is already open (no second raise).
    await sweep(seg.container.engine, seg.container.parts["assessor"], now=seg.clock())
    assert sample(raised, path="sweep") == by_sweep + 1
    assert sample(raised, path="consumer") == by_consumer + 1
    assert len(await seg.published("ChurnRiskRaised")) == 2
    # a second sweep at the same instant raises nothing, so counts nothing
    await sweep(seg.container.engine, seg.container.parts["assessor"], now=seg.clock())
    assert sample(raised, path="sweep") == by_sweep + 1


async def test_alerts_raised_by_a_recalibrations_regrade_are_counted_once_it_committed(
    segmentation: Segmentation,
) -> None:
    from segmentation.application.recalibration import recalibrate

    seg = segmentation
    consumer = ProjectionConsumer(
        seg.container.engine,
        build_projection(seg.container),
        bootstrap_servers="127.0.0.1:1",
        group_id=f"{seg.container.topics.namespace}metrics-recal",
        topics=["t.crm.in"],
        deadletter_topic="t.deadletter",
    )
    raised = "tierstream_churn_alerts_raised_total"
    before = sample(raised, path="recalibration")
    try:
        await consumer.process_records(records(at_risk_history("c-recal")))  # as of T0: score 15, no alert
    finally:
        await consumer.consumer.stop()
    assert await seg.published("ChurnRiskRaised") == []

    # re-graded as of T0 + 45 days by a recalibration: score 60, the alert is raised by the re-grade
    result = await recalibrate(
        seg.container.engine, seg.container.parts["assessor"], as_of=T0 + timedelta(days=45), trigger="test"
    )

    assert result is not None
    assert len(await seg.published("ChurnRiskRaised")) == 1
    assert sample(raised, path="recalibration") == before + 1
