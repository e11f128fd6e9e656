"""The ``customer_segments`` row of an assessed customer: profile, lifetime figures and every grade."""

from __future__ import annotations

from typing import Any

from segmentation.domain.facts import ComplaintStatus, CustomerFacts
from segmentation.domain.grading import Calibration, Grades
from segmentation.domain.measures import ZERO
from segmentation.projections.store import CustomerRecord


def segment_row(record: CustomerRecord, g: Grades, calibration: Calibration) -> dict[str, Any]:
    """The ``customer_segments`` row of ``record`` with grades ``g``."""
    facts, m = record.facts, g.measures
    p = facts.profile
    scores = g.rfm
    return {
        "customer_id": p.customer_id,
        "registered": p.registered,
        "company_name": p.company_name,
        "region": p.region,
        "stage": p.sales_stage,
        "deactivated": p.deactivated,
        **lifetime_figures(facts),
        "events_applied": p.events_applied,
        "last_event_at": p.last_event_at,
        "segmentation_version": record.version,
        "first_seen_at": record.first_seen_at,
        "value_tier": str(g.tier),
        "candidate_tier": str(g.candidate_tier),
        "tier_below": g.tier_below,
        "anchor_tier": None if g.anchor_tier is None else str(g.anchor_tier),
        "anchor_below": g.anchor_below,
        "calibration_id": calibration.id,
        "net_contribution": m.window_net,
        "live_orders": m.live_orders,
        "window_orders": m.window_orders,
        "recency_days": m.recency_days,
        "r_score": None if scores is None else scores.r,
        "f_score": None if scores is None else scores.f,
        "m_score": None if scores is None else scores.m,
        "rfm_segment": g.segment,
        "lifecycle_stage": str(g.lifecycle),
        "median_gap_days": m.median_gap_days,
        "average_order_value": None if m.average_order_value is None else round(m.average_order_value, 4),
        "spend_last_90": m.spend_last,
        "spend_previous_90": m.spend_previous,
        "activity_status": None if g.activity is None else str(g.activity.status),
        "activity_reason": None if g.activity is None else g.activity.reason,
        "churn_score": g.churn.score,
        "churn_band": str(g.churn.band),
        "churn_reasons": [{"code": r.code, "points": r.points, "evidence": dict(r.evidence)} for r in g.churn.reasons],
        "complaints_past_sla": m.complaints_past_sla,
        "complaints_reopened": m.complaints_reopened,
        "latest_csat": m.latest_csat,
        "latest_nps": m.latest_nps,
        "csat_average": m.csat_average,
        "nps": m.nps,
        "overdue_amount": m.overdue_total,
        "overdue_bucket": None if m.oldest_overdue_bucket is None else str(m.oldest_overdue_bucket),
        "credit_holds": m.credit_holds,
        "alert_id": record.alert_id,
        "facts_token": record.facts_token,
        "assessed_at": m.as_of,
    }


def lifetime_figures(facts: CustomerFacts) -> dict[str, Any]:
    """All-time figures of the walking skeleton (every order ever placed, whatever the window)."""
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
    return {
        "orders_count": placed,
        "cancelled_orders": cancelled_orders,
        "gross_revenue": gross,
        "cancelled_amount": cancelled,
        "returned_amount": returned,
        "net_revenue": gross - cancelled - returned,
        "currency": facts.currency,
        "first_order_at": first,
        "last_order_at": last,
        "complaints_total": len(facts.complaints),
        "open_complaints": sum(1 for c in facts.complaints.values() if c.status == ComplaintStatus.OPEN),
    }
