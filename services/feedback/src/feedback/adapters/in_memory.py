"""In-memory fake of :class:`feedback.application.ports.Complaints`, over the in-memory event store.

Same contract as :class:`feedback.adapters.postgres.PostgresComplaints` (one test class runs against
both, tests/contract/test_feedback_complaints.py). The fake event store refuses transaction hooks, so
the row is updated right after the append; nothing can interleave between the two because neither
awaits real I/O.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from feedback.application.ports import ComplaintPage, ComplaintSummary, Due
from feedback.domain.complaint import Complaint, ComplaintStatus
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import ConcurrencyConflict, InMemoryEventStore, StoredEvent


class InMemoryComplaints:
    def __init__(self, repository: AggregateRepository[Complaint]) -> None:
        if not isinstance(repository.store, InMemoryEventStore):
            raise TypeError("InMemoryComplaints needs a repository over an InMemoryEventStore")
        self.repository = repository
        self.store: InMemoryEventStore = repository.store
        self.rows: dict[str, ComplaintSummary] = {}

    def connection(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return contextlib.nullcontext()

    async def get(self, complaint_id: str, *, tx: Any = None) -> Complaint | None:
        return await self.repository.get(complaint_id)

    async def history(self, complaint_id: str) -> list[StoredEvent]:
        return await self.repository.history(complaint_id)

    async def save(
        self,
        complaint: Complaint,
        *,
        correlation_id: str,
        causation_id: str | None = None,
        expected_version: int | None = None,
        tx: Any = None,
    ) -> None:
        summary = ComplaintSummary.of(complaint)
        if complaint.pending_events:
            await self.repository.save(
                complaint, correlation_id=correlation_id, causation_id=causation_id, expected_version=expected_version
            )
        else:
            # same checks as an append of nothing: the caller's version, then the stream's
            if expected_version is not None and expected_version != complaint.stored_version:
                raise ConcurrencyConflict(complaint.stream_id, expected_version, complaint.stored_version)
            current = await self.store.stream_version(complaint.stream_id)
            if current != complaint.stored_version:
                raise ConcurrencyConflict(complaint.stream_id, complaint.stored_version, current)
        existing = self.rows.get(summary.complaint_id)
        if existing is None or existing.version <= summary.version:
            self.rows[summary.complaint_id] = summary

    async def due_for_escalation(
        self, now: datetime, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Due]:
        due = [
            Due(r.complaint_id, r.next_escalation_at)
            for r in self.rows.values()
            if r.next_escalation_at is not None and r.next_escalation_at < now
        ]
        due.sort(key=lambda d: d.cursor)
        return [d for d in due if after is None or d.cursor > after][:limit]

    async def for_customer(
        self, customer_id: str, *, status: ComplaintStatus | None, limit: int, offset: int
    ) -> ComplaintPage:
        matching = [
            r for r in self.rows.values() if r.customer_id == customer_id and (status is None or r.status == status)
        ]
        matching.sort(key=lambda r: r.complaint_id)
        matching.sort(key=lambda r: r.filed_at, reverse=True)
        return ComplaintPage(items=matching[offset : offset + limit], total=len(matching), limit=limit, offset=offset)
