"""What the application needs from storage: the :class:`Complaints` port and its row shapes.

Complaints are event-sourced (the stream is the truth), but two questions cannot be answered by
replaying one stream — "which complaints are past a watched deadline?" (the sweep) and "this
customer's complaints, filtered and paginated" (the API). A small read model, one
:class:`ComplaintSummary` per complaint, answers both. Every implementation writes that row in
the same transaction as the events it follows from, so the row is never behind its stream.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from feedback.domain.complaint import Complaint, ComplaintStatus
from shared.eventsourcing.store import StoredEvent


@dataclass(frozen=True)
class ComplaintSummary:
    """One row of the complaint read model."""

    complaint_id: str
    customer_id: str
    status: ComplaintStatus
    severity: str
    category: str
    order_id: str | None
    filed_at: datetime
    acknowledge_by: datetime
    resolve_by: datetime
    escalations: int
    next_escalation_at: datetime | None
    version: int

    @classmethod
    def of(cls, complaint: Complaint) -> ComplaintSummary:
        assert complaint.status and complaint.filed_at and complaint.acknowledge_by and complaint.resolve_by
        return cls(
            complaint_id=complaint.id,
            customer_id=complaint.customer_id,
            status=complaint.status,
            severity=complaint.severity,
            category=complaint.category,
            order_id=complaint.order_id,
            filed_at=complaint.filed_at,
            acknowledge_by=complaint.acknowledge_by,
            resolve_by=complaint.resolve_by,
            escalations=complaint.escalations,
            next_escalation_at=complaint.next_escalation_at,
            version=complaint.version,
        )


@dataclass(frozen=True)
class Due:
    """A complaint whose next watched deadline has passed (a sweep candidate)."""

    complaint_id: str
    next_escalation_at: datetime

    @property
    def cursor(self) -> tuple[datetime, str]:
        return (self.next_escalation_at, self.complaint_id)


@dataclass(frozen=True)
class ComplaintPage:
    items: list[ComplaintSummary]
    total: int
    limit: int
    offset: int


class Complaints(Protocol):
    """Complaint aggregates plus their read model, kept in step."""

    def connection(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """One connection for a command's load and save (pass it as ``tx``); the save is atomic on its own."""
        ...

    async def get(self, complaint_id: str, *, tx: Any = None) -> Complaint | None: ...

    async def history(self, complaint_id: str) -> list[StoredEvent]: ...

    async def save(
        self,
        complaint: Complaint,
        *,
        correlation_id: str,
        causation_id: str | None = None,
        expected_version: int | None = None,
        tx: Any = None,
    ) -> None:
        """Append the pending events and upsert the read-model row atomically.

        With no pending events it still rewrites the row (at the same version, or ConcurrencyConflict
        if the stream moved), which repairs a row that was written by an older rule."""
        ...

    async def due_for_escalation(
        self, now: datetime, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Due]:
        """Complaints with ``next_escalation_at < now`` (a deadline is met *at* its instant), in (next_escalation_at, complaint_id) order,
        strictly after the cursor ``after`` (keyset pagination)."""
        ...

    async def for_customer(
        self, customer_id: str, *, status: ComplaintStatus | None, limit: int, offset: int
    ) -> ComplaintPage:
        """A customer's complaints, newest filed first, with the total count of the filter."""
        ...
