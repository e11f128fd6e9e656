"""Activity status by the customer's own cadence, reactivation, and the forward-only lifecycle stage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segmentation.domain.activity import (
    LifecycleStage,
    activity_status,
    assess_activity,
    cadence_threshold_days,
    days_since_last_order,
    lifecycle_stage,
    median_gap_days,
)
from segmentation.domain.policy import ActivityPolicy
from shared.events.vocabulary import ActivityStatus, SalesStage

pytestmark = pytest.mark.unit

POLICY = ActivityPolicy()
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
ACTIVE, AT_RISK, DORMANT, LOST, REACTIVATED = (
    ActivityStatus.ACTIVE,
    ActivityStatus.AT_RISK,
    ActivityStatus.DORMANT,
    ActivityStatus.LOST,
    ActivityStatus.REACTIVATED,
)


def day(n: int, hour: int = 9) -> datetime:
    return T0 + timedelta(days=n, hours=hour - 9)


def days(*ns: int) -> list[datetime]:
    return [day(n) for n in ns]


@pytest.mark.parametrize(
    ("orders", "median"),
    [
        ([], None),
        (days(0), None),
        (days(0, 10), Decimal(10)),
        (days(0, 10, 30), Decimal(15)),  # gaps 10, 20
        (days(30, 0, 31, 10), Decimal(10)),  # gaps 10, 20, 1 in any input order
        ([day(0, 8), day(0, 17), day(7)], Decimal(7)),  # two invoices on one day are one purchase day
    ],
)
def test_the_median_gap_is_taken_between_distinct_purchase_days(orders: list[datetime], median: Decimal | None) -> None:
    assert median_gap_days(orders) == median


def test_purchase_days_are_utc_calendar_days() -> None:
    late_evening_west = datetime(2026, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2)))  # 2 Jan 01:30 UTC

    assert median_gap_days([day(0), late_evening_west]) == Decimal(1)
    assert days_since_last_order([late_evening_west], day(3)) == 2


# Every 10 days (median 10): at_risk after max(20, 14) = 20 days, dormant after max(30, 30) = 30, lost after 365.
EVERY_TEN = days(0, 10, 20, 30, 40)
# Every 3 days (median 3): the floors rule: at_risk after max(6, 14) = 14, dormant after max(9, 30) = 30.
EVERY_THREE = days(0, 3, 6, 9)
# Two purchase days only: fixed 60 / 90.
TWICE = days(0, 5)
# Twice a year (median 200): at_risk after 400 — beyond lost (365), so it goes straight from active to lost.
SLOW = days(0, 200, 400, 600)


@pytest.mark.parametrize(
    ("orders", "now", "status"),
    [
        (EVERY_TEN, day(40), ACTIVE),
        (EVERY_TEN, day(60), ACTIVE),
        (EVERY_TEN, day(61), AT_RISK),
        (EVERY_TEN, day(70), AT_RISK),
        (EVERY_TEN, day(71), DORMANT),
        (EVERY_TEN, day(405), DORMANT),
        (EVERY_TEN, day(406), LOST),
        (EVERY_THREE, day(23), ACTIVE),
        (EVERY_THREE, day(24), AT_RISK),
        (EVERY_THREE, day(39), AT_RISK),
        (EVERY_THREE, day(40), DORMANT),
        (TWICE, day(65), ACTIVE),
        (TWICE, day(66), AT_RISK),
        (TWICE, day(95), AT_RISK),
        (TWICE, day(96), DORMANT),
        (TWICE, day(371), LOST),
        (days(0), day(60), ACTIVE),  # a first order
        (days(0), day(61), AT_RISK),
        (SLOW, day(965), ACTIVE),
        (SLOW, day(966), LOST),
    ],
)
def test_activity_follows_the_customers_own_cadence(
    orders: list[datetime], now: datetime, status: ActivityStatus
) -> None:
    assert activity_status(orders, now, POLICY) == status


@pytest.mark.parametrize(
    ("orders", "now", "status"),
    [
        # Every 10 days, then a 50-day gap (> 30, dormant) before the order of day 80: back, reactivated.
        (days(0, 10, 20, 30, 80), day(80), REACTIVATED),
        (days(0, 10, 20, 30, 80), day(100), REACTIVATED),
        # … still judged by cadence: 21 days after the comeback order it is at risk like anyone.
        (days(0, 10, 20, 30, 80), day(101), AT_RISK),
        # … and the next order within cadence makes it active again.
        (days(0, 10, 20, 30, 80, 90), day(90), ACTIVE),
        # A 30-day gap is exactly the dormant threshold, not beyond it: no comeback.
        (days(0, 10, 20, 30, 60), day(60), ACTIVE),
        # Back after more than a year (lost).
        (days(0, 10, 20, 30, 500), day(500), REACTIVATED),
        # With one earlier purchase day the fixed 90 days apply.
        (days(0, 100), day(100), REACTIVATED),
        (days(0, 80), day(80), ACTIVE),
        # Several orders on the comeback day are one purchase day: still reactivated.
        ([*days(0, 10, 20, 30), day(80, 8), day(80, 15)], day(81), REACTIVATED),
    ],
)
def test_a_new_order_after_dormancy_reactivates_until_the_next_order_within_cadence(
    orders: list[datetime], now: datetime, status: ActivityStatus
) -> None:
    assert activity_status(orders, now, POLICY) == status


def test_a_customer_without_orders_has_no_activity_status() -> None:
    assert activity_status([], day(10), POLICY) is None
    assert assess_activity([], day(10), POLICY) is None
    assert cadence_threshold_days([], POLICY) is None
    assert days_since_last_order([], day(10)) is None


@pytest.mark.parametrize(
    ("orders", "now", "reason"),
    [
        (EVERY_TEN, day(61), "21 days since the last order > 20 (median gap 10 days)"),
        (EVERY_TEN, day(71), "31 days since the last order > 30 (median gap 10 days)"),
        (TWICE, day(96), "91 days since the last order > 90 (fewer than 3 purchase days)"),
        (EVERY_TEN, day(406), "366 days since the last order > 365"),
        (days(0, 10, 20, 30, 80), day(80), "ordered again after 50 days away > 30 (median gap 10 days)"),
        (EVERY_TEN, day(45), "5 days since the last order ≤ 20"),
    ],
)
def test_the_assessment_says_which_rule_fired_and_its_threshold(
    orders: list[datetime], now: datetime, reason: str
) -> None:
    assessment = assess_activity(orders, now, POLICY)

    assert assessment is not None
    assert assessment.reason == reason


def test_the_cadence_threshold_for_churn_is_the_at_risk_threshold() -> None:
    assert cadence_threshold_days(EVERY_TEN, POLICY) == Decimal(20)
    assert cadence_threshold_days(TWICE, POLICY) == Decimal(60)


@pytest.mark.parametrize(
    ("previous", "sales_stage", "orders", "stage"),
    [
        (None, SalesStage.PROSPECT, 0, LifecycleStage.PROSPECT),
        (None, None, 0, LifecycleStage.PROSPECT),  # an order-only placeholder before registration
        (None, SalesStage.LEAD, 0, LifecycleStage.LEAD),
        (None, SalesStage.CUSTOMER, 0, LifecycleStage.LEAD),  # "customer" on file but no order yet
        (None, "lead", 0, LifecycleStage.LEAD),  # plain strings from stored rows work too
        (None, SalesStage.PROSPECT, 1, LifecycleStage.NEW_CUSTOMER),  # the first order decides
        (LifecycleStage.LEAD, SalesStage.LEAD, 1, LifecycleStage.NEW_CUSTOMER),
        (LifecycleStage.NEW_CUSTOMER, SalesStage.CUSTOMER, 2, LifecycleStage.REPEAT_CUSTOMER),
        (LifecycleStage.REPEAT_CUSTOMER, SalesStage.CUSTOMER, 1, LifecycleStage.REPEAT_CUSTOMER),  # never back
        (LifecycleStage.LEAD, SalesStage.PROSPECT, 0, LifecycleStage.LEAD),
        (LifecycleStage.NEW_CUSTOMER, None, 0, LifecycleStage.NEW_CUSTOMER),
    ],
)
def test_the_lifecycle_stage_only_moves_forward(
    previous: LifecycleStage | None, sales_stage: SalesStage | str | None, orders: int, stage: LifecycleStage
) -> None:
    assert lifecycle_stage(previous, sales_stage, orders) == stage


# -- properties --------------------------------------------------------------------------------

SEVERITY = {ACTIVE: 0, REACTIVATED: 0, AT_RISK: 1, DORMANT: 2, LOST: 3}
order_days = st.lists(st.integers(min_value=0, max_value=1500), min_size=1, max_size=40)


@given(order_days, st.integers(min_value=0, max_value=2000), st.integers(min_value=0, max_value=2000))
def test_without_new_orders_the_status_only_gets_worse_with_time(ns: list[int], wait: int, more: int) -> None:
    orders = days(*ns)
    first = day(max(ns) + wait)
    later = first + timedelta(days=more)

    before, after = activity_status(orders, first, POLICY), activity_status(orders, later, POLICY)

    assert before is not None and after is not None
    assert SEVERITY[before] <= SEVERITY[after]


@given(order_days, st.integers(min_value=0, max_value=2000))
def test_lost_means_more_than_365_days_without_an_order(ns: list[int], wait: int) -> None:
    status = activity_status(days(*ns), day(max(ns) + wait), POLICY)

    assert (status == LOST) == (wait > 365)


stages = st.sampled_from([None, *LifecycleStage])
sales = st.sampled_from([None, *SalesStage])


@given(stages, sales, st.integers(min_value=0, max_value=20))
def test_no_input_moves_the_lifecycle_stage_back(
    previous: LifecycleStage | None, sales_stage: SalesStage | None, orders: int
) -> None:
    stage = lifecycle_stage(previous, sales_stage, orders)

    if previous is not None:
        assert list(LifecycleStage).index(stage) >= list(LifecycleStage).index(previous)
