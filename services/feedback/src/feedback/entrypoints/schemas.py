"""Request and response bodies of the feedback HTTP API (validation here → 422 with field errors)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from feedback.application.ports import ComplaintPage, ComplaintSummary
from feedback.domain.complaint import Complaint, ComplaintStatus, Step, StepTaken
from feedback.domain.instants import CLOCK_SKEW
from feedback.domain.survey import NpsGroup, Survey
from shared.api import Identifier, NotBlank, RequestBody
from shared.clock import GivenInstant
from shared.events.vocabulary import ActorId, ComplaintCategory, LongText, Reason, Severity

Text = Annotated[LongText, NotBlank]
Operator = Annotated[ActorId, NotBlank]
#: A score: a JSON integer (not ``true``, ``"3"`` or ``3.0``).
Score = Annotated[int, Field(strict=True)]

# -- request bodies ---------------------------------------------------------------------------------


NOT_IN_THE_FUTURE = f"not in the future ({CLOCK_SKEW.total_seconds() / 60:g} minutes of clock skew tolerated)"
STEP_AT = (
    f"when the step happened (history entered after the fact): {NOT_IN_THE_FUTURE}, not before the "
    "complaint's previous step; default now"
)


class AcknowledgementTaken(RequestBody):
    step: Literal["acknowledgement"]
    at: GivenInstant
    acknowledged_by: Operator | None = Field(default=None, description="operator id (not a person's name)")

    def taken(self) -> StepTaken:
        return StepTaken(Step.ACKNOWLEDGEMENT, self.at, self.acknowledged_by)


class ResolutionTaken(RequestBody):
    step: Literal["resolution"]
    at: GivenInstant
    resolution: Text = Field(description="what was done (no personal data)")

    def taken(self) -> StepTaken:
        return StepTaken(Step.RESOLUTION, self.at, self.resolution)


class ReopeningTaken(RequestBody):
    step: Literal["reopening"]
    at: GivenInstant
    reason: Text = Field(description="why the customer rejected the resolution")

    def taken(self) -> StepTaken:
        return StepTaken(Step.REOPENING, self.at, self.reason)


class ConfirmationTaken(RequestBody):
    step: Literal["confirmation"]
    at: GivenInstant

    def taken(self) -> StepTaken:
        return StepTaken(Step.CONFIRMATION, self.at)


#: One step of a complaint's history, as the body of its own command plus ``step`` and a required ``at``.
StepTakenIn = Annotated[
    AcknowledgementTaken | ResolutionTaken | ReopeningTaken | ConfirmationTaken, Field(discriminator="step")
]


class FileComplaintIn(RequestBody):
    customer_id: Identifier
    category: ComplaintCategory
    severity: Severity
    summary: Annotated[Reason, NotBlank] = Field(description="what went wrong (no personal data)")
    order_id: Identifier | None = None
    complaint_id: Identifier | None = Field(default=None, description="caller-chosen id; generated if absent")
    filed_at: GivenInstant | None = Field(
        default=None,
        description="when it was filed (history entered after the fact; the SLA deadlines run from it): "
        f"{NOT_IN_THE_FUTURE}; default now",
    )
    steps: list[StepTakenIn] = Field(
        default_factory=list,
        max_length=50,
        description="steps of the loop it has already taken, in order, each dated (an import of its history): "
        "taken under the same rules as the commands and recorded with the filing in one append",
    )


class AcknowledgeIn(RequestBody):
    acknowledged_by: Operator | None = Field(default=None, description="operator id (not a person's name)")
    at: GivenInstant | None = Field(default=None, description=STEP_AT)


class ResolveIn(RequestBody):
    resolution: Text = Field(description="what was done (no personal data)")
    at: GivenInstant | None = Field(default=None, description=STEP_AT)


class ConfirmIn(RequestBody):
    at: GivenInstant | None = Field(default=None, description=STEP_AT)


class ReopenIn(RequestBody):
    reason: Text = Field(description="why the customer rejected the resolution")
    at: GivenInstant | None = Field(default=None, description=STEP_AT)


class AnswerSurveyIn(RequestBody):
    """A survey answer: ``csat`` (1–5) and/or ``nps`` (0–10) — at least one of them."""

    customer_id: Identifier
    csat: Score | None = Field(default=None, ge=1, le=5, description="customer satisfaction, 1 (worst) to 5")
    nps: Score | None = Field(default=None, ge=0, le=10, description="likelihood to recommend, 0 to 10")
    comment: Text | None = Field(default=None, description="free text (no personal data)")
    order_id: Identifier | None = None
    survey_id: Identifier | None = Field(default=None, description="caller-chosen id; generated if absent")
    answered_at: GivenInstant | None = Field(
        default=None, description=f"when it was answered: {NOT_IN_THE_FUTURE}; default now"
    )


# -- responses --------------------------------------------------------------------------------------


class ComplaintOut(BaseModel):
    complaint_id: str
    customer_id: str
    category: str
    severity: str
    summary: str
    order_id: str | None
    status: ComplaintStatus
    filed_at: datetime | None
    acknowledge_by: datetime | None
    resolve_by: datetime | None
    acknowledged_by: str | None
    resolution: str | None
    reopen_count: int
    escalations: int
    next_escalation_at: datetime | None = Field(description="earliest deadline still watched by the SLA sweep")
    acknowledged_at: datetime | None = Field(default=None, description="when it was acknowledged")
    resolved_at: datetime | None = Field(default=None, description="when it was last resolved")
    reopened_at: datetime | None = Field(default=None, description="when it was last reopened")
    confirmed_at: datetime | None = Field(default=None, description="when the customer confirmed the resolution")
    version: int

    @classmethod
    def of(cls, c: Complaint) -> ComplaintOut:
        return cls(
            complaint_id=c.id,
            customer_id=c.customer_id,
            category=c.category,
            severity=c.severity,
            summary=c.summary,
            order_id=c.order_id,
            status=c.status or ComplaintStatus.OPEN,
            filed_at=c.filed_at,
            acknowledge_by=c.acknowledge_by,
            resolve_by=c.resolve_by,
            acknowledged_by=c.acknowledged_by,
            resolution=c.resolution,
            reopen_count=c.reopen_count,
            escalations=c.escalations,
            next_escalation_at=c.next_escalation_at,
            acknowledged_at=c.acknowledged_at,
            resolved_at=c.resolved_at,
            reopened_at=c.reopened_at,
            confirmed_at=c.confirmed_at,
            version=c.version,
        )


class ComplaintSummaryOut(BaseModel):
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
    def of(cls, s: ComplaintSummary) -> ComplaintSummaryOut:
        return cls.model_validate(s, from_attributes=True)


class ComplaintPageOut(BaseModel):
    items: list[ComplaintSummaryOut]
    total: int = Field(description="complaints matching the filter, over all pages")
    limit: int
    offset: int

    @classmethod
    def of(cls, page: ComplaintPage) -> ComplaintPageOut:
        items = [ComplaintSummaryOut.of(s) for s in page.items]
        return cls(items=items, total=page.total, limit=page.limit, offset=page.offset)


class SurveyOut(BaseModel):
    survey_id: str
    customer_id: str
    csat: int | None
    nps: int | None
    nps_group: NpsGroup | None = Field(description="0–6 detractor, 7–8 passive, 9–10 promoter")
    comment: str | None
    order_id: str | None
    answered_at: datetime | None
    version: int

    @classmethod
    def of(cls, s: Survey) -> SurveyOut:
        return cls(
            survey_id=s.id,
            customer_id=s.customer_id,
            csat=s.csat,
            nps=s.nps,
            nps_group=s.nps_group,
            comment=s.comment,
            order_id=s.order_id,
            answered_at=s.answered_at,
            version=s.version,
        )
