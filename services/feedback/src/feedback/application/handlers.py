"""Command handlers of the feedback service: load → one domain call → save."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from feedback.domain.complaint import Complaint
from shared.api import NotFound
from shared.events.envelope import utc_now
from shared.eventsourcing.aggregate import DomainError
from shared.eventsourcing.repository import AggregateRepository


@dataclass(frozen=True)
class FileComplaint:
    customer_id: str
    category: str
    severity: str
    summary: str
    order_id: str | None = None
    complaint_id: str | None = None


class FeedbackHandlers:
    def __init__(self, complaints: AggregateRepository[Complaint]) -> None:
        self.complaints = complaints

    async def file_complaint(self, cmd: FileComplaint, correlation_id: str) -> Complaint:
        complaint_id = cmd.complaint_id or str(uuid.uuid4())
        if await self.complaints.get(complaint_id) is not None:
            raise DomainError(f"complaint {complaint_id} already exists")
        complaint = Complaint.file(
            complaint_id,
            cmd.customer_id,
            category=cmd.category,
            severity=cmd.severity,
            summary=cmd.summary,
            order_id=cmd.order_id,
            filed_at=utc_now(),
        )
        await self.complaints.save(complaint, correlation_id=correlation_id)
        return complaint

    async def change(
        self,
        complaint_id: str,
        action: Callable[[Complaint], None],
        correlation_id: str,
        expected_version: int | None = None,
    ) -> Complaint:
        """Apply one state transition (acknowledge / resolve / confirm / reopen) to a complaint."""
        complaint = await self.complaints.get(complaint_id)
        if complaint is None:
            raise NotFound("complaint", complaint_id)
        action(complaint)
        await self.complaints.save(complaint, correlation_id=correlation_id, expected_version=expected_version)
        return complaint
