"""Maps the engine's decisions to the public contract (``crm.segmentation.v1``). The one place that
builds segmentation's envelopes: key = customer_id, aggregate = the customer's segment stream."""

from __future__ import annotations

from datetime import datetime

from segmentation.domain.churn import ChurnAssessment, Reason
from segmentation.domain.grading import Calibration, Grades
from segmentation.domain.policy import Policy
from shared.events import segmentation as contract
from shared.events.envelope import Envelope, EventPayload, MoneyTotal
from shared.messaging.outbox import OutboxMessage

AGGREGATE_TYPE = "customer_segment"


def message(
    payload: EventPayload,
    *,
    topic: str,
    customer_id: str,
    version: int,
    at: datetime,
    correlation_id: str,
    causation_id: str | None,
) -> OutboxMessage:
    envelope = Envelope.wrap(
        payload,
        producer=contract.PRODUCER,
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=customer_id,
        aggregate_version=version,
        customer_id=customer_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
        occurred_at=at,
    )
    return OutboxMessage.from_envelope(envelope, topic)


def tier_changed(
    previous: str | None, grades: Grades, calibration: Calibration, currency: str | None, reason: str
) -> contract.CustomerTierChanged:
    return contract.CustomerTierChanged(
        previous_tier=previous,
        new_tier=grades.tier,
        reason=reason[:500],
        net_contribution=MoneyTotal(amount=grades.measures.window_net, currency=currency or "CNY"),
        cut_points=calibration.cut_points.as_dict(),
        policy_version=calibration.policy_version,
    )


def segment_changed(
    previous: str | None, grades: Grades, currency: str | None, policy: Policy
) -> contract.CustomerRfmSegmentChanged:
    assert grades.rfm is not None and grades.segment is not None
    m = grades.measures
    return contract.CustomerRfmSegmentChanged(
        previous_segment=previous,
        new_segment=grades.segment,
        recency_score=grades.rfm.r,
        frequency_score=grades.rfm.f,
        monetary_score=grades.rfm.m,
        recency_days=m.recency_days,
        order_count=m.window_orders,
        net_amount=MoneyTotal(amount=m.window_net, currency=currency or "CNY"),
        rule_table_version=policy.rfm.grid_version,
    )


def activity_changed(previous: str | None, grades: Grades) -> contract.CustomerActivityChanged:
    assert grades.activity is not None
    return contract.CustomerActivityChanged(
        previous_status=previous,
        new_status=grades.activity.status,
        days_since_last_order=grades.activity.days_since_last_order,
        reason=grades.activity.reason[:500],
    )


def churn_reasons(reasons: tuple[Reason, ...]) -> list[contract.ChurnReason]:
    return [contract.ChurnReason(code=r.code, points=r.points, evidence=dict(r.evidence)) for r in reasons]


def risk_raised(alert_id: str, churn: ChurnAssessment, previous_score: int | None) -> contract.ChurnRiskRaised:
    return contract.ChurnRiskRaised(
        alert_id=alert_id,
        score=churn.score,
        band=churn.band,
        previous_score=previous_score,
        reasons=churn_reasons(churn.reasons),
    )


def risk_cleared(
    alert_id: str, score: int, band: str, previous_score: int | None, reason: str
) -> contract.ChurnRiskCleared:
    return contract.ChurnRiskCleared(
        alert_id=alert_id, score=score, band=band, previous_score=previous_score, reason=reason[:500]
    )
