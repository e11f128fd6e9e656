"""Survey aggregate: one answer, CSAT 1–5 and/or NPS 0–10."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from feedback.domain.survey import NpsGroup, Survey
from shared.events import feedback as contract
from shared.eventsourcing.aggregate import DomainError

pytestmark = pytest.mark.unit

AT = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def answer(csat: int | None = None, nps: int | None = None) -> Survey:
    return Survey.answer("s-1", "c-1", csat=csat, nps=nps, comment=None, order_id="o-1", answered_at=AT)


def test_an_answer_records_survey_answered() -> None:
    survey = answer(csat=4, nps=9)
    assert survey.pending_events == [
        contract.SurveyAnswered(survey_id="s-1", customer_id="c-1", csat=4, nps=9, order_id="o-1", answered_at=AT)
    ]
    assert (survey.customer_id, survey.version) == ("c-1", 1)


@pytest.mark.parametrize(("csat", "nps"), [(3, None), (None, 0)])
def test_one_score_is_enough(csat: int | None, nps: int | None) -> None:
    assert answer(csat, nps).version == 1


def test_an_answer_without_any_score_is_refused() -> None:
    with pytest.raises(DomainError, match="csat or an nps"):
        answer()


@pytest.mark.parametrize(("csat", "nps"), [(0, None), (6, None), (None, -1), (None, 11)])
def test_scores_out_of_range_are_refused_by_the_contract(csat: int | None, nps: int | None) -> None:
    with pytest.raises(ValidationError):
        answer(csat, nps)


@pytest.mark.parametrize(
    ("nps", "group"),
    [
        (0, NpsGroup.DETRACTOR),
        (6, NpsGroup.DETRACTOR),
        (7, NpsGroup.PASSIVE),
        (8, NpsGroup.PASSIVE),
        (9, NpsGroup.PROMOTER),
        (10, NpsGroup.PROMOTER),
    ],
)
def test_nps_answers_are_grouped_the_usual_way(nps: int, group: NpsGroup) -> None:
    assert answer(nps=nps).nps_group is group


def test_replaying_the_answer_restores_it() -> None:
    [event] = answer(csat=2, nps=3).pending_events
    survey = Survey.replay("s-1", [event])
    assert (survey.csat, survey.nps, survey.order_id, survey.answered_at) == (2, 3, "o-1", AT)
