"""HTTP API of the feedback service."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, FastAPI, status
from pydantic import BaseModel, Field

from feedback.application.handlers import FeedbackHandlers, FileComplaint
from feedback.domain.complaint import Complaint
from shared.api import (
    CorrelationId,
    ExpectedVersion,
    Identifier,
    NotFound,
    StoredEventOut,
    create_app,
    database_check,
    kafka_check,
)
from shared.events.vocabulary import ComplaintCategory, Severity
from shared.runtime import Container


class FileComplaintIn(BaseModel):
    customer_id: Identifier
    category: ComplaintCategory
    severity: Severity
    summary: str = Field(min_length=1, max_length=500, description="what went wrong (no personal data)")
    order_id: Identifier | None = None
    complaint_id: Identifier | None = None


class AcknowledgeIn(BaseModel):
    acknowledged_by: str | None = Field(default=None, max_length=100)


class ResolveIn(BaseModel):
    resolution: str = Field(min_length=1, max_length=2000)


class ReopenIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class ComplaintOut(BaseModel):
    complaint_id: str
    customer_id: str
    category: str
    severity: str
    status: str
    filed_at: datetime | None
    version: int

    @classmethod
    def of(cls, c: Complaint) -> ComplaintOut:
        return cls(
            complaint_id=c.id,
            customer_id=c.customer_id,
            category=c.category,
            severity=c.severity,
            status=c.status,
            filed_at=c.filed_at,
            version=c.version,
        )


def build_api(container: Container) -> FastAPI:
    handlers: FeedbackHandlers = container.parts["handlers"]
    router = APIRouter(prefix="/complaints", tags=["complaints"])

    @router.post("", status_code=status.HTTP_201_CREATED, response_model=ComplaintOut, summary="File a complaint")
    async def file_complaint(body: FileComplaintIn, cid: CorrelationId) -> ComplaintOut:
        cmd = FileComplaint(
            customer_id=body.customer_id,
            category=body.category.value,
            severity=body.severity.value,
            summary=body.summary,
            order_id=body.order_id,
            complaint_id=body.complaint_id,
        )
        return ComplaintOut.of(await handlers.file_complaint(cmd, cid))

    @router.get("/{complaint_id}", response_model=ComplaintOut, summary="Current state of a complaint")
    async def get_complaint(complaint_id: str) -> ComplaintOut:
        complaint = await handlers.complaints.get(complaint_id)
        if complaint is None:
            raise NotFound("complaint", complaint_id)
        return ComplaintOut.of(complaint)

    @router.get("/{complaint_id}/events", response_model=list[StoredEventOut], summary="The complaint's events")
    async def complaint_events(complaint_id: str) -> list[StoredEventOut]:
        history = await handlers.complaints.history(complaint_id)
        if not history:
            raise NotFound("complaint", complaint_id)
        return [StoredEventOut.from_stored(e) for e in history]

    @router.post("/{complaint_id}/acknowledgement", response_model=ComplaintOut, summary="Acknowledge")
    async def acknowledge(
        complaint_id: str, body: AcknowledgeIn, cid: CorrelationId, expected: ExpectedVersion
    ) -> ComplaintOut:
        return ComplaintOut.of(
            await handlers.change(complaint_id, lambda c: c.acknowledge(body.acknowledged_by), cid, expected)
        )

    @router.post("/{complaint_id}/resolution", response_model=ComplaintOut, summary="Resolve")
    async def resolve(
        complaint_id: str, body: ResolveIn, cid: CorrelationId, expected: ExpectedVersion
    ) -> ComplaintOut:
        return ComplaintOut.of(await handlers.change(complaint_id, lambda c: c.resolve(body.resolution), cid, expected))

    @router.post("/{complaint_id}/confirmation", response_model=ComplaintOut, summary="Customer confirms")
    async def confirm(complaint_id: str, cid: CorrelationId, expected: ExpectedVersion) -> ComplaintOut:
        return ComplaintOut.of(await handlers.change(complaint_id, lambda c: c.confirm(), cid, expected))

    @router.post("/{complaint_id}/reopening", response_model=ComplaintOut, summary="Customer reopens")
    async def reopen(complaint_id: str, body: ReopenIn, cid: CorrelationId, expected: ExpectedVersion) -> ComplaintOut:
        return ComplaintOut.of(await handlers.change(complaint_id, lambda c: c.reopen(body.reason), cid, expected))

    return create_app(
        service="feedback",
        title="Tierstream feedback",
        description="Complaints handled as a closed loop, and satisfaction surveys.",
        routers=[router],
        ready_checks={
            "database": database_check(container.engine),
            "kafka": kafka_check(container.settings.kafka_bootstrap_servers),
        },
    )
