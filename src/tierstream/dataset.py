"""Turn the Online Retail CSV into commands for the public APIs. Pure: no I/O beyond reading rows.

Also the same plan as contract events (:func:`contract_events`), for replays that skip the APIs.

Data set: "Online Retail" (Daqing Chen, Sai Liang Sain, Kun Guo, 2012; UCI Machine Learning Repository,
CC BY 4.0) — every invoice line of a UK online wholesaler, 2010-12-01 .. 2011-12-09.

Mapping: each CustomerID → a customer (region = its first country); each invoice with a customer →
an order (``INV-<no>``, placed in UK local time, GBP); each cancellation invoice (``C…``) → returns
against that customer's latest earlier orders, split if one order cannot absorb it (and kept whole as a
:class:`Cancellation`, which the feedback assumption reads). Rows that cannot become commands are
counted by reason — nothing is dropped silently.

Two things the data set does not record are *assumed*, each with a switch to leave it out: payments
(:func:`payments_for`) and customer feedback (:mod:`tierstream.assumed_feedback`).
"""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from shared.events import customers, orders
from shared.events.envelope import Envelope, EventPayload, Money

if TYPE_CHECKING:
    from tierstream.assumed_feedback import FeedbackPlan

UK = ZoneInfo("Europe/London")
CURRENCY = "GBP"


@dataclass
class CustomerCmd:
    customer_id: str
    company_name: str
    region: str
    country: str


@dataclass
class OrderCmd:
    order_id: str
    customer_id: str
    placed_at: datetime
    lines: list[dict[str, object]] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((Decimal(str(ln["unit_price"])) * int(str(ln["quantity"])) for ln in self.lines), Decimal(0))


@dataclass
class ReturnCmd:
    order_id: str
    customer_id: str
    return_id: str
    amount: Decimal
    reason: str


@dataclass
class PaymentCmd:
    order_id: str
    customer_id: str
    payment_id: str
    amount: Decimal


@dataclass(frozen=True)
class Cancellation:
    """One cancellation invoice whole, as the data has it (its returns are in ``LoadPlan.returns``)."""

    invoice: str  # "C536379"
    customer_id: str
    at: datetime
    amount: Decimal  # the whole invoice, GBP
    order_ids: tuple[str, ...]  # the orders its returns were booked against, latest first
    products: tuple[str, ...]  # descriptions of its product lines (stock codes starting with a digit)
    charges: frozenset[str]  # its other stock codes: D (discount), M (manual), POST, C2, CRUK, …


@dataclass
class LoadPlan:
    customers: list[CustomerCmd]
    orders: list[OrderCmd]
    returns: list[ReturnCmd]
    rows_read: int
    rejected: Counter[str]
    cancellations: list[Cancellation] = field(default_factory=list)  # those that returned something


#: The columns :func:`plan` reads from every row (``Description`` and ``Country`` may be missing or empty).
REQUIRED_COLUMNS = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID")


class DatasetError(ValueError):
    """The file is not the Online Retail CSV; the message names the file and what is wrong with it."""


def read_rows(path: Path) -> Iterator[dict[str, str]]:
    """The rows of the Online Retail CSV at ``path`` (gzip when it ends in ``.gz``), checked to have
    :data:`REQUIRED_COLUMNS`. A file that cannot be read as such raises :class:`DatasetError`."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                found = ", ".join(reader.fieldnames or ()) or "no header row"
                raise DatasetError(f"{path} lacks the Online Retail column(s) {', '.join(missing)} (it has: {found})")
            yield from reader
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        kind = "gzip-compressed CSV" if path.suffix == ".gz" else "UTF-8 CSV"
        raise DatasetError(f"cannot read {path} as a {kind}: {exc}") from exc


def customer_id_of(raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return f"C{int(float(raw))}"
    except ValueError:
        return None


def plan(rows: Iterable[dict[str, str]], *, max_customers: int | None = None) -> LoadPlan:
    rejected: Counter[str] = Counter()
    customers: dict[str, CustomerCmd] = {}
    orders: dict[str, OrderCmd] = {}
    cancellations: dict[str, tuple[str, datetime, Decimal]] = {}
    cancelled_lines: dict[str, list[tuple[str, str]]] = {}  # invoice → (stock code, description)
    count = 0
    for row in rows:
        count += 1
        cid = customer_id_of(row.get("CustomerID", ""))
        if cid is None:
            rejected["no CustomerID (walk-in sale, not a customer event)"] += 1
            continue
        if max_customers is not None and cid not in customers and len(customers) >= max_customers:
            rejected["outside the requested sample of customers"] += 1
            continue
        try:
            quantity = int(row["Quantity"])
            price = Decimal(row["UnitPrice"])
            placed = datetime.strptime(row["InvoiceDate"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UK)
        except (ValueError, InvalidOperation, KeyError):
            rejected["unparseable quantity, price or date"] += 1
            continue
        if cid not in customers:
            country = row.get("Country", "").strip() or "Unknown"
            customers[cid] = CustomerCmd(cid, f"Customer {cid[1:]}", region=country, country=country)
        invoice = row["InvoiceNo"].strip()
        if invoice.startswith("C"):
            if quantity >= 0 or price < 0:
                rejected["cancellation line with a non-negative quantity or negative price"] += 1
                continue
            _, _, amount = cancellations.get(invoice, (cid, placed, Decimal(0)))
            cancellations[invoice] = (cid, placed, amount + price * -quantity)
            line = (row["StockCode"].strip(), (row.get("Description") or "").strip())
            cancelled_lines.setdefault(invoice, []).append(line)
            continue
        if quantity <= 0:
            rejected["invoice line with quantity <= 0 (adjustment)"] += 1
            continue
        if price < 0:
            rejected["invoice line with a negative price (bad-debt adjustment)"] += 1
            continue
        order = orders.setdefault(invoice, OrderCmd(f"INV-{invoice}", cid, placed))
        order.lines.append(
            {
                "sku": row["StockCode"].strip()[:64] or "UNKNOWN",
                "description": (row.get("Description") or "").strip()[:300],
                "quantity": quantity,
                "unit_price": format(price, "f"),
            }
        )
    order_list = sorted(orders.values(), key=lambda o: (o.placed_at, o.order_id))
    returns = _allocate_returns(order_list, cancellations, rejected)
    used = {o.customer_id for o in order_list} | {c for c, _, _ in cancellations.values()}
    return LoadPlan(
        customers=[c for c in customers.values() if c.customer_id in used],
        orders=order_list,
        returns=returns,
        rows_read=count,
        rejected=rejected,
        cancellations=_cancellations(cancellations, cancelled_lines, returns),
    )


def _cancellations(
    cancellations: dict[str, tuple[str, datetime, Decimal]],
    lines: dict[str, list[tuple[str, str]]],
    returns: list[ReturnCmd],
) -> list[Cancellation]:
    """The cancellation invoices that returned goods from some order, in date order."""
    booked: dict[str, list[str]] = {}
    for ret in returns:
        booked.setdefault(ret.reason.removeprefix("cancellation "), []).append(ret.order_id)
    found = []
    for invoice, (cid, when, amount) in cancellations.items():
        if invoice not in booked:
            continue
        codes = lines.get(invoice, [])
        products = tuple(description for code, description in codes if code[:1].isdigit())
        charges = frozenset(code for code, _ in codes if not code[:1].isdigit())
        found.append(Cancellation(invoice, cid, when, amount, tuple(booked[invoice]), products, charges))
    found.sort(key=lambda c: (c.at, c.invoice))
    return found


def _allocate_returns(
    orders: list[OrderCmd], cancellations: dict[str, tuple[str, datetime, Decimal]], rejected: Counter[str]
) -> list[ReturnCmd]:
    """Each cancellation invoice returns goods from the customer's latest earlier orders."""
    remaining = {o.order_id: o.total for o in orders}
    by_customer: dict[str, list[OrderCmd]] = {}
    for order in orders:
        by_customer.setdefault(order.customer_id, []).append(order)
    returns: list[ReturnCmd] = []
    for invoice, (cid, when, amount) in sorted(cancellations.items(), key=lambda kv: (kv[1][1], kv[0])):
        if amount <= 0:
            rejected["cancellation invoice (whole) of zero value"] += 1
            continue
        left = amount
        part = 0
        for order in reversed([o for o in by_customer.get(cid, []) if o.placed_at <= when]):
            take = min(left, remaining[order.order_id])
            if take <= 0:
                continue
            remaining[order.order_id] -= take
            part += 1
            returns.append(ReturnCmd(order.order_id, cid, f"RET-{invoice}-{part}", take, f"cancellation {invoice}"))
            left -= take
            if left <= 0:
                break
        if left > 0:
            rejected["cancellation invoice (whole) larger than the customer's earlier orders in the data"] += 1
    return returns


def payments_for(plan: LoadPlan) -> list[PaymentCmd]:
    """An assumption, not data: the data set records invoices but no payments. Paying every order's
    outstanding amount (total − returns) keeps the demo's receivables clean instead of reporting the
    whole 2010–2011 history as 90+ days overdue; ``tierstream load --no-payments`` skips it."""
    returned: dict[str, Decimal] = {}
    for ret in plan.returns:
        returned[ret.order_id] = returned.get(ret.order_id, Decimal(0)) + ret.amount
    payments = []
    for order in plan.orders:
        outstanding = order.total - returned.get(order.order_id, Decimal(0))
        if outstanding > 0:
            payments.append(PaymentCmd(order.order_id, order.customer_id, f"PAY-{order.order_id}", outstanding))
    return payments


def day_after_last_order(plan: LoadPlan) -> datetime:
    """Midnight UTC after the plan's last order: "today" for the demo's clocks (2011-12-10 for the full
    data set), and the instant the feedback assumption stops at."""
    last = max((o.placed_at for o in plan.orders), default=datetime.now(UTC))
    return (last.astimezone(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def contract_events(
    plan: LoadPlan,
    *,
    with_payments: bool = False,
    feedback: FeedbackPlan | None = None,
    producer: str = "online-retail",
) -> Iterator[tuple[str, Envelope]]:
    """The plan as the contract events the services would publish, for replays that skip the APIs
    (the real-data test, the rebuild benchmark). Yields ("customers" | "orders" | "feedback", envelope),
    each numbered in its aggregate's stream (a customer, an order, a complaint or survey) as its service would;
    each customer registers at its first order, returns and payments are dated by their order; the
    assumed feedback (:func:`tierstream.assumed_feedback.feedback_for`), when given, comes last, each
    event dated on the data's timeline."""
    first_order: dict[str, datetime] = {}
    placed: dict[str, datetime] = {}
    for o in plan.orders:
        first_order.setdefault(o.customer_id, o.placed_at)
        placed[o.order_id] = o.placed_at

    versions: dict[tuple[str, str], int] = {}  # per aggregate, the version of its last event (from 1)

    def wrap(payload: EventPayload, customer_id: str, aggregate: tuple[str, str], at: datetime) -> Envelope:
        kind, aggregate_id = aggregate
        versions[aggregate] = version = versions.get(aggregate, 0) + 1
        return Envelope.wrap(
            payload,
            producer=producer,
            aggregate_type=kind,
            aggregate_id=aggregate_id,
            aggregate_version=version,
            customer_id=customer_id,
            correlation_id="online-retail",
            occurred_at=at,
        )

    def money(amount: Decimal) -> Money:
        return Money(amount=amount, currency=CURRENCY)

    for c in plan.customers:
        registered = customers.CustomerRegistered(
            customer_id=c.customer_id, company_name=c.company_name, region=c.region, country=c.country
        )
        at = first_order.get(c.customer_id, datetime(2010, 12, 1, tzinfo=UTC))
        yield "customers", wrap(registered, c.customer_id, ("customer", c.customer_id), at)
    for o in plan.orders:
        lines = [
            orders.OrderLine(
                sku=str(ln["sku"]),
                description=str(ln["description"]),
                quantity=int(str(ln["quantity"])),
                unit_price=money(Decimal(str(ln["unit_price"]))),
            )
            for ln in o.lines
        ]
        placed_event = orders.OrderPlaced(
            order_id=o.order_id,
            customer_id=o.customer_id,
            lines=lines,
            total=money(o.total),
            placed_at=o.placed_at,
            due_date=(o.placed_at + timedelta(days=30)).date(),
            payment_days=30,
        )
        yield "orders", wrap(placed_event, o.customer_id, ("order", o.order_id), o.placed_at)
    for r in plan.returns:
        returned = orders.OrderReturned(
            order_id=r.order_id, return_id=r.return_id, amount=money(r.amount), reason=r.reason
        )
        yield "orders", wrap(returned, r.customer_id, ("order", r.order_id), placed[r.order_id])
    if with_payments:
        for pay in payments_for(plan):
            paid = orders.PaymentReceived(
                order_id=pay.order_id,
                payment_id=pay.payment_id,
                amount=money(pay.amount),
                outstanding=money(Decimal(0)),
                paid_in_full=True,
            )
            yield (
                "orders",
                wrap(paid, pay.customer_id, ("order", pay.order_id), placed[pay.order_id] + timedelta(days=30)),
            )
    if feedback is not None:
        for event in feedback.events():
            envelope = Envelope.wrap(
                event.payload,
                producer=producer,
                aggregate_type=event.aggregate_type,
                aggregate_id=event.aggregate_id,
                aggregate_version=event.version,
                customer_id=event.customer_id,
                correlation_id="online-retail",
                occurred_at=event.at,
            )
            yield "feedback", envelope
