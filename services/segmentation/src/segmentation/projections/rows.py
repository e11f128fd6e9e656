"""The ``customer_segments`` row of an assessed customer: profile, lifetime figures and every grade."""

from __future__ import annotations

import json
from typing import Any

from segmentation.domain.facts import ComplaintStatus, CustomerFacts
from segmentation.domain.grading import Calibration, Grades
from segmentation.domain.measures import ZERO
from segmentation.projections.store import SEGMENT_COLUMNS, CustomerRecord


def segment_row(record: CustomerRecord, g: Grades, calibration: Calibration) -> tuple[Any, ...]:
    """The ``customer_segments`` row of ``record`` with grades ``g``: values in :data:`SEGMENT_COLUMNS`
    order, ready for the driver (``churn_reasons`` already JSON), so the hot path builds no dict."""
    facts, m = record.facts, g.measures
    p = facts.profile
    scores = g.rfm
    activity = g.activity
    reasons = g.churn.reasons
    return (
        p.customer_id,
        p.registered,
        p.company_name,
        p.region,
        p.sales_stage,
        p.deactivated,
        p.company_name_version,
        p.region_version,
        p.deactivated_version,
        *lifetime_figures_row(facts),
        p.events_applied,
        p.last_event_at,
        record.version,
        record.first_seen_at,
        str(g.tier),
        str(g.candidate_tier),
        g.tier_below,
        None if g.anchor_tier is None else str(g.anchor_tier),
        g.anchor_below,
        calibration.id,
        m.window_net,
        m.live_orders,
        m.window_orders,
        m.recency_days,
        None if scores is None else scores.r,
        None if scores is None else scores.f,
        None if scores is None else scores.m,
        g.segment,
        str(g.lifecycle),
        m.median_gap_days,
        None if m.average_order_value is None else round(m.average_order_value, 4),
        m.spend_last,
        m.spend_previous,
        None if activity is None else str(activity.status),
        None if activity is None else activity.reason,
        g.churn.score,
        str(g.churn.band),
        json.dumps([{"code": r.code, "points": r.points, "evidence": dict(r.evidence)} for r in reasons])
        if reasons
        else "[]",
        m.complaints_past_sla,
        m.complaints_reopened,
        m.latest_csat,
        m.latest_nps,
        m.csat_average,
        m.nps,
        m.overdue_total,
        None if m.oldest_overdue_bucket is None else str(m.oldest_overdue_bucket),
        m.credit_holds,
        record.alert_id,
        record.facts_token,
        m.as_of,
    )


#: The columns of :func:`lifetime_figures` (and the order of :func:`lifetime_figures_row`).
LIFETIME_COLUMNS = SEGMENT_COLUMNS[SEGMENT_COLUMNS.index("orders_count") : SEGMENT_COLUMNS.index("open_complaints") + 1]


def lifetime_figures(facts: CustomerFacts) -> dict[str, Any]:
    """All-time figures of the walking skeleton (every order ever placed, whatever the window)."""
    return dict(zip(LIFETIME_COLUMNS, lifetime_figures_row(facts), strict=True))


def lifetime_figures_row(facts: CustomerFacts) -> tuple[Any, ...]:
    """:func:`lifetime_figures` as values in :data:`LIFETIME_COLUMNS` order."""
    gross = cancelled = returned = ZERO
    placed = cancelled_orders = 0
    first = last = None
    for o in facts.orders.values():  # one pass; sums in the same order as summing each figure separately
        cancelled += o.cancelled_amount
        returned += o.returned_amount
        at = o.placed_at
        if at is None:
            continue
        placed += 1
        gross += o.amount
        cancelled_orders += o.cancelled
        if first is None or at < first:
            first = at
        if last is None or at > last:
            last = at
    return (
        placed,
        cancelled_orders,
        gross,
        cancelled,
        returned,
        gross - cancelled - returned,
        facts.currency,
        first,
        last,
        len(facts.complaints),
        sum(1 for c in facts.complaints.values() if c.status == ComplaintStatus.OPEN),
    )
