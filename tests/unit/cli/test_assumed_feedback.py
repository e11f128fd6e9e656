"""The feedback assumption (src/tierstream/assumed_feedback.py): complaints derived from cancellations,
surveys after a sample of orders — deterministic, plausible in its proportions, and every command one
that the feedback API accepts and takes to the planned state."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from feedback.application.sweep import EscalationSweep
from feedback.bootstrap import wire_in_memory
from feedback.config import FeedbackSettings
from feedback.entrypoints.api import build_api
from segmentation.domain.facts import CustomerFacts
from segmentation.domain.measures import measure
from segmentation.domain.policy import Policy
from shared.db.engine import create_engine
from shared.events import feedback as contract
from shared.events.envelope import Envelope
from shared.events.registry import parse_envelope
from shared.events.topics import Topics
from shared.eventsourcing.store import InMemoryEventStore
from shared.runtime import Container
from shared.testing.online_retail import invoice_row
from tierstream.assumed_feedback import FEES, SWEEP_TICK, FeedbackPlan, Step, feedback_for
from tierstream.dataset import LoadPlan, contract_events, plan
from tierstream.loader import LoadReport, load_feedback

pytestmark = pytest.mark.unit

START = datetime(2010, 12, 1, 9, 0)
DAYS = 373  # the data set's span: 2010-12-01 .. 2011-12-09
CHARGE_MIX = ((), (), (), (), (), (), ("POST",), ("D",), ("M",), ("CRUK",))
#: each step of the loop → the complaint's field that tells when it last happened
STEP_TIMES = {
    Step.ACKNOWLEDGE: "acknowledged_at",
    Step.RESOLVE: "resolved_at",
    Step.REOPEN: "reopened_at",
    Step.CONFIRM: "confirmed_at",
}


def history(customers: int = 400, seed: int = 7) -> list[dict[str, str]]:
    """Online Retail-shaped rows: steady customers, customers who stop buying three months before the end
    (their spend is falling), and cancellations of every size and kind (goods, postage, discounts, manual
    adjustments, charity commission)."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    invoice = 536_000
    for n in range(customers):
        customer = str(12_000 + n)
        fades = n % 3 == 0
        days = sorted(
            rng.sample(range(DAYS - 200, DAYS - 95), 6) if fades else rng.sample(range(DAYS), rng.randint(2, 12))
        )
        for day in days:
            invoice += 1
            when = START + timedelta(days=day, minutes=rng.randint(0, 480))
            quantity, price = rng.randint(1, 60), rng.choice(("0.85", "2.55", "12.75", "165.00"))
            rows.append(invoice_row(str(invoice), customer, when, quantity, price))
            if rng.random() < 0.35:
                charges = rng.choice(CHARGE_MIX)
                code = charges[0] if charges else "22423"
                cancelled = when + timedelta(days=rng.randint(1, 20))
                rows.append(
                    invoice_row(f"C{invoice}", customer, cancelled, -rng.randint(1, quantity), price, code=code)
                )
    return rows


@pytest.fixture(scope="module")
def load_plan() -> LoadPlan:
    return plan(history())


@pytest.fixture(scope="module")
def assumed(load_plan: LoadPlan) -> FeedbackPlan:
    return feedback_for(load_plan)


# -- the derivation ------------------------------------------------------------------------------------


def test_the_same_plan_and_seed_give_the_same_feedback_and_another_seed_another(load_plan: LoadPlan) -> None:
    first, again, other = feedback_for(load_plan), feedback_for(plan(history())), feedback_for(load_plan, seed=8)

    assert (first.complaints, first.surveys) == (again.complaints, again.surveys)
    assert first.complaints and first.surveys
    assert (first.complaints, first.surveys) != (other.complaints, other.surveys)


def test_a_customer_gets_the_same_feedback_in_a_sample_as_in_the_full_run_up_to_the_same_day(
    load_plan: LoadPlan,
) -> None:
    sample = plan(history(), max_customers=60)
    full = feedback_for(load_plan)
    part = feedback_for(sample, as_of=full.as_of)
    in_sample = {c.customer_id for c in sample.customers}

    assert part.complaints == [c for c in full.complaints if c.customer_id in in_sample]
    assert part.surveys == [s for s in full.surveys if s.customer_id in in_sample]


def test_complaints_come_from_cancellations_that_are_grievances_filed_when_invoiced(
    load_plan: LoadPlan, assumed: FeedbackPlan
) -> None:
    cancellations = {f"CMP-{c.invoice}": c for c in load_plan.cancellations}

    for complaint in assumed.complaints:
        source = cancellations[complaint.complaint_id]
        assert not (source.charges <= FEES and not source.products)
        assert complaint.filed_at == source.at.astimezone(UTC)
        assert complaint.order_id == source.order_ids[0]
        assert complaint.customer_id == source.customer_id
    assert any(c.charges == {"CRUK"} for c in load_plan.cancellations)


def test_severity_follows_the_value_and_bigger_cancellations_complain_more_often(
    load_plan: LoadPlan, assumed: FeedbackPlan
) -> None:
    value = {f"CMP-{c.invoice}": c.amount for c in load_plan.cancellations}
    bands = {"low": (0, 50), "medium": (50, 500), "high": (500, 5000), "critical": (5000, 10**9)}
    for complaint in assumed.complaints:
        low, high = bands[complaint.severity]
        assert low <= value[complaint.complaint_id] < high

    filed = {c.complaint_id for c in assumed.complaints}
    small = [i for i, v in value.items() if v < 20]
    large = [i for i, v in value.items() if v >= 100]
    share = {name: sum(i in filed for i in ids) / len(ids) for name, ids in (("small", small), ("large", large))}
    assert len(small) > 50 and len(large) > 50
    assert share["small"] < 0.3 < share["large"]


def test_the_category_follows_what_was_cancelled(load_plan: LoadPlan, assumed: FeedbackPlan) -> None:
    source = {f"CMP-{c.invoice}": c for c in load_plan.cancellations}
    seen: Counter[tuple[str, str]] = Counter()
    for complaint in assumed.complaints:
        charges = source[complaint.complaint_id].charges
        kind = "D" if "D" in charges else "POST" if "POST" in charges else "M" if "M" in charges else "goods"
        seen[kind, complaint.category] += 1

    assert {cat for kind, cat in seen if kind == "D"} == {"price"}
    assert {cat for kind, cat in seen if kind == "POST"} == {"delivery"}
    assert {cat for kind, cat in seen if kind == "M"} == {"other"}
    assert {cat for kind, cat in seen if kind == "goods"} >= {"product_quality", "delivery"}


def test_every_state_of_the_loop_appears_and_old_complaints_are_mostly_closed(assumed: FeedbackPlan) -> None:
    states = Counter(str(c.status) for c in assumed.complaints)
    old = [c for c in assumed.complaints if c.filed_at < assumed.as_of - timedelta(days=60)]

    assert set(states) == {"open", "acknowledged", "resolved", "reopened", "closed"}
    assert sum(str(c.status) == "closed" for c in old) / len(old) > 0.6
    assert all(step.at <= assumed.as_of for c in assumed.complaints for step in c.steps)
    assert all(c.filed_at <= s.at for c in assumed.complaints for s in c.steps)


def test_loops_stall_more_often_for_customers_who_never_came_back(load_plan: LoadPlan, assumed: FeedbackPlan) -> None:
    orders: dict[str, list[datetime]] = {}
    for order in load_plan.orders:
        orders.setdefault(order.customer_id, []).append(order.placed_at)
    old = [c for c in assumed.complaints if c.filed_at < assumed.as_of - timedelta(days=60)]
    stalled: dict[bool, list[bool]] = {True: [], False: []}
    for c in old:
        came_back = any(at > c.filed_at for at in orders[c.customer_id])
        stalled[came_back].append(str(c.status) != "closed")

    rate = {back: sum(v) / len(v) for back, v in stalled.items()}
    assert len(stalled[True]) > 30 and len(stalled[False]) > 30
    assert rate[False] > 1.5 * rate[True]


def test_surveys_follow_about_one_order_in_eight_and_none_after_the_data_ends(
    load_plan: LoadPlan, assumed: FeedbackPlan
) -> None:
    placed = {o.order_id: o.placed_at for o in load_plan.orders}

    assert 0.07 < len(assumed.surveys) / len(load_plan.orders) < 0.14
    for survey in assumed.surveys:
        assert placed[survey.order_id] + timedelta(days=1) < survey.answered_at <= assumed.as_of
        assert survey.csat is not None or survey.nps is not None
        assert survey.answered_at.utcoffset() is not None


def test_detractors_are_likelier_after_returns_and_among_customers_whose_spend_falls(
    load_plan: LoadPlan, assumed: FeedbackPlan
) -> None:
    returned = {r.order_id for r in load_plan.returns}
    complained = {(c.customer_id, c.filed_at) for c in assumed.complaints}
    credited = Counter[str]()
    for r in load_plan.returns:
        credited[r.order_id] += float(r.amount)
    last_90, previous_90 = Counter[str](), Counter[str]()
    for o in load_plan.orders:
        age = assumed.as_of - o.placed_at
        window = last_90 if age < timedelta(days=90) else previous_90 if age < timedelta(days=180) else None
        if window is not None:
            window[o.customer_id] += float(o.total) - credited[o.order_id]
    falling = {c for c, before in previous_90.items() if last_90[c] < before / 2}
    groups: dict[str, list[bool]] = {"returned": [], "falling, late": [], "neither": []}
    for s in assumed.surveys:
        after_complaint = any(
            c == s.customer_id and timedelta(0) <= s.answered_at - at <= timedelta(days=60) for c, at in complained
        )
        late_and_falling = s.customer_id in falling and s.answered_at > assumed.as_of - timedelta(days=180)
        if s.order_id in returned and not late_and_falling:
            groups["returned"].append(s.detractor)
        elif late_and_falling and s.order_id not in returned and not after_complaint:
            groups["falling, late"].append(s.detractor)
        elif not late_and_falling and not after_complaint and s.order_id not in returned:
            groups["neither"].append(s.detractor)
    rate = {name: sum(v) / len(v) for name, v in groups.items()}

    assert all(len(v) >= 25 for v in groups.values()), {name: len(v) for name, v in groups.items()}
    assert rate["neither"] < 0.2
    assert rate["returned"] > rate["neither"] + 0.15
    assert rate["falling, late"] > rate["neither"] + 0.2


# -- through the feedback API (in-process, over the service's in-memory fakes) ---------------------------


@pytest.fixture
async def feedback_service() -> AsyncIterator[tuple[Container[FeedbackSettings], InMemoryEventStore]]:
    engine = create_engine("postgresql://nobody:nothing@127.0.0.1:9/none")  # never connected to
    container = Container(settings=FeedbackSettings(), engine=engine, topics=Topics("t."))
    store = wire_in_memory(container)  # the real clock: the data's 2011 dates are all in the past
    yield container, store
    await engine.dispose()


@pytest.fixture
async def feedback_api(
    feedback_service: tuple[Container[FeedbackSettings], InMemoryEventStore],
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_api(feedback_service[0]))
    headers = {"Authorization": "Bearer dev-admin"}
    async with httpx.AsyncClient(transport=transport, base_url="http://feedback", headers=headers) as client:
        yield client


async def test_every_command_is_accepted_by_the_feedback_api_and_ends_in_its_planned_state(
    feedback_api: httpx.AsyncClient, assumed: FeedbackPlan
) -> None:
    report = LoadReport()
    posted: Counter[str] = Counter()

    async def count(request: httpx.Request) -> None:
        posted[request.url.path.rsplit("/", 1)[-1] if request.method == "POST" else "reads"] += 1

    feedback_api.event_hooks["request"].append(count)
    await load_feedback(feedback_api, "http://feedback", assumed, report, concurrency=4)

    # one request per complaint, with its history: nobody downstream ever sees one half-way along its path
    assert posted == {"complaints": len(assumed.complaints), "surveys": len(assumed.surveys)}
    steps = sum(len(c.steps) for c in assumed.complaints)
    assert not report.failed, report.failures
    assert dict(report.created) == {
        "complaints": len(assumed.complaints),
        "complaint steps": steps,
        "surveys": len(assumed.surveys),
    }
    for complaint in assumed.complaints:
        state = (await feedback_api.get(f"/complaints/{complaint.complaint_id}")).json()
        reopened = sum(s.step is Step.REOPEN for s in complaint.steps)
        assert (state["status"], state["reopen_count"]) == (complaint.status, reopened)
        assert (state["category"], state["severity"], state["order_id"]) == (
            complaint.category,
            complaint.severity,
            complaint.order_id,
        )
        assert datetime.fromisoformat(state["filed_at"]) == complaint.filed_at  # dated on the data's timeline
        last_of = {step.step: step.at for step in complaint.steps}
        for step, field in STEP_TIMES.items():
            at = state[field] and datetime.fromisoformat(state[field])
            assert at == last_of.get(step), (complaint.complaint_id, field)
    for survey in assumed.surveys[:50]:
        answer = (await feedback_api.get(f"/surveys/{survey.survey_id}")).json()
        assert (answer["csat"], answer["nps"], answer["comment"]) == (survey.csat, survey.nps, survey.comment)
        assert datetime.fromisoformat(answer["answered_at"]) == survey.answered_at


async def test_an_import_records_the_sla_breaches_that_a_replay_on_the_data_timeline_records(
    feedback_service: tuple[Container[FeedbackSettings], InMemoryEventStore],
    feedback_api: httpx.AsyncClient,
    assumed: FeedbackPlan,
) -> None:
    """The late steps record their breaches themselves, and the service's sweep — its clock where the
    replay's simulated sweep last looks — the rest: the same breaches as the replay, whatever the
    order in which things arrived."""
    container, store = feedback_service
    await load_feedback(feedback_api, "http://feedback", assumed, LoadReport(), concurrency=4)
    last_look = assumed.as_of - SWEEP_TICK  # the replay's sweep looks once a minute, strictly before as_of
    await EscalationSweep(container.parts["complaints"], clock=lambda: last_look).run_once()

    def breach(aggregate_id: str, data: dict) -> tuple[str, str, datetime]:
        return aggregate_id, str(data["breach"]), datetime.fromisoformat(str(data["deadline"]))

    imported = {
        breach(stream.removeprefix("complaint-"), e.data)
        for stream, events in store.streams.items()
        for e in events
        if e.event_type == "ComplaintEscalated"
    }
    replayed = {
        breach(e.aggregate_id, e.payload.model_dump(mode="json"))
        for e in assumed.events()
        if isinstance(e.payload, contract.ComplaintEscalated)
    }
    assert len(imported) > 50
    assert imported == replayed


async def test_a_second_load_resumes_each_complaint_after_the_steps_it_has_taken(
    feedback_api: httpx.AsyncClient, assumed: FeedbackPlan
) -> None:
    reopened = next(c for c in assumed.complaints if any(s.step is Step.REOPEN for s in c.steps))
    partial = FeedbackPlan([replace(reopened, steps=reopened.steps[:3])], [], assumed.as_of, seed=0)
    whole = FeedbackPlan([reopened], [], assumed.as_of, seed=0)
    first, second = LoadReport(), LoadReport()

    await load_feedback(feedback_api, "http://feedback", partial, first)
    await load_feedback(feedback_api, "http://feedback", whole, second)

    assert (first.created["complaints"], first.created["complaint steps"]) == (1, 3)
    assert (second.already["complaints"], second.already["complaint steps"]) == (1, 3)
    assert second.created["complaint steps"] == len(reopened.steps) - 3
    assert not second.failed, second.failures
    state = (await feedback_api.get(f"/complaints/{reopened.complaint_id}")).json()
    assert state["status"] == reopened.status


# -- as contract events (replays) ----------------------------------------------------------------------


def test_the_contract_events_take_each_complaint_through_the_service_rules_on_the_data_timeline(
    load_plan: LoadPlan, assumed: FeedbackPlan
) -> None:
    events = [e for kind, e in contract_events(load_plan, feedback=assumed) if kind == "feedback"]
    by_stream: dict[str, list[Envelope]] = {}
    for e in events:
        by_stream.setdefault(e.aggregate_id, []).append(e)
        assert parse_envelope(e.to_json()).data == e.data  # valid against the published contract
        assert e.occurred_at <= assumed.as_of

    for complaint in assumed.complaints:
        stream = by_stream[complaint.complaint_id]
        assert [e.aggregate_version for e in stream] == list(range(1, len(stream) + 1))
        filed = stream[0].data
        assert (filed.event_type, filed.filed_at) == ("ComplaintFiled", complaint.filed_at)
        for escalated in (e for e in stream if e.event_type == "ComplaintEscalated"):
            assert escalated.occurred_at > escalated.data.deadline
        steps = [e.event_type for e in stream if e.event_type not in ("ComplaintFiled", "ComplaintEscalated")]
        assert len(steps) == len(complaint.steps)
    open_past_due = [
        c for c in assumed.complaints if str(c.status) == "open" and c.filed_at < assumed.as_of - timedelta(days=20)
    ]
    assert open_past_due
    assert all(any(e.event_type == "ComplaintEscalated" for e in by_stream[c.complaint_id]) for c in open_past_due)
    assert sum(1 for e in events if e.event_type == "SurveyAnswered") == len(assumed.surveys)


def test_feedback_changes_no_measure_that_tiers_and_rfm_are_computed_from(
    load_plan: LoadPlan, assumed: FeedbackPlan
) -> None:
    def facts(with_feedback: bool) -> dict[str, CustomerFacts]:
        found: dict[str, CustomerFacts] = {}
        for _, e in contract_events(load_plan, feedback=assumed if with_feedback else None):
            found.setdefault(e.customer_id, CustomerFacts.new(e.customer_id)).apply(e)
        return found

    policy, plain, rich = Policy(), facts(False), facts(True)
    detractors = 0
    for customer_id, f in plain.items():
        before, after = measure(f, assumed.as_of, policy), measure(rich[customer_id], assumed.as_of, policy)
        fields = ("recency_days", "window_orders", "window_net", "spend_last", "spend_previous", "median_gap_days")
        assert [getattr(before, n) for n in fields] == [getattr(after, n) for n in fields]
        detractors += after.latest_nps is not None and after.latest_nps <= 6
    assert detractors > 0
    assert any(f.complaints for f in rich.values())
