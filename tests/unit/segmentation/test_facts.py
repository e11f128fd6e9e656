"""Per-customer facts folded from contract events: every event type, placeholders, cross-topic order."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

import pytest
import segmentation_builders as b

from segmentation.domain.facts import ComplaintStatus
from segmentation.projections.rows import lifetime_figures
from shared.events import customers, feedback, orders

pytestmark = pytest.mark.unit


def history() -> list:  # type: ignore[type-arg]
    return [
        b.registered(),
        b.placed("o-1", "400.00", 0),
        b.placed("o-2", "300.00", 10),
        b.placed("o-3", "900.00", 20),
        b.returned("o-3", "100"),
        b.cancelled("o-2", "300.00"),
        b.complaint("k-1"),
    ]


def test_orders_cancellations_returns_and_complaints_become_facts_and_lifetime_figures() -> None:
    facts = b.fold(history())
    assert facts.profile.registered and facts.profile.company_name == "Acme"
    o3 = facts.orders["o-3"]
    assert (o3.amount, o3.returned_amount, o3.net, o3.is_live) == (Decimal("900.00"), Decimal(100), Decimal(800), True)
    assert facts.orders["o-2"].net == 0 and not facts.orders["o-2"].is_live
    figures = lifetime_figures(facts)
    assert (figures["orders_count"], figures["cancelled_orders"]) == (3, 1)
    assert figures["net_revenue"] == Decimal("1200.00")  # 1600 − 300 cancelled − 100 returned
    assert figures["last_order_at"] == b.T0 + timedelta(days=20) and figures["first_order_at"] == b.T0
    assert (figures["open_complaints"], figures["complaints_total"]) == (1, 1)
    assert facts.profile.events_applied == 7


def test_an_event_of_an_order_not_seen_yet_creates_a_placeholder_the_order_fills_in() -> None:
    facts = b.fold([b.returned("o-1", "50"), b.placed("o-1", "80", 0)])
    order = facts.orders["o-1"]
    assert (order.amount, order.returned_amount, order.net, order.placed_at) == (
        Decimal(80),
        Decimal(50),
        Decimal(30),
        b.T0,
    )
    assert not facts.profile.registered  # orders before the registration: a placeholder customer


@pytest.mark.parametrize("permutation", list(itertools.permutations(range(3))))
def test_any_interleaving_of_the_three_topics_folds_to_the_same_facts(permutation: tuple[int, ...]) -> None:
    """Customers, orders and feedback topics may arrive in any interleaving; within a topic, in order."""
    events = history()
    by_topic = [[events[0]], events[1:6], [events[6]]]
    reference = b.fold(events)
    facts = b.fold([e for i in permutation for e in by_topic[i]])
    assert facts.orders == reference.orders
    assert facts.complaints == reference.complaints
    assert facts.profile == reference.profile


def test_receivables_follow_overdue_reports_partial_payments_and_payment_in_full() -> None:
    due = date(2026, 2, 4)
    facts = b.fold([b.placed("o-1", "500", 0), b.overdue("o-1", "500", due, 3)])
    assert facts.orders["o-1"].overdue_amount == Decimal(500)
    facts.apply(b.paid("o-1", "200", "300"))
    assert facts.orders["o-1"].overdue_amount == Decimal(300)
    facts.apply(b.paid("o-1", "300", "0"))
    assert facts.orders["o-1"].overdue_amount == 0 and facts.orders["o-1"].paid_in_full


def test_credit_holds_and_their_release() -> None:
    facts = b.fold(
        [
            b.placed("o-1", "500", 0),
            b.wrap(
                orders.OrderCreditHeld(
                    order_id="o-1", reasons=["over_credit_limit"], exposure=b.money(500), credit_limit=b.money(100)
                )
            ),
        ]
    )
    assert facts.orders["o-1"].credit_held
    facts.apply(b.wrap(orders.OrderCreditReleased(order_id="o-1", released_by="ops-1")))
    assert not facts.orders["o-1"].credit_held


def test_the_complaint_loop_open_resolved_reopened_escalated_confirmed() -> None:
    facts = b.fold([b.complaint("k-1")])
    steps = [
        (feedback.ComplaintAcknowledged(complaint_id="k-1"), ComplaintStatus.OPEN),
        (feedback.ComplaintResolved(complaint_id="k-1", resolution="refund"), ComplaintStatus.RESOLVED),
        (feedback.ComplaintReopened(complaint_id="k-1", reason="not fixed"), ComplaintStatus.OPEN),
        (
            feedback.ComplaintEscalated(complaint_id="k-1", breach="resolve", deadline=b.T0 + timedelta(days=3)),
            ComplaintStatus.OPEN,
        ),
        (feedback.ComplaintResolved(complaint_id="k-1", resolution="replaced"), ComplaintStatus.RESOLVED),
        (feedback.ComplaintConfirmed(complaint_id="k-1"), ComplaintStatus.CONFIRMED),
    ]
    for payload, status in steps:
        facts.apply(b.wrap(payload))
        assert facts.complaints["k-1"].status == status
    c = facts.complaints["k-1"]
    assert (c.acknowledged, c.escalated, c.reopened_count) == (True, True, 1)


def test_profile_updates_and_stages_only_move_forward() -> None:
    facts = b.fold([b.registered(stage="lead")])
    facts.apply(b.wrap(customers.CustomerStageAdvanced(previous_stage="lead", new_stage="customer")))
    facts.apply(b.wrap(customers.CustomerRegistered(customer_id=b.CID, company_name="Acme", region="East")))
    assert facts.profile.sales_stage == "customer"  # a replayed registration does not move it back
    facts.apply(b.wrap(customers.CustomerProfileUpdated(changed_fields=["region"], region="West")))
    assert facts.profile.region == "West"
    facts.apply(b.wrap(customers.CustomerDeactivated(reason="closed down")))
    assert facts.profile.deactivated


def test_only_changed_facts_are_marked_for_writing() -> None:
    facts = b.fold([b.placed("o-1", "10", 0), b.survey("s-1", csat=4)])
    assert (facts.changed_orders, facts.changed_surveys, facts.changed_complaints) == ({"o-1"}, {"s-1"}, set())
