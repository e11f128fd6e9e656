"""What segmentation remembers about one customer, folded from contract events. No I/O, no clock.

The projection keeps *facts*, not running totals: one row per order (amount, placed date, cancelled,
returned, credit hold, overdue receivable), per complaint (deadlines, state, escalated, reopened) and per
survey answer. Every rule (trailing-window net, recency, cadence, spend trend, churn signals) is then a
pure function of the facts and an instant (:mod:`segmentation.domain.measures`), so it can be evaluated
"as of" any time — by a live event, the scheduled sweep, a recalibration or a rebuild — with one result.

Order tolerance (DESIGN §2): Kafka orders a customer's events within one topic only. Events of one
topic touch their own facts (orders topic → order facts, feedback → complaints and surveys, customers →
profile), so any interleaving of the topics folds to the same facts. An event for an order, complaint or
customer not seen yet creates a placeholder that the missing event fills in later.

Within one stream, too, the order of arrival does not matter: an event that arrives after a later event
of its stream (a dead letter re-driven once its cause is fixed: the consumer had never applied it) folds
to the same facts as in stream order. Counts and flags that only go one way are order-free by nature
(returns add up, a cancellation or a full payment is final, stages only advance). A piece of state that
events overwrite — the company name, the region, deactivated, an order's credit hold, its outstanding
receivable, a complaint's status — keeps the stream version (the envelope's ``aggregate_version``) of the
event that set it, and an event of an older version leaves it alone (``*_version`` fields; 0 = set
before revision 0009, so the next event wins). An event of the *same* version is applied: a producer's
stream never has two (the repository numbers them), and events built by hand with one version for all
(tests, ``tierstream.dataset.contract_events``) keep last-arrival order. A copy of an applied event is
the inbox's business (same ``event_id``: dropped); an old event sent again under a *new* id is a new
event, and facts that add up (returns, reopenings) count it again.

:class:`CustomerFacts` is deliberately mutable: a batch folds hundreds of events into the same customer,
and copying an order dictionary per event would be quadratic. It records which facts changed, so the
adapter writes back only those rows.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope

ZERO = Decimal(0)


def label(value: object) -> str:
    """A short repeated text (currency, region, stage, category, severity, status) as one shared string:
    every fact that carries it then points at the same object instead of holding its own copy."""
    return sys.intern(str(value))


def label_or_none(value: object | None) -> str | None:
    return None if value is None else label(value)


class ComplaintStatus:
    """Where a complaint is in its closed loop, as far as segmentation cares."""

    OPEN = "open"  # filed, acknowledged or reopened: someone owes the customer an answer
    RESOLVED = "resolved"  # a resolution was delivered; waiting for the customer's confirmation
    CONFIRMED = "confirmed"  # the customer confirmed it: the loop is closed


@dataclass(slots=True)
class OrderFact:
    order_id: str
    placed_at: datetime | None = None  # None: a placeholder (a later event of the order came first)
    amount: Decimal = ZERO
    currency: str | None = None
    cancelled: bool = False
    cancelled_amount: Decimal = ZERO
    returned_amount: Decimal = ZERO
    credit_held: bool = False
    due_date: date | None = None
    overdue_amount: Decimal = ZERO  # outstanding amount while reported overdue; 0 once paid or cancelled
    paid_in_full: bool = False
    credit_version: int = 0  # stream version of the event that last set ``credit_held``
    #: the outstanding amount as of the newest payment or overdue notice, and that event's stream version
    outstanding_amount: Decimal | None = None
    receivable_version: int = 0

    @property
    def is_live(self) -> bool:
        """Placed and not cancelled: counts as a purchase (returns reduce its value, not its existence)."""
        return self.placed_at is not None and not self.cancelled

    @property
    def net(self) -> Decimal:
        """This order's contribution: amount − cancellation − returns (DESIGN §4)."""
        return self.amount - self.cancelled_amount - self.returned_amount


@dataclass(slots=True)
class ComplaintFact:
    complaint_id: str
    filed_at: datetime | None = None
    category: str | None = None
    severity: str | None = None
    acknowledge_by: datetime | None = None
    resolve_by: datetime | None = None
    status: str = ComplaintStatus.OPEN
    acknowledged: bool = False
    escalated: bool = False
    reopened_count: int = 0
    status_version: int = 0  # stream version of the event that last set ``status``


@dataclass(slots=True)
class SurveyFact:
    survey_id: str
    answered_at: datetime
    csat: int | None = None
    nps: int | None = None


@dataclass(slots=True)
class Profile:
    """The customer file as segmentation sees it (no personal data ever reaches this service)."""

    customer_id: str
    registered: bool = False
    company_name: str | None = None
    region: str | None = None
    sales_stage: str | None = None
    deactivated: bool = False
    events_applied: int = 0
    last_event_at: datetime | None = None
    #: customer-stream versions of the events that last set the company name, the region, ``deactivated``
    company_name_version: int = 0
    region_version: int = 0
    deactivated_version: int = 0


#: The change set of facts with nothing to write (shared: a customer kept between polls costs no set).
NOTHING_CHANGED: frozenset[str] = frozenset()


@dataclass(slots=True)
class CustomerFacts:
    """One customer's facts. Compact on purpose: the consumer keeps tens of thousands between polls
    (``FactsCache``), so no per-instance dict, no empty change sets (they share :data:`NOTHING_CHANGED`
    until a fact changes) and no tuple for the remembered currency."""

    profile: Profile
    orders: dict[str, OrderFact] = field(default_factory=dict)
    complaints: dict[str, ComplaintFact] = field(default_factory=dict)
    surveys: dict[str, SurveyFact] = field(default_factory=dict)
    #: ids of the facts changed since loading (or since :meth:`mark_saved`), i.e. the rows to write
    changed_orders: AbstractSet[str] = NOTHING_CHANGED
    changed_complaints: AbstractSet[str] = NOTHING_CHANGED
    changed_surveys: AbstractSet[str] = NOTHING_CHANGED
    #: ``len(orders) + number of order() calls`` when ``currency`` was last computed (-1: never), and its
    #: value; both terms only grow, so the sum changes whenever either does
    _currency_stamp: int = field(default=-1, repr=False, compare=False)
    _currency: str | None = field(default=None, repr=False, compare=False)
    _order_touches: int = field(default=0, repr=False, compare=False)

    @classmethod
    def new(cls, customer_id: str) -> CustomerFacts:
        return cls(profile=Profile(customer_id=customer_id))

    @property
    def customer_id(self) -> str:
        return self.profile.customer_id

    def apply(self, envelope: Envelope) -> int | None:
        """Fold one (new, valid) event of this customer; unknown event types only count as applied.

        Returns None, or — when a newer event of the stream had set state this one would overwrite, and
        that state was kept — the newest such event's stream version (the event is still applied and
        counted: it may change other facts)."""
        handler = _HANDLERS.get(type(envelope.data))
        kept = handler(self, envelope.data, envelope) if handler is not None else None
        profile = self.profile
        profile.events_applied += 1
        if profile.last_event_at is None or envelope.occurred_at > profile.last_event_at:
            profile.last_event_at = envelope.occurred_at
        return kept

    def mark_saved(self) -> None:
        """Forget which facts changed: their rows are written (the next changes start a new set)."""
        self.changed_orders = self.changed_complaints = self.changed_surveys = NOTHING_CHANGED

    # -- helpers for handlers ----------------------------------------------------------------------
    def order(self, order_id: str) -> OrderFact:
        self._order_touches += 1  # the caller is about to change this order (see ``currency``)
        self.changed_orders = _with(self.changed_orders, order_id)
        fact = self.orders.get(order_id)
        if fact is None:
            fact = self.orders[order_id] = OrderFact(order_id=order_id)
        return fact

    def complaint(self, complaint_id: str) -> ComplaintFact:
        self.changed_complaints = _with(self.changed_complaints, complaint_id)
        fact = self.complaints.get(complaint_id)
        if fact is None:
            fact = self.complaints[complaint_id] = ComplaintFact(complaint_id=complaint_id)
        return fact

    @property
    def currency(self) -> str | None:
        """The customer's first currency (the projection does no conversion).

        Remembered until an order is added or touched through :meth:`order` (every handler changes
        orders through it), so the several callers of one assessment scan the orders once."""
        stamp = len(self.orders) + self._order_touches
        if stamp == self._currency_stamp:
            return self._currency
        first: tuple[datetime, str] | None = None
        currency = None
        for o in self.orders.values():
            placed = o.placed_at
            if placed is not None and o.currency:
                key = (placed, o.order_id)
                if first is None or key < first:
                    first, currency = key, o.currency
        self._currency_stamp, self._currency = stamp, currency
        return currency


def _with(changed: AbstractSet[str], key: str) -> set[str]:
    """``changed`` with ``key`` added: the set itself once there is one, a new set instead of the shared empty."""
    if isinstance(changed, set):
        changed.add(key)
        return changed
    return {key}


# -- customers topic ------------------------------------------------------------------------------


# Each ``_set_*`` sets one piece of overwritten state unless a newer event of the stream set it: then it
# returns that event's version (what ``CustomerFacts.apply`` reports), else None.


def _newest(*kept: int | None) -> int | None:
    return max((k for k in kept if k is not None), default=None)


def on_customer_registered(facts: CustomerFacts, data: customers.CustomerRegistered, e: Envelope) -> int | None:
    p = facts.profile
    p.registered = True
    p.sales_stage = _later_stage(p.sales_stage, label(data.stage))
    return _newest(
        _set_company_name(p, data.company_name, e.aggregate_version), _set_region(p, data.region, e.aggregate_version)
    )


def on_customer_profile_updated(
    facts: CustomerFacts, data: customers.CustomerProfileUpdated, e: Envelope
) -> int | None:
    named = {str(f) for f in data.changed_fields}
    name = region = None
    if "company_name" in named and data.company_name:
        name = _set_company_name(facts.profile, data.company_name, e.aggregate_version)
    if "region" in named and data.region:
        region = _set_region(facts.profile, data.region, e.aggregate_version)
    return _newest(name, region)


def _set_company_name(p: Profile, name: str, version: int) -> int | None:
    if version < p.company_name_version:
        return p.company_name_version
    p.company_name, p.company_name_version = name, version
    return None


def _set_region(p: Profile, region: str, version: int) -> int | None:
    if version < p.region_version:
        return p.region_version
    p.region, p.region_version = label(region), version
    return None


def on_customer_stage_advanced(facts: CustomerFacts, data: customers.CustomerStageAdvanced, _e: Envelope) -> None:
    facts.profile.sales_stage = _later_stage(facts.profile.sales_stage, label(data.new_stage))


def on_customer_deactivated(facts: CustomerFacts, _data: Any, e: Envelope) -> int | None:
    return _set_deactivated(facts.profile, True, e.aggregate_version)


def on_customer_reactivated(facts: CustomerFacts, _data: Any, e: Envelope) -> int | None:
    return _set_deactivated(facts.profile, False, e.aggregate_version)


def _set_deactivated(p: Profile, deactivated: bool, version: int) -> int | None:
    if version < p.deactivated_version:
        return p.deactivated_version
    p.deactivated, p.deactivated_version = deactivated, version
    return None


_STAGES = ("prospect", "lead", "customer")


def _later_stage(current: str | None, new: str) -> str:
    """Sales stages only advance, so a late-arriving older stage never moves the projection back."""
    if current is None or current not in _STAGES or new not in _STAGES:
        return new
    return max(current, new, key=_STAGES.index)


# -- orders topic ---------------------------------------------------------------------------------


def on_order_placed(facts: CustomerFacts, data: orders.OrderPlaced, e: Envelope) -> int | None:
    order = facts.order(data.order_id)
    order.placed_at, order.amount, order.currency = data.placed_at, data.total.amount, label(data.total.currency)
    if order.due_date is None:  # else an overdue notice came first: its missed due date stands
        order.due_date = data.due_date
    return _set_credit_held(order, str(data.status) == "credit_held", e.aggregate_version)


def on_order_credit_held(facts: CustomerFacts, data: orders.OrderCreditHeld, e: Envelope) -> int | None:
    return _set_credit_held(facts.order(data.order_id), True, e.aggregate_version)


def on_order_credit_released(facts: CustomerFacts, data: orders.OrderCreditReleased, e: Envelope) -> int | None:
    return _set_credit_held(facts.order(data.order_id), False, e.aggregate_version)


def _set_credit_held(order: OrderFact, held: bool, version: int) -> int | None:
    """A cancelled order holds no credit, whatever arrives after its cancellation."""
    if version < order.credit_version:
        return order.credit_version
    order.credit_held, order.credit_version = held and not order.cancelled, version
    return None


def on_payment_received(facts: CustomerFacts, data: orders.PaymentReceived, e: Envelope) -> int | None:
    order = facts.order(data.order_id)
    kept = _set_outstanding(order, data.outstanding.amount, e.aggregate_version)
    if data.paid_in_full:
        order.paid_in_full, order.overdue_amount = True, ZERO
    elif order.overdue_amount > 0:
        order.overdue_amount = order.outstanding_amount or ZERO
    return kept


def on_order_cancelled(facts: CustomerFacts, data: orders.OrderCancelled, _e: Envelope) -> None:
    order = facts.order(data.order_id)
    order.cancelled, order.cancelled_amount = True, data.amount.amount
    order.credit_held, order.overdue_amount = False, ZERO


def on_order_returned(facts: CustomerFacts, data: orders.OrderReturned, _e: Envelope) -> None:
    order = facts.order(data.order_id)
    order.returned_amount += data.amount.amount


def on_payment_overdue(facts: CustomerFacts, data: orders.PaymentOverdue, e: Envelope) -> int | None:
    """Overdue from now on (until paid in full or cancelled), for the newest outstanding amount known:
    a notice that arrives after a later partial payment is overdue for what that payment left."""
    order = facts.order(data.order_id)
    kept = _set_outstanding(order, data.amount.amount, e.aggregate_version)
    order.due_date = data.due_date  # the missed due date (orders fixes it at placement: every notice repeats it)
    if not order.paid_in_full and not order.cancelled:
        order.overdue_amount = order.outstanding_amount or ZERO
    return kept


def _set_outstanding(order: OrderFact, amount: Decimal, version: int) -> int | None:
    if version < order.receivable_version:
        return order.receivable_version
    order.outstanding_amount, order.receivable_version = amount, version
    return None


# -- feedback topic -------------------------------------------------------------------------------


def on_complaint_filed(facts: CustomerFacts, data: feedback.ComplaintFiled, _e: Envelope) -> None:
    c = facts.complaint(data.complaint_id)
    c.filed_at, c.category, c.severity = data.filed_at, label(data.category), label(data.severity)
    c.acknowledge_by, c.resolve_by = data.acknowledge_by, data.resolve_by


def on_complaint_acknowledged(facts: CustomerFacts, data: feedback.ComplaintAcknowledged, _e: Envelope) -> None:
    facts.complaint(data.complaint_id).acknowledged = True


def on_complaint_resolved(facts: CustomerFacts, data: feedback.ComplaintResolved, e: Envelope) -> int | None:
    return _set_status(facts.complaint(data.complaint_id), ComplaintStatus.RESOLVED, e.aggregate_version)


def on_complaint_confirmed(facts: CustomerFacts, data: feedback.ComplaintConfirmed, e: Envelope) -> int | None:
    return _set_status(facts.complaint(data.complaint_id), ComplaintStatus.CONFIRMED, e.aggregate_version)


def on_complaint_reopened(facts: CustomerFacts, data: feedback.ComplaintReopened, e: Envelope) -> int | None:
    c = facts.complaint(data.complaint_id)
    c.reopened_count += 1
    return _set_status(c, ComplaintStatus.OPEN, e.aggregate_version)


def _set_status(complaint: ComplaintFact, status: str, version: int) -> int | None:
    if version < complaint.status_version:
        return complaint.status_version
    complaint.status, complaint.status_version = status, version
    return None


def on_complaint_escalated(facts: CustomerFacts, data: feedback.ComplaintEscalated, _e: Envelope) -> None:
    facts.complaint(data.complaint_id).escalated = True


def on_survey_answered(facts: CustomerFacts, data: feedback.SurveyAnswered, envelope: Envelope) -> None:
    answered = data.answered_at or envelope.occurred_at
    facts.surveys[data.survey_id] = SurveyFact(data.survey_id, answered, data.csat, data.nps)
    facts.changed_surveys = _with(facts.changed_surveys, data.survey_id)


_HANDLERS: dict[type, Callable[[CustomerFacts, Any, Envelope], int | None]] = {
    customers.CustomerRegistered: on_customer_registered,
    customers.CustomerProfileUpdated: on_customer_profile_updated,
    customers.CustomerStageAdvanced: on_customer_stage_advanced,
    customers.CustomerDeactivated: on_customer_deactivated,
    customers.CustomerReactivated: on_customer_reactivated,
    orders.OrderPlaced: on_order_placed,
    orders.OrderCreditHeld: on_order_credit_held,
    orders.OrderCreditReleased: on_order_credit_released,
    orders.PaymentReceived: on_payment_received,
    orders.OrderCancelled: on_order_cancelled,
    orders.OrderReturned: on_order_returned,
    orders.PaymentOverdue: on_payment_overdue,
    feedback.ComplaintFiled: on_complaint_filed,
    feedback.ComplaintAcknowledged: on_complaint_acknowledged,
    feedback.ComplaintResolved: on_complaint_resolved,
    feedback.ComplaintConfirmed: on_complaint_confirmed,
    feedback.ComplaintReopened: on_complaint_reopened,
    feedback.ComplaintEscalated: on_complaint_escalated,
    feedback.SurveyAnswered: on_survey_answered,
}
