"""Complaint aggregate: the closed loop and its SLA deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from feedback.domain.complaint import DEFAULT_SLA, Complaint
from shared.events import feedback as contract
from shared.eventsourcing.aggregate import DomainError

pytestmark = pytest.mark.unit

FILED_AT = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def filed(severity: str = "high") -> Complaint:
    complaint = Complaint.file(
        "k-1", "c-1", category="delivery", severity=severity, summary="late", order_id=None, filed_at=FILED_AT
    )
    return complaint


@pytest.mark.parametrize("severity", sorted(DEFAULT_SLA))
def test_filing_sets_deadlines_from_the_severity_policy(severity: str) -> None:
    [event] = filed(severity).pending_events
    assert isinstance(event, contract.ComplaintFiled)
    assert event.acknowledge_by == FILED_AT + DEFAULT_SLA[severity].acknowledge_within
    assert event.resolve_by == FILED_AT + DEFAULT_SLA[severity].resolve_within


def test_the_loop_closes_only_when_the_customer_confirms() -> None:
    complaint = filed()
    complaint.acknowledge("agent-7")
    complaint.resolve("replacement shipped")
    assert complaint.status == "resolved"
    complaint.confirm()
    assert complaint.status == "closed"
    assert [type(e).__name__ for e in complaint.pending_events] == [
        "ComplaintFiled",
        "ComplaintAcknowledged",
        "ComplaintResolved",
        "ComplaintConfirmed",
    ]


def test_a_rejected_resolution_reopens_and_can_be_resolved_again() -> None:
    complaint = filed()
    complaint.resolve("refund")
    complaint.reopen("refund never arrived")
    assert complaint.status == "reopened"
    complaint.resolve("refund re-sent")
    assert complaint.status == "resolved"


def test_confirming_an_unresolved_complaint_is_refused() -> None:
    with pytest.raises(DomainError, match="cannot confirm"):
        filed().confirm()


def test_acknowledging_twice_is_refused() -> None:
    complaint = filed()
    complaint.acknowledge(None)
    with pytest.raises(DomainError, match="cannot acknowledge"):
        complaint.acknowledge(None)


def test_deadlines_follow_the_filing_time_not_the_wall_clock() -> None:
    later = Complaint.file(
        "k-2",
        "c-1",
        category="price",
        severity="low",
        summary="x",
        order_id=None,
        filed_at=FILED_AT + timedelta(days=1),
    )
    [event] = later.pending_events
    assert event.acknowledge_by == FILED_AT + timedelta(days=1) + DEFAULT_SLA["low"].acknowledge_within
