"""Within one stream, too, the order of arrival does not change the facts (a re-driven dead letter or a
producer's re-send arrives after later events of its stream): state that events overwrite keeps the
stream version of the event that set it, and an older event leaves it alone."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import segmentation_builders as b
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.application.public_events import to_public as customers_public
from customers.domain.customer import Customer
from customers.domain.customer import Profile as CustomerProfile
from feedback.application.public_events import to_public as feedback_public
from feedback.domain.complaint import Complaint
from feedback.domain.sla import DEFAULT_SLA_POLICY
from orders.domain.credit import CreditDecision
from orders.domain.order import Order, OrderLine
from segmentation.domain.facts import ComplaintStatus, CustomerFacts
from segmentation.projections.store import _complaint as complaint_from_row
from segmentation.projections.store import _order as order_from_row
from segmentation.projections.store import fact_rows
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, EventPayload
from shared.events.vocabulary import CreditHoldReason, ProfileField, SalesStage
from shared.eventsourcing.aggregate import DomainError

pytestmark = pytest.mark.unit

DUE = date(2026, 2, 4)


def stream(*payloads: EventPayload) -> list[Envelope]:
    """The payloads as one aggregate's stream: versions 1, 2, 3, … in the order given."""
    return [versioned(p, v) for v, p in enumerate(payloads, start=1)]


def versioned(payload: EventPayload, version: int) -> Envelope:
    e = b.wrap(payload, b.T0 + timedelta(hours=version))
    return e.model_copy(update={"aggregate_version": version})


def placed(order_id: str = "o-1", amount: int = 500, *, held: bool = False) -> EventPayload:
    data = b.placed(order_id, amount, 0).data
    assert isinstance(data, orders.OrderPlaced)
    return data.model_copy(update={"status": "credit_held"}) if held else data


def paid(amount: int, outstanding: int, order_id: str = "o-1") -> EventPayload:
    return b.paid(order_id, amount, outstanding).data


def overdue(amount: int, order_id: str = "o-1") -> EventPayload:
    return b.overdue(order_id, amount, DUE, 3).data


HELD = orders.OrderCreditHeld(
    order_id="o-1", reasons=["over_credit_limit"], exposure=b.money(500), credit_limit=b.money(100)
)
RELEASED = orders.OrderCreditReleased(order_id="o-1", released_by="ops-1")


def fold(events: list[Envelope]) -> CustomerFacts:
    return b.fold(events)


def test_an_overdue_notice_arriving_after_a_later_partial_payment_is_overdue_for_what_the_payment_left() -> None:
    o = stream(placed(), overdue(500), paid(200, 300))
    late = fold([o[0], o[2], o[1]]).orders["o-1"]
    assert late.overdue_amount == Decimal(300) == fold(o).orders["o-1"].overdue_amount


def test_an_overdue_notice_arriving_after_payment_in_full_leaves_the_order_paid() -> None:
    o = stream(placed(), overdue(500), paid(500, 0))
    late = fold([o[0], o[2], o[1]]).orders["o-1"]
    assert (late.overdue_amount, late.paid_in_full) == (0, True)


def test_an_old_credit_hold_arriving_after_its_release_leaves_the_order_released() -> None:
    o = stream(placed(held=True), HELD, RELEASED)
    assert not fold([o[0], o[2], o[1]]).orders["o-1"].credit_held
    assert not fold([o[2], o[1], o[0]]).orders["o-1"].credit_held  # the placement on hold last, too


def test_an_old_profile_update_keeps_the_newer_value_of_its_field_and_sets_a_field_nothing_newer_set() -> None:
    c = stream(
        customers.CustomerRegistered(customer_id=b.CID, company_name="Acme", region="East"),
        customers.CustomerProfileUpdated(changed_fields=["region"], region="North"),
        customers.CustomerProfileUpdated(changed_fields=["region"], region="West"),
        customers.CustomerProfileUpdated(changed_fields=["company_name"], company_name="Acme Trading"),
    )
    profile = fold([c[0], c[2], c[3], c[1]]).profile
    assert (profile.region, profile.company_name) == ("West", "Acme Trading")
    profile = fold([c[0], c[2], c[1], c[3]]).profile  # the company name arrives last: nothing newer set it
    assert (profile.region, profile.company_name) == ("West", "Acme Trading")


def test_an_old_deactivation_arriving_after_the_reactivation_leaves_the_customer_active() -> None:
    c = stream(
        customers.CustomerRegistered(customer_id=b.CID, company_name="Acme", region="East"),
        customers.CustomerDeactivated(reason="closed down"),
        customers.CustomerReactivated(reason="x"),
    )
    assert not fold([c[0], c[2], c[1]]).profile.deactivated


def test_an_old_resolution_arriving_after_the_reopening_leaves_the_complaint_open() -> None:
    filed = b.complaint("k-1").data
    k = stream(
        filed,
        feedback.ComplaintResolved(complaint_id="k-1", resolution="refund"),
        feedback.ComplaintReopened(complaint_id="k-1", reason="not fixed"),
    )
    c = fold([k[0], k[2], k[1]]).complaints["k-1"]
    assert (c.status, c.reopened_count) == (ComplaintStatus.OPEN, 1)


def test_apply_reports_the_version_that_kept_its_state_against_an_older_event() -> None:
    c = stream(
        customers.CustomerRegistered(customer_id=b.CID, company_name="Acme", region="East"),
        customers.CustomerProfileUpdated(changed_fields=["region"], region="West"),
        customers.CustomerProfileUpdated(changed_fields=["company_name"], company_name="Acme Trading"),
    )
    facts = fold([c[2]])
    assert facts.apply(c[1]) is None  # the region: nothing newer set it
    assert facts.apply(c[0]) == 3  # the name is kept from version 3 (the region from 2): the newest is reported
    assert (facts.profile.company_name, facts.profile.region, facts.profile.registered) == (
        "Acme Trading",
        "West",
        True,
    )
    assert fold([]).apply(b.placed("o-1", 10, 0)) is None


# -- any arrival order of the streams the producers' aggregates emit ------------------------------------
# The streams come from the real aggregates (orders, feedback, customers domain) driven by random commands
# (the ones an aggregate refuses are skipped), published as the services publish them: the contract event,
# the stream version of its position.


def published(aggregate: Any, public: Callable[[Any, Any], EventPayload | None]) -> list[Envelope]:
    out = []
    for version, event in enumerate(aggregate.pending_events, start=1):
        payload = public(aggregate, event)
        if payload is not None:
            out.append(
                Envelope.wrap(
                    payload,
                    producer="test",
                    aggregate_type=aggregate.aggregate_type,
                    aggregate_id=aggregate.id,
                    aggregate_version=version,
                    customer_id=b.CID,
                    correlation_id="corr",
                    occurred_at=b.T0 + timedelta(minutes=version),
                )
            )
    return out


def refused() -> contextlib.suppress:
    """Around a command: one the aggregate refuses is skipped."""
    return contextlib.suppress(DomainError)


@st.composite
def order_stream(draw: st.DrawFn, order_id: str) -> list[Envelope]:
    held = draw(st.booleans())
    hold = CreditDecision(
        reasons=(CreditHoldReason.OVER_CREDIT_LIMIT,),
        exposure=Decimal(1000),
        currency="CNY",
        credit_limit=Decimal(10),
        limit_currency="CNY",
    )
    lines = [OrderLine("S", "d", 10, Decimal(100))]
    order = Order.place(
        order_id, b.CID, lines, currency="CNY", placed_at=b.T0, payment_days=30, credit=hold if held else None
    )
    today = b.T0.date()
    for i in range(draw(st.integers(0, 10))):
        step = draw(st.sampled_from(["pay", "pay_all", "release", "cancel", "return", "overdue"]))
        if step == "pay":
            with refused():
                order.receive_payment(f"p{i}", Decimal(draw(st.integers(1, 400))))
        elif step == "pay_all":
            with refused():
                order.receive_payment(f"p{i}", order.outstanding)
        elif step == "release":
            with refused():
                order.release_credit("ops")
        elif step == "cancel":
            with refused():
                order.cancel("x")
        elif step == "return":
            with refused():
                order.return_goods(f"r{i}", Decimal(draw(st.integers(1, 300))), "x")
        else:
            today += timedelta(days=draw(st.integers(1, 60)))
            with refused():
                order.report_overdue(today)
    return published(order, lambda _aggregate, event: event)


@st.composite
def complaint_stream(draw: st.DrawFn) -> list[Envelope]:
    at = b.T0
    complaint = Complaint.file(
        "k-1",
        b.CID,
        category="delivery",
        severity="high",
        summary="late",
        order_id=None,
        filed_at=at,
        policy=DEFAULT_SLA_POLICY,
    )
    for _ in range(draw(st.integers(0, 10))):
        at += timedelta(hours=draw(st.integers(1, 100)))
        step = draw(st.sampled_from(["acknowledge", "resolve", "confirm", "reopen", "escalate"]))
        if step == "acknowledge":
            with refused():
                complaint.acknowledge("x", at=at)
        elif step == "resolve":
            with refused():
                complaint.resolve("x", at=at)
        elif step == "confirm":
            with refused():
                complaint.confirm(at=at)
        elif step == "reopen":
            with refused():
                complaint.reopen("x", at=at, policy=DEFAULT_SLA_POLICY)
        else:
            with refused():
                complaint.escalate_overdue(at)
    return published(complaint, feedback_public)


@st.composite
def customer_stream(draw: st.DrawFn) -> list[Envelope]:
    customer = Customer.register(b.CID, CustomerProfile(company_name="Acme", region="East"))
    for _ in range(draw(st.integers(0, 10))):
        step = draw(st.sampled_from(["name", "region", "both", "deactivate", "reactivate", "stage"]))
        if step == "name":
            name = draw(st.sampled_from(["Acme", "B", "C"]))
            with refused():
                customer.update_profile({ProfileField.COMPANY_NAME: name})
        elif step == "region":
            region = draw(st.sampled_from(["East", "West", "North"]))
            with refused():
                customer.update_profile({ProfileField.REGION: region})
        elif step == "both":
            changes = {
                ProfileField.REGION: draw(st.sampled_from(["East", "West"])),
                ProfileField.COMPANY_NAME: draw(st.sampled_from(["Acme", "B"])),
            }
            with refused():
                customer.update_profile(changes)
        elif step == "deactivate":
            with refused():
                customer.deactivate("x")
        elif step == "reactivate":
            with refused():
                customer.reactivate("x")
        else:
            stage = draw(st.sampled_from([SalesStage.LEAD, SalesStage.CUSTOMER]))
            with refused():
                customer.advance_stage(stage)
    return published(customer, customers_public)


def written_and_read_back(facts: CustomerFacts) -> None:
    """The changed facts through their table rows and back, as between two polls without the cache."""
    order_rows, complaint_rows, _ = fact_rows(facts)
    for row in order_rows:
        facts.orders[row[1]] = order_from_row(row)
    for row in complaint_rows:
        facts.complaints[row[1]] = complaint_from_row(row)
    facts.mark_saved()


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    customer=customer_stream(),
    first=order_stream("o-1"),
    second=order_stream("o-2"),
    complaint=complaint_stream(),
    data=st.data(),
)
def test_any_arrival_order_of_the_streams_the_aggregates_emit_folds_to_the_facts_of_stream_order(
    customer: list[Envelope],
    first: list[Envelope],
    second: list[Envelope],
    complaint: list[Envelope],
    data: st.DataObject,
) -> None:
    events = customer + first + second + complaint
    reference = fold(events)
    arrived = data.draw(st.permutations(events))
    polls = set(data.draw(st.lists(st.integers(0, len(arrived)), max_size=4)))  # poll boundaries
    facts = CustomerFacts.new(b.CID)
    for i, envelope in enumerate(arrived):
        if i in polls:
            written_and_read_back(facts)
        facts.apply(envelope)
    assert facts.profile == reference.profile
    assert facts.orders == reference.orders
    assert facts.complaints == reference.complaints
