"""Handlers and the overdue sweep on in-memory fakes, with a fake clock (no database, no broker)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from orders.adapters.memory import InMemoryCreditLedger
from orders.application.commands import CancelOrder, PlaceOrder, ReceivePayment
from orders.application.handlers import OrderHandlers
from orders.application.locks import KeyedLocks
from orders.application.overdue import OverdueSweep
from orders.domain.credit import CreditPolicy, CreditTerms
from orders.domain.customer_credit import CustomerCredit
from orders.domain.errors import CreditCheckStale, CustomerDeactivated, UnknownCustomer
from orders.domain.order import Order, OrderLine
from shared.clock import InTheFuture
from shared.events.registry import parse_envelope
from shared.eventsourcing.aggregate import DomainError
from shared.eventsourcing.repository import AggregateRepository
from shared.eventsourcing.store import InMemoryEventStore

pytestmark = pytest.mark.unit

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: int) -> None:
        self.now += timedelta(days=days)


class Setup:
    def __init__(self) -> None:
        self.clock = FakeClock(START)
        self.store = InMemoryEventStore()
        self.ledger = InMemoryCreditLedger()
        self.orders = AggregateRepository(self.store, Order, producer="orders", topic="crm.orders.v1", clock=self.clock)
        self.handlers = OrderHandlers(self.orders, self.ledger, policy=CreditPolicy(), clock=self.clock)
        self.sweep = OverdueSweep(self.orders, self.ledger, clock=self.clock, batch_size=2)

    def customer(self, customer_id: str = "c-1", *, limit: str | None = None, days: int = 30, active: bool = True):  # type: ignore[no-untyped-def]
        terms = None if limit is None else CreditTerms(Decimal(limit), "CNY", days)
        self.ledger.put_customer(CustomerCredit(customer_id, registered=True, active=active, terms=terms, version=3))

    async def place(self, order_id: str, amount: str, customer_id: str = "c-1") -> Order:
        line = OrderLine(sku="S", description="goods", quantity=1, unit_price=Decimal(amount))
        return await self.handlers.place_order(PlaceOrder(customer_id, [line], "CNY", order_id), "corr")

    def published(self) -> list[tuple[str, str, str]]:
        envelopes = [parse_envelope(m.value) for m in self.store.outbox]
        return [(e.event_type, e.aggregate_id, str(getattr(e.data, "bucket", ""))) for e in envelopes]


async def test_an_order_dated_in_the_future_is_refused_naming_placed_at_and_nothing_is_stored() -> None:
    s = Setup()
    s.customer()
    line = OrderLine(sku="S", description="goods", quantity=1, unit_price=Decimal("10"))

    def placing(order_id: str, at: datetime) -> PlaceOrder:
        return PlaceOrder("c-1", [line], "CNY", order_id, placed_at=at)

    with pytest.raises(InTheFuture) as refused:
        await s.handlers.place_order(placing("o-late", START + timedelta(minutes=6)), "corr")
    assert (refused.value.code, refused.value.loc) == ("in_the_future", ("placed_at",))
    assert s.published() == []
    past = await s.handlers.place_order(placing("o-past", START - timedelta(days=400)), "corr")
    skewed = await s.handlers.place_order(placing("o-skew", START + timedelta(minutes=4)), "corr")
    assert [past.placed_at, skewed.placed_at] == [START - timedelta(days=400), START + timedelta(minutes=4)]


async def test_orders_within_the_limit_pass_and_the_one_that_exceeds_it_is_held() -> None:
    s = Setup()
    s.customer(limit="1000", days=45)
    first = await s.place("o-1", "600")
    second = await s.place("o-2", "400")
    third = await s.place("o-3", "0.01")
    assert [first.status, second.status, third.status] == ["placed", "placed", "credit_held"]
    assert third.hold is not None and third.hold.exposure.amount == Decimal("1000.01")
    assert first.due_date == date(2026, 4, 15)  # 45 payment days from the terms
    await s.handlers.receive_payment(ReceivePayment("o-1", Decimal("600")), "corr")
    assert (await s.place("o-4", "500")).status == "placed"  # paying frees the credit


async def test_customers_unknown_to_orders_or_deactivated_cannot_order() -> None:
    s = Setup()
    with pytest.raises(UnknownCustomer):
        await s.place("o-1", "1", customer_id="nobody")
    s.customer("c-9", active=False)
    with pytest.raises(CustomerDeactivated):
        await s.place("o-1", "1", customer_id="c-9")
    assert s.store.outbox == []


async def test_a_customer_without_terms_is_never_held_and_gets_the_default_payment_days() -> None:
    s = Setup()
    s.customer()
    order = await s.place("o-1", "99999999")
    assert order.status == "placed" and order.due_date == date(2026, 3, 31)


async def test_an_existing_order_id_is_refused() -> None:
    s = Setup()
    s.customer()
    await s.place("o-1", "1")
    with pytest.raises(DomainError, match="already exists"):
        await s.place("o-1", "1")


async def test_a_credit_position_that_changed_under_the_check_is_checked_again() -> None:
    s = Setup()
    s.customer(limit="1000")
    real_placing = s.ledger.placing
    interfered = False

    def placing_with_a_rival(order: Order, checked_version: int):  # type: ignore[no-untyped-def]
        hook = real_placing(order, checked_version)

        async def run(conn) -> None:  # type: ignore[no-untyped-def]
            nonlocal interfered
            if not interfered:  # another order of the customer commits first, taking the credit
                interfered = True
                rival = Order.place(
                    "rival",
                    "c-1",
                    [OrderLine("S", "", 1, Decimal("900"))],
                    currency="CNY",
                    placed_at=START,
                    payment_days=30,
                )
                await real_placing(rival, checked_version)(conn)
            await hook(conn)

        return run

    s.ledger.placing = placing_with_a_rival  # type: ignore[method-assign]
    order = await s.place("o-1", "200")
    assert interfered and order.status == "credit_held"  # re-checked with the rival's 900 counted
    assert order.hold is not None and order.hold.exposure.amount == Decimal("1100")
    assert [e.stream_version for e in s.store.streams["order-o-1"]] == [1, 2]  # the first attempt left nothing


async def test_a_stale_check_that_never_settles_gives_up_with_a_conflict() -> None:
    s = Setup()
    s.customer(limit="1000")

    def always_stale(order: Order, checked_version: int):  # type: ignore[no-untyped-def]
        async def run(_conn) -> None:  # type: ignore[no-untyped-def]
            raise CreditCheckStale(order.customer_id)

        return run

    s.ledger.placing = always_stale  # type: ignore[method-assign]
    with pytest.raises(DomainError, match="kept changing"):
        await s.place("o-1", "1")
    assert s.store.streams.get("order-o-1", []) == []


async def test_the_sweep_reports_each_bucket_once_as_days_pass() -> None:
    s = Setup()
    s.customer(days=30)
    for n in range(3):
        await s.place(f"o-{n}", "100")  # all due 2026-03-31
    await s.handlers.receive_payment(ReceivePayment("o-1", Decimal("100")), "corr")  # o-1 is paid
    await s.handlers.cancel_order(CancelOrder("o-2", "not needed"), "corr")  # o-2 is cancelled

    assert (await s.sweep.run_once()).reported == 0  # not due yet
    s.clock.advance(31)  # 2026-04-01: day 1
    assert (await s.sweep.run_once()).reported == 1
    assert (await s.sweep.run_once()).reported == 0  # a second sweep on the same day: nothing new
    s.clock.advance(29)  # day 30: still 1-30
    assert (await s.sweep.run_once()).reported == 0
    s.clock.advance(1)  # day 31
    assert (await s.sweep.run_once()).reported == 1
    s.clock.advance(100)  # day 131: 61-90 skipped, 90+ reported
    assert (await s.sweep.run_once()).reported == 1
    s.clock.advance(365)
    assert (await s.sweep.run_once()).reported == 0

    overdue = [p for p in s.published() if p[0] == "PaymentOverdue"]
    assert overdue == [
        ("PaymentOverdue", "o-0", "1-30"),
        ("PaymentOverdue", "o-0", "31-60"),
        ("PaymentOverdue", "o-0", "90+"),
    ]


async def test_the_sweep_pages_through_more_receivables_than_one_batch() -> None:
    s = Setup()
    s.customer(limit="1000000", days=0)
    for n in range(5):
        await s.place(f"o-{n}", "10")
    s.clock.advance(1)
    report = await s.sweep.run_once()
    assert (report.reported, report.examined) == (5, 5)
    assert {p[1] for p in s.published() if p[0] == "PaymentOverdue"} == {f"o-{n}" for n in range(5)}


async def test_a_partial_payment_is_reported_with_what_is_still_owed() -> None:
    s = Setup()
    s.customer()
    await s.place("o-1", "100")
    await s.handlers.receive_payment(ReceivePayment("o-1", Decimal("60")), "corr")
    s.clock.advance(40)
    await s.sweep.run_once()
    order = await s.orders.get("o-1")
    assert order is not None and order.overdue_bucket == "1-30"
    last = parse_envelope(s.store.outbox[-1].value).data
    assert last.amount.amount == Decimal("40") and last.days_overdue == 10  # type: ignore[attr-defined]


async def test_a_customer_with_receivables_more_than_60_days_overdue_gets_orders_held() -> None:
    s = Setup()
    s.customer(limit="1000000", days=10)
    await s.place("o-1", "5")
    s.clock.advance(10 + 60)
    assert (await s.place("o-2", "5")).status == "placed"  # exactly 60 days overdue
    s.clock.advance(1)
    held = await s.place("o-3", "5")
    assert held.status == "credit_held" and held.hold is not None
    assert [str(r) for r in held.hold.reasons] == ["receivables_overdue_60"]


async def test_placements_for_one_customer_queue_in_process_and_idle_keys_are_forgotten() -> None:
    locks = KeyedLocks()
    trace: list[str] = []

    async def work(key: str, name: str) -> None:
        async with locks.hold(key):
            trace.append(f"{name}+")
            await asyncio.sleep(0.01)
            trace.append(f"{name}-")

    await asyncio.gather(work("c-1", "a"), work("c-1", "b"), work("c-2", "x"))
    assert trace.index("a-") < trace.index("b+")  # same customer: one after the other
    assert trace.index("x+") < trace.index("a-")  # another customer: alongside
    assert len(locks) == 0


async def test_concurrent_orders_of_one_customer_through_the_handler_never_overrun_the_limit() -> None:
    s = Setup()
    s.customer(limit="500")
    placed = await asyncio.gather(*(s.place(f"o-{n}", "100") for n in range(8)))
    assert sorted(o.status for o in placed) == ["credit_held"] * 3 + ["placed"] * 5
