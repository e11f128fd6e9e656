"""The data set of the dashboard's browser tests, as contract events (what the other services publish).

23 customers, graded by a segmentation clock fixed at ``T0``:

* ``c-01`` … ``c-20`` — one order each of 100 × i, ten days before T0; odd ones in East, even ones in West;
* ``r-01``, ``r-02`` (North) — four orders of 150 every ten days, the last 55 days before T0 (cadence
  breached), a detractor survey (NPS 3), a complaint past its SLA and a receivable 25 days overdue:
  25 + 15 + 15 + 5 = 60 points, the high band, so each gets a churn alert;
* ``p-01`` (North) — registered, never ordered: a prospect.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, EventPayload, Money
from shared.events.vocabulary import OverdueBucket
from shared.testing.events import complaint_filed

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AT_RISK = ("r-01", "r-02")
RISK_REASONS = {"cadence_breach", "complaint_overdue", "detractor_survey", "receivables_overdue_1_30"}
_versions: dict[str, Iterator[int]] = {}


def _wrap(payload: EventPayload, customer_id: str, aggregate: str, at: datetime) -> Envelope:
    version = next(_versions.setdefault(aggregate, itertools.count(1)))
    return Envelope.wrap(
        payload,
        producer="dashboard-e2e",
        aggregate_type=aggregate.split(":", 1)[0],
        aggregate_id=aggregate.split(":", 1)[1],
        aggregate_version=version,
        customer_id=customer_id,
        correlation_id=f"e2e-{customer_id}",
        occurred_at=at,
    )


def _registered(customer_id: str, region: str) -> Envelope:
    payload = customers.CustomerRegistered(
        customer_id=customer_id, company_name=f"{customer_id.upper()} Trading Co.", region=region
    )
    return _wrap(payload, customer_id, f"customer:{customer_id}", T0 - timedelta(days=400))


def _placed(customer_id: str, order_id: str, amount: int, at: datetime) -> Envelope:
    money = Money(amount=Decimal(amount))
    payload = orders.OrderPlaced(
        order_id=order_id,
        customer_id=customer_id,
        lines=[orders.OrderLine(sku="SKU-1", description="goods", quantity=1, unit_price=money)],
        total=money,
        placed_at=at,
        due_date=(at + timedelta(days=30)).date(),
        payment_days=30,
    )
    return _wrap(payload, customer_id, f"order:{order_id}", at)


def _at_risk(customer_id: str) -> tuple[list[Envelope], list[Envelope]]:
    """(order events, feedback events) of a customer whose churn-risk score is 60."""
    first = T0 - timedelta(days=85)
    placed = [_placed(customer_id, f"{customer_id}-o{n}", 150, first + timedelta(days=10 * n)) for n in range(4)]
    last = first + timedelta(days=30)
    overdue = orders.PaymentOverdue(
        order_id=f"{customer_id}-o3",
        days_overdue=25,
        bucket=OverdueBucket.DAYS_1_30,
        amount=Money(amount=Decimal(150)),
        due_date=(last + timedelta(days=30)).date(),
    )
    filed = T0 - timedelta(days=5)
    complaint = complaint_filed(customer_id, f"{customer_id}-k1", filed)
    survey = feedback.SurveyAnswered(
        survey_id=f"{customer_id}-s1", customer_id=customer_id, nps=3, answered_at=first + timedelta(days=5)
    )
    return (
        [*placed, _wrap(overdue, customer_id, f"order:{customer_id}-o3", T0 - timedelta(hours=1))],
        [
            _wrap(survey, customer_id, f"survey:{customer_id}-s1", first + timedelta(days=5)),
            _wrap(complaint, customer_id, f"complaint:{customer_id}-k1", filed),
        ],
    )


def contract_events() -> dict[str, list[Envelope]]:
    """Events by contract topic (crm.customers.v1 / crm.orders.v1 / crm.feedback.v1 → their lists)."""
    by_topic: dict[str, list[Envelope]] = {"customers": [], "orders": [], "feedback": []}
    for i in range(1, 21):
        cid = f"c-{i:02d}"
        by_topic["customers"].append(_registered(cid, "East" if i % 2 else "West"))
        by_topic["orders"].append(_placed(cid, f"{cid}-o1", 100 * i, T0 - timedelta(days=10)))
    for cid in AT_RISK:
        by_topic["customers"].append(_registered(cid, "North"))
        placed, said = _at_risk(cid)
        by_topic["orders"] += placed
        by_topic["feedback"] += said
    by_topic["customers"].append(_registered("p-01", "North"))
    return by_topic


#: Net contribution of everyone in the trailing 12 months: 100 + … + 2000, and 4 × 150 twice.
TOTAL_REVENUE = Decimal(21000 + 2 * 600)
CUSTOMERS = 23
