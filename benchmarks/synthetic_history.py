"""A deterministic synthetic B2B history of N contract events, and the segmentation rebuild over it.

    export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:39092 DATABASE_URL=postgresql://tierstream:tierstream@127.0.0.1:35432/postgres
    uv run python benchmarks/synthetic_history.py --events 1000000 [--customers 40000] [--seed 42]
    uv run python benchmarks/synthetic_history.py --events 100000 --extrapolate-to 1000000

The generator (seeded; the same arguments give byte-identical payloads, event ids included) spreads
``--customers`` customers (default events / 25) over two years, 2024-01-01 .. 2026-01-01:

* every customer: CustomerRegistered (region, country, size band), registered uniformly over the first
  80 % of the period; its order cadence is log-normal (median gap ≈ 3 weeks, from days to months) so a
  few customers buy often and many rarely (the tiering sees a skewed population);
* OrderPlaced with 1–10 lines (geometric, mean ≈ 2.5) of a 2,000-SKU catalogue, CNY, 30 payment days;
* per order: cancelled 3 % (OrderCancelled within 2 days, nothing else follows); otherwise paid on time
  85 % (PaymentReceived in full, 5–40 days), reported overdue 8 % (PaymentOverdue after the due date,
  paid late half the time); returned 4 % (OrderReturned of 10–100 % within 30 days); a survey 8 %
  (SurveyAnswered with CSAT and NPS, skewed satisfied); a complaint 2 % (ComplaintFiled → acknowledged
  92 % → resolved 85 % → confirmed 80 %, reopened 6 %, escalated 5 %).

The events are sorted by time (per-customer order holds within each topic, as Kafka guarantees) and
batch-produced to a fresh namespace ``benchsyn<random>.``; the rebuild is then timed exactly as in
segmentation_rebuild.py (the service's ``rebuild`` from the earliest offsets into fresh tables, clock =
the end of the period). ``--extrapolate-to`` prints a linear extrapolation of the measured rate,
labelled as such. Drops the database and deletes the topics at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rebuild_common import DEFAULT_KAFKA, DEFAULT_PG, delete_topics, new_namespace, produce, timed_rebuild
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, EventPayload, Money
from shared.events.vocabulary import ComplaintCategory, OverdueBucket, Severity, SizeBand, SlaBreach

START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)
SPAN_S = (END - START).total_seconds()
DAY = 86_400.0
CNY = "CNY"
REGIONS = [("East", "CN"), ("North", "CN"), ("South", "CN"), ("West", "CN"), ("APAC", "SG"), ("EU", "DE")]
SKUS = 2_000

# event codes of the compact timeline: (at_s, seq, code, customer, order, a, b)
REG, PLACED, CANCEL, PAID, OVERDUE, RETURN, SURVEY, FILED, ACK, RESOLVED, CONFIRMED, REOPENED, ESCALATED = range(13)


def lines_of(seed: int, order_no: int) -> list[tuple[int, int, int]]:
    """(sku, quantity, unit price in cents) of an order — replayable from (seed, order number)."""
    rng = random.Random(seed * 1_000_003 + order_no)
    count = min(10, 1 + int(rng.expovariate(1 / 1.5)))
    return [(rng.randrange(SKUS), rng.randint(1, 24), rng.randint(50, 20_000)) for _ in range(count)]


def order_total(seed: int, order_no: int) -> int:
    return sum(q * p for _, q, p in lines_of(seed, order_no))


def timeline(events: int, customer_count: int, seed: int) -> list[tuple[float, int, int, int, int, int, int]]:
    """Exactly ``events`` compact events sorted by time (see the module docstring for the proportions)."""
    rng = random.Random(seed)
    out: list[tuple[float, int, int, int, int, int, int]] = []
    order_no = 0
    target_orders = max(0.0, (events / max(1, customer_count) - 1) / 2.2)  # ≈ 2.2 events per order

    def add(at: float, code: int, c: int, o: int = 0, a: int = 0, b: int = 0) -> None:
        if at < SPAN_S:
            out.append((at, len(out), code, c, o, a, b))

    def place(c: int, at: float) -> None:
        nonlocal order_no
        order_no += 1
        o = order_no
        total = order_total(seed, o)
        add(at, PLACED, c, o, total)
        roll = rng.random()
        if roll < 0.03:
            add(at + rng.uniform(0.05, 2) * DAY, CANCEL, c, o, total)
            return
        if roll < 0.88:
            add(at + rng.uniform(5, 40) * DAY, PAID, c, o, total)
        elif roll < 0.96:
            late = rng.randint(1, 120)
            add(at + (30 + late) * DAY, OVERDUE, c, o, total, late)
            if rng.random() < 0.5:
                add(at + (30 + late + rng.uniform(1, 30)) * DAY, PAID, c, o, total)
        if rng.random() < 0.04:
            add(at + rng.uniform(3, 30) * DAY, RETURN, c, o, max(1, total * rng.randint(10, 100) // 100))
        if rng.random() < 0.08:
            add(at + rng.uniform(2, 20) * DAY, SURVEY, c, o, rng.choices((1, 2, 3, 4, 5), (3, 5, 15, 40, 37))[0])
        if rng.random() < 0.02:
            filed = at + rng.uniform(1, 20) * DAY
            add(filed, FILED, c, o, rng.randrange(4))
            if rng.random() < 0.05:
                add(filed + 3 * DAY, ESCALATED, c, o)
            if rng.random() < 0.92:
                add(filed + rng.uniform(0.1, 2) * DAY, ACK, c, o)
                if rng.random() < 0.85:
                    resolved = filed + rng.uniform(2, 10) * DAY
                    add(resolved, RESOLVED, c, o)
                    if rng.random() < 0.06:
                        add(resolved + rng.uniform(1, 5) * DAY, REOPENED, c, o)
                    elif rng.random() < 0.8:
                        add(resolved + rng.uniform(1, 7) * DAY, CONFIRMED, c, o)

    # E[1 / gap] of the log-normal cadence is e^0.5 / 21 per day; a customer is active 60 % of the span
    # on average, so scale the cadence to land near target_orders per customer (topped up / trimmed below)
    scale = max(0.02, target_orders / (0.6 * SPAN_S / DAY * math.exp(0.5) / 21))
    for c in range(customer_count):
        registered = rng.uniform(0, 0.8 * SPAN_S)
        add(registered, REG, c, 0, rng.randrange(len(REGIONS)), rng.randrange(4))
        gap_s = rng.lognormvariate(math.log(21), 1.0) * DAY / scale
        at = registered + rng.uniform(0, 3) * DAY
        while at < SPAN_S:
            place(c, at)
            at += rng.expovariate(1 / gap_s)
    while len(out) < events:  # top up with more orders from random customers
        place(rng.randrange(customer_count), rng.uniform(0, SPAN_S - DAY))
    registrations = [e for e in out if e[2] == REG]
    others = sorted(e for e in out if e[2] != REG)
    kept = sorted(registrations + others[: max(0, events - len(registrations))])
    return kept


def encode(seed: int, event: tuple[float, int, int, int, int, int, int]) -> tuple[str, str, bytes]:
    at_s, seq, code, c, o, a, b = event
    cid = f"syn-{c:07d}"
    oid = f"{cid}-o{o}"
    at = START + timedelta(seconds=at_s)
    payload: EventPayload
    kind = "orders"
    if code == REG:
        region, country = REGIONS[a]
        payload = customers.CustomerRegistered(
            customer_id=cid,
            company_name=f"Synthetic Co {c}",
            region=region,
            country=country,
            size_band=list(SizeBand)[b],
        )
        kind = "customers"
    elif code == PLACED:
        lines = [
            orders.OrderLine(sku=f"SKU-{s:05d}", quantity=q, unit_price=Money(amount=Decimal(p) / 100, currency=CNY))
            for s, q, p in lines_of(seed, o)
        ]
        payload = orders.OrderPlaced(
            order_id=oid,
            customer_id=cid,
            lines=lines,
            total=Money(amount=Decimal(a) / 100, currency=CNY),
            placed_at=at,
            due_date=(at + timedelta(days=30)).date(),
            payment_days=30,
        )
    elif code == CANCEL:
        payload = orders.OrderCancelled(
            order_id=oid, amount=Money(amount=Decimal(a) / 100, currency=CNY), reason="customer request"
        )
    elif code == PAID:
        payload = orders.PaymentReceived(
            order_id=oid,
            payment_id=f"pay-{o}",
            amount=Money(amount=Decimal(a) / 100, currency=CNY),
            outstanding=Money(amount=Decimal(0), currency=CNY),
            paid_in_full=True,
        )
    elif code == OVERDUE:
        payload = orders.PaymentOverdue(
            order_id=oid,
            days_overdue=b,
            bucket=OverdueBucket.DAYS_1_30
            if b <= 30
            else OverdueBucket.DAYS_31_60
            if b <= 60
            else OverdueBucket.DAYS_61_90
            if b <= 90
            else OverdueBucket.DAYS_90_PLUS,
            amount=Money(amount=Decimal(a) / 100, currency=CNY),
            due_date=(at - timedelta(days=b)).date(),
        )
    elif code == RETURN:
        payload = orders.OrderReturned(
            order_id=oid, return_id=f"ret-{o}", amount=Money(amount=Decimal(a) / 100, currency=CNY), reason="damaged"
        )
    elif code == SURVEY:
        nps = min(10, max(0, a * 2 + (seq % 3) - 1))
        payload = feedback.SurveyAnswered(survey_id=f"srv-{o}", customer_id=cid, csat=a, nps=nps, order_id=oid)
        kind = "feedback"
    else:
        kind = "feedback"
        complaint = f"cmp-{o}"
        if code == FILED:
            payload = feedback.ComplaintFiled(
                complaint_id=complaint,
                customer_id=cid,
                category=list(ComplaintCategory)[a],
                severity=Severity.MEDIUM,
                order_id=oid,
                summary="synthetic complaint",
                filed_at=at,
                acknowledge_by=at + timedelta(hours=24),
                resolve_by=at + timedelta(days=7),
            )
        elif code == ACK:
            payload = feedback.ComplaintAcknowledged(complaint_id=complaint, acknowledged_by="agent-1")
        elif code == RESOLVED:
            payload = feedback.ComplaintResolved(complaint_id=complaint, resolution="replaced the goods")
        elif code == CONFIRMED:
            payload = feedback.ComplaintConfirmed(complaint_id=complaint)
        elif code == REOPENED:
            payload = feedback.ComplaintReopened(complaint_id=complaint, reason="not fixed")
        else:
            payload = feedback.ComplaintEscalated(
                complaint_id=complaint, breach=SlaBreach.RESOLVE, deadline=at - timedelta(days=1), overdue_by_hours=24
            )
    envelope = Envelope.wrap(
        payload,
        producer="bench",
        aggregate_type=kind.rstrip("s"),
        aggregate_id=cid,
        aggregate_version=1,
        customer_id=cid,
        correlation_id="synthetic",
        occurred_at=at,
        event_id=uuid.UUID(int=(seed << 64) | seq, version=4),
    )
    return kind, cid, envelope.to_json()


def records(events: int, customer_count: int, seed: int) -> tuple[int, Iterator[tuple[str, str, bytes]]]:
    compact = timeline(events, customer_count, seed)
    return len(compact), (encode(seed, e) for e in compact)


def mix(compact: list[tuple[float, int, int, int, int, int, int]]) -> dict[str, int]:
    names = ["registered", "placed", "cancelled", "paid", "overdue", "returned", "survey", "complaint_filed",
             "acknowledged", "resolved", "confirmed", "reopened", "escalated"]  # fmt: skip
    counts = [0] * len(names)
    for e in compact:
        counts[e[2]] += 1
    return dict(zip(names, counts, strict=True))


async def main(args: argparse.Namespace) -> None:
    customer_count = args.customers or max(1, args.events // 25)
    started = time.perf_counter()
    compact = timeline(args.events, customer_count, args.seed)
    print(f"generated {len(compact)} events for {customer_count} customers in {time.perf_counter() - started:.1f} s")
    print("mix:", json.dumps(mix(compact)))
    names = new_namespace("benchsyn")
    try:
        started = time.perf_counter()
        sent = await produce(args.bootstrap, names, (encode(args.seed, e) for e in compact), args.partitions)
        produced_s = time.perf_counter() - started
        print(
            f"encoded + produced {sent} events to {names.namespace}* in {produced_s:.1f} s ({sent / produced_s:.0f}/s)"
        )
        del compact
        timing = await timed_rebuild(args.bootstrap, args.pg_url, names, END)
    finally:
        await delete_topics(args.bootstrap, names)
    result: dict[str, object] = {
        "data": f"synthetic seed {args.seed}",
        "events": timing.events,
        "customers": customer_count,
        "partitions": args.partitions,
        "rebuild_seconds": round(timing.seconds, 1),
        "rebuild_events_per_s": round(timing.rate),
        "produce_seconds": round(produced_s, 1),
    }
    if args.extrapolate_to:
        result["EXTRAPOLATED_rebuild_seconds_at"] = {str(args.extrapolate_to): round(args.extrapolate_to / timing.rate)}
    for key, value in result.items():
        print(f"{key:>32}: {value}")
    print(json.dumps(result))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=None, help="default: events / 25")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--extrapolate-to", type=int, default=None, help="print a linear extrapolation to this size")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA))
    parser.add_argument("--pg-url", default=os.environ.get("DATABASE_URL", DEFAULT_PG), help="PostgreSQL server URL")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
