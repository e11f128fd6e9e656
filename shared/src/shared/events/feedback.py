"""Contract events of complaints and surveys, published by ``feedback`` on ``crm.feedback.v1``.

A complaint is a closed loop (投诉闭环): filed → acknowledged → resolved → confirmed by the customer,
or reopened; SLA deadlines are fixed when it is filed and a sweep escalates breaches. Free text here
(summaries, resolutions, comments) must not contain personal data: producers keep names and contact
details out of it.

Each step's own time is in its payload (``filed_at``, ``acknowledged_at``, ``resolved_at``,
``confirmed_at``, ``reopened_at``; ``answered_at`` for surveys); the envelope's ``occurred_at`` is when
the feedback service recorded the event. The two differ for history entered after the fact (an import,
a late entry), as an order's ``placed_at`` may. ``acknowledged_at``, ``resolved_at``, ``confirmed_at``
and ``reopened_at`` were added later as optional fields: an event without one happened at its
``occurred_at``.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from shared.events import topics
from shared.events.envelope import EventPayload
from shared.events.registry import event
from shared.events.vocabulary import (
    ActorId,
    ComplaintCategory,
    Identifier,
    Instant,
    LongText,
    Reason,
    Severity,
    SlaBreach,
)

TOPIC = topics.FEEDBACK
PRODUCER = "feedback"

#: Description of the optional step times (added to schema_version 1: older events lack them).
_STEP_AT = "when it was {step} (earlier than occurred_at for history entered later); absent: at occurred_at"


@event
class ComplaintFiled(EventPayload):
    """A customer complaint was filed, with the SLA deadlines that follow from its severity."""

    event_type: ClassVar[str] = "ComplaintFiled"
    schema_version: ClassVar[int] = 1

    complaint_id: Identifier = Field(description="id of the complaint")
    customer_id: Identifier = Field(description="the complaining customer (equals the envelope's customer_id)")
    category: ComplaintCategory = Field(description="what the complaint is about")
    severity: Severity = Field(description="how serious it is; sets the SLA")
    order_id: Identifier | None = Field(default=None, description="the order concerned, if any")
    summary: Reason = Field(description="short summary, without personal data")
    filed_at: Instant = Field(description="when it was filed (earlier than occurred_at for history entered later)")
    acknowledge_by: Instant = Field(description="SLA deadline for acknowledging it")
    resolve_by: Instant = Field(description="SLA deadline for resolving it")

    @model_validator(mode="after")
    def _deadlines_in_order(self) -> Self:
        if not self.filed_at <= self.acknowledge_by <= self.resolve_by:
            raise ValueError("deadlines must satisfy filed_at ≤ acknowledge_by ≤ resolve_by")
        return self


@event
class ComplaintAcknowledged(EventPayload):
    """Someone took ownership of the complaint (stops the acknowledgement clock)."""

    event_type: ClassVar[str] = "ComplaintAcknowledged"
    schema_version: ClassVar[int] = 1

    complaint_id: Identifier = Field(description="the complaint")
    acknowledged_by: ActorId | None = Field(default=None, description="operator who acknowledged it")
    acknowledged_at: Instant | None = Field(default=None, description=_STEP_AT.format(step="acknowledged"))


@event
class ComplaintResolved(EventPayload):
    """A resolution was delivered; the loop closes only when the customer confirms it."""

    event_type: ClassVar[str] = "ComplaintResolved"
    schema_version: ClassVar[int] = 1

    complaint_id: Identifier = Field(description="the complaint")
    resolution: LongText = Field(description="what was done, without personal data")
    resolved_at: Instant | None = Field(default=None, description=_STEP_AT.format(step="resolved"))


@event
class ComplaintConfirmed(EventPayload):
    """The customer confirmed the resolution: the complaint is closed."""

    event_type: ClassVar[str] = "ComplaintConfirmed"
    schema_version: ClassVar[int] = 1

    complaint_id: Identifier = Field(description="the complaint")
    confirmed_at: Instant | None = Field(default=None, description=_STEP_AT.format(step="confirmed"))


@event
class ComplaintReopened(EventPayload):
    """The customer rejected the resolution: the complaint is open again."""

    event_type: ClassVar[str] = "ComplaintReopened"
    schema_version: ClassVar[int] = 1

    complaint_id: Identifier = Field(description="the complaint")
    reason: LongText = Field(description="why the resolution was rejected")
    reopened_at: Instant | None = Field(default=None, description=_STEP_AT.format(step="reopened"))


@event
class ComplaintEscalated(EventPayload):
    """An SLA deadline passed without the step it demands; the complaint is escalated."""

    event_type: ClassVar[str] = "ComplaintEscalated"
    schema_version: ClassVar[int] = 1

    complaint_id: Identifier = Field(description="the complaint")
    breach: SlaBreach = Field(description="which deadline was missed")
    deadline: Instant = Field(description="the missed deadline")
    overdue_by_hours: int | None = Field(default=None, ge=0, description="whole hours past the deadline when found")


@event
class SurveyAnswered(EventPayload):
    """A customer answered a satisfaction survey: CSAT (1–5) and/or NPS (0–10), at least one of them."""

    event_type: ClassVar[str] = "SurveyAnswered"
    schema_version: ClassVar[int] = 1

    survey_id: Identifier = Field(description="id of the survey response")
    customer_id: Identifier = Field(description="the answering customer (equals the envelope's customer_id)")
    csat: int | None = Field(default=None, ge=1, le=5, description="customer satisfaction, 1 (worst) to 5")
    nps: int | None = Field(default=None, ge=0, le=10, description="likelihood to recommend, 0 to 10")
    comment: LongText | None = Field(default=None, description="free-text comment, without personal data")
    order_id: Identifier | None = Field(default=None, description="the order the survey was about, if any")
    answered_at: Instant | None = Field(default=None, description="when answered, if it differs from occurred_at")

    @model_validator(mode="after")
    def _some_score(self) -> Self:
        if self.csat is None and self.nps is None:
            raise ValueError("a survey answer needs a csat or an nps score (or both)")
        return self
