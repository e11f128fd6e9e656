"""Activity status (moves both ways) and lifecycle stage (forward only), DESIGN §4. Pure functions.

Activity follows each customer's own cadence: the median gap between *purchase days* (calendar days in
UTC with at least one order — several invoices on one day are one purchase occasion, so they do not
shrink the cadence to zero). With d = whole days since the last purchase day:

* lost      when d > ``lost_days`` (365), whatever the cadence;
* dormant   when d > max(3 × median gap, 30); with fewer than 3 purchase days, d > 90;
* at_risk   when d > max(2 × median gap, 14); with fewer than 3 purchase days, d > 60;
* otherwise active — or **reactivated** when the latest purchase came after a gap that would have made
  the customer dormant or lost (judged by the cadence of the purchases before it). A reactivated
  customer becomes active with their next purchase within cadence (one normal cadence proves the return),
  or drifts to at_risk and beyond like anyone else.

The status is a function of the purchase days and the clock only, so an order event, a scheduled sweep
and a replay all agree; the caller compares it with the stored status to emit a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise

from segmentation.domain.policy import ActivityPolicy
from shared.events.vocabulary import ActivityStatus, SalesStage


class LifecycleStage(StrEnum):
    """Where the customer is in the relationship; never moves back."""

    PROSPECT = "prospect"
    LEAD = "lead"
    NEW_CUSTOMER = "new_customer"
    REPEAT_CUSTOMER = "repeat_customer"


_STAGES = tuple(LifecycleStage)


class _Unset:
    """Marks an argument not given (``None`` is a meaningful median: fewer than two purchase days)."""


UNSET = _Unset()


@dataclass(frozen=True)
class CadenceThresholds:
    """Days since the last purchase beyond which a customer is at risk, dormant, lost."""

    at_risk_days: Decimal
    dormant_days: Decimal
    lost_days: int
    rule: str  # how the thresholds were derived, for reasons


@dataclass(frozen=True)
class ActivityAssessment:
    status: ActivityStatus
    days_since_last_order: int
    reason: str


def purchase_days(order_dates: Iterable[datetime]) -> list[date]:
    """Distinct UTC calendar days with an order, ascending (naive datetimes are taken as UTC)."""
    return sorted({_utc_day(moment) for moment in order_dates})


def purchase_days_of_sorted(order_dates: Sequence[datetime]) -> tuple[date, ...]:
    """:func:`purchase_days` of datetimes already in ascending order, in one pass (no set, no sort).

    Ascending instants have non-decreasing UTC days, so dropping repeats of the previous day suffices."""
    days: list[date] = []
    previous = None
    for moment in order_dates:
        day = _utc_day(moment)
        if day != previous:
            days.append(day)
            previous = day
    return tuple(days)


def _utc_day(moment: datetime) -> date:
    tz = moment.tzinfo
    if tz is None or tz is UTC:  # the projection's instants are UTC already: skip the conversion
        return moment.date()
    return moment.astimezone(UTC).date()


def median_gap_days(order_dates: Iterable[datetime]) -> Decimal | None:
    """Median of the gaps in days between consecutive purchase days; None with fewer than two."""
    return _median_gap(purchase_days(order_dates))


def median_gap_of_days(days: Sequence[date]) -> Decimal | None:
    """:func:`median_gap_days` of purchase days already computed (see :func:`purchase_days`)."""
    return _median_gap(days)


def _median_gap(days: Sequence[date]) -> Decimal | None:
    gaps = sorted((later - earlier).days for earlier, later in pairwise(days))
    if not gaps:
        return None
    middle = len(gaps) // 2
    if len(gaps) % 2:
        return Decimal(gaps[middle])
    return Decimal(gaps[middle - 1] + gaps[middle]) / 2


def cadence_thresholds(order_dates: Iterable[datetime], policy: ActivityPolicy) -> CadenceThresholds:
    """The customer's at-risk / dormant / lost thresholds from their purchase history."""
    return _thresholds(purchase_days(order_dates), policy)


def thresholds_of_days(
    days: Sequence[date], policy: ActivityPolicy, median: Decimal | _Unset | None = UNSET
) -> CadenceThresholds:
    """:func:`cadence_thresholds` of purchase days already computed; ``median``: their median gap, if known."""
    return _thresholds(days, policy, median)


def _thresholds(
    days: Sequence[date], policy: ActivityPolicy, median: Decimal | _Unset | None = UNSET
) -> CadenceThresholds:
    if isinstance(median, _Unset):
        median = _median_gap(days)
    if median is None or len(days) < policy.few_orders:
        return CadenceThresholds(
            at_risk_days=Decimal(policy.few_orders_at_risk_days),
            dormant_days=Decimal(policy.few_orders_dormant_days),
            lost_days=policy.lost_days,
            rule=f"fewer than {policy.few_orders} purchase days",
        )
    return CadenceThresholds(
        at_risk_days=max(policy.at_risk_gap_factor * median, Decimal(policy.at_risk_min_days)),
        dormant_days=max(policy.dormant_gap_factor * median, Decimal(policy.dormant_min_days)),
        lost_days=policy.lost_days,
        rule=f"median gap {median} days",
    )


def cadence_threshold_days(order_dates: Iterable[datetime], policy: ActivityPolicy) -> Decimal | None:
    """Days without an order after which the cadence is breached (= at_risk); None without orders."""
    days = purchase_days(order_dates)
    return _thresholds(days, policy).at_risk_days if days else None


def days_since_last_order(order_dates: Iterable[datetime], now: datetime) -> int | None:
    """Whole UTC calendar days from the last purchase day to ``now``'s day; None without orders."""
    days = purchase_days(order_dates)
    return (_utc_day(now) - days[-1]).days if days else None


def assess_activity(
    order_dates: Iterable[datetime], now: datetime, policy: ActivityPolicy
) -> ActivityAssessment | None:
    """The activity status with the rule that fired; None for a customer without orders."""
    return assess_activity_of_days(purchase_days(order_dates), now, policy)


def assess_activity_of_days(
    days: Sequence[date], now: datetime, policy: ActivityPolicy, limits: CadenceThresholds | None = None
) -> ActivityAssessment | None:
    """:func:`assess_activity` of purchase days already computed (``limits``: their thresholds, if known)."""
    if not days:
        return None
    since = (_utc_day(now) - days[-1]).days
    if limits is None:
        limits = _thresholds(days, policy)
    if since > limits.lost_days:
        return ActivityAssessment(ActivityStatus.LOST, since, f"{since} days since the last order > {limits.lost_days}")
    for status, limit in ((ActivityStatus.DORMANT, limits.dormant_days), (ActivityStatus.AT_RISK, limits.at_risk_days)):
        if since > limit:
            reason = f"{since} days since the last order > {limit} ({limits.rule})"
            return ActivityAssessment(status, since, reason)
    comeback = _comeback(days, policy)
    if comeback is not None:
        return ActivityAssessment(ActivityStatus.REACTIVATED, since, comeback)
    return ActivityAssessment(
        ActivityStatus.ACTIVE, since, f"{since} days since the last order ≤ {limits.at_risk_days}"
    )


def _comeback(days: Sequence[date], policy: ActivityPolicy) -> str | None:
    """Why the latest purchase is a return from dormancy, or None if it was within cadence."""
    if len(days) < 2:
        return None
    gap = (days[-1] - days[-2]).days
    before = _thresholds(days[:-1], policy)
    limit = min(before.dormant_days, Decimal(before.lost_days))
    if gap <= limit:
        return None
    return f"ordered again after {gap} days away > {limit} ({before.rule})"


def activity_status(order_dates: Iterable[datetime], now: datetime, policy: ActivityPolicy) -> ActivityStatus | None:
    """The activity status alone (see :func:`assess_activity`)."""
    assessment = assess_activity(order_dates, now, policy)
    return None if assessment is None else assessment.status


def lifecycle_stage(
    previous_stage: LifecycleStage | None, sales_stage: SalesStage | str | None, orders_count: int
) -> LifecycleStage:
    """Lifecycle stage, never lower than ``previous_stage``.

    Orders decide once there are any (one → new customer, two or more → repeat customer); before the
    first order the sales stage does: lead, or a file already marked "customer", counts as lead, since
    DESIGN defines a new customer by the first order.
    """
    if orders_count >= 2:
        derived = LifecycleStage.REPEAT_CUSTOMER
    elif orders_count == 1:
        derived = LifecycleStage.NEW_CUSTOMER
    elif sales_stage in (SalesStage.LEAD, SalesStage.CUSTOMER):
        derived = LifecycleStage.LEAD
    else:
        derived = LifecycleStage.PROSPECT
    if previous_stage is None:
        return derived
    return max(previous_stage, derived, key=_STAGES.index)
