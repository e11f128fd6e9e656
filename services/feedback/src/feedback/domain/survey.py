"""The Survey aggregate: one customer's answer to a satisfaction survey (CSAT 1–5 and/or NPS 0–10).

A survey response is a one-event aggregate (``SurveyAnswered``): answering is the whole life of it.
It is still an aggregate so that its id is unique (a second answer with the same id is refused) and
its stream is readable like any other.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from feedback.domain.events import STORED_EVENTS
from shared.events import feedback as contract
from shared.eventsourcing.aggregate import Aggregate, DomainError


class NpsGroup(StrEnum):
    """The usual NPS grouping: 0–6 detractor, 7–8 passive, 9–10 promoter."""

    DETRACTOR = "detractor"
    PASSIVE = "passive"
    PROMOTER = "promoter"

    @classmethod
    def of(cls, nps: int) -> NpsGroup:
        if nps <= 6:
            return cls.DETRACTOR
        return cls.PASSIVE if nps <= 8 else cls.PROMOTER


class Survey(Aggregate):
    aggregate_type = "survey"
    event_registry = STORED_EVENTS

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self._customer_id = ""
        self.csat: int | None = None
        self.nps: int | None = None
        self.comment: str | None = None
        self.order_id: str | None = None
        self.answered_at: datetime | None = None

    @property
    def customer_id(self) -> str:
        return self._customer_id

    @property
    def nps_group(self) -> NpsGroup | None:
        return None if self.nps is None else NpsGroup.of(self.nps)

    @classmethod
    def answer(
        cls,
        survey_id: str,
        customer_id: str,
        *,
        csat: int | None,
        nps: int | None,
        comment: str | None,
        order_id: str | None,
        answered_at: datetime,
    ) -> Survey:
        if csat is None and nps is None:
            raise DomainError("a survey answer needs a csat or an nps score (or both)")
        survey = cls(survey_id)
        survey._record(
            contract.SurveyAnswered(
                survey_id=survey_id,
                customer_id=customer_id,
                csat=csat,
                nps=nps,
                comment=comment,
                order_id=order_id,
                answered_at=answered_at,
            )
        )
        return survey

    def _apply(self, event: BaseModel) -> None:
        match event:
            case contract.SurveyAnswered():
                self._customer_id = event.customer_id
                self.csat = event.csat
                self.nps = event.nps
                self.comment = event.comment
                self.order_id = event.order_id
                self.answered_at = event.answered_at
            case _:
                raise TypeError(f"a survey cannot apply {type(event).__name__}")
