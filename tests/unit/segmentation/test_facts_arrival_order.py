"""Within one stream, too, the order of arrival does not change the facts (a re-driven dead letter or a
producer's re-send arrives after later events of its stream): state that events overwrite keeps the
stream version of the event that set it, and an older event leaves it alone."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import segmentation_builders as b
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation.domain.facts import ComplaintStatus, CustomerFacts
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, EventPayload

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


# -- any arrival order of valid streams ------------------------------------------------------------------


@st.composite
def customer_stream(draw: st.DrawFn) -> list[EventPayload]:
    out: list[EventPayload] = [customers.CustomerRegistered(customer_id=b.CID, company_name="Acme", region="East")]
    active = True
    for step in draw(st.lists(st.sampled_from(["name", "region", "toggle", "stage"]), max_size=6)):
        if step == "name":
            out.append(
                customers.CustomerProfileUpdated(changed_fields=["company_name"], company_name=f"Acme {len(out)}")
            )
        elif step == "region":
            region = draw(st.sampled_from(["North", "South", "West"]))
            out.append(customers.CustomerProfileUpdated(changed_fields=["region"], region=region))
        elif step == "toggle":
            out.append(
                customers.CustomerDeactivated(reason="x") if active else customers.CustomerReactivated(reason="x")
            )
            active = not active
        else:
            out.append(customers.CustomerStageAdvanced(previous_stage="prospect", new_stage="lead"))
    return out


@st.composite
def order_stream(draw: st.DrawFn) -> list[EventPayload]:
    """A valid order: placed (maybe on hold), then holds / releases, returns, partial payments and
    overdue notices for what is outstanding, maybe ending paid in full or cancelled."""
    outstanding = 1_000
    held = draw(st.booleans())
    out: list[EventPayload] = [placed(amount=outstanding, held=held)]
    steps = draw(st.lists(st.sampled_from(["hold", "return", "pay", "overdue"]), max_size=8))
    for i, step in enumerate(steps):
        if step == "hold":
            out.append(RELEASED if held else HELD)
            held = not held
        elif step == "return":
            out.append(orders.OrderReturned(order_id="o-1", return_id=f"r-{i}", amount=b.money(10), reason="x"))
        elif step == "pay" and outstanding > 100:
            outstanding -= 100
            out.append(paid(100, outstanding))
        elif step == "overdue":
            out.append(overdue(outstanding))
    end = draw(st.sampled_from(["open", "paid", "cancelled"]))
    if end == "paid":
        out.append(paid(outstanding, 0))
    elif end == "cancelled":
        out.append(orders.OrderCancelled(order_id="o-1", amount=b.money(1_000), reason="x"))
    return out


@st.composite
def complaint_stream(draw: st.DrawFn) -> list[EventPayload]:
    out: list[EventPayload] = [b.complaint("k-1").data, feedback.ComplaintAcknowledged(complaint_id="k-1")]
    for _ in range(draw(st.integers(0, 3))):
        out.append(feedback.ComplaintResolved(complaint_id="k-1", resolution="refund"))
        if draw(st.booleans()):
            out.append(feedback.ComplaintConfirmed(complaint_id="k-1"))
            break
        out.append(feedback.ComplaintReopened(complaint_id="k-1", reason="not fixed"))
    return out


@settings(max_examples=200, deadline=None)
@given(
    customer=customer_stream(),
    order=order_stream(),
    complaint=complaint_stream(),
    data=st.data(),
)
def test_any_arrival_order_of_a_customers_streams_folds_to_the_facts_of_stream_order(
    customer: list[EventPayload], order: list[EventPayload], complaint: list[EventPayload], data: st.DataObject
) -> None:
    events = stream(*customer) + stream(*order) + stream(*complaint)
    reference = fold(events)
    arrived = fold(data.draw(st.permutations(events)))
    assert arrived.profile == reference.profile
    assert arrived.orders == reference.orders
    assert arrived.complaints == reference.complaints
