"""Contract events for one customer, for the segmentation unit tests (pure: no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from segmentation.domain.facts import CustomerFacts
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, EventPayload, Money

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
CID = "c-1"


def wrap(payload: EventPayload, at: datetime = T0, customer_id: str = CID) -> Envelope:
    return Envelope.wrap(
        payload,
        producer="test",
        aggregate_type="x",
        aggregate_id="x",
        aggregate_version=1,
        customer_id=customer_id,
        correlation_id="corr",
        occurred_at=at,
    )


def money(amount: str | int) -> Money:
    return Money(amount=Decimal(amount))


def registered(customer_id: str = CID, stage: str = "prospect") -> Envelope:
    return wrap(
        customers.CustomerRegistered(customer_id=customer_id, company_name="Acme", region="East", stage=stage),
        customer_id=customer_id,
    )


def placed(order_id: str, amount: str | int, day: float, customer_id: str = CID, due_days: int = 30) -> Envelope:
    at = T0 + timedelta(days=day)
    return wrap(
        orders.OrderPlaced(
            order_id=order_id,
            customer_id=customer_id,
            lines=[orders.OrderLine(sku="S", quantity=1, unit_price=money(amount))],
            total=money(amount),
            placed_at=at,
            due_date=(at + timedelta(days=due_days)).date(),
            payment_days=due_days,
        ),
        at,
        customer_id,
    )


def cancelled(order_id: str, amount: str | int) -> Envelope:
    return wrap(orders.OrderCancelled(order_id=order_id, amount=money(amount), reason="x"))


def returned(order_id: str, amount: str | int, return_id: str = "r-1") -> Envelope:
    return wrap(orders.OrderReturned(order_id=order_id, return_id=return_id, amount=money(amount), reason="x"))


def overdue(order_id: str, amount: str | int, due: date, days: int) -> Envelope:
    from shared.events.vocabulary import OverdueBucket

    return wrap(
        orders.PaymentOverdue(
            order_id=order_id,
            days_overdue=days,
            bucket=OverdueBucket.for_days(days),
            amount=money(amount),
            due_date=due,
        )
    )


def paid(order_id: str, amount: str | int, outstanding: str | int) -> Envelope:
    return wrap(
        orders.PaymentReceived(
            order_id=order_id,
            payment_id=f"p-{order_id}-{amount}",
            amount=money(amount),
            outstanding=money(outstanding),
            paid_in_full=Decimal(outstanding) == 0,
        )
    )


def complaint(complaint_id: str, *, filed: datetime = T0, severity: str = "high") -> Envelope:
    return wrap(
        feedback.ComplaintFiled(
            complaint_id=complaint_id,
            customer_id=CID,
            category="delivery",
            severity=severity,
            summary="late",
            filed_at=filed,
            acknowledge_by=filed + timedelta(hours=4),
            resolve_by=filed + timedelta(days=3),
        ),
        filed,
    )


def survey(survey_id: str, *, csat: int | None = None, nps: int | None = None, at: datetime = T0) -> Envelope:
    return wrap(feedback.SurveyAnswered(survey_id=survey_id, customer_id=CID, csat=csat, nps=nps, answered_at=at), at)


def fold(events: list[Envelope], customer_id: str = CID) -> CustomerFacts:
    facts = CustomerFacts.new(customer_id)
    for envelope in events:
        facts.apply(envelope)
    return facts
