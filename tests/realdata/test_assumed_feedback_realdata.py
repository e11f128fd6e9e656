"""The feedback assumption on the whole Online Retail history: how much feedback it makes, and how many
customers segmentation's churn rules then put in the high band (where an alert is raised).

The scores are computed with segmentation's own pure rules (facts → measures → signals → score) as of
the demo's clock, with every event dated on the data's timeline as ``tierstream load`` now sends them
(complaints with their filing and step dates, surveys with their answer dates). Without feedback the
highest score is 45 — no alert.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from segmentation.domain import churn
from segmentation.domain.facts import CustomerFacts
from segmentation.domain.grading import signals
from segmentation.domain.measures import measure
from segmentation.domain.policy import Policy
from shared.events.envelope import Envelope
from tierstream.assumed_feedback import FeedbackPlan, feedback_for
from tierstream.dataset import LoadPlan, contract_events, plan, read_rows

pytestmark = pytest.mark.realdata

#: tests/conftest.py's DATA_FILE: ../shared/data/online_retail.csv.gz next to the repository.
DATA_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "online_retail.csv.gz"


@pytest.fixture(scope="module")
def load_plan() -> LoadPlan:
    if not DATA_FILE.exists():
        pytest.skip(f"real data not available: {DATA_FILE} is absent (see ../shared/data/README.md)")
    return plan(read_rows(DATA_FILE))


@pytest.fixture(scope="module")
def assumed(load_plan: LoadPlan) -> FeedbackPlan:
    return feedback_for(load_plan)


def assessments(events: list[Envelope], assumed: FeedbackPlan) -> list[churn.ChurnAssessment]:
    facts: dict[str, CustomerFacts] = {}
    for e in events:
        facts.setdefault(e.customer_id, CustomerFacts.new(e.customer_id)).apply(e)
    policy = Policy()
    return [churn.score(signals(measure(f, assumed.as_of, policy), policy), policy.churn) for f in facts.values()]


def test_the_whole_history_gets_complaints_in_every_state_and_surveys(
    load_plan: LoadPlan, assumed: FeedbackPlan
) -> None:
    states = Counter(str(c.status) for c in assumed.complaints)

    assert 600 <= len(assumed.complaints) <= 1500, states
    assert min(states[s] for s in ("open", "acknowledged", "resolved", "reopened", "closed")) >= 20, states
    assert states["closed"] > len(assumed.complaints) / 2
    assert 0.08 * len(load_plan.orders) <= len(assumed.surveys) <= 0.14 * len(load_plan.orders)
    assert 0.1 <= sum(s.detractor for s in assumed.surveys) / len(assumed.surveys) <= 0.35


def test_a_realistic_minority_of_customers_reaches_the_high_churn_band(
    load_plan: LoadPlan, assumed: FeedbackPlan
) -> None:
    events = list(contract_events(load_plan, feedback=assumed))
    with_feedback = [e for _, e in events]
    without = [e for kind, e in events if kind != "feedback"]
    high = Policy().churn.bands.high

    assert max(a.score for a in assessments(without, assumed)) < high
    alerted = [a for a in assessments(with_feedback, assumed) if a.score >= high]
    assert 30 <= len(alerted) <= 250, len(alerted)
    by_complaints = [a for a in alerted if any(r.code.startswith("complaint") for r in a.reasons)]
    assert 0 < len(by_complaints) < len(alerted), (len(by_complaints), len(alerted))
