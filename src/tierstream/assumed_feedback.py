"""An assumption, not data: complaints and satisfaction surveys for the Online Retail history.

The data set records invoices and cancellations but no customer feedback, so the demo's feedback
service and its churn signals (complaint past SLA or reopened, detractor survey) would stay empty.
:func:`feedback_for` derives plausible feedback from the plan — deterministic for a given seed, every
draw seeded by the id of what it is about (so a sample of customers gets the same feedback as in the
full run), and dated on the data's timeline, up to the day after its last order (``as_of``):

* **Complaints come from cancellations** (invoices ``C…`` that returned goods). Fees and commissions
  (CRUK, AMAZONFEE, BANK CHARGES) are not grievances; any other cancellation comes with a complaint
  with a probability that grows with its value (15 % under £20, 35 % under £100, 55 % under £500, 80 %
  above). Severity by value: low < £50 ≤ medium < £500 ≤ high < £5,000 ≤ critical. Category by what
  was cancelled: a discount line (D) → price, postage or carriage (POST, C2, DOT) → delivery, a manual
  adjustment only (M) → other, goods → product quality 60 %, delivery 25 %, service attitude 10 %,
  other 5 %. Filed when the cancellation was invoiced, about the latest order it returned goods from.
* **Each complaint follows the service's loop on a drawn path**: acknowledged (15 % late), resolved
  (25 % past the SLA), sometimes rejected by the customer and reopened, then confirmed a few days later.
  Some paths stop half-way — never acknowledged, acknowledged but never resolved, reopened and never
  resolved again (each 3.5× as often, and a rejection too, when the customer placed no order after the
  complaint: in the data that customer did not come back), or never confirmed (5 %). The state as of
  ``as_of`` is wherever the path stands then: old complaints are mostly closed, recent ones in progress.
* **Surveys follow 12 % of the orders**, answered 2–10 days later (none after ``as_of``): 65 % give
  CSAT and NPS, 25 % NPS only, 10 % CSAT only. A detractor answer (NPS ≤ 6, CSAT ≤ 2) has a 10 % base
  chance, +30 % when goods of that order were returned or the customer complained in the 60 days
  before, +40 % when it is answered in the data's last 180 days by a customer whose spend is falling
  (net of the last 90 days < half the 90 before, DESIGN §4's reading of "spend down").

The SLA deadlines follow the feedback service's default policy (:class:`feedback.domain.sla.SlaPolicy`)
and the loop its own rules: :meth:`FeedbackPlan.events` replays every path through the service's
``Complaint`` aggregate — with the SLA sweep ticking every minute of the simulated timeline — so the
contract events of a replay are exactly what the service would have recorded on those dates.

Through the HTTP API (``tierstream load``) everything keeps its date on the data's timeline: surveys
their ``answered_at``, complaints their ``filed_at`` (the SLA deadlines run from it) and each step of
the loop its ``at`` — a complaint is filed with the steps it has taken in one request, so segmentation
never grades it half-way along its path. A step taken after a deadline records that breach itself (the
service does so for any late step), and the service's sweep escalates the deadlines still open from
``FEEDBACK_CLOCK_START`` (the day after the data, set by ``tierstream demo``): an import ends with the
breaches a replay records. Segmentation, whose clock starts on the same day, then counts the
complaints too: past their SLA or reopened, they add to the churn-risk score. What differs from a
replay is only when an escalation was recorded (with the late step, or by the sweep on the demo's day,
instead of a minute after the deadline) and so its ``overdue_by_hours``. ``--no-feedback`` leaves it
all out.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from feedback.application.public_events import to_public
from feedback.domain.complaint import Complaint, ComplaintStatus
from feedback.domain.sla import SlaPolicy
from feedback.domain.survey import Survey
from shared.events import feedback as contract
from shared.events.envelope import EventPayload
from tierstream.dataset import Cancellation, LoadPlan, OrderCmd, day_after_last_order

T = TypeVar("T")

#: The default seed; any other gives another, equally plausible, feedback history.
SEED = 2011

#: Cancellation stock codes that are fees or commissions, not a customer's grievance.
FEES = frozenset({"CRUK", "AMAZONFEE", "BANK CHARGES"})
CARRIAGE = frozenset({"POST", "C2", "DOT"})
#: (value below which, chance that the cancellation comes with a complaint); the last has no bound.
COMPLAINT_CHANCE: tuple[tuple[Decimal | None, float], ...] = (
    (Decimal(20), 0.15),
    (Decimal(100), 0.35),
    (Decimal(500), 0.55),
    (None, 0.80),
)
SEVERITY_BY_VALUE: tuple[tuple[Decimal | None, str], ...] = (
    (Decimal(50), "low"),
    (Decimal(500), "medium"),
    (Decimal(5000), "high"),
    (None, "critical"),
)
GOODS_CATEGORIES = ("product_quality", "delivery", "service_attitude", "other")
GOODS_CATEGORY_WEIGHTS = (0.60, 0.25, 0.10, 0.05)

SURVEY_SHARE = 0.12
DETRACTOR_BASE, DETRACTOR_AFTER_RETURN, DETRACTOR_SPEND_FALLING = 0.10, 0.30, 0.40
SPEND_WINDOW = timedelta(days=90)
RECENT_COMPLAINT = timedelta(days=60)
OPERATOR = "service-desk"
#: How often the simulated SLA sweep looks (the service's default sweep interval).
SWEEP_TICK = timedelta(minutes=1)


class Step(StrEnum):
    """A step of the complaint loop after filing, as the feedback API names its resources."""

    ACKNOWLEDGE = "acknowledgement"
    RESOLVE = "resolution"
    REOPEN = "reopening"
    CONFIRM = "confirmation"


@dataclass(frozen=True)
class ComplaintStep:
    step: Step
    at: datetime
    note: str | None = None  # who acknowledged, the resolution, or why it was reopened


@dataclass(frozen=True)
class ComplaintCmd:
    complaint_id: str
    customer_id: str
    order_id: str | None
    category: str
    severity: str
    summary: str
    filed_at: datetime
    steps: tuple[ComplaintStep, ...]  # the path up to as_of, in order

    @property
    def status(self) -> ComplaintStatus:
        """Where the loop stands after the steps (the feedback service's status)."""
        return status_after(self.steps)


@dataclass(frozen=True)
class SurveyCmd:
    survey_id: str
    customer_id: str
    order_id: str
    answered_at: datetime
    csat: int | None
    nps: int | None
    comment: str | None

    @property
    def detractor(self) -> bool:
        """Segmentation's default rule (DESIGN §4): NPS ≤ 6 or CSAT ≤ 2."""
        return (self.nps is not None and self.nps <= 6) or (self.csat is not None and self.csat <= 2)


@dataclass(frozen=True)
class FeedbackEvent:
    """One contract event of the assumed feedback, dated on the data's timeline."""

    payload: EventPayload
    customer_id: str
    aggregate_type: str
    aggregate_id: str
    version: int
    at: datetime


@dataclass(frozen=True)
class FeedbackPlan:
    complaints: list[ComplaintCmd]
    surveys: list[SurveyCmd]
    as_of: datetime
    seed: int

    def events(self, policy: SlaPolicy | None = None) -> Iterator[FeedbackEvent]:
        """Every complaint's and survey's contract events, in date order, as the service would record
        them (the complaint loop and its SLA sweep run through the service's own aggregate)."""
        policy = policy or SlaPolicy()
        found = [e for c in self.complaints for e in complaint_events(c, self.as_of, policy)]
        found += [survey_event(s) for s in self.surveys]
        found.sort(key=lambda e: (e.at, e.aggregate_id, e.version))
        return iter(found)


def status_after(steps: Sequence[ComplaintStep]) -> ComplaintStatus:
    if not steps:
        return ComplaintStatus.OPEN
    return {
        Step.ACKNOWLEDGE: ComplaintStatus.ACKNOWLEDGED,
        Step.RESOLVE: ComplaintStatus.RESOLVED,
        Step.REOPEN: ComplaintStatus.REOPENED,
        Step.CONFIRM: ComplaintStatus.CLOSED,
    }[steps[-1].step]


# -- derivation ------------------------------------------------------------------------------------


def feedback_for(
    plan: LoadPlan, *, seed: int = SEED, as_of: datetime | None = None, policy: SlaPolicy | None = None
) -> FeedbackPlan:
    """Complaints from the plan's cancellations and surveys after a sample of its orders (see above),
    up to ``as_of`` (default: the day after the plan's last order, the demo's "today"). A customer's
    feedback depends only on their own history, the seed and ``as_of``."""
    policy = policy or SlaPolicy()
    as_of = as_of or day_after_last_order(plan)
    history = _History.of(plan, as_of)
    complaints = [
        c for cancellation in plan.cancellations if (c := _complaint(cancellation, history, seed, policy)) is not None
    ]
    history.complaints_at = _complaint_times(complaints)
    surveys = [s for order in plan.orders if (s := _survey(order, history, seed)) is not None]
    return FeedbackPlan(complaints=complaints, surveys=surveys, as_of=as_of, seed=seed)


@dataclass
class _History:
    """What the draws read from the order history."""

    as_of: datetime
    orders_of: dict[str, list[datetime]]  # customer → placed_at of their orders, ascending
    returned: set[str]  # orders with goods returned
    spend_falling: set[str]  # customers whose spend is falling at the end of the data
    complaints_at: dict[str, list[datetime]]

    @classmethod
    def of(cls, plan: LoadPlan, as_of: datetime) -> _History:
        returned: dict[str, Decimal] = defaultdict(Decimal)
        for ret in plan.returns:
            returned[ret.order_id] += ret.amount
        orders_of: dict[str, list[datetime]] = defaultdict(list)
        last: dict[str, Decimal] = defaultdict(Decimal)
        previous: dict[str, Decimal] = defaultdict(Decimal)
        for order in plan.orders:
            placed = order.placed_at.astimezone(UTC)
            orders_of[order.customer_id].append(placed)
            net = order.total - returned.get(order.order_id, Decimal(0))
            if as_of - SPEND_WINDOW < placed <= as_of:
                last[order.customer_id] += net
            elif as_of - 2 * SPEND_WINDOW < placed <= as_of - SPEND_WINDOW:
                previous[order.customer_id] += net
        falling = {c for c, before in previous.items() if before > 0 and last[c] < before / 2}
        return cls(as_of, dict(orders_of), set(returned), falling, {})

    def came_back_after(self, customer_id: str, moment: datetime) -> bool:
        return any(placed > moment for placed in self.orders_of.get(customer_id, ()))

    def complained_before(self, customer_id: str, moment: datetime) -> bool:
        return any(moment - RECENT_COMPLAINT <= at <= moment for at in self.complaints_at.get(customer_id, ()))


def _rng(seed: int, kind: str, key: str) -> random.Random:
    """An independent, reproducible stream of draws per item (str seeds hash with SHA-512, not hash())."""
    return random.Random(f"{seed}/{kind}/{key}")


def _by_value(table: Sequence[tuple[Decimal | None, T]], value: Decimal) -> T:
    """The entry of the first band whose upper bound is above ``value`` (None: no bound)."""
    return next(result for bound, result in table if bound is None or value < bound)


def _category(cancellation: Cancellation, rng: random.Random) -> str | None:
    charges = cancellation.charges
    if not cancellation.products and charges <= FEES:
        return None
    if "D" in charges:
        return "price"
    if charges & CARRIAGE:
        return "delivery"
    if not cancellation.products:
        return "other"
    return rng.choices(GOODS_CATEGORIES, GOODS_CATEGORY_WEIGHTS)[0]


def _complaint(cancellation: Cancellation, history: _History, seed: int, policy: SlaPolicy) -> ComplaintCmd | None:
    rng = _rng(seed, "complaint", cancellation.invoice)
    category = _category(cancellation, rng)
    if category is None or rng.random() >= _by_value(COMPLAINT_CHANCE, cancellation.amount):
        return None
    severity = _by_value(SEVERITY_BY_VALUE, cancellation.amount)
    filed_at = cancellation.at.astimezone(UTC)
    if filed_at > history.as_of:
        return None  # not filed yet "today"
    came_back = history.came_back_after(cancellation.customer_id, filed_at)
    path = _path(rng, filed_at, severity, came_back, policy, cancellation)
    return ComplaintCmd(
        complaint_id=f"CMP-{cancellation.invoice}",
        customer_id=cancellation.customer_id,
        order_id=cancellation.order_ids[0] if cancellation.order_ids else None,
        category=category,
        severity=severity,
        summary=_summary(category, cancellation),
        filed_at=filed_at,
        steps=tuple(step for step in path if step.at <= history.as_of),
    )


def _path(
    rng: random.Random,
    filed_at: datetime,
    severity: str,
    came_back: bool,
    policy: SlaPolicy,
    cancellation: Cancellation,
) -> list[ComplaintStep]:
    """The whole path this complaint would take, ignoring ``as_of`` (the caller cuts it there)."""
    sla = policy.for_severity(severity)
    stall = 1.0 if came_back else 3.5  # a customer who never came back: the loop stalled more often
    if rng.random() < 0.03 * stall:
        return []  # never acknowledged
    late_ack = rng.random() < 0.15
    acknowledged = filed_at + sla.acknowledge_within * (rng.uniform(1.1, 4) if late_ack else rng.uniform(0.05, 0.9))
    path = [ComplaintStep(Step.ACKNOWLEDGE, acknowledged, OPERATOR)]
    if rng.random() < 0.03 * stall:
        return path  # acknowledged, never resolved
    resolved = max(acknowledged, filed_at + sla.resolve_within * _resolve_share(rng)) + timedelta(minutes=5)
    amount = f"£{cancellation.amount:,.2f}"
    path.append(ComplaintStep(Step.RESOLVE, resolved, f"Credit note for {amount} issued; {_remedy(rng)}"))
    if rng.random() < 0.10 * stall:
        reopened = resolved + timedelta(days=rng.uniform(1, 6))
        path.append(ComplaintStep(Step.REOPEN, reopened, rng.choice(REOPEN_REASONS)))
        if rng.random() < 0.2 * stall:
            return path  # reopened, never resolved again
        resolved = reopened + sla.resolve_within * _resolve_share(rng)
        path.append(ComplaintStep(Step.RESOLVE, resolved, f"Reviewed again: {_remedy(rng)}"))
    if rng.random() < 0.05:
        return path  # the customer never confirmed
    path.append(ComplaintStep(Step.CONFIRM, resolved + timedelta(days=rng.uniform(1, 10))))
    return path


def _resolve_share(rng: random.Random) -> float:
    """Share of the resolve window used: within it 75 % of the time, up to 2.5× over it otherwise."""
    return rng.uniform(1.05, 2.5) if rng.random() < 0.25 else rng.uniform(0.2, 0.95)


def _complaint_times(complaints: Sequence[ComplaintCmd]) -> dict[str, list[datetime]]:
    found: dict[str, list[datetime]] = defaultdict(list)
    for c in complaints:
        found[c.customer_id].append(c.filed_at)
    return dict(found)


def _survey(order: OrderCmd, history: _History, seed: int) -> SurveyCmd | None:
    rng = _rng(seed, "survey", order.order_id)
    if rng.random() >= SURVEY_SHARE:
        return None
    placed = order.placed_at.astimezone(UTC)
    answered = (placed + timedelta(days=rng.randint(2, 10))).replace(
        hour=rng.randint(8, 17), minute=rng.randint(0, 59), second=0, microsecond=0
    )
    if answered > history.as_of:
        return None  # not answered yet when the data ends
    cid = order.customer_id
    chance = DETRACTOR_BASE
    if order.order_id in history.returned or history.complained_before(cid, answered):
        chance += DETRACTOR_AFTER_RETURN
    if cid in history.spend_falling and answered > history.as_of - 2 * SPEND_WINDOW:
        chance += DETRACTOR_SPEND_FALLING
    csat, nps, comment = _answer(rng, detractor=rng.random() < chance)
    return SurveyCmd(f"SRV-{order.order_id}", cid, order.order_id, answered, csat, nps, comment)


def _answer(rng: random.Random, *, detractor: bool) -> tuple[int | None, int | None, str | None]:
    """CSAT and NPS (65 %), NPS only (25 %) or CSAT only (10 %), and a comment 30 % of the time. A
    detractor has NPS ≤ 6 or, answering CSAT only, CSAT ≤ 2; anyone else NPS ≥ 7 and CSAT ≥ 3."""
    asks = rng.choices(("both", "nps", "csat"), (0.65, 0.25, 0.10))[0]
    if detractor:
        nps = rng.choice((1, 2, 3, 4, 5, 5, 6, 6, 6))
        csat = rng.choice((1, 2) if asks == "csat" else (1, 2, 2, 3, 3))
    else:
        nps, csat = rng.choice((7, 7, 8, 8, 9, 9, 10, 10, 10)), rng.choice((3, 4, 4, 5, 5))
    comment = rng.choice(DETRACTOR_COMMENTS if detractor else HAPPY_COMMENTS) if rng.random() < 0.3 else None
    return (csat if asks != "nps" else None), (nps if asks != "csat" else None), comment


# -- texts (no personal data: products and amounts only) -------------------------------------------

REOPEN_REASONS = (
    "The credit note does not cover the carriage we paid",
    "Replacement items arrived with the same fault",
    "Still waiting for the credit to show on our account",
    "The resolution does not match what was agreed on the phone",
)
REMEDIES = (
    "replacement stock dispatched",
    "supplier batch checked and replaced",
    "courier claim opened, goods re-sent",
    "pricing corrected on the account",
    "account manager called the buyer",
)
HAPPY_COMMENTS = (
    "Quick delivery, well packed",
    "Good range and fair prices",
    "Easy to reorder, thank you",
    "Items as described",
)
DETRACTOR_COMMENTS = (
    "Several items arrived broken",
    "Delivery took far too long",
    "Prices went up without notice",
    "Nobody answered our emails about the return",
    "Considering other suppliers",
)


def _remedy(rng: random.Random) -> str:
    return rng.choice(REMEDIES)


def _summary(category: str, cancellation: Cancellation) -> str:
    invoice, amount = cancellation.invoice, f"£{cancellation.amount:,.2f}"
    if category == "price":
        return f"Price dispute settled by a discount on cancellation {invoice} ({amount})"
    if category == "other":
        return f"Manual adjustment {invoice} ({amount}) queried by the customer"
    products = cancellation.products
    what = (products[0].title() or "goods")[:300] if products else "postage and carriage charges"
    if len(products) > 1:
        what += f" and {len(products) - 1} more lines"
    opening = {
        "product_quality": "Faulty or damaged goods",
        "delivery": "Delivery problem",
        "service_attitude": "Unhappy with how the order was handled",
    }.get(category, "Goods")
    return f"{opening}, credited on {invoice} ({amount}): {what}"


# -- contract events -------------------------------------------------------------------------------


def complaint_events(complaint: ComplaintCmd, as_of: datetime, policy: SlaPolicy) -> list[FeedbackEvent]:
    """The complaint's path through the service's aggregate, the SLA sweep ticking every minute up to
    ``as_of``: the public events it would have published, each dated when it happened."""
    aggregate = Complaint.file(
        complaint.complaint_id,
        complaint.customer_id,
        category=complaint.category,
        severity=complaint.severity,
        summary=complaint.summary,
        order_id=complaint.order_id,
        filed_at=complaint.filed_at,
        policy=policy,
    )
    dated: list[tuple[datetime, EventPayload]] = []

    def take(at: datetime) -> None:
        for event in aggregate.pending_events:
            public = to_public(aggregate, event)
            if public is not None:
                dated.append((at, public))
        aggregate.mark_saved()

    take(complaint.filed_at)
    for step in complaint.steps:
        _sweep_until(aggregate, step.at, take)
        if step.step is Step.ACKNOWLEDGE:
            aggregate.acknowledge(step.note, at=step.at)
        elif step.step is Step.RESOLVE:
            aggregate.resolve(step.note or "resolved", at=step.at)
        elif step.step is Step.REOPEN:
            aggregate.reopen(step.note or "reopened", at=step.at, policy=policy)
        else:
            aggregate.confirm(at=step.at)
        take(step.at)
    _sweep_until(aggregate, as_of, take)
    return [
        FeedbackEvent(payload, complaint.customer_id, Complaint.aggregate_type, complaint.complaint_id, n, at)
        for n, (at, payload) in enumerate(dated, start=1)
    ]


def _sweep_until(aggregate: Complaint, until: datetime, take: Callable[[datetime], None]) -> None:
    """What the service's SLA sweep (one look every :data:`SWEEP_TICK`) records before ``until``."""
    while (deadline := aggregate.next_escalation_at) is not None:
        look = deadline + SWEEP_TICK
        if look >= until:
            return
        aggregate.escalate_overdue(look)
        take(look)


def survey_event(survey: SurveyCmd) -> FeedbackEvent:
    payload = contract.SurveyAnswered(
        survey_id=survey.survey_id,
        customer_id=survey.customer_id,
        csat=survey.csat,
        nps=survey.nps,
        comment=survey.comment,
        order_id=survey.order_id,
        answered_at=survey.answered_at,
    )
    return FeedbackEvent(payload, survey.customer_id, Survey.aggregate_type, survey.survey_id, 1, survey.answered_at)
