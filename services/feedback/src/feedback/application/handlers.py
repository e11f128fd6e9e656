"""Command handlers of the feedback service: load → one domain call → save. Nothing else.

The SLA policy and the clock are injected (from settings and the composition root), so a handler
never holds a deadline rule of its own and tests can fix "now". Commands may carry the instant they
happened (``filed_at``, ``at``, ``answered_at``; history entered after the fact); absent, it is "now".
The rules for such instants are the domain's (:mod:`feedback.domain.instants`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from feedback.application.ports import Complaints
from feedback.domain.complaint import Complaint, StepTaken
from feedback.domain.instants import dated
from feedback.domain.sla import SlaPolicy
from feedback.domain.survey import Survey
from shared.api import NotFound
from shared.events.envelope import utc_now
from shared.eventsourcing.aggregate import DomainError
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import ConcurrencyConflict

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class FileComplaint:
    customer_id: str
    category: str
    severity: str
    summary: str
    order_id: str | None = None
    complaint_id: str | None = None
    filed_at: datetime | None = None  # None: now
    history: tuple[StepTaken, ...] = ()  # steps already taken (an import), recorded with the filing


@dataclass(frozen=True)
class AcknowledgeComplaint:
    complaint_id: str
    acknowledged_by: str | None = None
    expected_version: int | None = None
    at: datetime | None = None  # when it happened; None: now


@dataclass(frozen=True)
class ResolveComplaint:
    complaint_id: str
    resolution: str
    expected_version: int | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class ConfirmResolution:
    complaint_id: str
    expected_version: int | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class ReopenComplaint:
    complaint_id: str
    reason: str
    expected_version: int | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class AnswerSurvey:
    customer_id: str
    csat: int | None = None
    nps: int | None = None
    comment: str | None = None
    order_id: str | None = None
    survey_id: str | None = None
    answered_at: datetime | None = None


class FeedbackHandlers:
    def __init__(
        self,
        complaints: Complaints,
        surveys: AggregateRepository[Survey],
        *,
        sla_policy: SlaPolicy,
        clock: Clock = utc_now,
    ) -> None:
        self.complaints = complaints
        self.surveys = surveys
        self.sla_policy = sla_policy
        self.clock = clock

    # -- complaints -------------------------------------------------------------------------------
    async def file_complaint(self, cmd: FileComplaint, correlation_id: str) -> Complaint:
        complaint_id = cmd.complaint_id or str(uuid.uuid4())
        now = self.clock()
        complaint = Complaint.file(
            complaint_id,
            cmd.customer_id,
            category=cmd.category,
            severity=cmd.severity,
            summary=cmd.summary,
            order_id=cmd.order_id,
            filed_at=dated(cmd.filed_at, now, field="filed_at"),
            policy=self.sla_policy,
        )
        complaint.take_history(cmd.history, now=now, policy=self.sla_policy)
        # No read first: the first event of a taken id collides with the stream's (one round trip).
        try:
            await self.complaints.save(complaint, correlation_id=correlation_id)
        except ConcurrencyConflict as exc:
            raise DomainError(f"complaint {complaint_id} already exists") from exc
        return complaint

    async def acknowledge(self, cmd: AcknowledgeComplaint, correlation_id: str) -> Complaint:
        return await self._change(
            cmd.complaint_id,
            correlation_id,
            cmd.expected_version,
            cmd.at,
            lambda c, at: c.acknowledge(cmd.acknowledged_by, at=at),
        )

    async def resolve(self, cmd: ResolveComplaint, correlation_id: str) -> Complaint:
        return await self._change(
            cmd.complaint_id,
            correlation_id,
            cmd.expected_version,
            cmd.at,
            lambda c, at: c.resolve(cmd.resolution, at=at),
        )

    async def confirm(self, cmd: ConfirmResolution, correlation_id: str) -> Complaint:
        return await self._change(
            cmd.complaint_id, correlation_id, cmd.expected_version, cmd.at, lambda c, at: c.confirm(at=at)
        )

    async def reopen(self, cmd: ReopenComplaint, correlation_id: str) -> Complaint:
        return await self._change(
            cmd.complaint_id,
            correlation_id,
            cmd.expected_version,
            cmd.at,
            lambda c, at: c.reopen(cmd.reason, at=at, policy=self.sla_policy),
        )

    async def _change(
        self,
        complaint_id: str,
        correlation_id: str,
        expected_version: int | None,
        at: datetime | None,
        change: Callable[[Complaint, datetime], None],
    ) -> Complaint:
        """Load, one domain call at the step's time, save (events + read-model row in one statement), on one
        connection."""
        async with self.complaints.connection() as tx:
            complaint = await self.complaints.get(complaint_id, tx=tx)
            if complaint is None:
                raise NotFound("complaint", complaint_id)
            change(complaint, complaint.step_time(at, self.clock()))
            await self.complaints.save(
                complaint, correlation_id=correlation_id, expected_version=expected_version, tx=tx
            )
        return complaint

    # -- surveys ----------------------------------------------------------------------------------
    async def answer_survey(self, cmd: AnswerSurvey, correlation_id: str) -> Survey:
        survey_id = cmd.survey_id or str(uuid.uuid4())
        survey = Survey.answer(
            survey_id,
            cmd.customer_id,
            csat=cmd.csat,
            nps=cmd.nps,
            comment=cmd.comment,
            order_id=cmd.order_id,
            answered_at=dated(cmd.answered_at, self.clock(), field="answered_at"),
        )
        try:
            await self.surveys.save(survey, correlation_id=correlation_id)
        except ConcurrencyConflict as exc:
            raise DomainError(f"survey {survey_id} already exists") from exc
        return survey
