"""HTTP API of the feedback service (thin: validate, call a handler, shape the answer).

Commands on a complaint accept ``If-Match: "<version>"`` (409 on a stale version); every answer
carries the aggregate's ``version`` (which the shared app also returns as ``ETag``). Reads: one
complaint, its event stream, and a customer's complaints (from the read model, paginated with the
total). Bodies are in :mod:`feedback.entrypoints.schemas`; see docs/feedback.md.

A refusal caused by one input field (an instant in the future, a step dated before the previous one:
:class:`~feedback.domain.instants.FieldRuleViolation`) is a 422 with a field error in FastAPI's shape
plus a top-level ``code``; a step out of turn (the complaint's status) is a 409.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, status
from fastapi.exceptions import RequestValidationError

from feedback.application.handlers import (
    AcknowledgeComplaint,
    AnswerSurvey,
    ConfirmResolution,
    FeedbackHandlers,
    FileComplaint,
    ReopenComplaint,
    ResolveComplaint,
)
from feedback.application.ports import Complaints
from feedback.domain.complaint import ComplaintStatus
from feedback.entrypoints.schemas import (
    AcknowledgeIn,
    AnswerSurveyIn,
    ComplaintOut,
    ComplaintPageOut,
    ConfirmIn,
    FileComplaintIn,
    ReopenIn,
    ResolveIn,
    SurveyOut,
)
from shared.api import (
    CorrelationId,
    ExpectedVersion,
    Identifier,
    NotFound,
    Offset,
    StoredEventOut,
    create_app,
    database_check,
    kafka_check,
)
from shared.runtime import Container


def _require_a_score(body: AnswerSurveyIn) -> None:
    """'csat and/or nps' as field errors on both fields (a model-level error would have no field)."""
    if body.csat is None and body.nps is None:
        msg = "a survey answer needs a csat or an nps score (or both)"
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body", name), "msg": msg, "input": None} for name in ("csat", "nps")]
        )


# -- routes -----------------------------------------------------------------------------------------


def complaint_routes(handlers: FeedbackHandlers, complaints: Complaints) -> list[APIRouter]:
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
            filed_at=body.filed_at,
            history=tuple(step.taken() for step in body.steps),
        )
        return ComplaintOut.of(await handlers.file_complaint(cmd, cid))

    @router.get("/{complaint_id}", response_model=ComplaintOut, summary="Current state of a complaint")
    async def get_complaint(complaint_id: Identifier) -> ComplaintOut:
        complaint = await complaints.get(complaint_id)
        if complaint is None:
            raise NotFound("complaint", complaint_id)
        return ComplaintOut.of(complaint)

    @router.get("/{complaint_id}/events", response_model=list[StoredEventOut], summary="The complaint's events")
    async def complaint_events(complaint_id: Identifier) -> list[StoredEventOut]:
        history = await complaints.history(complaint_id)
        if not history:
            raise NotFound("complaint", complaint_id)
        return [StoredEventOut.from_stored(e) for e in history]

    @router.post("/{complaint_id}/acknowledgement", response_model=ComplaintOut, summary="Acknowledge (take ownership)")
    async def acknowledge(
        complaint_id: Identifier, cid: CorrelationId, expected: ExpectedVersion, body: AcknowledgeIn | None = None
    ) -> ComplaintOut:
        body = body or AcknowledgeIn()  # every field is optional: no body at all is the same as {}
        cmd = AcknowledgeComplaint(complaint_id, body.acknowledged_by, expected, body.at)
        return ComplaintOut.of(await handlers.acknowledge(cmd, cid))

    @router.post("/{complaint_id}/resolution", response_model=ComplaintOut, summary="Resolve")
    async def resolve(
        complaint_id: Identifier, body: ResolveIn, cid: CorrelationId, expected: ExpectedVersion
    ) -> ComplaintOut:
        cmd = ResolveComplaint(complaint_id, body.resolution, expected, body.at)
        return ComplaintOut.of(await handlers.resolve(cmd, cid))

    @router.post("/{complaint_id}/confirmation", response_model=ComplaintOut, summary="Customer confirms: closed")
    async def confirm(
        complaint_id: Identifier, cid: CorrelationId, expected: ExpectedVersion, body: ConfirmIn | None = None
    ) -> ComplaintOut:
        cmd = ConfirmResolution(complaint_id, expected, body.at if body else None)
        return ComplaintOut.of(await handlers.confirm(cmd, cid))

    @router.post("/{complaint_id}/reopening", response_model=ComplaintOut, summary="Customer rejects: reopened")
    async def reopen(
        complaint_id: Identifier, body: ReopenIn, cid: CorrelationId, expected: ExpectedVersion
    ) -> ComplaintOut:
        cmd = ReopenComplaint(complaint_id, body.reason, expected, body.at)
        return ComplaintOut.of(await handlers.reopen(cmd, cid))

    by_customer = APIRouter(tags=["complaints"])

    @by_customer.get(
        "/customers/{customer_id}/complaints", response_model=ComplaintPageOut, summary="A customer's complaints"
    )
    async def customer_complaints(
        customer_id: Identifier,
        status: Annotated[ComplaintStatus | None, Query(description="only complaints in this status")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Offset = 0,
    ) -> ComplaintPageOut:
        page = await complaints.for_customer(customer_id, status=status, limit=limit, offset=offset)
        return ComplaintPageOut.of(page)

    return [router, by_customer]


def survey_routes(handlers: FeedbackHandlers) -> APIRouter:
    router = APIRouter(prefix="/surveys", tags=["surveys"])

    @router.post("", status_code=status.HTTP_201_CREATED, response_model=SurveyOut, summary="Record a survey answer")
    async def answer_survey(body: AnswerSurveyIn, cid: CorrelationId) -> SurveyOut:
        _require_a_score(body)
        cmd = AnswerSurvey(
            customer_id=body.customer_id,
            csat=body.csat,
            nps=body.nps,
            comment=body.comment,
            order_id=body.order_id,
            survey_id=body.survey_id,
            answered_at=body.answered_at,
        )
        return SurveyOut.of(await handlers.answer_survey(cmd, cid))

    @router.get("/{survey_id}", response_model=SurveyOut, summary="One survey answer")
    async def get_survey(survey_id: Identifier) -> SurveyOut:
        survey = await handlers.surveys.get(survey_id)
        if survey is None:
            raise NotFound("survey", survey_id)
        return SurveyOut.of(survey)

    @router.get("/{survey_id}/events", response_model=list[StoredEventOut], summary="The survey's events")
    async def survey_events(survey_id: Identifier) -> list[StoredEventOut]:
        history = await handlers.surveys.history(survey_id)
        if not history:
            raise NotFound("survey", survey_id)
        return [StoredEventOut.from_stored(e) for e in history]

    return router


def build_api(container: Container) -> FastAPI:
    handlers: FeedbackHandlers = container.parts["handlers"]
    complaints: Complaints = container.parts["complaints"]
    app = create_app(
        service="feedback",
        title="Tierstream feedback",
        description="Complaints handled as a closed loop with SLA escalation, and satisfaction surveys.",
        routers=[*complaint_routes(handlers, complaints), survey_routes(handlers)],
        settings=container.settings,
        ready_checks={
            "database": database_check(container.engine),
        },
        advisory_checks={"kafka": kafka_check(container.settings.kafka_bootstrap_servers)},
    )
    return app
