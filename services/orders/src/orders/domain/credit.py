"""Credit rules (DESIGN §4 "Credit") as pure functions — the one policy file of the orders service.

* **Exposure** = what the customer owes on its orders (placed, not cancelled, minus returns and
  payments) + the order being placed, in the order's currency. Held orders count: they are placed.
* An order is **held** (status ``credit_held`` + OrderCreditHeld) when its exposure is over the credit
  limit, or when the customer has a receivable more than ``overdue_hold_days`` (60) days past its due
  date *as of the order's placed date* (so a back-dated load judges each order by its own day).
* A limit in another currency than the order cannot be compared without conversion: the order is held
  (``over_credit_limit``) rather than waved through.
* **Customers without credit terms** get ``default_credit_limit``; ``None`` (the default) means they are
  not credit-controlled at all — never held, neither for a limit nor for overdue receivables — which is
  how the Online Retail demo (no terms) keeps placing orders normally. Their receivables still get due
  dates (``default_payment_days``) and are still reported overdue by the sweep.
* **Due date** = placed date (UTC) + payment days from the customer's terms, else the default.
* **Overdue buckets** 1–30 / 31–60 / 61–90 / 90+ days past the due date (day 1 = the day after it).

No I/O and no clock here: callers pass "today" / the placed date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from shared.events.vocabulary import CreditHoldReason, OverdueBucket

#: Buckets in age order; the sweep reports each one at most once per order, never going back.
BUCKET_ORDER: tuple[OverdueBucket, ...] = tuple(OverdueBucket)


@dataclass(frozen=True)
class CreditPolicy:
    """The tunable numbers of credit control (filled from ``OrdersSettings``; see docs/orders.md)."""

    overdue_hold_days: int = 60
    default_payment_days: int = 30
    #: limit for customers without credit terms; None = such customers are not credit-controlled
    default_credit_limit: Decimal | None = None
    default_credit_currency: str = "CNY"


@dataclass(frozen=True)
class CreditTerms:
    """A customer's terms as last set (CustomerCreditTermsSet)."""

    credit_limit: Decimal
    currency: str
    payment_days: int
    rating: str | None = None


@dataclass(frozen=True)
class Exposure:
    """What a customer owes right now: unpaid amounts in one currency and its oldest unpaid due date."""

    unpaid: Decimal = Decimal(0)
    #: oldest due date of any unpaid receivable (any currency); None when nothing is owed
    oldest_unpaid_due: date | None = None


@dataclass(frozen=True)
class CreditDecision:
    """The outcome of a credit check: no reasons = accepted."""

    reasons: tuple[CreditHoldReason, ...]
    exposure: Decimal
    currency: str
    credit_limit: Decimal | None = None
    limit_currency: str | None = None

    @property
    def held(self) -> bool:
        return bool(self.reasons)


def effective_limit(terms: CreditTerms | None, policy: CreditPolicy) -> tuple[Decimal, str] | None:
    """(limit, currency) that applies to a customer, or None when it is not credit-controlled."""
    if terms is not None:
        return terms.credit_limit, terms.currency
    if policy.default_credit_limit is not None:
        return policy.default_credit_limit, policy.default_credit_currency
    return None


def assess(
    *,
    order_total: Decimal,
    currency: str,
    exposure: Exposure,
    terms: CreditTerms | None,
    as_of: date,
    policy: CreditPolicy,
) -> CreditDecision:
    """The credit check of one order placed on ``as_of``."""
    total_exposure = exposure.unpaid + order_total
    limit = effective_limit(terms, policy)
    if limit is None:
        return CreditDecision(reasons=(), exposure=total_exposure, currency=currency)
    limit_amount, limit_currency = limit
    reasons: list[CreditHoldReason] = []
    if limit_currency != currency or total_exposure > limit_amount:
        reasons.append(CreditHoldReason.OVER_CREDIT_LIMIT)
    if exposure.oldest_unpaid_due is not None and days_overdue(exposure.oldest_unpaid_due, as_of) > (
        policy.overdue_hold_days
    ):
        reasons.append(CreditHoldReason.RECEIVABLES_OVERDUE_60)
    return CreditDecision(
        reasons=tuple(reasons),
        exposure=total_exposure,
        currency=currency,
        credit_limit=limit_amount,
        limit_currency=limit_currency,
    )


def payment_days_for(terms: CreditTerms | None, policy: CreditPolicy) -> int:
    return terms.payment_days if terms is not None else policy.default_payment_days


def due_date(placed_at: datetime, payment_days: int) -> date:
    """Placed date (UTC) + payment days."""
    return (placed_at + timedelta(days=payment_days)).date()


def days_overdue(due: date, today: date) -> int:
    """Days past ``due`` on ``today`` (0 on or before the due date)."""
    return max(0, (today - due).days)


def overdue_bucket(due: date, today: date) -> OverdueBucket | None:
    days = days_overdue(due, today)
    return OverdueBucket.for_days(days) if days >= 1 else None


def bucket_rank(bucket: OverdueBucket | None) -> int:
    """0 for "not overdue", 1 … 4 for 1–30 … 90+."""
    return 0 if bucket is None else BUCKET_ORDER.index(bucket) + 1
