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
from datetime import UTC, datetime
from pathlib import Path

from rebuild_common import DEFAULT_KAFKA, DEFAULT_PG, delete_topics, new_namespace, produce, timed_rebuild
from tierstream.dataset import LoadPlan, contract_events, plan, read_rows

DATA_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online_retail.csv.gz"
CLOCK = datetime(2011, 12, 10, tzinfo=UTC)


def records(p: LoadPlan, with_payments: bool) -> Iterator[tuple[str, str, bytes]]:
    for kind, envelope in contract_events(p, with_payments=with_payments, producer="bench"):
        yield kind, envelope.customer_id, envelope.to_json()


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
