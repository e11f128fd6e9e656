"""Measures as of an instant: the trailing window, R / F / M, spend trend, complaints, surveys, receivables."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import segmentation_builders as b

from segmentation.domain.measures import measure
from segmentation.domain.policy import Policy
from shared.events import feedback
from shared.events.vocabulary import OverdueBucket

pytestmark = pytest.mark.unit

POLICY = Policy()


def days(n: float):  # type: ignore[no-untyped-def]
    return b.T0 + timedelta(days=n)


def test_the_trailing_window_counts_orders_placed_within_365_days_net_of_their_cancellations_and_returns() -> None:
    facts = b.fold(
        [
            b.placed("old", "1000", 0),
            b.placed("o-1", "400", 100),
            b.placed("o-2", "300", 200),
            b.returned("o-2", "50"),
            b.placed("o-3", "900", 300),
            b.cancelled("o-3", "900"),
        ]
    )
    m = measure(facts, days(366), POLICY)  # "old" (day 0) left the window one day ago
    assert (m.window_net, m.window_orders, m.live_orders, m.orders_placed) == (Decimal(650), 2, 3, 4)
    assert m.recency_days == 166  # the last *purchase* was on day 200; the cancelled order does not count
    assert m.average_order_value == Decimal(325)
    assert m.median_gap_days == Decimal(100)


def test_orders_placed_after_the_instant_do_not_count_yet() -> None:
    facts = b.fold([b.placed("o-1", "100", 0), b.placed("o-2", "999", 10)])
    m = measure(facts, days(5), POLICY)
    assert (m.window_net, m.window_orders, m.recency_days, m.last_order_at) == (Decimal(100), 1, 5, b.T0)


MINUTE = 1 / (24 * 60)


def test_what_a_clock_a_little_ahead_of_ours_dated_counts_now_and_beyond_the_skew_not_yet() -> None:
    # orders dated by the orders service's clock, up to 5 minutes ahead of the engine's: they happened now
    facts = b.fold(
        [b.placed("o-1", "100", 0), b.placed("o-2", "40", 5 + MINUTE), b.placed("o-3", "999", 5 + 6 * MINUTE)]
    )
    facts.apply(b.survey("s-1", nps=2, at=days(5 + MINUTE)))
    m = measure(facts, days(5), POLICY)
    assert (m.window_net, m.window_orders, m.recency_days, m.last_order_at) == (Decimal(140), 2, 0, days(5))
    assert m.latest_nps == 2


def test_a_customer_without_orders_has_no_recency_and_nothing_in_the_window() -> None:
    m = measure(b.fold([b.registered()]), b.T0, POLICY)
    assert (m.live_orders, m.recency_days, m.window_net, m.average_order_value) == (0, None, 0, None)


def test_spend_trend_compares_the_last_90_days_with_the_90_before() -> None:
    facts = b.fold([b.placed("a", "1000", 10), b.placed("b", "200", 120), b.placed("c", "100", 150)])
    m = measure(facts, days(180), POLICY)
    assert (m.spend_last, m.spend_previous) == (Decimal(300), Decimal(1000))


def test_complaints_are_past_sla_when_escalated_or_a_deadline_passed_and_reopened_until_confirmed() -> None:
    facts = b.fold([b.complaint("k-1"), b.complaint("k-2", filed=days(10))])
    facts.apply(b.wrap(feedback.ComplaintAcknowledged(complaint_id="k-2")))
    m = measure(facts, days(10) + timedelta(hours=5), POLICY)
    assert (m.complaints_open, m.complaints_past_sla) == (2, 1)  # k-1 is days late; k-2 acknowledged in time
    facts.apply(b.wrap(feedback.ComplaintResolved(complaint_id="k-1", resolution="done")))
    facts.apply(b.wrap(feedback.ComplaintReopened(complaint_id="k-1", reason="still broken")))
    facts.apply(b.wrap(feedback.ComplaintResolved(complaint_id="k-1", resolution="done again")))
    m = measure(facts, days(11), POLICY)
    assert (m.complaints_open, m.complaints_past_sla, m.complaints_reopened) == (1, 0, 1)
    facts.apply(b.wrap(feedback.ComplaintConfirmed(complaint_id="k-1")))
    assert measure(facts, days(11), POLICY).complaints_reopened == 0


def test_surveys_give_the_latest_scores_and_rolling_csat_and_nps_over_the_window() -> None:
    facts = b.fold(
        [
            b.survey("s-0", nps=0, at=days(-400)),  # outside the window: latest-by-score only if nothing newer
            b.survey("s-1", csat=5, nps=10, at=days(1)),
            b.survey("s-2", csat=2, at=days(2)),
            b.survey("s-3", nps=9, at=days(3)),
            b.survey("s-4", nps=3, at=days(4)),
        ]
    )
    m = measure(facts, days(5), POLICY)
    assert (m.latest_csat, m.latest_nps) == (2, 3)
    assert m.csat_average == Decimal("3.50")
    assert m.nps == Decimal("33.3")  # 2 promoters, 1 detractor of 3 answers in the window
    assert m.surveys_in_window == 4


def test_overdue_receivables_age_into_buckets_from_their_due_date() -> None:
    due = date(2026, 2, 4)
    facts = b.fold([b.placed("o-1", "500", 0), b.overdue("o-1", "500", due, 1), b.placed("o-2", "70", 1)])
    facts.apply(b.overdue("o-2", "70", due + timedelta(days=1), 1))
    m = measure(facts, days(30 + 70), POLICY)  # o-1 is 70 days past due, o-2 69
    assert m.overdue == {OverdueBucket.DAYS_61_90: Decimal(570)}
    assert m.oldest_overdue_bucket == OverdueBucket.DAYS_61_90
    facts.apply(b.paid("o-1", "500", "0"))
    assert measure(facts, days(100), POLICY).overdue_total == Decimal(70)
