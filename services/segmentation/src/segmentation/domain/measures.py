"""A customer's measures as of an instant: the inputs of every rule. Pure functions of facts + instant.

Definitions (documented in docs/segmentation.md; the realdata test recomputes them independently):

* A **purchase** is a live order (placed, not cancelled) placed at or before ``as_of``. Orders placed
  after ``as_of`` have not happened yet as of that instant and are ignored by every measure — except
  those at most ``CLOCK_SKEW`` (5 min) after it: the service that dated them keeps a clock a little
  ahead of ours (hosts drift; a demo's simulated clocks start a moment apart), so they happened "now"
  and count as placed at ``as_of``. Complaints filed and surveys answered likewise.
* The **window** is the trailing ``tier.window_days`` (365) ending at ``as_of``:
  ``as_of − window < placed_at ≤ as_of``. Cancellations and returns count against the order they belong
  to, i.e. on the order's placed date, so an order's net contribution is attributed to one instant.
* **Net contribution** (tier, RFM M) = Σ over orders placed in the window of amount − cancellation −
  returns (cancelled orders included, so a cancellation nets the order to zero).
* **F** = the number of purchases in the window; **R** = whole UTC calendar days from the last purchase
  day to ``as_of``'s day (any time, not only in the window).
* **Spend trend**: net of orders placed in the last ``churn.spend_window_days`` (90) vs the 90 before.
* **Average order value** = window net / F; **median gap** between purchase days (see activity.py).
* **Complaints past SLA**: open complaints that were escalated or whose acknowledge / resolve deadline
  passed as of ``as_of``; **reopened**: complaints reopened and not yet confirmed by the customer.
* **Surveys**: the latest CSAT and the latest NPS answer (each may come from a different survey), the
  average CSAT and the NPS (% promoters 9–10 − % detractors 0–6) of answers in the window.
* **Overdue receivables**: outstanding amounts of orders reported overdue (PaymentOverdue) and not paid
  in full, aged from their due date as of ``as_of`` into the contract's buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from segmentation.domain import activity
from segmentation.domain.facts import ComplaintStatus, CustomerFacts
from segmentation.domain.policy import Policy
from shared.clock import CLOCK_SKEW
from shared.events.vocabulary import OverdueBucket

ZERO = Decimal(0)


@dataclass(frozen=True)
class Measures:
    as_of: datetime
    orders_placed: int  # every order placed by as_of, cancelled or not (lifecycle: the first order)
    live_orders: int  # purchases ever (by as_of); > 0 puts the customer in the graded population
    window_orders: int  # F
    window_net: Decimal  # M and the tier's net contribution
    last_order_at: datetime | None
    recency_days: int | None  # R
    purchase_times: tuple[datetime, ...]  # placed_at of every purchase, ascending (activity)
    purchase_days: tuple[date, ...]  # their distinct UTC days, ascending (activity.purchase_days)
    median_gap_days: Decimal | None
    average_order_value: Decimal | None
    spend_last: Decimal
    spend_previous: Decimal
    complaints_open: int
    complaints_past_sla: int
    complaints_reopened: int
    latest_csat: int | None
    latest_nps: int | None
    csat_average: Decimal | None
    nps: Decimal | None
    surveys_in_window: int
    overdue: dict[OverdueBucket, Decimal] = field(default_factory=dict)
    credit_holds: int = 0

    @property
    def overdue_total(self) -> Decimal:
        return sum(self.overdue.values(), ZERO)

    @property
    def oldest_overdue_bucket(self) -> OverdueBucket | None:
        if not self.overdue:  # most customers: nothing overdue
            return None
        for bucket in reversed(OverdueBucket):
            if self.overdue.get(bucket, ZERO) > 0:
                return bucket
        return None


def measure(facts: CustomerFacts, as_of: datetime, policy: Policy) -> Measures:
    """Everything the rules need about ``facts`` as of ``as_of``."""
    window_start = as_of - timedelta(days=policy.tier.window_days)
    spend_days = timedelta(days=policy.churn.spend_window_days)
    last_start, previous_start = as_of - spend_days, as_of - 2 * spend_days
    # The earliest of the three starts: an order placed at or before it counts in no sum.
    sums_from = min(window_start, previous_start)
    orders_placed = window_orders = 0
    window_net = spend_last = spend_previous = ZERO
    purchases: list[datetime] = []
    overdue: dict[OverdueBucket, Decimal] = {}
    credit_holds = 0
    today = _utc_day(as_of)
    horizon = as_of + CLOCK_SKEW
    append = purchases.append
    # One pass, fields read once (this loop is the per-assessment cost that grows with history).
    for order in facts.orders.values():
        placed = order.placed_at
        if placed is None or placed > horizon:
            continue
        if placed > as_of:  # dated by a clock a little ahead of ours: it happened now
            placed = as_of
        orders_placed += 1
        live = not order.cancelled
        if live:
            append(placed)
            if order.credit_held:
                credit_holds += 1
            owed = order.overdue_amount
            if owed > ZERO and not order.paid_in_full and order.due_date is not None:
                days = (today - order.due_date).days
                if days >= 1:
                    bucket = OverdueBucket.for_days(days)
                    overdue[bucket] = overdue.get(bucket, ZERO) + owed
        if placed <= sums_from:
            continue
        net = order.amount - order.cancelled_amount - order.returned_amount  # OrderFact.net
        if placed > window_start:
            window_net += net
            if live:
                window_orders += 1
        if placed > last_start:
            spend_last += net
        elif placed > previous_start:
            spend_previous += net
    purchases.sort()
    purchase_times = tuple(purchases)
    purchase_days = activity.purchase_days_of_sorted(purchase_times)
    last = purchases[-1] if purchases else None
    complaints = _complaints(facts, as_of)
    surveys = _surveys(facts, as_of, window_start)
    return Measures(
        as_of=as_of,
        orders_placed=orders_placed,
        live_orders=len(purchases),
        window_orders=window_orders,
        window_net=window_net,
        last_order_at=last,
        recency_days=None if last is None else (today - _utc_day(last)).days,
        purchase_times=purchase_times,
        purchase_days=purchase_days,
        median_gap_days=activity.median_gap_of_days(purchase_days),
        average_order_value=(window_net / window_orders) if window_orders else None,
        spend_last=spend_last,
        spend_previous=spend_previous,
        overdue=overdue,
        credit_holds=credit_holds,
        complaints_open=complaints.open,
        complaints_past_sla=complaints.past_sla,
        complaints_reopened=complaints.reopened,
        latest_csat=surveys.latest_csat,
        latest_nps=surveys.latest_nps,
        csat_average=surveys.csat_average,
        nps=surveys.nps,
        surveys_in_window=surveys.in_window,
    )


class _ComplaintCounts(NamedTuple):
    open: int
    past_sla: int
    reopened: int


class _SurveyStats(NamedTuple):
    latest_csat: int | None
    latest_nps: int | None
    csat_average: Decimal | None
    nps: Decimal | None
    in_window: int


_NO_COMPLAINTS = _ComplaintCounts(0, 0, 0)
_NO_SURVEYS = _SurveyStats(None, None, None, None, 0)


def _complaints(facts: CustomerFacts, as_of: datetime) -> _ComplaintCounts:
    if not facts.complaints:
        return _NO_COMPLAINTS
    open_ = past_sla = reopened = 0
    for c in facts.complaints.values():
        if c.filed_at is not None and c.filed_at > as_of + CLOCK_SKEW:
            continue
        if c.reopened_count > 0 and c.status != ComplaintStatus.CONFIRMED:
            reopened += 1
        if c.status != ComplaintStatus.OPEN:
            continue
        open_ += 1
        ack_late = not c.acknowledged and c.acknowledge_by is not None and as_of > c.acknowledge_by
        resolve_late = c.resolve_by is not None and as_of > c.resolve_by
        if c.escalated or ack_late or resolve_late:
            past_sla += 1
    return _ComplaintCounts(open_, past_sla, reopened)


def _surveys(facts: CustomerFacts, as_of: datetime, window_start: datetime) -> _SurveyStats:
    if not facts.surveys:
        return _NO_SURVEYS
    answered = sorted(
        (s for s in facts.surveys.values() if s.answered_at <= as_of + CLOCK_SKEW),
        key=lambda s: (s.answered_at, s.survey_id),
    )
    latest_csat = next((s.csat for s in reversed(answered) if s.csat is not None), None)
    latest_nps = next((s.nps for s in reversed(answered) if s.nps is not None), None)
    recent = [s for s in answered if s.answered_at > window_start]
    csats = [s.csat for s in recent if s.csat is not None]
    npss = [s.nps for s in recent if s.nps is not None]
    nps = None
    if npss:
        promoters = sum(1 for v in npss if v >= 9)
        detractors = sum(1 for v in npss if v <= 6)
        nps = (Decimal(100) * (promoters - detractors) / len(npss)).quantize(Decimal("0.1"))
    csat_average = (Decimal(sum(csats)) / len(csats)).quantize(Decimal("0.01")) if csats else None
    return _SurveyStats(latest_csat, latest_nps, csat_average, nps, len(recent))


def _utc_day(moment: datetime) -> date:
    tz = moment.tzinfo
    if tz is None or tz is UTC:
        return moment.date()
    return moment.astimezone(UTC).date()
