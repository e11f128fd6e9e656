"""Order aggregate: given events, when a command, then new events (or a refusal)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from orders.domain.credit import CreditDecision
from orders.domain.errors import FieldRuleViolation
from orders.domain.order import Order, OrderLine, ReturnedUnits
from shared.events import orders as contract
from shared.events.envelope import Money
from shared.events.vocabulary import CreditHoldReason, OverdueBucket
from shared.eventsourcing.aggregate import DomainError

pytestmark = pytest.mark.unit

PLACED_AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def lines() -> list[OrderLine]:
    return [
        OrderLine(sku="A1", description="lantern", quantity=6, unit_price=Decimal("3.39")),
        OrderLine(sku="B2", description="cushion", quantity=2, unit_price=Decimal("10.00"), category="home"),
    ]


def placed() -> Order:
    order = Order.place("o-1", "c-1", lines(), currency="GBP", placed_at=PLACED_AT, payment_days=30)
    order.mark_saved()
    return order


def test_placing_an_order_computes_the_total_and_due_date_from_the_lines() -> None:
    order = Order.place("o-1", "c-1", lines(), currency="GBP", placed_at=PLACED_AT, payment_days=30)

    [event] = order.pending_events
    assert isinstance(event, contract.OrderPlaced)
    assert event.total.amount == Decimal("40.34") and event.total.currency == "GBP"
    assert event.due_date == date(2026, 3, 31)
    assert [ln.sku for ln in event.lines] == ["A1", "B2"]
    assert order.version == 1 and order.stored_version == 0


def test_an_order_without_lines_is_refused() -> None:
    with pytest.raises(DomainError, match="at least one line"):
        Order.place("o-1", "c-1", [], currency="GBP", placed_at=PLACED_AT, payment_days=30)


def test_cancelling_records_the_order_amount_so_consumers_need_no_lookup() -> None:
    order = placed()
    order.cancel("customer changed their mind")
    [event] = order.pending_events
    assert isinstance(event, contract.OrderCancelled)
    assert event.amount.amount == Decimal("40.34")
    assert order.status == "cancelled" and order.stored_version == 1


def test_cancelling_twice_is_refused() -> None:
    order = placed()
    order.cancel("first")
    with pytest.raises(DomainError, match="already cancelled"):
        order.cancel("second")


def test_returns_accumulate_up_to_the_order_total_and_not_beyond() -> None:
    order = placed()
    order.return_goods("r-1", Decimal("30.34"), "damaged")
    order.return_goods("r-2", Decimal("10.00"), "damaged")
    assert order.status == "returned" and order.returnable == 0
    with pytest.raises(DomainError, match="exceeds the returnable"):
        order.return_goods("r-3", Decimal("0.01"), "too much")


def test_the_same_return_is_not_recorded_twice() -> None:
    order = placed()
    order.return_goods("r-1", Decimal("1"), "damaged")
    with pytest.raises(DomainError, match="already recorded"):
        order.return_goods("r-1", Decimal("1"), "damaged")


def test_replaying_the_stream_rebuilds_the_same_state() -> None:
    order = placed()
    order.return_goods("r-1", Decimal("5"), "damaged")
    events = [
        Order.place("o-1", "c-1", lines(), currency="GBP", placed_at=PLACED_AT, payment_days=30).pending_events[0],
        *order.pending_events,
    ]
    replayed = Order.replay("o-1", events)
    assert (replayed.total, replayed.returned, replayed.version) == (Decimal("40.34"), Decimal("5"), 2)


# -- credit, payments, returns by line, overdue: given events / when a command / then events ----------------
def given(*events: object) -> Order:
    return Order.replay("o-1", events)  # type: ignore[arg-type]


def placed_event(status: str = "placed", payment_days: int = 30) -> contract.OrderPlaced:
    return (
        Order.place("o-1", "c-1", lines(), currency="GBP", placed_at=PLACED_AT, payment_days=payment_days)
        .pending_events[0]
        .model_copy(update={"status": status})
    )  # type: ignore[return-value]


def held_event() -> contract.OrderCreditHeld:
    return contract.OrderCreditHeld(
        order_id="o-1",
        reasons=["over_credit_limit"],
        exposure=money("1040.34"),
        credit_limit=money("1000"),
    )


def money(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="GBP")


def paid(amount: str, payment_id: str = "p-1", outstanding: str = "0") -> contract.PaymentReceived:
    return contract.PaymentReceived(
        order_id="o-1",
        payment_id=payment_id,
        amount=money(amount),
        outstanding=money(outstanding),
        paid_in_full=Decimal(outstanding) == 0,
    )


def test_an_order_failing_the_credit_check_is_placed_on_hold_with_the_reasons() -> None:
    decision = CreditDecision(
        reasons=(CreditHoldReason.OVER_CREDIT_LIMIT, CreditHoldReason.RECEIVABLES_OVERDUE_60),
        exposure=Decimal("1040.34"),
        currency="GBP",
        credit_limit=Decimal("1000"),
        limit_currency="GBP",
    )
    order = Order.place("o-1", "c-1", lines(), currency="GBP", placed_at=PLACED_AT, payment_days=45, credit=decision)

    placed_, held = order.pending_events
    assert isinstance(placed_, contract.OrderPlaced) and placed_.status == "credit_held"
    assert placed_.due_date == date(2026, 4, 15) and placed_.payment_days == 45
    assert held == contract.OrderCreditHeld(
        order_id="o-1",
        reasons=["over_credit_limit", "receivables_overdue_60"],
        exposure=money("1040.34"),
        credit_limit=money("1000"),
    )
    assert order.status == "credit_held" and order.outstanding == Decimal("40.34")


def test_an_accepted_credit_decision_places_the_order_normally() -> None:
    decision = CreditDecision(reasons=(), exposure=Decimal("40.34"), currency="GBP")
    order = Order.place("o-1", "c-1", lines(), currency="GBP", placed_at=PLACED_AT, payment_days=30, credit=decision)
    [event] = order.pending_events
    assert isinstance(event, contract.OrderPlaced) and event.status == "placed"
    assert order.status == "placed"


def test_releasing_a_held_order_records_who_released_it() -> None:
    order = given(placed_event("credit_held"), held_event())
    order.release_credit("ops-7", "paid by bank guarantee")
    assert order.pending_events == [
        contract.OrderCreditReleased(order_id="o-1", released_by="ops-7", note="paid by bank guarantee")
    ]
    assert order.status == "placed" and order.hold is not None and not order.on_hold


@pytest.mark.parametrize(
    "history",
    [
        (placed_event(),),
        (placed_event("credit_held"), held_event(), contract.OrderCreditReleased(order_id="o-1", released_by="x")),
    ],
)
def test_an_order_not_on_hold_cannot_be_released(history: tuple) -> None:
    with pytest.raises(DomainError, match="not on credit hold"):
        given(*history).release_credit("ops-7")


def test_partial_then_full_payment_settles_the_order() -> None:
    order = given(placed_event())
    order.receive_payment("p-1", Decimal("40"))
    order.receive_payment("p-2", Decimal("0.34"), "GBP")
    assert order.pending_events == [
        paid("40", "p-1", outstanding="0.34"),
        paid("0.34", "p-2", outstanding="0"),
    ]
    assert (order.status, order.paid, order.outstanding) == ("paid", Decimal("40.34"), 0)


@pytest.mark.parametrize(
    ("history", "amount", "currency", "code"),
    [
        ((placed_event(),), "40.35", None, "overpayment"),
        ((placed_event(), paid("40", outstanding="0.34")), "0.35", None, "overpayment"),
        ((placed_event(),), "10", "EUR", "currency_mismatch"),
        ((placed_event(),), "0", None, "not_positive"),
    ],
)
def test_payments_that_do_not_fit_are_refused_with_the_field_at_fault(
    history: tuple, amount: str, currency: str | None, code: str
) -> None:
    order = given(*history)
    with pytest.raises(FieldRuleViolation) as refused:
        order.receive_payment("p-9", Decimal(amount), currency)
    assert refused.value.code == code and order.pending_events == []


def test_the_same_payment_is_not_recorded_twice_and_cancelled_orders_take_none() -> None:
    with pytest.raises(DomainError, match="already recorded"):
        given(placed_event(), paid("1", "p-1", "39.34")).receive_payment("p-1", Decimal("1"))
    cancelled = contract.OrderCancelled(order_id="o-1", amount=money("40.34"), reason="x")
    with pytest.raises(DomainError, match="cancelled"):
        given(placed_event(), cancelled).receive_payment("p-2", Decimal("1"))


def test_a_paid_order_cannot_be_cancelled_but_a_held_one_can() -> None:
    with pytest.raises(DomainError, match="has payments"):
        given(placed_event(), paid("1", outstanding="39.34")).cancel("changed mind")
    order = given(placed_event("credit_held"), held_event())
    order.cancel("credit refused")
    assert order.status == "cancelled" and order.outstanding == 0


def test_returns_reduce_what_is_owed_and_a_return_after_full_payment_owes_nothing() -> None:
    order = given(placed_event())
    order.return_goods("r-1", Decimal("10"), "damaged")
    assert order.outstanding == Decimal("30.34")
    settled = given(placed_event(), paid("40.34"))
    settled.return_goods("r-1", Decimal("10"), "damaged")
    assert (settled.outstanding, settled.status) == (0, "paid")


def test_returning_lines_values_them_at_the_order_prices() -> None:
    order = given(placed_event())
    order.return_goods("r-1", None, "wrong colour", [ReturnedUnits("A1", 2), ReturnedUnits("B2", 1)])
    [event] = order.pending_events
    assert isinstance(event, contract.OrderReturned)
    assert event.amount == money("16.78")  # 2 × 3.39 + 1 × 10.00
    assert event.lines == [contract.ReturnedLine(sku="A1", quantity=2), contract.ReturnedLine(sku="B2", quantity=1)]


@pytest.mark.parametrize(
    ("units", "amount", "field", "code"),
    [
        ([ReturnedUnits("ZZ", 1)], None, "lines", "not_on_order"),
        ([ReturnedUnits("B2", 3)], None, "lines", "exceeds_ordered"),
        ([ReturnedUnits("A1", 5), ReturnedUnits("A1", 2)], None, "lines", "exceeds_ordered"),
        ([ReturnedUnits("B2", 1)], Decimal("9.99"), "amount", "amount_mismatch"),
        (None, None, "amount", "missing"),
    ],
)
def test_returned_lines_must_be_on_the_order_and_not_returned_already(
    units: list | None, amount: Decimal | None, field: str, code: str
) -> None:
    returned_before = contract.OrderReturned(
        order_id="o-1", return_id="r-0", amount=money("3.39"), reason="x", lines=[{"sku": "A1", "quantity": 1}]
    )
    order = given(placed_event(), returned_before)
    with pytest.raises(FieldRuleViolation) as refused:
        order.return_goods("r-1", amount, "why", units)
    assert (refused.value.field, refused.value.code) == (field, code)


def test_goods_of_an_order_on_hold_cannot_be_returned() -> None:
    with pytest.raises(DomainError, match="credit hold"):
        given(placed_event("credit_held"), held_event()).return_goods("r-1", Decimal("1"), "x")


def day(n: int) -> date:
    """``n`` days after the due date of ``placed_event()`` (2026-03-31)."""
    return date.fromordinal(date(2026, 3, 31).toordinal() + n)


def test_an_overdue_receivable_is_reported_once_per_bucket_as_it_ages() -> None:
    order = given(placed_event())
    reported = [(n, order.report_overdue(day(n))) for n in (0, 1, 2, 30, 31, 45, 61, 90, 91, 400)]
    assert [n for n, did in reported if did] == [1, 31, 61, 91]
    assert [(e.days_overdue, e.bucket, e.amount) for e in order.pending_events] == [  # type: ignore[attr-defined]
        (1, OverdueBucket.DAYS_1_30, money("40.34")),
        (31, OverdueBucket.DAYS_31_60, money("40.34")),
        (61, OverdueBucket.DAYS_61_90, money("40.34")),
        (91, OverdueBucket.DAYS_90_PLUS, money("40.34")),
    ]


def test_a_receivable_first_seen_late_is_reported_in_its_current_bucket_only_and_replay_remembers() -> None:
    order = given(placed_event(), paid("10", outstanding="30.34"))
    assert order.report_overdue(day(75))
    [event] = order.pending_events
    assert (event.days_overdue, event.bucket, event.amount, event.due_date) == (  # type: ignore[attr-defined]
        75,
        OverdueBucket.DAYS_61_90,
        money("30.34"),
        date(2026, 3, 31),
    )
    replayed = given(placed_event(), paid("10", outstanding="30.34"), event)
    assert not replayed.report_overdue(day(80))
    assert replayed.report_overdue(day(95))


@pytest.mark.parametrize(
    "history",
    [
        (placed_event(), paid("40.34")),
        (placed_event(), contract.OrderCancelled(order_id="o-1", amount=money("40.34"), reason="x")),
        (placed_event(), contract.OrderReturned(order_id="o-1", return_id="r", amount=money("40.34"), reason="x")),
    ],
)
def test_nothing_is_overdue_on_an_order_that_owes_nothing(history: tuple) -> None:
    order = given(*history)
    assert not order.report_overdue(day(100)) and order.pending_events == []
