"""Contract events for tests that need *some* valid event of a customer, not a particular history."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.events import customers, feedback
from shared.events.envelope import Envelope, EventPayload


def customer_registered(customer_id: str, *, producer: str = "test") -> Envelope:
    """A valid ``CustomerRegistered`` of ``customer_id`` (company "Acme", region "East"), as its own stream's
    first event, correlated by the customer id."""
    return Envelope.wrap(
        customers.CustomerRegistered(customer_id=customer_id, company_name="Acme", region="East"),
        producer=producer,
        aggregate_type="customer",
        aggregate_id=customer_id,
        aggregate_version=1,
        customer_id=customer_id,
        correlation_id=customer_id,
    )


def customer_event(customer_id: str, payload: EventPayload, version: int, *, producer: str = "customers") -> Envelope:
    """``payload`` as the ``version``-th event of ``customer_id``'s customer stream (what crm.customers.v1 carries)."""
    return Envelope.wrap(
        payload,
        producer=producer,
        aggregate_type="customer",
        aggregate_id=customer_id,
        aggregate_version=version,
        customer_id=customer_id,
        correlation_id=f"test-{customer_id}",
    )


def complaint_filed(customer_id: str, complaint_id: str, at: datetime) -> feedback.ComplaintFiled:
    """A high-severity delivery complaint filed at ``at`` (acknowledge within 4 hours, resolve within 3 days)."""
    return feedback.ComplaintFiled(
        complaint_id=complaint_id,
        customer_id=customer_id,
        category="delivery",
        severity="high",
        summary="late truck",
        filed_at=at,
        acknowledge_by=at + timedelta(hours=4),
        resolve_by=at + timedelta(days=3),
    )
