"""Rebuild time of the segmentation projection over the full Online Retail history.

    export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:39092 DATABASE_URL=postgresql://tierstream:tierstream@127.0.0.1:35432/postgres
    uv run python benchmarks/segmentation_rebuild.py [--max-customers N] [--payments]

1. Plans ``../shared/data/online_retail.csv.gz`` (next to the repository; skipped with a message when
   absent) exactly as ``tierstream load`` does (src/tierstream/dataset.py) and turns it into contract
   envelopes as tests/realdata does: CustomerRegistered, OrderPlaced (with lines, GBP) and OrderReturned
   (``--payments`` adds the PaymentReceived events ``tierstream load`` assumes).
2. Batch-produces them to a fresh namespace ``benchrb<random>.`` (key = customer id).
3. Times ``segmentation.application.rebuild.rebuild`` — the code of ``python -m segmentation rebuild`` —
   replaying the three input topics from the earliest offsets into fresh tables of a fresh database, at
   the clock 2011-12-10T00:00Z, including its final sweep and checksum pass.

Prints events, seconds and events/s; drops the database and deletes the topics at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rebuild_common import DEFAULT_KAFKA, DEFAULT_PG, delete_topics, new_namespace, produce, timed_rebuild
from shared.events import customers, orders
from shared.events.envelope import Envelope, EventPayload, Money
from tierstream.dataset import LoadPlan, payments_for, plan, read_rows

DATA_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online_retail.csv.gz"
CLOCK = datetime(2011, 12, 10, tzinfo=UTC)
GBP = "GBP"


def wrap(payload: EventPayload, customer_id: str, aggregate: str, at: datetime) -> bytes:
    return Envelope.wrap(
        payload,
        producer="bench",
        aggregate_type=aggregate,
        aggregate_id=customer_id,
        aggregate_version=1,
        customer_id=customer_id,
        correlation_id="online-retail",
        occurred_at=at,
    ).to_json()


def records(p: LoadPlan, with_payments: bool) -> Iterator[tuple[str, str, bytes]]:
    first_order: dict[str, datetime] = {}
    placed: dict[str, datetime] = {}
    for o in p.orders:
        first_order.setdefault(o.customer_id, o.placed_at)
        placed[o.order_id] = o.placed_at
    for c in p.customers:
        reg = customers.CustomerRegistered(
            customer_id=c.customer_id, company_name=c.company_name, region=c.region, country=c.country
        )
        at = first_order.get(c.customer_id, datetime(2010, 12, 1, tzinfo=UTC))
        yield "customers", c.customer_id, wrap(reg, c.customer_id, "customer", at)
    for o in p.orders:
        lines = [
            orders.OrderLine(
                sku=str(ln["sku"]),
                description=str(ln["description"]),
                quantity=int(str(ln["quantity"])),
                unit_price=Money(amount=Decimal(str(ln["unit_price"])), currency=GBP),
            )
            for ln in o.lines
        ]
        payload = orders.OrderPlaced(
            order_id=o.order_id,
            customer_id=o.customer_id,
            lines=lines,
            total=Money(amount=o.total, currency=GBP),
            placed_at=o.placed_at,
            due_date=(o.placed_at + timedelta(days=30)).date(),
            payment_days=30,
        )
        yield "orders", o.customer_id, wrap(payload, o.customer_id, "order", o.placed_at)
    for r in p.returns:
        ret = orders.OrderReturned(
            order_id=r.order_id, return_id=r.return_id, amount=Money(amount=r.amount, currency=GBP), reason=r.reason
        )
        yield "orders", r.customer_id, wrap(ret, r.customer_id, "order", placed[r.order_id])
    if with_payments:
        for pay in payments_for(p):
            paid = orders.PaymentReceived(
                order_id=pay.order_id,
                payment_id=pay.payment_id,
                amount=Money(amount=pay.amount, currency=GBP),
                outstanding=Money(amount=Decimal(0), currency=GBP),
                paid_in_full=True,
            )
            at = placed[pay.order_id] + timedelta(days=30)
            yield "orders", pay.customer_id, wrap(paid, pay.customer_id, "order", at)


async def main(args: argparse.Namespace) -> None:
    if not DATA_FILE.exists():
        print(f"SKIPPED: the Online Retail data set is absent ({DATA_FILE}; see ../shared/data/README.md)")
        return
    started = time.perf_counter()
    p = plan(read_rows(DATA_FILE), max_customers=args.max_customers)
    print(
        f"planned {len(p.customers)} customers, {len(p.orders)} orders, {len(p.returns)} returns "
        f"from {p.rows_read} rows in {time.perf_counter() - started:.1f} s"
    )
    names = new_namespace("benchrb")
    try:
        started = time.perf_counter()
        sent = await produce(args.bootstrap, names, records(p, args.payments), args.partitions)
        produced_s = time.perf_counter() - started
        print(
            f"encoded + produced {sent} events to {names.namespace}* in {produced_s:.1f} s ({sent / produced_s:.0f}/s)"
        )
        timing = await timed_rebuild(args.bootstrap, args.pg_url, names, CLOCK)
    finally:
        await delete_topics(args.bootstrap, names)
    result = {
        "data": "online_retail",
        "events": timing.events,
        "customers": len(p.customers),
        "partitions": args.partitions,
        "rebuild_seconds": round(timing.seconds, 1),
        "rebuild_events_per_s": round(timing.rate),
        "produce_seconds": round(produced_s, 1),
    }
    for key, value in result.items():
        print(f"{key:>22}: {value}")
    print(json.dumps(result))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--max-customers", type=int, default=None, help="only the first N customers (a sample)")
    parser.add_argument(
        "--payments", action="store_true", help="add the PaymentReceived events tierstream load assumes"
    )
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA))
    parser.add_argument("--pg-url", default=os.environ.get("DATABASE_URL", DEFAULT_PG), help="PostgreSQL server URL")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
