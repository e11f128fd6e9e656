"""The pure credit rules (orders.domain.credit), as tables: inputs → decision."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from orders.domain.credit import (
    CreditPolicy,
    CreditTerms,
    Exposure,
    assess,
    bucket_rank,
    days_overdue,
    due_date,
    overdue_bucket,
    payment_days_for,
)
from shared.events.vocabulary import CreditHoldReason, OverdueBucket

pytestmark = pytest.mark.unit

OVER = CreditHoldReason.OVER_CREDIT_LIMIT
OVERDUE = CreditHoldReason.RECEIVABLES_OVERDUE_60
TODAY = date(2026, 6, 1)
TERMS_1000 = CreditTerms(credit_limit=Decimal("1000"), currency="CNY", payment_days=45, rating="B")


def ago(days: int) -> date:
    return date.fromordinal(TODAY.toordinal() - days)


@pytest.mark.parametrize(
    ("unpaid", "oldest_due", "order_total", "terms", "expected"),
    [
        # under, at and over the limit
        ("0", None, "999.99", TERMS_1000, ()),
        ("400", ago(10), "600", TERMS_1000, ()),
        ("400", ago(10), "600.01", TERMS_1000, (OVER,)),
        ("0", None, "1000.01", TERMS_1000, (OVER,)),
        # overdue: more than 60 days past due holds, 60 does not
        ("10", ago(60), "1", TERMS_1000, ()),
        ("10", ago(61), "1", TERMS_1000, (OVERDUE,)),
        ("990", ago(200), "20", TERMS_1000, (OVER, OVERDUE)),
        # a due date in the future is not overdue at all
        ("10", date(2026, 7, 1), "1", TERMS_1000, ()),
        # limit 0 = cash only: any order with a value is held, a free one is not
        ("0", None, "0.01", CreditTerms(Decimal(0), "CNY", 0), (OVER,)),
        ("0", None, "0", CreditTerms(Decimal(0), "CNY", 0), ()),
        # a limit in another currency cannot be compared: held
        ("0", None, "1", CreditTerms(Decimal("1000000"), "USD", 30), (OVER,)),
        # no terms, no default limit: not credit-controlled, even when long overdue and huge
        ("1000000", ago(400), "1000000", None, ()),
    ],
)
def test_the_credit_check_holds_exactly_when_over_the_limit_or_60_days_overdue(
    unpaid: str, oldest_due: date | None, order_total: str, terms: CreditTerms | None, expected: tuple
) -> None:
    decision = assess(
        order_total=Decimal(order_total),
        currency="CNY",
        exposure=Exposure(unpaid=Decimal(unpaid), oldest_unpaid_due=oldest_due),
        terms=terms,
        as_of=TODAY,
        policy=CreditPolicy(),
    )
    assert decision.reasons == expected
    assert decision.held == bool(expected)
    assert decision.exposure == Decimal(unpaid) + Decimal(order_total)


def test_the_decision_reports_the_limit_it_was_checked_against() -> None:
    decision = assess(
        order_total=Decimal("700"),
        currency="CNY",
        exposure=Exposure(unpaid=Decimal("500")),
        terms=TERMS_1000,
        as_of=TODAY,
        policy=CreditPolicy(),
    )
    assert (decision.exposure, decision.credit_limit, decision.limit_currency) == (
        Decimal("1200"),
        Decimal(1000),
        "CNY",
    )


@pytest.mark.parametrize(
    ("default_limit", "unpaid", "oldest_due", "expected"),
    [
        (Decimal("500"), "400", None, (OVER,)),
        (Decimal("500"), "0", ago(90), (OVERDUE,)),
        (Decimal("5000"), "0", None, ()),
    ],
)
def test_a_default_limit_makes_customers_without_terms_credit_controlled(
    default_limit: Decimal, unpaid: str, oldest_due: date | None, expected: tuple
) -> None:
    policy = CreditPolicy(default_credit_limit=default_limit, default_credit_currency="CNY")
    decision = assess(
        order_total=Decimal("200"),
        currency="CNY",
        exposure=Exposure(unpaid=Decimal(unpaid), oldest_unpaid_due=oldest_due),
        terms=None,
        as_of=TODAY,
        policy=policy,
    )
    assert decision.reasons == expected


def test_the_overdue_hold_threshold_is_a_policy_number() -> None:
    decision = assess(
        order_total=Decimal("1"),
        currency="CNY",
        exposure=Exposure(unpaid=Decimal("1"), oldest_unpaid_due=ago(31)),
        terms=TERMS_1000,
        as_of=TODAY,
        policy=CreditPolicy(overdue_hold_days=30),
    )
    assert decision.reasons == (OVERDUE,)


@pytest.mark.parametrize(
    ("placed_at", "days", "expected"),
    [
        (datetime(2026, 1, 31, 9, 0, tzinfo=UTC), 30, date(2026, 3, 2)),
        (datetime(2026, 2, 1, 23, 59, tzinfo=UTC), 0, date(2026, 2, 1)),
        (datetime(2024, 2, 28, 12, 0, tzinfo=UTC), 1, date(2024, 2, 29)),
    ],
)
def test_the_due_date_is_the_placed_date_plus_payment_days(placed_at: datetime, days: int, expected: date) -> None:
    assert due_date(placed_at, days) == expected


def test_payment_days_come_from_the_terms_else_the_policy_default() -> None:
    assert payment_days_for(TERMS_1000, CreditPolicy(default_payment_days=30)) == 45
    assert payment_days_for(None, CreditPolicy(default_payment_days=14)) == 14


@pytest.mark.parametrize(
    ("days_past_due", "bucket", "rank"),
    [
        (-5, None, 0),
        (0, None, 0),
        (1, OverdueBucket.DAYS_1_30, 1),
        (30, OverdueBucket.DAYS_1_30, 1),
        (31, OverdueBucket.DAYS_31_60, 2),
        (60, OverdueBucket.DAYS_31_60, 2),
        (61, OverdueBucket.DAYS_61_90, 3),
        (90, OverdueBucket.DAYS_61_90, 3),
        (91, OverdueBucket.DAYS_90_PLUS, 4),
        (4000, OverdueBucket.DAYS_90_PLUS, 4),
    ],
)
def test_overdue_buckets_follow_days_past_the_due_date(
    days_past_due: int, bucket: OverdueBucket | None, rank: int
) -> None:
    due = ago(days_past_due)
    assert days_overdue(due, TODAY) == max(0, days_past_due)
    assert overdue_bucket(due, TODAY) == bucket
    assert bucket_rank(bucket) == rank
