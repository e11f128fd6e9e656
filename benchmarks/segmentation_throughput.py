"""Consume-and-project throughput of segmentation vs a raw aiokafka consume loop.

    export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:39092 DATABASE_URL=postgresql://tierstream:tierstream@127.0.0.1:35432/postgres
    uv run python benchmarks/segmentation_throughput.py --events 100000 --customers 10000

Pre-fills a fresh topic namespace with a customer-keyed mix of contract events (registrations on
crm.customers.v1; orders, returns, payments on crm.orders.v1; surveys on crm.feedback.v1), then reads it
three ways from the earliest offset, each until every event was seen:

1. ``raw``      — aiokafka ``getmany`` only (the ceiling: bytes off the wire);
2. ``parse``    — raw + the standard library's ``json.loads`` of every record and nothing else: the ceiling
   of any Python consumer that looks at the events' contents;
3. ``decode``   — raw + ``parse_envelope`` of every record (the contract validation every consumer pays);
4. ``project``  — the real ``ProjectionConsumer`` + ``SegmentProjector`` into a fresh, migrated
   database: inbox dedupe, facts, grading, history, outbox and offsets in one transaction per poll;
5. with ``--processes K``: the same again into a second fresh database by K ``python -m segmentation
   consume`` processes in one consumer group (the production role, scaled out by partitions), timed from
   the first committed poll to the last, so interpreter start-up and the group join are not counted.

Prints events/s for each and the ratios project / raw and parse / raw. Creates its own topics and database and drops the
database at the end (topics stay; they are namespaced ``bench<random>.``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rebuild_common import database_url, drop_database
from segmentation.__main__ import DEFINITION
from segmentation.bootstrap import build_projection
from segmentation.config import SegmentationSettings
from shared.db.engine import create_engine, ensure_database
from shared.db.migrations import upgrade
from shared.events import customers, feedback, orders
from shared.events.envelope import Envelope, EventPayload, Money
from shared.events.registry import parse_envelope
from shared.events.topics import Topics
from shared.messaging.consumer import ProjectionConsumer
from shared.messaging.kafka import ensure_topics

START = datetime(2026, 1, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


def envelope(payload: EventPayload, customer_id: str, at: datetime) -> Envelope:
    return Envelope.wrap(
        payload,
        producer="bench",
        aggregate_type="bench",
        aggregate_id=customer_id,
        aggregate_version=1,
        customer_id=customer_id,
        correlation_id="bench",
        occurred_at=at,
    )


def workload(events: int, customer_count: int, seed: int = 7) -> list[tuple[str, str, bytes]]:
    """(topic kind, customer id, value) in per-customer order: registration first, then the mix."""
    rng = random.Random(seed)
    ids = [f"b-{i:06d}" for i in range(customer_count)]
    out: list[tuple[str, str, bytes]] = []
    orders_of: dict[str, list[str]] = {c: [] for c in ids}
    for cid in ids[: min(customer_count, events)]:
        reg = customers.CustomerRegistered(customer_id=cid, company_name=f"Co {cid}", region=rng.choice("NESW"))
        out.append(("customers", cid, envelope(reg, cid, START).to_json()))
    while len(out) < events:
        cid = rng.choice(ids)
        at = START + timedelta(minutes=len(out))
        roll = rng.random()
        if roll < 0.85 or not orders_of[cid]:
            oid = f"{cid}-o{len(orders_of[cid])}"
            orders_of[cid].append(oid)
            price = Money(amount=Decimal(rng.randint(100, 50_000)) / 100, currency="CNY")
            qty = rng.randint(1, 20)
            payload: EventPayload = orders.OrderPlaced(
                order_id=oid,
                customer_id=cid,
                lines=[orders.OrderLine(sku=f"SKU-{rng.randint(1, 500)}", quantity=qty, unit_price=price)],
                total=Money(amount=price.amount * qty, currency="CNY"),
                placed_at=at,
                due_date=(at + timedelta(days=30)).date(),
                payment_days=30,
            )
            kind = "orders"
        elif roll < 0.90:
            payload = orders.OrderReturned(
                order_id=orders_of[cid][-1],
                return_id=f"r-{len(out)}",
                amount=Money(amount=Decimal("1.00"), currency="CNY"),
                reason="damaged",
            )
            kind = "orders"
        elif roll < 0.95:
            amount = Money(amount=Decimal("1.00"), currency="CNY")
            payload = orders.PaymentReceived(
                order_id=orders_of[cid][-1],
                payment_id=f"p-{len(out)}",
                amount=amount,
                outstanding=Money(amount=Decimal("0"), currency="CNY"),
                paid_in_full=True,
            )
            kind = "orders"
        else:
            payload = feedback.SurveyAnswered(survey_id=f"s-{len(out)}", customer_id=cid, nps=rng.randint(0, 10))
            kind = "feedback"
        out.append((kind, cid, envelope(payload, cid, at).to_json()))
    return out


async def prefill(bootstrap: str, names: Topics, records: list[tuple[str, str, bytes]], partitions: int) -> None:
    await ensure_topics(bootstrap, names.all(), partitions=partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=20)
    await producer.start()
    try:
        topic = {"customers": names.customers, "orders": names.orders, "feedback": names.feedback}
        futures = [await producer.send(topic[k], value=v, key=c.encode()) for k, c, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_all(
    bootstrap: str, names: Topics, partitions: int, total: int, *, decode: Callable[[bytes], object] | None
) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=500)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in (names.customers, names.orders, names.feedback) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        started = time.perf_counter()
        while seen < total:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batch.values():
                seen += len(records)
                if decode is not None:
                    for r in records:
                        decode(r.value)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def project_all(bootstrap: str, database_url: str, names: Topics, total: int, batch: int) -> float:
    settings = SegmentationSettings(database_url=database_url, topic_namespace=names.namespace)
    container = DEFINITION.container(settings)  # the composition root the consume role uses
    engine = container.engine
    consumer = ProjectionConsumer(
        engine,
        build_projection(container),
        bootstrap_servers=bootstrap,
        group_id=f"{names.namespace}segmentation",
        topics=[names.customers, names.orders, names.feedback],
        deadletter_topic=names.deadletter,
        batch_size=batch,
    )
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(consumer.run(stop))
    try:
        while True:
            async with engine.connect() as conn:
                done = await conn.scalar(text("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets"))
            if done >= total:
                return time.perf_counter() - started
            if task.done():
                raise RuntimeError(f"consumer stopped: {task.exception()!r}")
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
        await container.close()


async def stored_offsets_total(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets")) or 0)


async def project_in_processes(
    bootstrap: str, database_url: str, names: Topics, partitions: int, total: int, batch: int, processes: int
) -> float:
    """Events/s of ``processes`` consumer processes in one group, counted from their first committed poll."""
    env = {
        **os.environ,
        "SEGMENTATION_DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TIERSTREAM_TOPIC_NAMESPACE": names.namespace,
        "TIERSTREAM_TOPIC_PARTITIONS": str(partitions),
        "SEGMENTATION_CONSUMER_BATCH_SIZE": str(batch),
        "TIERSTREAM_ENV": "development",
        "LOG_LEVEL": "WARNING",
    }
    children = start_consumers(env, processes)
    engine = create_engine(database_url)
    try:
        first_done = 0
        first_at = 0.0
        while True:
            done = await stored_offsets_total(engine)
            now = time.perf_counter()
            if done and not first_at:
                first_done, first_at = done, now
            if done >= total:
                return (total - first_done) / (now - first_at)
            if any(child.poll() is not None for child in children):
                raise RuntimeError("a consumer process exited early (its stderr is above)")
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
        stop_consumers(children)


def start_consumers(env: dict[str, str], count: int) -> list[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "segmentation", "consume"]
    return [
        subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, start_new_session=True)
        for _ in range(count)
    ]


def stop_consumers(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM by PID, SIGKILL whatever has not ended 30 s later."""
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)


async def fresh_database(server_url: str) -> str:
    url = database_url(server_url, "bench_seg")
    await ensure_database(url)
    await upgrade(DEFINITION.migrations, url)
    return url


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument(
        "--batch",
        type=int,
        default=SegmentationSettings.model_fields["consumer_batch_size"].default,
        help="records per poll / transaction (default: the service's SEGMENTATION_CONSUMER_BATCH_SIZE default)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="also project with K `python -m segmentation consume` processes in one group (default: 0, skip)",
    )
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://tierstream:tierstream@127.0.0.1:55432/postgres"),
    )
    args = parser.parse_args()
    names = Topics(f"bench{uuid.uuid4().hex[:8]}.")
    print(f"workload: {args.events} events, {args.customers} customers, {args.partitions} partitions …")
    records = workload(args.events, args.customers)
    await prefill(args.bootstrap, names, records, args.partitions)
    databases = [await fresh_database(args.database_url)]
    try:
        raw = await read_all(args.bootstrap, names, args.partitions, len(records), decode=None)
        parse = await read_all(args.bootstrap, names, args.partitions, len(records), decode=json.loads)
        decode = await read_all(args.bootstrap, names, args.partitions, len(records), decode=parse_envelope)
        project = await project_all(args.bootstrap, databases[0], names, len(records), args.batch)
        if args.processes:
            databases.append(await fresh_database(args.database_url))
            in_processes = await project_in_processes(
                args.bootstrap, databases[1], names, args.partitions, len(records), args.batch, args.processes
            )
    finally:
        for url in databases:
            await drop_database(args.database_url, url)
    n = len(records)
    result = {
        "events": n,
        "customers": args.customers,
        "batch": args.batch,
        "raw_events_per_s": round(n / raw),
        "parse_events_per_s": round(n / parse),
        "decode_events_per_s": round(n / decode),
        "project_events_per_s": round(n / project),
        "project_vs_raw": round(raw / project, 3),
        "project_vs_decode": round(decode / project, 3),
        "parse_vs_raw": round(raw / parse, 3),
    }
    if args.processes:
        result[f"project_{args.processes}_processes_events_per_s"] = round(in_processes)
        result[f"project_{args.processes}_processes_vs_raw"] = round(in_processes * raw / n, 3)
    for key, value in result.items():
        print(f"{key:>22}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
